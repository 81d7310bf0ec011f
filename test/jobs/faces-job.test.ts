import { execFileSync, spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureClipPath } from '../../fixtures/index.js';
import { writeSyntheticVideo } from '../../scripts/make-face-fixtures.js';
import { parseArgs } from '../../src/util/args.js';
import { facesSpec, runFaces } from '../../src/cli/faces-command.js';
import { probeVideo } from '../../src/media/probe.js';
import { SYNTHETIC_VIDEOS } from '../../src/faces/synthetic.js';
import { faces } from '../../src/jobs/faces.js';
import { STATE_FILE } from '../../src/faces/record.js';
import { liveChildProcesses } from '../../src/media/process.js';
import { GraphBuilder, ints } from '../../src/models/onnx-graph.js';

const PY = '/usr/bin/python3';
const py = spawnSync(PY, ['-c', 'import lmdb, PIL, numpy'], { encoding: 'utf8' });
const hasPy = py.status === 0;
if (!hasPy)
  console.log(
    `skipping py-lmdb checks: ${PY} cannot import lmdb, PIL and numpy (${(py.stderr || String(py.error)).trim().split('\n').pop()}); install python3-lmdb python3-pil python3-numpy`,
  );

let dir: string;
let input: string;
const gap = SYNTHETIC_VIDEOS.find((s) => s.name === 'face_gap')!;
const move = SYNTHETIC_VIDEOS.find((s) => s.name === 'face_move')!;

