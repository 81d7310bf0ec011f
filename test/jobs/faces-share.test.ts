import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES_DIR } from '../../fixtures/index.js';
import { parseArgs } from '../../src/util/args.js';
import { facesJob, facesSpec } from '../../src/cli/faces-command.js';
import { cropStage } from '../../src/faces/crop.js';
import { detectStage } from '../../src/faces/detect.js';
import type { FaceDetector } from '../../src/faces/detector.js';
import { encodeStage } from '../../src/faces/encode.js';
import type { FaceSource } from '../../src/faces/items.js';
import { openFrameStore } from '../../src/faces/lmdb-store.js';
import { facesRecordSink } from '../../src/faces/record.js';
import { faceRecords, RECORDS_DIR, recordPath, type VideoRecord } from '../../src/faces/records.js';
import { sampleFramesStage } from '../../src/faces/sample-frames.js';
import { EXPORT_MANIFEST, exportStores, stagingPath } from '../../src/faces/staging.js';
import { trackStage } from '../../src/faces/track.js';
import { faces } from '../../src/jobs/faces.js';
import { LMDB_DIR } from '../../src/faces/encode.js';
import { STATE_FILE } from '../../src/faces/record.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { checkStages } from '../../src/stage/contract.js';
import { runCliAsync, startCli } from '../helpers/run-cli.js';

/** A video's record as the job writes it (through the folder's record store). */
const writeRecord = (out: string, key: string, r: VideoRecord) => faceRecords(out).write(key, r);
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
const common = () => ({
  inputDir: input,
  detector: 'models/face_detector_synthetic.onnx',
  device: 'cpu',
  intraOpThreads: 1,
  size: 64,
  makeLmdb: true,
  maxBoxVariation: 1,
  onWarning: () => {},
});
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
    // Rank 0 (face_gap.mp4) shows the shared progress line (src/util/progress.ts); --quiet shows none.
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
      // The held video has no record yet: faces.lmdb waits for it (the run holding it writes it).
      expect(report.lmdbPath).toBeNull();
      expect(report.lmdb).toMatchObject({ state: 'waiting', waitingFor: ['face_gap.mp4'], summary: null });
      await expect(stat(join(out, LMDB_DIR))).rejects.toThrow('ENOENT');
      expect(await readFile(lock, 'utf8')).toContain(String(holder.pid));
    } finally {
      holder.kill();
    }
    // Once the holder is gone, a rerun does the video and the tables equal one run's.
    const rerun = await faces({ ...common(), outputDir: out });
    expect([rerun.lmdb?.state, rerun.lmdbPath]).toEqual(['written', join(out, LMDB_DIR)]);
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

  it('a cut-short video record is said once and its video redone: the files of one run', async () => {
    const out = join(dir, 'cut');
    await faces({ ...common(), outputDir: out });
    const path = recordPath(out, 'face_move');
    const whole = await readFile(path);
    await writeFile(path, whole.subarray(0, whole.length >> 1));
    const warnings: string[] = [];
    const report = await faces({ ...common(), outputDir: out, onWarning: (w) => warnings.push(w.message) });
    expect(report.run.units.map((u) => [u.unit, u.outcome])).toEqual([
      ['face_gap.mp4', 'skipped'],
      ['face_move.mp4', 'done'],
    ]);
    expect(warnings.filter((w) => w.includes('unreadable video record'))).toEqual([`${path}: unreadable video record; its video is done again`]);
    expect((await readFile(path)).equals(whole)).toBe(true);
    await same(out, join(dir, 'one'));
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
    const { outcome, summary } = await exportStores(out, join(out, LMDB_DIR), () => {});
    expect([outcome, summary?.entries]).toEqual(['written', 8]);
    const keys = pyKeys(join(out, LMDB_DIR));
    expect(keys).toEqual(['a_000/000000', 'a_000/meta', 'a_0_000/000000', 'a_0_000/meta', 'a_0_001/000000', 'a_0_001/meta', 'a_100/000000', 'a_100/meta']);
    // The same key from two videos would be a duplicate clip: refused, and the old export stays.
    await put('b', ['a_000']);
    await expect(exportStores(out, join(out, LMDB_DIR), () => {})).rejects.toThrow('increasing order');
    expect(pyKeys(join(out, LMDB_DIR))).toEqual(keys);
  });

  it.skipIf(!hasPy)('with the list, the export waits for every video to have a final record, then is written once', async () => {
    const out = join(dir, 'final');
    const lmdb = join(out, LMDB_DIR);
    const record = async (key: string, status: 'done' | 'failed', clips: string[], lmdb: boolean) => {
      if (lmdb) {
        const store = await openFrameStore(stagingPath(out, key));
        for (const c of clips)
          await store.putClip(c, [Buffer.from(`${c} frame`)], { clip_key: c, num_frames: 1, width: 1, height: 1, fps: 25, format: 'jpeg' });
        await store.close();
      }
      await writeRecord(out, key, { rel: `${key}.mp4`, log: { file: `${key}.mp4`, status, key, clips }, rows: [], lmdb });
    };
    const list = ['a', 'b', 'c', 'd'].map((k, index) => ({ rel: `${k}.mp4`, key: k, index }) as FaceSource);
    const exp = () => exportStores(out, lmdb, () => {}, { sources: list });
    await record('a', 'done', ['a_000'], true);
    // b done with no clips (nothing to store) and c failed are final; d has no record.
    await record('b', 'done', [], false);
    await record('c', 'failed', [], false);
    expect(await exp()).toEqual({ outcome: 'waiting', waitingFor: ['d.mp4'], summary: null });
    // d done without its clips in a store (made without --make_lmdb): it will be made again, so not final.
    await record('d', 'done', ['d_000'], false);
    expect((await exp()).waitingFor).toEqual(['d.mp4']);
    await expect(stat(lmdb)).rejects.toThrow('ENOENT');
    // Nor is a record that says stored while its store is gone.
    await writeRecord(out, 'd', { rel: 'd.mp4', log: { file: 'd.mp4', status: 'done', key: 'd', clips: ['d_000'] }, rows: [], lmdb: true });
    expect((await exp()).waitingFor).toEqual(['d.mp4']);
    await record('d', 'done', ['d_000'], true);
    const first = await exp();
    expect([first.outcome, first.summary?.entries]).toEqual(['written', 4]);
    expect(pyKeys(lmdb)).toEqual(['a_000/000000', 'a_000/meta', 'd_000/000000', 'd_000/meta']);
    const data = await stat(join(lmdb, 'data.mdb'));
    const manifest = JSON.parse(await readFile(join(lmdb, EXPORT_MANIFEST), 'utf8')) as { stores: Array<{ key: string }> };
    expect(manifest.stores.map((s) => s.key)).toEqual(['a', 'd']);
    // The same stores again: nothing written.
    expect(await exp()).toEqual({ outcome: 'current', waitingFor: [], summary: first.summary });
    const still = await stat(join(lmdb, 'data.mdb'));
    expect([still.ino, still.mtimeMs]).toEqual([data.ino, data.mtimeMs]);
    // A store written again (the same clips): written again.
    await record('a', 'done', ['a_000'], true);
    expect((await exp()).outcome).toBe('written');
    // faces.lmdb replaced behind the manifest's back (another tool, a copy): written again.
    expect((await exp()).outcome).toBe('current');
    await writeFile(join(lmdb, 'data.mdb'), 'not an export');
    expect((await exp()).outcome).toBe('written');
    expect(pyKeys(lmdb)).toEqual(['a_000/000000', 'a_000/meta', 'd_000/000000', 'd_000/meta']);
  });
});

