import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModelFromArgs } from '../../src/cli/models-command.js';
import { transnetV2Detector } from '../../src/infer/transnetv2.js';
import { mulberry32 } from '../../src/util/random.js';
import { describeTransNetV2, TRANSNETV2_FULL, TRANSNETV2_SMALL } from '../../src/models/transnetv2.js';
import { REPO, runCli } from '../helpers/run-cli.js';

/**
 * TransNetV2 built from a PyTorch state dict, held to an independent PyTorch implementation
 * (scripts/transnetv2_reference.py, which uses the port's parameter names): seeded weights are
 * written by torch.save, read by `models build` without Python, and both run the same frames.
 */

const PY = '/usr/bin/python3';
const SCRIPT = join(REPO, 'scripts', 'transnetv2_reference.py');
const HAS_TORCH = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status === 0;
const NO_TORCH = 'skipped: /usr/bin/python3 with torch and numpy (python3-torch) is not installed';
/** Largest |ONNX - torch| allowed on a logit; measured 3.2e-5 on logits up to 21 (float32 sums of 4864 terms). */
const LOGIT_TOLERANCE = 1e-3;

function py(args: string[]): string {
  const r = spawnSync(PY, [SCRIPT, ...args], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`transnetv2_reference.py ${args[0]} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function randomFrames(count: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  const out = new Uint8Array(count * 27 * 48 * 3);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

async function readF32(path: string): Promise<Float32Array> {
  const b = await readFile(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('transnetv2: architecture', () => {
  it('declares uint8 frames in and four [batch, 100, 1] heads out', () => {
    const d = describeTransNetV2(TRANSNETV2_FULL);
    expect(d.inputs).toEqual([{ name: 'frames', dims: ['batch', 100, 27, 48, 3], type: 'uint8' }]);
    expect(d.outputs.map((o) => [o.name, o.dims])).toEqual([
      ['single_frame_logits', ['batch', 100, 1]],
      ['many_hot_logits', ['batch', 100, 1]],
      ['single_frame_prob', ['batch', 100, 1]],
      ['many_hot_prob', ['batch', 100, 1]],
    ]);
    // fc1 reads [colour 128, similarity 128, 256 channels x 3 x 6].
    expect(d.stateDictShapes.get('fc1.weight')).toEqual([1024, 4864]);
    expect(d.stateDictShapes.get('frame_sim_layer.projection.weight')).toEqual([128, 448]);
    expect(d.metadata['clipstream.kind']).toBe('shot-detector');
  });

  it.skipIf(!HAS_TORCH)('expects exactly the state dict of the PyTorch module, names and shapes (full and small)', () => {
    if (!HAS_TORCH) return console.log(NO_TORCH);
    for (const [config, flag] of [
      [TRANSNETV2_FULL, []],
      [TRANSNETV2_SMALL, ['--small']],
    ] as const) {
      const torchShapes = JSON.parse(py(['shapes', ...flag])) as Record<string, number[]>;
      expect(Object.fromEntries(describeTransNetV2(config).stateDictShapes)).toEqual(torchShapes);
    }
  });
});

describe.skipIf(!HAS_TORCH)('transnetv2: ONNX graph equals PyTorch on the same seeded state dict', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'transnetv2-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('full architecture, torch.save .pth read without Python, two windows of random frames', async () => {
    const weights = join(dir, 'w.pth');
    py(['weights', '--seed', '7', '--out', weights]);
    const built = await buildModelFromArgs({ arch: 'transnetv2', weights, out: join(dir, 'm.onnx') });
    expect(built.metadata.weights).toMatch(/^imported:[0-9a-f]{64}$/);
    const frames = randomFrames(200, 11);
    await writeFile(join(dir, 'x.u8'), frames);
    py(['forward', '--weights', weights, '--input', join(dir, 'x.u8'), '--batch', '2', '--out', join(dir, 'y.f32')]);
    const torchOut = await readF32(join(dir, 'y.f32'));
    const session = await ort.InferenceSession.create(join(dir, 'm.onnx'), { intraOpNumThreads: 2 });
    const out = await session.run({ frames: new ort.Tensor('uint8', frames, [2, 100, 27, 48, 3]) });
    const single = out.single_frame_logits!.data as Float32Array;
    const many = out.many_hot_logits!.data as Float32Array;
    const torchSingle = torchOut.subarray(0, 200);
    const torchMany = torchOut.subarray(200);
    // The logits must vary (a dead network would agree trivially).
    expect(Math.max(...torchSingle) - Math.min(...torchSingle)).toBeGreaterThan(1);
    expect(maxAbsDiff(single, torchSingle)).toBeLessThan(LOGIT_TOLERANCE);
    expect(maxAbsDiff(many, torchMany)).toBeLessThan(LOGIT_TOLERANCE);
    const prob = out.single_frame_prob!.data as Float32Array;
    for (let i = 0; i < 200; i += 37) expect(prob[i]).toBeCloseTo(1 / (1 + Math.exp(-torchSingle[i]!)), 5);
    await session.release();
  }, 300_000);

  it('CLI: models build --arch=transnetv2 reads the .pth; a state dict of another width is refused naming the tensor', async () => {
    const small = join(dir, 'small.pth');
    py(['weights', '--seed', '3', '--small', '--out', small]);
    const ok = runCli(['models', 'build', '--arch=transnetv2', '--width=small', `--weights=${small}`, `--out=${join(dir, 's.onnx')}`]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('TransNetV2-small');
    const wrong = runCli(['models', 'build', '--arch=transnetv2', `--weights=${small}`, `--out=${join(dir, 'f.onnx')}`]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('small.pth: weights do not fit the architecture');
    expect(wrong.stderr).toContain('tensor SDDCNN.0.DDCNN.0.bn.weight has shape [16] but the architecture needs [64]');
    expect(existsSync(join(dir, 'f.onnx'))).toBe(false);
  }, 300_000);

  it('the streaming detector gives the predictions and scenes of TransNetV2 predict_frames + predictions_to_scenes (torch)', async () => {
    const weights = join(dir, 'small-predict.pth');
    py(['weights', '--seed', '5', '--small', '--out', weights]);
    const model = join(dir, 'small-predict.onnx');
    await buildModelFromArgs({ arch: 'transnetv2', width: 'small', weights, out: model });
    // 180 frames (4 windows, the last one padded): four "scenes" of a flat colour with noise.
    const n = 180;
    const rand = mulberry32(21);
    const frames = new Uint8Array(n * 27 * 48 * 3);
    for (let i = 0; i < n; i++) {
      const scene = Math.floor(i / 47);
      for (let j = 0; j < 27 * 48 * 3; j++) frames[i * 27 * 48 * 3 + j] = Math.min(255, ((scene * 97 + (j % 3) * 61) % 200) + Math.floor(rand() * 40));
    }
    await writeFile(join(dir, 'v.u8'), frames);
    // First pass at the default threshold gives the torch predictions; the threshold is then put in a
    // wide gap near their median so that the scene rule has runs to find and no frame sits on it.
    const args = ['predict', '--weights', weights, '--frames', join(dir, 'v.u8'), '--count', String(n), '--small'];
    py([...args, '--out', join(dir, 'p0.json')]);
    const first = JSON.parse(await readFile(join(dir, 'p0.json'), 'utf8')) as { single: number[] };
    const sorted = [...first.single].sort((a, b) => a - b);
    let best = n >> 1;
    for (let k = (n >> 2) + 1; k < (3 * n) >> 2; k++) if (sorted[k]! - sorted[k - 1]! > sorted[best]! - sorted[best - 1]!) best = k;
    const threshold = (sorted[best]! + sorted[best - 1]!) / 2;
    expect(sorted[best]! - sorted[best - 1]!).toBeGreaterThan(1e-4);
    py([...args, '--threshold', String(threshold), '--out', join(dir, 'p.json')]);
    const ref = JSON.parse(await readFile(join(dir, 'p.json'), 'utf8')) as { single: number[]; many: number[]; scenes: number[][] };

    const single: number[] = [];
    const many: number[] = [];
    const d = await transnetV2Detector({ model, threshold, device: 'cpu', intraOpThreads: 2, onPrediction: (_i, s, m) => (single.push(s), many.push(m)) });
    for (let i = 0; i < n; i++) await d.push({ index: i, time: i / 25, rgb: frames.subarray(i * 3888, (i + 1) * 3888), width: 48, height: 27 });
    const boundaries = await d.finish();
    expect(single.length).toBe(n);
    expect(maxAbsDiff(Float32Array.from(single), Float32Array.from(ref.single))).toBeLessThan(1e-5);
    expect(maxAbsDiff(Float32Array.from(many), Float32Array.from(ref.many))).toBeLessThan(1e-5);
    // Every scene after the first starts where the detector puts a boundary.
    expect(ref.scenes.length).toBeGreaterThan(2);
    expect(boundaries.map((b) => b.frame)).toEqual(ref.scenes.slice(1).map((s) => s[0]));
  }, 300_000);
});
