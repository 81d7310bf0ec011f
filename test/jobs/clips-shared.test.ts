/**
 * Issue 12 (clips part): the tables are a view over per-video records, so queue workers
 * (`only: [video]`) and ranks sharing one out_dir each add their videos instead of
 * overwriting the tables with their own; issue 10: stage contracts and CSV errors.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClipstreamError } from '../../src/errors.js';
import { clipsJob } from '../../src/cli/clips-command.js';
import { cutStage } from '../../src/clips/cut.js';
import { describeStage } from '../../src/clips/describe.js';
import { resolveEncoder } from '../../src/media/encoders.js';
import { SOURCE_FIELDS, type VideoContext } from '../../src/clips/item.js';
import { obtainStage } from '../../src/clips/obtain.js';
import { planStage } from '../../src/clips/plan-stage.js';
import { probeStage } from '../../src/clips/probe-stage.js';
import { readSources } from '../../src/clips/sources.js';
import { clips, type ClipsReport } from '../../src/jobs/clips.js';
import { checkStages } from '../../src/stage/contract.js';
import { parseCsv } from '../../src/util/csv.js';
import { makeSource } from '../helpers/clip-sources.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-shared-'));
  await makeSource(join(dir, 'a.mp4'), { seconds: 3, fps: 10, audioHz: 440 });
  await makeSource(join(dir, 'b.mp4'), { seconds: 2, fps: 10 });
  await makeSource(join(dir, 'c.mp4'), { seconds: 2, fps: 10 });
  await makeSource(join(dir, 'd.mp4'), { seconds: 2, fps: 10 });
  await writeFile(join(dir, 'sources.csv'), 'video_id,path\na,a.mp4\nb,b.mp4\nc,c.mp4\nd,d.mp4\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const table = async (out: string, name: string) => parseCsv(await readFile(join(out, name), 'utf8'));

describe('one out_dir shared by queue workers', () => {
  const options = (outputDir: string) => ({
    sources: join(dir, 'sources.csv'),
    outputDir,
    clipLenS: 1,
    preset: 'ultrafast',
    shardSize: 2,
    onWarning: () => {},
  });

  it('units one at a time (as `clipstream worker` runs them, in any order) give the tables and shards of one run, written by the run completing the list', async () => {
    const one = join(dir, 'one');
    const whole = await clips(options(one));
    expect(whole.run.units.map((u) => [u.unit, u.outcome])).toEqual([
      ['a', 'done'],
      ['b', 'done'],
      ['c', 'done'],
      ['d', 'done'],
    ]);
    expect(whole.shards.map((s) => s.clips)).toEqual([2, 2, 2, 2, 1]);
    // A plain run: the start writes the tables (none yet), the videos before the last are
    // throttled, the last one completes the list and rebuilds, the end finds them final.
    expect(whole.tables).toMatchObject({ rebuilds: 2, skipped: 4 });
    const shared = join(dir, 'shared');
    const opts = clipsJob.optionsFromArgs({
      sources: join(dir, 'sources.csv'),
      out_dir: shared,
      clip_len_s: 1,
      preset: 'ultrafast',
      shard_size: 2,
      quiet: true,
    });
    expect(await clipsJob.listUnits(opts)).toEqual(['a', 'b', 'c', 'd']);
    const first = await clips({ ...options(shared), only: ['c'] });
    expect(first.videos.map((v) => [v.video_id, v.num_clips])).toEqual([['c', 2]]);
    expect(first.clips.map((c) => c.video_id)).toEqual(['c', 'c']);
    expect(first.shards).toEqual([]);
    // The start wrote the tables (there were none): every video planned, in list order. The
    // rebuilds after c and at the end were throttled (a rebuild just ran; this run is not the
    // whole list and does not complete it), so c still shows as to do.
    expect(first.tables).toMatchObject({ rebuilds: 1, skipped: 2 });
    expect((await table(shared, 'videos.csv')).map((r) => [r.video_id, r.num_clips])).toEqual([
      ['a', '0'],
      ['b', '0'],
      ['c', '0'],
      ['d', '0'],
    ]);
    const stamped = (await stat(join(shared, 'videos.csv'))).mtimeMs;
    // A later unit that does not complete the list leaves the tables alone too.
    const second = (await clipsJob.run({ ...opts, only: ['a'] })) as ClipsReport;
    expect(second.run.units.map((u) => u.unit)).toEqual(['a']);
    expect(second.tables).toMatchObject({ rebuilds: 0, skipped: 3 });
    expect(second.shards).toEqual([]);
    expect((await stat(join(shared, 'videos.csv'))).mtimeMs).toBe(stamped);
    // The last two units at once (two workers): the one that takes the table lock second sees
    // both records, so the list complete, and leaves the final tables and shards.
    const last = await Promise.all([clips({ ...options(shared), only: ['b'] }), clips({ ...options(shared), only: ['d'] })]);
    expect(last.map((r) => r.run.units.map((u) => u.unit))).toEqual([['b'], ['d']]);
    expect(last.map((r) => r.videos.map((v) => [v.video_id, v.num_clips]))).toEqual([[['b', 2]], [['d', 2]]]);
    expect((await stat(join(shared, 'videos.csv'))).mtimeMs).toBeGreaterThan(stamped);
    expect(last.some((r) => r.shards.map((s) => s.clips).join() === '2,2,2,2,1')).toBe(true);
    for (const f of ['videos.csv', 'clips.csv', 'span_issues.csv', 'shards/shard-000000.tar', 'shards/shard-000004.json']) {
      expect((await readFile(join(shared, f), 'utf8')).replaceAll(shared, one), f).toBe(await readFile(join(one, f), 'utf8'));
    }
    expect((await readdir(join(shared, '.units'))).sort()).toEqual(['a.json', 'b.json', 'c.json', 'd.json']);
    await expect(clips({ ...options(shared), only: ['nope'] })).rejects.toThrow("clips: unit(s) not among the job's units: nope");
  }, 120_000);
});

describe('onError', () => {
  it("'throw' stops the run at the first bad video, naming its file; the default records it and goes on", async () => {
    await writeFile(join(dir, 'bad.mp4'), 'not a video');
    await writeFile(join(dir, 'with-bad.csv'), 'video_id,path\nbad,bad.mp4\nb,b.mp4\n');
    const o = { sources: join(dir, 'with-bad.csv'), clipLenS: 1, preset: 'ultrafast', onWarning: () => {} };
    await expect(clips({ ...o, outputDir: join(dir, 'throw'), onError: 'throw' })).rejects.toThrow(/cannot probe .*bad\.mp4/);
    const warned: ClipstreamError[] = [];
    const skipped = await clips({ ...o, outputDir: join(dir, 'skip'), onWarning: (w) => warned.push(w) });
    expect(skipped.run.units.map((u) => [u.unit, u.outcome])).toEqual([
      ['bad', 'failed'],
      ['b', 'done'],
    ]);
    expect(skipped.run.units[0]!.error).toMatch(/^video bad: cannot probe /);
    // The warning says what kind of failure it was: the file cannot be probed, not "a decode failed".
    expect(warned.filter((w) => w.where.key === 'bad').map((w) => w.code)).toEqual(['ERR_PROBE']);
  }, 60_000);
});

describe('stage contracts', () => {
  it('a pipeline in the wrong order fails when built, naming both stages', async () => {
    const ctx: VideoContext = {
      clipsDir: join(dir, 'x', 'clips'),
      downloadsDir: join(dir, 'x', 'downloads'),
      workDir: join(dir, 'x', '.work'),
      plan: { kind: 'stride', stride: { clipLenS: 1, clipStrideS: 1 } },
      encoder: await resolveEncoder('libx264'),
      transcode: { threads: 1, crf: 23 },
      useInputBitRate: false,
      ignoreAudio: false,
      download: {},
    };
    expect(() => checkStages([obtainStage(ctx), planStage(ctx), probeStage(ctx)], SOURCE_FIELDS)).toThrow(
      "pipeline out of order: stage 'plan' needs 'timing', which stage 'probe' adds only after it: put 'probe' before 'plan'",
    );
    expect(() => checkStages([obtainStage(ctx), probeStage(ctx), planStage(ctx), describeStage(ctx), cutStage(ctx)], SOURCE_FIELDS)).toThrow(
      "stage 'describe' needs 'done', which stage 'cut' adds only after it",
    );
    expect(() => checkStages([obtainStage(ctx), probeStage(ctx), planStage(ctx), cutStage(ctx), describeStage(ctx)], SOURCE_FIELDS)).not.toThrow();
  });
});

describe('CSV input', () => {
  it('a broken sources list names the file and the line', async () => {
    const bad = join(dir, 'bad.csv');
    await writeFile(bad, 'video_id,path\na,a.mp4\n\nb,"b.mp4\n');
    await expect(readSources(bad)).rejects.toThrow(new RegExp(`^${bad.replace(/[.]/g, '\\.')}, line 4: Quote Not Closed`));
    const noPath = join(dir, 'nopath.csv');
    await writeFile(noPath, 'video_id,path,url\n\n,,\n');
    await expect(readSources(noPath)).rejects.toThrow(`${noPath}, line 3: no video_id, path or url`);
  });
});
