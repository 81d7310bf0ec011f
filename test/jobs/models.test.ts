import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/errors.js';
import { readModelInfo, type ModelInfo } from '../../src/models/info.js';
import { foldBatchNorm, type StateDict } from '../../src/models/params.js';
import { mulberry32 } from '../../src/util/random.js';
import { manifestEntry, SHIPPED_MODELS } from '../../scripts/shipped-models.js';
import { buildSlowFast, describeSlowFast, slowPathwayIndices, SLOWFAST_FULL, SLOWFAST_SMALL, type SlowFastConfig } from '../../src/models/slowfast.js';
import { buildVggish, describeVggish, VGGISH_FULL, VGGISH_SMALL } from '../../src/models/vggish.js';

const MODELS_DIR = join(import.meta.dirname, '..', '..', 'models');
const SLOWFAST_FILE = join(MODELS_DIR, 'slowfast_small.onnx');
const VGGISH_FILE = join(MODELS_DIR, 'vggish_small.onnx');
const LAYERS = ['layer_0', 'layer_1', 'layer_2', 'layer_3', 'layer_4'];
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 2, interOpNumThreads: 1 };

/** Deterministic, varied input in a normalised-pixel / log-mel-like range. */
function input(shape: number[], seed: number, offset = 0): ort.Tensor {
  const rand = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = offset + 2 * (rand() - 0.5) + Math.sin(i * 0.001);
  return new ort.Tensor('float32', data, shape);
}

/** Deterministic, varied uint8 input (decoded RGB frames). */
function inputBytes(shape: number[], seed: number): ort.Tensor {
  const rand = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.floor(rand() * 256);
  return new ort.Tensor('uint8', data, shape);
}

