import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES_DIR } from '../fixtures/index.js';
import { parseArgs } from '../src/cli/args.js';
import { facesJob, facesSpec } from '../src/cli/faces-command.js';
import { cropStage } from '../src/faces/crop.js';
import { detectStage } from '../src/faces/detect.js';
import type { FaceDetector } from '../src/faces/detector.js';
import { encodeStage } from '../src/faces/encode.js';
import { openFrameStore } from '../src/faces/lmdb-store.js';
import { recordSink } from '../src/faces/record.js';
import { RECORDS_DIR, recordPath, writeRecord } from '../src/faces/records.js';
import { sampleFramesStage } from '../src/faces/sample-frames.js';
import { exportStores, stagingPath } from '../src/faces/staging.js';
import { trackStage } from '../src/faces/track.js';
import { faces, LMDB_DIR, STATE_FILE } from '../src/jobs/faces.js';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { checkStages } from '../src/run/contract.js';
import { runCliAsync, startCli } from './helpers/run-cli.js';

const PY = '/usr/bin/python3';
const hasPy = spawnSync(PY, ['-c', 'import lmdb']).status === 0;
if (!hasPy) console.log(`skipping py-lmdb checks: ${PY} cannot import lmdb (install python3-lmdb)`);
/** Every key of an LMDB environment, read by py-lmdb. */
const pyKeys = (path: string): string[] =>
  JSON.parse(
    spawnSync(
      PY,
      [
        '-c',
        'import lmdb,sys,json\nenv=lmdb.open(sys.argv[1],readonly=True,lock=False)\nprint(json.dumps([k.decode() for k,_ in env.begin().cursor()]))',
        path,
      ],
      {
        encoding: 'utf8',
      },
    ).stdout,
  ) as string[];

