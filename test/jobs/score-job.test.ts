/**
 * `score` on clips that exist: a folder and tar shards (brace range), one bad clip that does not
 * stop the rest, --filter columns, and resume (finished inputs skipped; clips scored before a kill
 * not scored again).
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { score } from '../../src/jobs/score.js';
import { writeTarAtomic } from '../../src/shards/tar-writer.js';
import { parseCsv } from '../../src/util/csv.js';
import { makeScoreClip, referenceScores } from '../helpers/score-media.js';

let dir: string;
let folder: string;
const quiet = { onWarning: () => {} };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'score-job-'));
  folder = join(dir, 'clips');
  await mkdir(folder);
  for (const n of ['black', 'frozen', 'panning'] as const) await makeScoreClip(folder, n);
  await writeFile(join(folder, 'bad.mp4'), 'not a video at all');
  await writeTarAtomic(join(dir, 'shard-000000.tar'), [
    { name: 'a/black.mp4', path: join(folder, 'black.mp4') },
    { name: 'a/bad.mp4', path: join(folder, 'bad.mp4') },
  ]);
  await writeTarAtomic(join(dir, 'shard-000001.tar'), [{ name: 'b/panning.mp4', path: join(folder, 'panning.mp4') }]);
}, 60_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

const table = async (out: string) => parseCsv(await readFile(join(out, 'scores.csv'), 'utf8'));

describe('score', () => {
  it('a folder: one row per clip with the recipe values; the bad clip is a row with its error', async () => {
    const out = join(dir, 'out-folder');
    const r = await score({ input: folder, outputDir: out, filter: 'black<=0.5,motion>=0.001', ...quiet });
    const rows = new Map((await table(out)).map((x) => [x.clip!, x]));
    expect([...rows.keys()]).toEqual(['bad.mp4', 'black.mp4', 'frozen.mp4', 'panning.mp4']);
    expect(rows.get('bad.mp4')!.error).toMatch(/bad\.mp4/);
    expect(rows.get('bad.mp4')).toMatchObject({ kept: 'false', filter_reason: 'error' });
    expect(rows.get('black.mp4')).toMatchObject({ black: '1', frozen: '1', error: '', kept: 'false', filter_reason: 'black>0.5;motion<0.001' });
    expect(rows.get('frozen.mp4')).toMatchObject({ kept: 'false', filter_reason: 'motion<0.001' });
    expect(rows.get('panning.mp4')).toMatchObject({ kept: 'true', filter_reason: '' });
    expect(r.failed).toBe(1);
    expect(r.filtered).toEqual({ error: 1, 'black>0.5': 1, 'motion<0.001': 2 });
    const ref = await referenceScores(160, 90, [join(folder, 'panning.mp4')]);
    expect(Math.abs(Number(rows.get('panning.mp4')!.motion) - ref[join(folder, 'panning.mp4')]!.motion!)).toBeLessThan(1e-5);
  }, 120_000);

  it('tar shards by brace range: the same scores as from the folder; a re-run skips finished shards', async () => {
    const out = join(dir, 'out-tar');
    const r = await score({ input: join(dir, 'shard-{000000..000001}.tar'), outputDir: out, ...quiet });
    expect(r.run.done).toBe(2);
    const rows = await table(out);
    expect(rows.map((x) => x.clip)).toEqual(['a/black.mp4', 'a/bad.mp4', 'b/panning.mp4']);
    const fromFolder = new Map((await table(join(dir, 'out-folder'))).map((x) => [x.clip!, x]));
    expect(rows[2]!.motion).toBe(fromFolder.get('panning.mp4')!.motion);
    expect(rows[1]!.error).not.toBe('');
    const before = await readFile(join(out, 'scores.csv'));
    const again = await score({ input: join(dir, 'shard-{000000..000001}.tar'), outputDir: out, ...quiet });
    expect(again.run.skipped).toBe(2);
    expect((await readFile(join(out, 'scores.csv'))).equals(before)).toBe(true);
  }, 120_000);

  it('a killed run (a record gone, clip scores kept) resumes without scoring those clips again', async () => {
    const out = join(dir, 'out-tar');
    await rm(join(out, '.units', 'shard-000001.json'));
    const log = join(dir, 'ffmpeg.log');
    const wrapper = join(dir, 'ffmpeg.sh');
    await writeFile(wrapper, `#!/bin/sh\necho "$*" >> '${log}'\nexec ${process.env.FFMPEG_PATH ?? 'ffmpeg'} "$@"\n`);
    await chmod(wrapper, 0o755);
    const r = await score({ input: join(dir, 'shard-{000000..000001}.tar'), outputDir: out, ffmpegPath: wrapper, ...quiet });
    expect(r.run.done).toBe(1);
    expect(await readFile(log, 'utf8').catch(() => '')).toBe('');
    expect((await table(out)).map((x) => x.clip)).toEqual(['a/black.mp4', 'a/bad.mp4', 'b/panning.mp4']);
  }, 120_000);

  it('a filter on a clip field or an unknown score is refused', async () => {
    await expect(score({ input: folder, outputDir: join(dir, 'x'), filter: 'duration>=2', ...quiet })).rejects.toThrow(/score filters only on scores/);
    await expect(score({ input: folder, outputDir: join(dir, 'x'), filter: 'blur>=2', ...quiet })).rejects.toThrow(/names 'blur'/);
  });
});