/** Item `i` of a batch tensor as its own batch of one. */
function item(t: ort.Tensor, i: number): ort.Tensor {
  const per = t.data.length / t.dims[0];
  if (t.type === 'uint8') return new ort.Tensor('uint8', (t.data as Uint8Array).slice(i * per, (i + 1) * per), [1, ...t.dims.slice(1)]);
  return new ort.Tensor('float32', (t.data as Float32Array).slice(i * per, (i + 1) * per), [1, ...t.dims.slice(1)]);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function expectInformative(name: string, data: Float32Array): void {
  expect(data.every(Number.isFinite), `${name} finite`).toBe(true);
  expect(Math.max(...data) - Math.min(...data), `${name} not constant`).toBeGreaterThan(1e-3);
  expect(Math.max(...data.map(Math.abs)), `${name} not exploding`).toBeLessThan(1e3);
}

describe('model building', () => {
  it('is deterministic: two builds are byte-identical, another seed differs', () => {
    expect(buildVggish(VGGISH_SMALL).bytes.equals(buildVggish(VGGISH_SMALL).bytes)).toBe(true);
    expect(buildSlowFast(SLOWFAST_SMALL).bytes.equals(buildSlowFast(SLOWFAST_SMALL).bytes)).toBe(true);
    expect(buildVggish({ ...VGGISH_SMALL, seed: 1 }).bytes.equals(buildVggish(VGGISH_SMALL).bytes)).toBe(false);
  });

  it('shipped files and manifest equal a fresh build (never stale)', async () => {
    const entries = [];
    for (const { file, build } of SHIPPED_MODELS) {
      const model = build();
      const shipped = await readFile(join(MODELS_DIR, file));
      expect(shipped.equals(model.bytes), `${file} is stale: run npx tsx scripts/build-models.ts`).toBe(true);
      expect(shipped.length).toBeLessThan(3 * 1024 * 1024);
      entries.push(manifestEntry(file, model));
    }
    const manifest = JSON.parse(await readFile(join(MODELS_DIR, 'manifest.json'), 'utf8'));
    expect(manifest).toEqual({ models: entries });
  });

  it('full-width configs declare the ACAV100M layer sizes', () => {
    const sf = describeSlowFast(SLOWFAST_FULL);
    expect(sf.layerSizes).toEqual({ layer_0: 88, layer_1: 352, layer_2: 704, layer_3: 1408, layer_4: 2304 });
    expect(sf.outputs.map((o) => o.name)).toEqual([...LAYERS, 'logits']);
    expect(sf.outputs[5].dims).toEqual(['batch', 400]);
    expect(sf.inputs).toEqual([{ name: 'frames', dims: ['batch', 3, 32, 256, 256] }]);
    const vg = describeVggish(VGGISH_FULL);
    expect(vg.layerSizes).toEqual({ layer_0: 64, layer_1: 128, layer_2: 256, layer_3: 512, layer_4: 128 });
    expect(vg.inputs).toEqual([{ name: 'examples', dims: ['batch', 1, 96, 64] }]);
    // torchvggish: 72.1M parameters, first FC reads the 512x6x4 map.
    expect(vg.parameterCount).toBe(72_141_184);
    expect(vg.stateDictShapes.get('embeddings.0.weight')).toEqual([4096, 12288]);
  });

  it('expects the PyTorch state dict names', () => {
    const vg = describeVggish(VGGISH_FULL).stateDictShapes;
    expect([...vg.keys()].filter((k) => k.endsWith('.weight'))).toEqual([
      'features.0.weight',
      'features.3.weight',
      'features.6.weight',
      'features.8.weight',
      'features.11.weight',
      'features.13.weight',
      'embeddings.0.weight',
      'embeddings.2.weight',
      'embeddings.4.weight',
    ]);
    const sf = describeSlowFast(SLOWFAST_FULL).stateDictShapes;
    expect(sf.get('s1.pathway0_stem.conv.weight')).toEqual([64, 3, 1, 7, 7]);
    expect(sf.get('s1.pathway1_stem.conv.weight')).toEqual([8, 3, 5, 7, 7]);
    expect(sf.get('s1.pathway0_stem.bn.running_var')).toEqual([64]);
    expect(sf.get('s1_fuse.conv_f2s.weight')).toEqual([16, 8, 7, 1, 1]);
    expect(sf.get('s2.pathway0_res0.branch1.weight')).toEqual([256, 80, 1, 1, 1]);
    expect(sf.get('s2.pathway0_res0.branch2.a.weight')).toEqual([64, 80, 1, 1, 1]);
    expect(sf.get('s4.pathway0_res5.branch2.a.weight')).toEqual([256, 1024, 3, 1, 1]);
    expect(sf.get('s5.pathway1_res2.branch2.c_bn.weight')).toEqual([256]);
    expect(sf.get('head.projection.weight')).toEqual([400, 2304]);
    expect(sf.has('s2.pathway0_res1.branch1.weight')).toBe(false);
  });

  it('gathers the slow pathway like torch.linspace(0, T-1, T//alpha).long()', () => {
    expect(slowPathwayIndices(32, 4)).toEqual([0, 4, 8, 13, 17, 22, 26, 31]);
    expect(slowPathwayIndices(64, 8)).toEqual([0, 9, 18, 27, 36, 45, 54, 63]);
  });

  it('folds batch norm as conv followed by BN in inference mode', () => {
    // A 1x1 conv with 2 inputs and 2 outputs, checked against conv-then-BN on one input vector.
    const w = Float32Array.from([0.5, -1, 2, 0.25]);
    const bn = {
      gamma: Float32Array.from([1.5, 0.5]),
      beta: Float32Array.from([0.1, -0.2]),
      mean: Float32Array.from([0.3, -0.4]),
      variance: Float32Array.from([2, 0.5]),
    };
    const x = [0.7, -1.3];
    const folded = foldBatchNorm(w, bn);
    for (let o = 0; o < 2; o++) {
      const conv = w[o * 2] * x[0] + w[o * 2 + 1] * x[1];
      const ref = ((conv - bn.mean[o]) / Math.sqrt(bn.variance[o] + 1e-5)) * bn.gamma[o] + bn.beta[o];
      const got = folded.weight[o * 2] * x[0] + folded.weight[o * 2 + 1] * x[1] + folded.bias[o];
      expect(got).toBeCloseTo(ref, 5);
    }
  });
});

describe('imported weights', () => {
  const tiny: SlowFastConfig = { ...SLOWFAST_SMALL, extractorName: 'tiny', numClasses: 5 };

  function randomStateDict(shapes: Map<string, number[]>): StateDict {
    const rand = mulberry32(99);
    const dict: StateDict = new Map();
    for (const [name, shape] of shapes) {
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      const isVar = name.endsWith('running_var');
      for (let i = 0; i < data.length; i++) data[i] = isVar ? 0.5 + rand() : (rand() - 0.5) * 0.2;
      dict.set(name, { shape, data });
    }
    return dict;
  }

  it('builds from a state dict and records its origin', async () => {
    const params = randomStateDict(describeSlowFast(tiny).stateDictShapes);
    const model = buildSlowFast(tiny, { params, sha256: 'ab'.repeat(32), dataset: 'kinetics-400' });
    expect(model.metadata.weights).toBe(`imported:${'ab'.repeat(32)}`);
    expect(model.metadata.dataset).toBe('kinetics-400');
    const session = await ort.InferenceSession.create(model.bytes, SESSION_OPTIONS);
    const out = await session.run({ frames: input([1, 3, 32, 256, 256], 5) });
    expect(out.logits.dims).toEqual([1, 5]);
    // The logits are the head's projection of layer_4, as SlowFast's (linear) head before softmax.
    const l4 = out.layer_4.data as Float32Array;
    const pw = params.get('head.projection.weight')!.data;
    const pb = params.get('head.projection.bias')!.data;
    for (let k = 0; k < 5; k++) {
      let v = pb[k];
      for (let c = 0; c < l4.length; c++) v += pw[k * l4.length + c] * l4[c];
      expect((out.logits.data as Float32Array)[k]).toBeCloseTo(v, 4);
    }
    await session.release();
  });

  it('names the parameter a state dict lacks or gets wrong', () => {
    const params = randomStateDict(describeVggish(VGGISH_SMALL).stateDictShapes);
    params.delete('features.8.bias');
    const weights = { params, sha256: '0'.repeat(64), dataset: 'YouTube-8M' };
    expect(() => buildVggish(VGGISH_SMALL, weights)).toThrow(/Weights lack parameter features\.8\.bias \[32\]/);
    params.set('features.8.bias', { shape: [31], data: new Float32Array(31) });
    expect(() => buildVggish(VGGISH_SMALL, weights)).toThrow(/features\.8\.bias has shape \[31\] but the architecture needs \[32\]/);
  });
});

describe('shipped models in onnxruntime', () => {
  let sf: ort.InferenceSession;
  let vg: ort.InferenceSession;
  let sfInfo: ModelInfo;
  let vgInfo: ModelInfo;

  beforeAll(async () => {
    [sf, vg, sfInfo, vgInfo] = await Promise.all([
      ort.InferenceSession.create(SLOWFAST_FILE, SESSION_OPTIONS),
      ort.InferenceSession.create(VGGISH_FILE, SESSION_OPTIONS),
      readModelInfo(SLOWFAST_FILE),
      readModelInfo(VGGISH_FILE),
    ]);
  });
  afterAll(async () => {
    await Promise.all([sf?.release(), vg?.release()]);
  });

  it('readModelInfo reports the contract and seeded origin', () => {
    expect(sfInfo.kind).toBe('visual');
    expect(sfInfo.extractorName).toBe('SLOWFAST_8x8_R50-small');
    expect(sfInfo.dataset).toBe('none (seeded weights)');
    expect(sfInfo.weights).toBe('seeded:2024');
    expect(sfInfo.preprocessing).toEqual({ frames: 32, size: 256, crop: 'top-left', mean: 0.45, std: 0.225, window_s: 10, input: 'uint8-thwc' });
    expect(sfInfo.inputs).toEqual([{ name: 'frames_u8', dims: ['batch', 32, 256, 256, 3], type: 'uint8' }]);
    expect(sfInfo.layers).toEqual(LAYERS);
    expect(sfInfo.opset).toBe(17);
    expect(vgInfo.kind).toBe('audio');
    expect(vgInfo.extractorName).toBe('VGGish-small');
    expect(vgInfo.preprocessing).toEqual({ sample_rate: 16000, frontend: 'vggish-logmel', example_frames: 96, mel_bands: 64 });
    expect(vgInfo.inputs).toEqual([{ name: 'examples', dims: ['batch', 1, 96, 64], type: 'float32' }]);
    expect(vgInfo.layerSizes).toEqual({ layer_0: 8, layer_1: 16, layer_2: 32, layer_3: 64, layer_4: 128 });
    expect(sf.inputNames).toEqual(['frames_u8']);
    expect(sf.outputNames).toEqual(LAYERS);
    expect(vg.outputNames).toEqual(LAYERS);
  });

  for (const which of ['slowfast', 'vggish'] as const) {
    it(`${which}: batch 1 and 3 give informative rows of the declared sizes, each independent of the batch`, async () => {
      const session = which === 'slowfast' ? sf : vg;
      const info = which === 'slowfast' ? sfInfo : vgInfo;
      const dims = info.inputs[0].dims.slice(1) as number[];
      const batch =
        info.inputs[0].type === 'uint8' ? inputBytes([3, ...dims], 11) : input([3, ...dims], which === 'slowfast' ? 11 : 12, which === 'vggish' ? -2 : 0);
      const out3 = await session.run({ [info.inputs[0].name]: batch });
      for (const layer of LAYERS) {
        expect(out3[layer].dims).toEqual([3, info.layerSizes[layer]]);
        expectInformative(`${which} ${layer}`, out3[layer].data as Float32Array);
      }
      for (let i = 0; i < 3; i++) {
        const out1 = await session.run({ [info.inputs[0].name]: item(batch, i) });
        for (const layer of LAYERS) {
          const row = (out3[layer].data as Float32Array).subarray(i * info.layerSizes[layer], (i + 1) * info.layerSizes[layer]);
          expect(out1[layer].dims).toEqual([1, info.layerSizes[layer]]);
          expect(maxAbsDiff(out1[layer].data as Float32Array, row)).toBeLessThan(1e-5);
        }
      }
      // Different examples give different features.
      const l4 = out3.layer_4.data as Float32Array;
      const size = info.layerSizes.layer_4;
      expect(maxAbsDiff(l4.subarray(0, size), l4.subarray(size, 2 * size))).toBeGreaterThan(1e-4);
    });
  }
});

describe('ACAV100M tap pooling', () => {
  /** The tap for one pathway tensor [1, C, T, H, W]: AvgPool [T, k, k] stride 1, then mean of the windows. */
  function windowedMean(t: ort.Tensor, k: number): Float64Array {
    const [, c, frames, h, w] = t.dims;
    const data = t.data as Float32Array;
    const out = new Float64Array(c);
    const oh = h - k + 1;
    const ow = w - k + 1;
    for (let ch = 0; ch < c; ch++) {
      // Each position counts once per window that covers it.
      let sum = 0;
      for (let f = 0; f < frames; f++) {
        for (let y = 0; y < h; y++) {
          const wy = Math.min(y, oh - 1) - Math.max(0, y - k + 1) + 1;
          for (let x = 0; x < w; x++) {
            const wx = Math.min(x, ow - 1) - Math.max(0, x - k + 1) + 1;
            sum += data[((ch * frames + f) * h + y) * w + x] * wy * wx;
          }
        }
      }
      out[ch] = sum / (frames * k * k * oh * ow);
    }
    return out;
  }

  function globalMean(t: ort.Tensor): Float64Array {
    const c = t.dims[1];
    const per = t.data.length / c;
    const out = new Float64Array(c);
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let i = 0; i < per; i++) s += (t.data as Float32Array)[ch * per + i];
      out[ch] = s / per;
    }
    return out;
  }

  it('layer_k is the 7x7 stride-1 average pool then mean, not a plain global mean', async () => {
    const model = buildSlowFast(SLOWFAST_SMALL, undefined, { debugTaps: true });
    const session = await ort.InferenceSession.create(model.bytes, SESSION_OPTIONS);
    const out = await session.run({ frames: input([1, 3, 32, 256, 256], 21) });
    for (const k of [0, 2, 4]) {
      const expected = [...windowedMean(out[`tap_${k}_slow`], 7), ...windowedMean(out[`tap_${k}_fast`], 7)];
      const plain = [...globalMean(out[`tap_${k}_slow`]), ...globalMean(out[`tap_${k}_fast`])];
      const got = out[`layer_${k}`].data as Float32Array;
      expect(got.length).toBe(expected.length);
      let worst = 0;
      let plainGap = 0;
      for (let c = 0; c < got.length; c++) {
        worst = Math.max(worst, Math.abs(got[c] - expected[c]) / (Math.abs(expected[c]) + 1e-3));
        plainGap = Math.max(plainGap, Math.abs(got[c] - plain[c]));
      }
      expect(worst, `layer_${k} vs windowed mean`).toBeLessThan(1e-4);
      // The two poolings differ measurably, so the check above tells them apart.
      expect(plainGap, `layer_${k} vs plain mean`).toBeGreaterThan(1e-3);
    }
    await session.release();
  });
});

describe('readModelInfo errors', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clipstream-models-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rejects a file that is not ONNX, naming it', async () => {
    const file = join(dir, 'not-a-model.onnx');
    await writeFile(file, '{"this": "is json, not a model"}\n');
    const err = await readModelInfo(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClipstreamError);
    expect((err as ClipstreamError).code).toBe('ERR_MODEL');
    expect((err as ClipstreamError).message).toMatch(/^Cannot use model .*not-a-model\.onnx: not a valid ONNX model/);
    expect((err as ClipstreamError).where.file).toBe(file);
  });

  it('rejects an ONNX model without clipstream metadata', async () => {
    const { onnx } = onnxProto;
    const bytes = await readFile(VGGISH_FILE);
    const model = onnx.ModelProto.decode(bytes);
    model.metadataProps = model.metadataProps.filter((p) => p.key !== 'layers' && p.key !== 'dataset');
    const file = join(dir, 'bare.onnx');
    await writeFile(file, onnx.ModelProto.encode(model).finish());
    await expect(readModelInfo(file)).rejects.toThrow(/bare\.onnx: missing clipstream metadata dataset, layers/);
  });
});
