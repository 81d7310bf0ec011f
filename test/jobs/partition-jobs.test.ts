import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CLIPS_DIR, FIXTURES_DIR } from '../../fixtures/index.js';
import { clips } from '../../src/jobs/clips.js';
import { faces } from '../../src/jobs/faces.js';
import { LMDB_DIR } from '../../src/faces/encode.js';
import { STATE_FILE } from '../../src/faces/record.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-partition-jobs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('clips and faces with --rank/--world', () => {
  it('clips: W=2 ranks share one out_dir; together the clips, tables and shards of one run, byte for byte', async () => {
    const sources = join(dir, 'sources');
    await mkdir(sources);
    for (const f of ['x_Y-z_5.mp4', 'Q-r_s_33.mp4', 'mid_F-g_200.mp4']) await copyFile(join(FIXTURE_CLIPS_DIR, f), join(sources, f));
    const common = { sources, clipLenS: 3, limitClips: 1, preset: 'ultrafast', shardSize: 2, onWarning: () => {} };
    const single = await clips({ ...common, outputDir: join(dir, 'one') });
    const ranks = [];
    for (const rank of [0, 1]) ranks.push(await clips({ ...common, outputDir: join(dir, 'two'), partition: { rank, world: 2, from: 'options' } }));

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

  it('faces: W=2 ranks at once in one output folder give the rows, clips, state and LMDB of one run', async () => {
    const input = join(dir, 'faces-in');
    await mkdir(input);
    for (const f of ['face_gap.mp4', 'face_move.mp4']) await copyFile(join(FIXTURES_DIR, 'faces', f), join(input, f));
    await copyFile(join(FIXTURES_DIR, 'faces', 'face_gap.mp4'), join(input, 'again.mp4'));
    const common = {
      inputDir: input,
      detector: 'models/face_detector_synthetic.onnx',
      device: 'cpu',
      intraOpThreads: 1,
      size: 64,
      makeLmdb: true,
      maxBoxVariation: 1,
      onWarning: () => {},
    };
    const one = await faces({ ...common, outputDir: join(dir, 'f1') });
    // Both ranks write into the same folder at the same time: each its own videos, the tables from both.
    const ranks = await Promise.all([0, 1].map((rank) => faces({ ...common, outputDir: join(dir, 'f2'), partition: { rank, world: 2, from: 'options' } })));
    expect(ranks.map((r) => r.run.units.map((u) => [u.unit, u.outcome]))).toEqual([
      [
        ['again.mp4', 'done'],
        ['face_move.mp4', 'done'],
      ],
      [['face_gap.mp4', 'done']],
    ]);
    expect(one.rows.length).toBe(5);
    const files = (d: string) => readdir(join(dir, d, 'clips')).then((f) => f.sort());
    expect(await files('f2')).toEqual(await files('f1'));
    for (const f of ['metadata.csv', 'metadata.msgpack', STATE_FILE])
      expect((await readFile(join(dir, 'f2', f))).equals(await readFile(join(dir, 'f1', f)))).toBe(true);
    // The exported store: the same bytes, so the same keys and values (py-lmdb reads it, see faces-job).
    const mdb = (d: string) => readFile(join(dir, d, LMDB_DIR, 'data.mdb'));
    expect((await mdb('f2')).equals(await mdb('f1'))).toBe(true);
    expect((await readdir(join(dir, 'f2'))).filter((n) => n.startsWith('rank-'))).toEqual([]);
  }, 180_000);
});