let dir: string;
let input: string;
const common = () => ({ inputDir: input, device: 'cpu', intraOpThreads: 1, size: 64, makeLmdb: true, maxBoxVariation: 1, onWarning: () => {} });
const same = async (a: string, b: string, files = ['metadata.csv', 'metadata.msgpack', STATE_FILE, join(LMDB_DIR, 'data.mdb')]) => {
  for (const f of files) expect((await readFile(join(a, f))).equals(await readFile(join(b, f))), f).toBe(true);
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faces-share-'));
  input = join(dir, 'in');
  await mkdir(input);
  for (const f of ['face_gap.mp4', 'face_move.mp4']) await copyFile(join(FIXTURES_DIR, 'faces', f), join(input, f));
  await faces({ ...common(), outputDir: join(dir, 'one') });
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `clipstream faces` over the test videos into `out`, as every CLI test here runs it (small crops, synthetic detector, one thread). */
const facesCli = (out: string) => [
  'faces',
  `--input_dir=${input}`,
  `--output_dir=${out}`,
  '--make_lmdb',
  '--size=64',
  '--max_box_variation=1',
  '--device=cpu',
  '--threads=1',
  '--detector=synthetic',
];

describe('faces: runs sharing one output folder (issue 12)', () => {
  it('a queue worker running one video at a time (only) keeps the other videos: the tables and LMDB of one run', async () => {
    const out = join(dir, 'queue');
    const first = await faces({ ...common(), outputDir: out, only: ['face_move.mp4'] });
    expect(first.run.units.map((u) => [u.unit, u.outcome])).toEqual([['face_move.mp4', 'done']]);
    const second = await faces({ ...common(), outputDir: out, only: ['face_gap.mp4'] });
    expect(second.run.units.map((u) => [u.unit, u.outcome])).toEqual([['face_gap.mp4', 'done']]);
    // Both videos' rows are in the tables, in folder order, whichever finished first.
    expect(second.rows.map((r) => r.clip_key)).toEqual(['face_gap_000', 'face_gap_001', 'face_move_000']);
    await same(out, join(dir, 'one'));
    const again = await faces({ ...common(), outputDir: out, only: ['face_gap.mp4'] });
    expect(again.run.units.map((u) => [u.unit, u.status])).toEqual([['face_gap.mp4', 'skipped (done before)']]);
    await same(out, join(dir, 'one'));
    await expect(faces({ ...common(), outputDir: out, only: ['nope.mp4'] })).rejects.toThrow("faces: unit(s) not among the job's units: nope.mp4");
    // --overwrite over the whole folder: every video made again, the same files.
    const over = await faces({ ...common(), outputDir: out, overwrite: true });
    expect(over.videos.map((v) => [v.file, v.status])).toEqual([
      ['face_gap.mp4', 'done'],
      ['face_move.mp4', 'done'],
    ]);
    await same(out, join(dir, 'one'));
  }, 120_000);

  it('two CLI processes (--rank 0 and 1 of --world 2) at once give the files of one run, each with its finished run log', async () => {
    const out = join(dir, 'procs');
    const args = (rank: number) => [...facesCli(out), ...(rank === 1 ? ['--quiet'] : []), `--rank=${rank}`, '--world=2'];
    const runs = await Promise.all([0, 1].map((r) => runCliAsync(args(r))));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    // Rank 0 (face_gap.mp4) shows the shared progress line (src/run/progress.ts); --quiet shows none.
    expect(runs[0]!.stderr).toMatch(/^videos 1\/1 \| clips 2 \| [\d.]+ clips\/s \| elapsed /m);
    expect(runs[1]!.stderr).not.toContain('videos ');
    await same(out, join(dir, 'one'));
    const logs = (await readdir(out)).filter((n) => n.startsWith('log_'));
    expect(logs.length).toBe(2);
    const parsed = await Promise.all(
      logs.map(async (l) => JSON.parse(await readFile(join(out, l), 'utf8')) as { finished: boolean; results: Array<{ unit: string }> }),
    );
    expect(parsed.every((l) => l.finished)).toBe(true);
    expect(parsed.flatMap((l) => l.results.map((r) => r.unit)).sort()).toEqual(['face_gap.mp4', 'face_move.mp4']);
  }, 180_000);

  it('a video another live run holds is skipped, named, and its record is not touched', async () => {
    const out = join(dir, 'locked');
    await mkdir(join(out, 'faces-records'), { recursive: true });
    const holder = spawn('sleep', ['60']);
    try {
      const lock = `${recordPath(out, 'face_gap')}.lock`;
      await writeFile(lock, JSON.stringify({ host: hostname(), pid: holder.pid, started: new Date().toISOString(), owner: 'faces' }));
      const warnings: string[] = [];
      const report = await faces({ ...common(), outputDir: out, onWarning: (w) => warnings.push(w.message) });
      expect(report.run.units.map((u) => [u.unit, u.status])).toEqual([
        ['face_gap.mp4', 'skipped (locked)'],
        ['face_move.mp4', 'done'],
      ]);
      expect(warnings.some((w) => w.includes(`face_gap.mp4: skipped, locked by another run: host ${hostname()}, pid ${holder.pid}`))).toBe(true);
      expect(report.rows.map((r) => r.clip_key)).toEqual(['face_move_000']);
      expect(await readFile(lock, 'utf8')).toContain(String(holder.pid));
    } finally {
      holder.kill();
    }
    // Once the holder is gone, a rerun does the video and the tables equal one run's.
    await faces({ ...common(), outputDir: out });
    await same(out, join(dir, 'one'));
  }, 120_000);

  it('a run killed with SIGKILL mid-way resumes to the files of one run, no clip lost or doubled', async () => {
    const out = join(dir, 'killed');
    const child = startCli([...facesCli(out), '--quiet', '--num_workers=1']);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Killed as soon as the first video's record is in place, while the second is being made.
    for (let i = 0; i < 600; i++) {
      const names = await readdir(join(out, RECORDS_DIR)).catch(() => [] as string[]);
      if (names.some((n) => n.endsWith('.msgpack') && !n.startsWith('.'))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await exited;
    const warnings: string[] = [];
    const report = await faces({ ...common(), outputDir: out, onWarning: (w) => warnings.push(w.message) });
    expect(report.run.units.map((u) => u.outcome)).toContain('skipped');
    await same(out, join(dir, 'one'));
    // Nothing of the killed run is left under a temp name.
    for (const d of ['clips', RECORDS_DIR, '.faces-staging']) expect((await readdir(join(out, d))).filter((n) => n.includes('.tmp-'))).toEqual([]);
  }, 120_000);

  it('output made before per-video records (faces-videos.json only) is resumed, not redone', async () => {
    const out = join(dir, 'legacy');
    await faces({ ...common(), makeLmdb: false, outputDir: out });
    const clip = await readFile(join(out, 'clips', 'face_gap_000.mp4'));
    await rm(join(out, RECORDS_DIR), { recursive: true });
    const report = await faces({ ...common(), makeLmdb: false, outputDir: out });
    expect(report.videos.map((v) => v.status)).toEqual(['skipped (done before)', 'skipped (done before)']);
    expect(report.rows.map((r) => r.clip_key)).toEqual(['face_gap_000', 'face_gap_001', 'face_move_000']);
    expect((await readFile(join(out, 'clips', 'face_gap_000.mp4'))).equals(clip)).toBe(true);
    await same(out, join(dir, 'one'), [STATE_FILE]);
  }, 120_000);

  it.skipIf(!hasPy)('the export merges per-video stores whose keys interleave, in key order; a key in two stores is refused', async () => {
    const out = join(dir, 'merge');
    const put = async (key: string, clips: string[]) => {
      const store = await openFrameStore(stagingPath(out, key));
      for (const c of clips) await store.putClip(c, [Buffer.from(`${c} frame`)], { clip_key: c, num_frames: 1, width: 1, height: 1, fps: 25, format: 'jpeg' });
      await store.close();
      await writeRecord(out, key, { rel: `${key}.mp4`, log: { file: `${key}.mp4`, status: 'done', key, clips }, rows: [], lmdb: true });
    };
    // 'a_100' sorts after 'a_0_000': the stores of a.mp4 and a_0.mp4 interleave.
    await put('a', ['a_000', 'a_100']);
    await put('a_0', ['a_0_000', 'a_0_001']);
    const summary = await exportStores(out, join(out, LMDB_DIR), () => {});
    expect(summary.entries).toBe(8);
    const keys = pyKeys(join(out, LMDB_DIR));
    expect(keys).toEqual(['a_000/000000', 'a_000/meta', 'a_0_000/000000', 'a_0_000/meta', 'a_0_001/000000', 'a_0_001/meta', 'a_100/000000', 'a_100/meta']);
    // The same key from two videos would be a duplicate clip: refused, and the old export stays.
    await put('b', ['a_000']);
    await expect(exportStores(out, join(out, LMDB_DIR), () => {})).rejects.toThrow('increasing order');
    expect(pyKeys(join(out, LMDB_DIR))).toEqual(keys);
  });
});

describe('facesJob (the queue and worker shape)', () => {
  it('takes its options from CLI arguments, lists the videos by relative path and runs only the one asked for', async () => {
    const options = facesJob.optionsFromArgs(
      parseArgs([`--input_dir=${input}`, `--output_dir=${join(dir, 'job')}`, '--size=64', '--device=cpu', '--threads=1', '--detector=synthetic'], facesSpec),
    );
    expect(await facesJob.listUnits(options)).toEqual(['face_gap.mp4', 'face_move.mp4']);
    const { run } = await facesJob.run({ ...options, only: ['face_gap.mp4'], onWarning: () => {} });
    expect([run.job, run.done, run.units.map((u) => u.unit), run.items.done]).toEqual(['faces', 1, ['face_gap.mp4'], 2]);
  }, 60_000);
});

describe('faces stage contracts (issue 10 item 7)', () => {
  const ffmpeg = ffmpegPath();
  const det = { fit: () => ({ width: 1, height: 1, scale: 1 }) } as unknown as FaceDetector;
  const stages = () => ({
    sample: sampleFramesStage({ ffmpeg, sampleEvery: 2, numWorkers: 1, fit: det.fit }),
    detect: detectStage(det, { batchSize: 1 }),
    track: trackStage({}),
    crop: cropStage({ ffmpeg, size: 64, enlarge: 1.4, cropMode: 'union' }),
    encode: encodeStage({ ffmpeg, outputDir: dir, audio: 'none', imageFormat: 'jpeg', jpegQuality: 95, scorers: [], scoreFrames: 8 }),
    record: recordSink({ videos: {}, rows: [], logs: [] }, { outputDir: dir, sources: [], onWarning: () => {} }),
  });
  it('accepts the job order', () => {
    const s = stages();
    expect(checkStages([s.sample, s.detect, s.track, s.crop, s.encode, s.record], ['source']).length).toBe(6);
  });
  it.each([
    [['sample', 'track', 'detect'], "stage 'track' needs 'detections', which stage 'detect' adds only after it: put 'detect' before 'track'"],
    [['sample', 'detect', 'track', 'encode', 'crop'], "stage 'encode' needs 'clip', which stage 'crop' adds only after it"],
    [['sample', 'detect', 'detect'], "stage 'detect' needs 'pixels', but stage 'detect' before it drops it"],
    [['sample', 'detect', 'track', 'crop', 'record'], "stage 'record' needs 'row', which no stage before it adds"],
  ] as const)('%j fails at build: %s', (order, message) => {
    const s = stages();
    expect(() =>
      checkStages(
        order.map((n) => s[n]),
        ['source'],
      ),
    ).toThrow(message);
  });
});

it.skipIf(!hasPy)('py-lmdb lists every clip of the two-process run once', () => {
  expect(pyKeys(join(dir, 'procs', LMDB_DIR)).filter((k) => k.endsWith('/meta'))).toEqual(['face_gap_000/meta', 'face_gap_001/meta', 'face_move_000/meta']);
});
