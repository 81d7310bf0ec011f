import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CLIPS_DIR, FIXTURES_DIR } from '../fixtures/index.js';
import { clips } from '../src/jobs/clips.js';
import { faces } from '../src/jobs/faces.js';
import { rankDir } from '../src/scale/partition.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-partition-jobs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('rankDir', () => {
  it.each([
    [{ rank: 0, world: 1 }, 'out'],
    [{ rank: 1, world: 3 }, 'out/rank-1-of-3'],
    [{ rank: 7, world: 16 }, 'out/rank-07-of-16'],
  ])('%o -> %s', (p, expected) => {
    expect(rankDir('out', p)).toBe(expected);
  });
});

describe('clips and faces with --rank/--world', () => {
  it('clips: W=2 ranks share one out_dir; together the clips, tables and shards of one run, byte for byte', async () => {
    const sources = join(dir, 'sources');
    await mkdir(sources);
    for (const f of ['x_Y-z_5.mp4', 'Q-r_s_33.mp4', 'mid_F-g_200.mp4']) await copyFile(join(FIXTURE_CLIPS_DIR, f), join(sources, f));
    const common = { sources, clipLenS: 3, limitClips: 1, preset: 'ultrafast', shardSize: 2, onWarning: () => {} };
    const single = await clips({ ...common, outDir: join(dir, 'one') });
    const ranks = [];
    for (const rank of [0, 1]) ranks.push(await clips({ ...common, outDir: join(dir, 'two'), partition: { rank, world: 2, from: 'options' } }));

    expect(ranks.map((r) => r.videos.length)).toEqual([2, 1]);
    expect(ranks.map((r) => r.run.units.map((u) => u.outcome))).toEqual([['done', 'done'], ['done']]);
    // Only the run that recorded the last video writes the shards, from the whole table.
    expect(ranks.map((r) => r.shards.length)).toEqual([0, 2]);
    const one = (await readdir(join(dir, 'one', 'clips'))).sort();
    expect(one.length).toBe(3);
    expect((await readdir(join(dir, 'two', 'clips'))).sort()).toEqual(one);
    for (const f of ['videos.csv', 'clips.csv', 'span_issues.csv', 'shards/shard-000000.tar', 'shards/shard-000001.tar', 'shards/shard-000001.json']) {
      expect((await readFile(join(dir, 'two', f))).equals(await readFile(join(dir, 'one', f))), f).toBe(true);
    }
    expect(single.shards.map((s) => s.clips)).toEqual([2, 1]);
    expect((await readdir(join(dir, 'two'))).some((n) => n.startsWith('rank-'))).toBe(false);
  }, 120_000);

  it('faces: W=2 ranks split the videos, each into its own out/rank-R-of-2', async () => {
    const input = join(FIXTURES_DIR, 'faces');
    const common = { inputDir: input, device: 'cpu', intraOpThreads: 1, onWarning: () => {} };
    const a = await faces({ ...common, outputDir: join(dir, 'f2'), partition: { rank: 0, world: 2, from: 'options' } });
    const b = await faces({ ...common, outputDir: join(dir, 'f2'), partition: { rank: 1, world: 2, from: 'options' } });
    expect(a.videos.map((v) => v.file)).toEqual(['face_gap.mp4']);
    expect(b.videos.map((v) => v.file)).toEqual(['face_move.mp4']);
    expect(a.rows.length).toBeGreaterThan(0);
    expect(b.videos[0]!.status).toBe('done');
    expect((await readdir(join(dir, 'f2'))).sort()).toEqual(['rank-0-of-2', 'rank-1-of-2']);
    expect(await readdir(join(dir, 'f2', 'rank-1-of-2'))).toContain('metadata.csv');
  }, 120_000);
});
