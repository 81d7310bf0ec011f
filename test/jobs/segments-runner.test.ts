import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeMatteVideo } from '../../scripts/make-segments-fixtures.js';
import { segmentsJob } from '../../src/cli/segments-command.js';
import { segments } from '../../src/jobs/segments.js';
import { MATTE_FIXTURE } from '../../fixtures/matte.js';
import { probeCounted } from '../helpers/segments.js';

// Two short videos in a folder: the units of the job are the videos, by input path.
let dir: string;
const spec = { ...MATTE_FIXTURE, frames: 20 };
const quiet = { onWarning: () => {} };
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-segments-runner-'));
  await mkdir(join(dir, 'in'));
  await writeMatteVideo(spec, join(dir, 'in', 'a.mp4'));
  await writeMatteVideo(spec, join(dir, 'in', 'b.mkv'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const logs = async (d: string) => (await readdir(d)).filter((n) => /^log_.*\.json$/.test(n)).sort();

describe('segments on the job runner', () => {
  const options = () => ({ inputDir: join(dir, 'in'), outputDir: join(dir, 'out'), segmentSeconds: 0.4, ...quiet });

  it('lists its units (the input videos) and runs them, with a run log in the output folder', async () => {
    const ids = await segmentsJob.listUnits(options());
    expect(ids).toEqual([join(dir, 'in', 'a.mp4'), join(dir, 'in', 'b.mkv')]);
    const r = await segments(options());
    expect(r.videos.map((v) => v.status)).toEqual(['done', 'done']);
    expect(r.run.units.map((u) => [u.unit, u.outcome])).toEqual(ids.map((id) => [id, 'done']));
    expect(r.run.items.done).toBe(40);
    for (const v of r.videos) expect(Number((await probeCounted(v.output)).video.nb_read_frames)).toBe(20);
    expect(r.run.logPath).toBe(join(dir, 'out', (await logs(join(dir, 'out')))[0]!));
    const log = JSON.parse(await readFile(r.run.logPath!, 'utf8'));
    expect(log).toMatchObject({ job: 'segments', finished: true });
    expect(log.results.map((x: { outcome: string }) => x.outcome)).toEqual(['done', 'done']);
  });

  it('a rerun skips finished videos without touching them; a changed setting runs them again', async () => {
    const out = join(dir, 'out', 'a.mp4');
    const before = (await stat(out)).mtimeMs;
    const again = await segments(options());
    expect(again.run.units.map((u) => u.status)).toEqual(['skipped (done before)', 'skipped (done before)']);
    expect(again.videos[0]).toMatchObject({ status: 'done', segmentsRun: 0, segmentsReused: 2, frames: 20 });
    expect((await stat(out)).mtimeMs).toBe(before);
    const crf = await segments({ ...options(), crf: 20, only: [join(dir, 'in', 'a.mp4')] });
    expect(crf.run.units.map((u) => [u.unit, u.outcome])).toEqual([[join(dir, 'in', 'a.mp4'), 'done']]);
    expect(crf.videos[0]).toMatchObject({ status: 'done', segmentsRun: 2 });
  });

  it('`only` runs just the named video (a queue unit), through the job definition', async () => {
    await rm(join(dir, 'out', 'b.mp4'));
    const b = join(dir, 'in', 'b.mkv');
    const args = { input_dir: join(dir, 'in'), output_dir: join(dir, 'out'), segment_seconds: 0.4, ...defaults() };
    const r = await segmentsJob.run({ ...segmentsJob.optionsFromArgs(args), only: [b], ...quiet });
    expect(r.run.units.map((u) => [u.unit, u.outcome])).toEqual([[b, 'done']]);
    expect(Number((await probeCounted(join(dir, 'out', 'b.mp4'))).video.nb_read_frames)).toBe(20);
    await expect(segmentsJob.run({ ...segmentsJob.optionsFromArgs(args), only: [join(dir, 'in', 'nope.mp4')], ...quiet })).rejects.toThrow(/nope\.mp4/);
  });
});

/** The CLI's defaults for the flags optionsFromArgs reads. */
function defaults(): Record<string, unknown> {
  return Object.fromEntries(segmentsJob.spec.options.filter((o) => o.default !== undefined).map((o) => [o.name, o.default]));
}