describe('faces.lmdb is written by the run that records the last video, once', () => {
  let input3: string;
  let one3: Awaited<ReturnType<typeof faces>>;
  const three = () => ({ ...common(), inputDir: input3 });
  const out = () => join(dir, 'once');
  const data = () => join(out(), LMDB_DIR, 'data.mdb');

  beforeAll(async () => {
    input3 = join(dir, 'in3');
    await mkdir(input3);
    for (const f of ['face_gap.mp4', 'face_move.mp4']) await copyFile(join(FIXTURES_DIR, 'faces', f), join(input3, f));
    await copyFile(join(FIXTURES_DIR, 'faces', 'face_gap.mp4'), join(input3, 'again.mp4'));
    one3 = await faces({ ...three(), outputDir: join(dir, 'one3') });
  }, 120_000);

  it('a whole-list run writes it; of three single-video runs only the last writes it, with the bytes of the whole-list run', async () => {
    expect(one3.lmdb).toMatchObject({ path: join(dir, 'one3', LMDB_DIR), state: 'written', waitingFor: [] });
    expect(one3.lmdbPath).toBe(join(dir, 'one3', LMDB_DIR));
    const order = ['face_move.mp4', 'again.mp4', 'face_gap.mp4'];
    const reports: Array<Awaited<ReturnType<typeof faces>>> = [];
    for (const video of order) {
      const r = await faces({ ...three(), outputDir: out(), only: [video] });
      reports.push(r);
      if (r.lmdb?.state === 'waiting') await expect(stat(data())).rejects.toThrow('ENOENT');
    }
    expect(reports.map((r) => [r.lmdb?.state, r.lmdb?.waitingFor, r.lmdbPath])).toEqual([
      ['waiting', ['again.mp4', 'face_gap.mp4'], null],
      ['waiting', ['face_gap.mp4'], null],
      ['written', [], join(out(), LMDB_DIR)],
    ]);
    expect(reports[2]!.lmdb?.summary).toEqual(one3.lmdb?.summary);
    await same(out(), join(dir, 'one3'));
  }, 120_000);

  it('a rerun of the finished job leaves faces.lmdb untouched; a video made again or added makes the next complete run write it', async () => {
    const before = await stat(data());
    const untouched = async () => {
      const now = await stat(data());
      expect([now.ino, now.mtimeMs, now.size]).toEqual([before.ino, before.mtimeMs, before.size]);
    };
    const whole = await faces({ ...three(), outputDir: out() });
    expect(whole.videos.every((v) => v.status === 'skipped (done before)')).toBe(true);
    expect([whole.lmdb?.state, whole.lmdbPath, whole.lmdb?.summary]).toEqual(['current', join(out(), LMDB_DIR), one3.lmdb?.summary]);
    const single = await faces({ ...three(), outputDir: out(), only: ['again.mp4'] });
    expect([single.lmdb?.state, single.lmdbPath]).toEqual(['current', join(out(), LMDB_DIR)]);
    await untouched();

    // One video made again: its new store is exported, the same bytes as before.
    const redo = await faces({ ...three(), outputDir: out(), only: ['face_move.mp4'], overwrite: true });
    expect(redo.videos.map((v) => [v.file, v.status])).toEqual([['face_move.mp4', 'done']]);
    expect(redo.lmdb?.state).toBe('written');
    const rewritten = await stat(data());
    expect([rewritten.ino, rewritten.mtimeMs]).not.toEqual([before.ino, before.mtimeMs]);
    await same(out(), join(dir, 'one3'));

    // A video added to the folder: a run of another video waits for it (and leaves the old store as it is); the run that does it writes.
    await copyFile(join(FIXTURES_DIR, 'faces', 'face_move.mp4'), join(input3, 'more.mp4'));
    const other = await faces({ ...three(), outputDir: out(), only: ['face_gap.mp4'] });
    expect([other.lmdb?.state, other.lmdb?.waitingFor, other.lmdbPath]).toEqual(['waiting', ['more.mp4'], null]);
    const unchanged = await stat(data());
    expect([unchanged.ino, unchanged.mtimeMs]).toEqual([rewritten.ino, rewritten.mtimeMs]);
    const added = await faces({ ...three(), outputDir: out(), only: ['more.mp4'] });
    expect(added.lmdb?.state).toBe('written');
    expect(added.lmdb?.summary?.entries).toBeGreaterThan(one3.lmdb!.summary!.entries);
    if (hasPy) expect(pyKeys(join(out(), LMDB_DIR)).filter((k) => k.endsWith('/meta'))).toContain('more_000/meta');
  }, 180_000);

  it('the CLI says when faces.lmdb waits for videos and when it is written', async () => {
    const out2 = join(dir, 'cli-ranks');
    const rank = (r: number) => runCliAsync([...facesCli(out2), '--quiet', `--rank=${r}`, '--world=2']);
    const first = await rank(0);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('clipstream faces: faces.lmdb not written: waiting for 1 more video(s) to be recorded');
    expect(first.stderr).not.toContain('LMDB: ');
    const second = await rank(1);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`; LMDB: ${join(out2, LMDB_DIR)}\n`);
    expect(second.stderr).not.toContain('waiting for');
    await same(out2, join(dir, 'one'));
    const again = await rank(0);
    expect(again.stderr).toContain(`; LMDB: ${join(out2, LMDB_DIR)} (already up to date)\n`);
  }, 120_000);

  it('two runs recording the last two videos at once: exactly one writes faces.lmdb, the bytes of one run', async () => {
    const out2 = join(dir, 'race');
    const reports = await Promise.all(['face_gap.mp4', 'face_move.mp4'].map((v) => faces({ ...common(), outputDir: out2, only: [v] })));
    const states = reports.map((r) => r.lmdb?.state);
    // The later of the two to take faces.lmdb.lock sees both records: it writes, or finds the other's export current.
    expect(states.filter((s) => s === 'written')).toEqual(['written']);
    expect(states.filter((s) => s !== 'written')[0]).toMatch(/^(waiting|current)$/);
    await same(out2, join(dir, 'one'));
  }, 120_000);
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
    sample: sampleFramesStage({ ffmpeg, sampleEvery: 2, parallelVideos: 1, fit: det.fit }),
    detect: detectStage(det, { batchSize: 1 }),
    track: trackStage({}),
    crop: cropStage({ ffmpeg, size: 64, enlarge: 1.4, cropMode: 'union' }),
    encode: encodeStage({ ffmpeg, outputDir: dir, audio: 'none', imageFormat: 'jpeg', jpegQuality: 95, scorers: [], scoreFrames: 8 }),
    record: facesRecordSink({ videos: {}, rows: [], logs: [] }, { outputDir: dir, sources: [], onWarning: () => {} }),
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