function csvRows(text: string): Array<Record<string, string>> {
  const [header, ...lines] = text.trim().split('\n');
  const cols = header!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v])));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faces-job-'));
  input = join(dir, 'in');
  await mkdir(join(input, 'sub'), { recursive: true });
  await writeSyntheticVideo(gap, join(input, 'face_gap.mp4'));
  await writeSyntheticVideo({ ...gap, name: 'silent', tone: null }, join(input, 'sub', 'silent.mp4'));
  await writeSyntheticVideo(move, join(input, 'face_move.mp4'));
  await copyFile(fixtureClipPath('corrupt_vid-D_60.mp4'), join(input, 'corrupt.mp4'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('clipstream faces (CLI, defaults + --make_lmdb)', () => {
  const out = () => join(dir, 'out');

  it('writes face clips, metadata and a py-lmdb-readable store; records the undecodable video', async () => {
    const args = parseArgs(
      [`--input_dir=${input}`, `--output_dir=${out()}`, '--make_lmdb', '--quiet', '--device=cpu', '--threads=1', '--detector=synthetic'],
      facesSpec,
    );
    expect(await runFaces(args, new AbortController().signal)).toBe(0);
    expect(liveChildProcesses()).toBe(0);

    const rows = csvRows(await readFile(join(out(), 'metadata.csv'), 'utf8'));
    // face_gap and sub/silent: the face is there 0–1.6 s and 2.4–4 s → two clips each.
    // face_move: moves far more than 0.06 of the frame, so seed 002's stability rule keeps nothing.
    expect(rows.map((r) => r.clip_key)).toEqual(['face_gap_000', 'face_gap_001', 'sub__silent_000', 'sub__silent_001']);
    const first = rows[0]!;
    expect(first).toMatchObject({
      file_relative: 'clips/face_gap_000.mp4',
      lmdb_file: 'faces.lmdb',
      audio_file: '',
      start_frame: '0',
      width: '512',
      height: '512',
      original_fps: '25',
      original_resolution: '320x240',
    });
    // Hidden from 1.6 s (frame 40): last sampled detection is frame 38, the next clip starts at frame 60.
    expect(Number(first.end_frame)).toBe(38);
    expect(Number(rows[1]!.start_frame)).toBe(60);
    expect(Number(first.num_frames)).toBe(39);
    expect(Number(first.det_score_mean)).toBeGreaterThan(0.9);
    expect(Number(first.face_size)).toBeCloseTo(Math.sqrt(40 * 52), 0);
    expect(Number(first.sharpness)).toBeGreaterThan(0);

    const clip = await probeVideo(join(out(), 'clips', 'face_gap_000.mp4'));
    expect(clip).toMatchObject({ width: 512, height: 512, fps: 25, audioCodec: 'aac' });
    expect(clip.durationS).toBeCloseTo(39 / 25, 1);
    expect((await probeVideo(join(out(), 'clips', 'sub__silent_000.mp4'))).audioCodec).toBeNull();

    const state = JSON.parse(await readFile(join(out(), STATE_FILE), 'utf8')) as { videos: Record<string, { status: string; error?: string }> };
    expect(state.videos['corrupt.mp4']).toMatchObject({ status: 'failed' });
    expect(state.videos['corrupt.mp4']!.error).toContain('corrupt.mp4: cannot decode frames for detection');
    expect(state.videos['face_move.mp4']).toMatchObject({ status: 'done' });
  });

  it.skipIf(!hasPy)('py-lmdb reads every frame and meta entry, with the face in RGB order at the centre', () => {
    const script = `
import lmdb, io, json, sys
import numpy as np
from PIL import Image
env = lmdb.open(sys.argv[1], readonly=True)
with env.begin() as txn:
    keys = [k.decode('utf-8') for k, _ in txn.cursor()]
    meta = json.loads(txn.get(b'face_gap_001/meta'))
    img = np.asarray(Image.open(io.BytesIO(txn.get(b'face_gap_001/000010'))).convert('RGB')).astype(int)
print(json.dumps({'keys': len(keys), 'first': keys[0], 'meta': meta, 'centre': img[200:312, 200:312].mean(axis=(0, 1)).tolist(), 'corner': img[0:40, 0:40].mean(axis=(0, 1)).tolist(), 'shape': list(img.shape)}))
`;
    const r = JSON.parse(execFileSync(PY, ['-c', script, join(out(), 'faces.lmdb')], { encoding: 'utf8' })) as {
      keys: number;
      first: string;
      meta: Record<string, unknown>;
      centre: number[];
      corner: number[];
      shape: number[];
    };
    expect(r.keys).toBe(4 * 39 + 4);
    expect(r.first).toBe('face_gap_000/000000');
    expect(r.meta).toMatchObject({ clip_key: 'face_gap_001', num_frames: 39, width: 512, height: 512, fps: 25, format: 'jpeg', start_frame: 60 });
    expect(r.shape).toEqual([512, 512, 3]);
    // Face colour (232, 190, 160) mostly fills the centre; the background is blue (50, 80, 130).
    expect(r.centre[0]).toBeGreaterThan(r.centre[2]! + 40);
    expect(r.corner[2]).toBeGreaterThan(r.corner[0]! + 50);
  });

  it('resumes: finished videos are skipped, the failed one is tried again, nothing is rewritten', async () => {
    const before = (await stat(join(out(), 'clips', 'face_gap_000.mp4'))).mtimeMs;
    const lmdb = await stat(join(out(), 'faces.lmdb', 'data.mdb'));
    const report = await faces({
      inputDir: input,
      outputDir: out(),
      detector: 'models/face_detector_synthetic.onnx',
      makeLmdb: true,
      device: 'cpu',
      intraOpThreads: 1,
      onWarning: () => {},
    });
    expect(report.videos.map((v) => [v.file, v.status])).toEqual([
      ['face_gap.mp4', 'skipped (done before)'],
      ['face_move.mp4', 'skipped (done before)'],
      ['sub/silent.mp4', 'skipped (done before)'],
      ['corrupt.mp4', 'failed'],
    ]);
    expect(report.rows.length).toBe(4);
    expect((await stat(join(out(), 'clips', 'face_gap_000.mp4'))).mtimeMs).toBe(before);
    // Every video has a final record again (the failed one failed again) and the stores are the same: faces.lmdb is not rewritten.
    expect([report.lmdb?.state, report.lmdbPath]).toEqual(['current', join(out(), 'faces.lmdb')]);
    const after = await stat(join(out(), 'faces.lmdb', 'data.mdb'));
    expect([after.ino, after.mtimeMs]).toEqual([lmdb.ino, lmdb.mtimeMs]);
  });
});

describe('faces job options', () => {
  it('keeps the moving face as one track when the stability rule is relaxed; separate WAV audio, PNG frames, ONNX scorers', async () => {
    const only = join(dir, 'move-only');
    await mkdir(only, { recursive: true });
    await copyFile(join(input, 'face_move.mp4'), join(only, 'face_move.mp4'));
    // Two scorers: a scalar (mean of the normalised input) and an "embedding" (per-channel means).
    const scalar = new GraphBuilder('mean');
    scalar.addInput('x', ['batch', 3, 64, 64]);
    scalar.addNode('ReduceMean', ['x'], 'y', { axes: ints([1, 2, 3]), keepdims: { type: 'int', value: 0 } });
    scalar.addOutput('y', ['batch']);
    const embed = new GraphBuilder('embed');
    embed.addInput('x', ['batch', 3, 'h', 'w']);
    embed.addNode('GlobalAveragePool', ['x'], 'p');
    embed.addNode('Flatten', ['p'], 'y');
    embed.addOutput('y', ['batch', 3]);
    await writeFile(join(dir, 'mean.onnx'), scalar.toBuffer());
    await writeFile(join(dir, 'embed.onnx'), embed.toBuffer());

    const out = join(dir, 'out-move');
    const batches: number[] = [];
    const report = await faces({
      onBatch: (n) => batches.push(n),
      detector: 'models/face_detector_synthetic.onnx',
      batchSize: 8,
      inputDir: only,
      outputDir: out,
      makeLmdb: true,
      imageFormat: 'png',
      audio: 'separate',
      size: 128,
      maxBoxVariation: 1,
      device: 'cpu',
      intraOpThreads: 1,
      scorers: [
        { name: 'meanq', path: join(dir, 'mean.onnx'), norm: 'unit' },
        { name: 'clip', path: join(dir, 'embed.onnx'), norm: 'unit' },
      ],
    });
    expect(report.rows.length).toBe(1);
    // 50 sampled frames through the backpressure batcher: batches fill up to batchSize.
    expect(batches.reduce((a, b) => a + b, 0)).toBe(50);
    expect(Math.max(...batches)).toBe(8);
    const row = report.rows[0]!;
    expect(row).toMatchObject({ clip_key: 'face_move_000', start_frame: 0, end_frame: 98, num_frames: 99, width: 128, audio_file: 'audio/face_move_000.wav' });
    // The crop is the union of a face moving 180 px across: bigger than the frame height, so padded.
    expect(Number(row.crop_size)).toBeGreaterThan(240);
    const wav = await readFile(join(out, 'audio', 'face_move_000.wav'));
    expect(wav.subarray(0, 4).toString()).toBe('RIFF');
    expect((await probeVideo(join(out, 'clips', 'face_move_000.mp4'))).audioCodec).toBeNull();
    expect(Number(row.meanq_score)).toBeGreaterThan(0.1);
    expect(Number(row.meanq_score)).toBeLessThan(0.6);
    expect(Number(row.clip_score)).toBeGreaterThan(0.95);
    expect(Number(row.clip_score)).toBeLessThanOrEqual(1.000001);
    const csv = await readFile(join(out, 'metadata.csv'), 'utf8');
    expect(csv.split('\n')[0]!.endsWith(',meanq_score,clip_score')).toBe(true);
  });

  it('stops on abort without leaving ffmpeg behind', async () => {
    const controller = new AbortController();
    const run = faces({
      inputDir: input,
      outputDir: join(dir, 'aborted'),
      detector: 'models/face_detector_synthetic.onnx',
      device: 'cpu',
      intraOpThreads: 1,
      signal: controller.signal,
      onWarning: () => {},
      onProgress: (p) => {
        if (p.videosDone === 1) controller.abort(new Error('user stop'));
      },
    });
    await expect(run).rejects.toThrow();
    expect(liveChildProcesses()).toBe(0);
    const state = JSON.parse(await readFile(join(dir, 'aborted', STATE_FILE), 'utf8')) as { videos: Record<string, unknown> };
    expect(Object.keys(state.videos).length).toBeLessThan(4);
  });

  it.each([
    [{ detectorFormat: 'yolo' }, "Expected one of 'auto', 'scrfd', 'yunet', 'ultraface' for options.format but received 'yolo' of type string"],
    [{ audio: 'stereo' }, "Expected one of 'embed', 'separate', 'none' for options.audio but received 'stereo' of type string"],
    [{ sampleEvery: 0 }, 'Expected integer between 1 and 10000 for options.sampleEvery but received 0 of type number'],
    [{ inputDir: '/nonexistent/videos' }, 'input folder /nonexistent/videos cannot be read'],
  ])('rejects bad options with a message naming them (%#)', async (bad, message) => {
    await expect(
      faces({ inputDir: input, outputDir: join(dir, 'bad'), detector: 'models/face_detector_synthetic.onnx', device: 'cpu', ...(bad as object) }),
    ).rejects.toThrow(message);
  });
});
