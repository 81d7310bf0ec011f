import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Extractor } from '../../src/infer/extractor.js';
import { normalisationTable, writeVideoCTHW } from '../../src/infer/tensors.js';
import { toFloat16Model } from '../../src/models/fp16.js';
import { readModelInfo } from '../../src/models/info.js';
import { mulberry32 } from '../../src/util/random.js';
import { buildSlowFast, describeSlowFast, SLOWFAST_SMALL, type SlowFastConfig } from '../../src/models/slowfast.js';
import type { DecodedVideo, Sample } from '../../src/types.js';

// A reduced SlowFast (16 frames of 64×64) so both input formats run in well under a second.
const CONFIG: SlowFastConfig = { ...SLOWFAST_SMALL, numFrames: 16, inputSize: 64, headPoolSize: 2, extractorName: 'input-test' };
const LAYERS = ['layer_0', 'layer_1', 'layer_2', 'layer_3', 'layer_4'];
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };

function video(seed: number): DecodedVideo {
  const rand = mulberry32(seed);
  const frames = new Uint8Array(CONFIG.numFrames * CONFIG.inputSize * CONFIG.inputSize * 3);
  for (let i = 0; i < frames.length; i++) frames[i] = Math.floor(rand() * 256);
  return { frames, numFrames: CONFIG.numFrames, height: CONFIG.inputSize, width: CONFIG.inputSize, decodedFrames: 100 };
}

function sample(i: number, v: DecodedVideo): Sample {
  const key = `k${i}`;
  return {
    kind: 'sample',
    __key__: key,
    __url__: 's.tar',
    shard: { url: 's.tar', name: 's', index: 0 },
    index: i,
    files: {},
    entry: { filename: `${key}.mp4`, id: key, segment: [0, 10] },
    video: v,
  };
}

/** Largest |a − b| relative to the largest |b| of a layer. */
function relDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  expect(m).toBeGreaterThan(0);
  return d / m;
}

describe('SlowFast uint8-thwc input', () => {
  const floatModel = buildSlowFast(CONFIG, undefined, { inputFormat: 'float-cthw' });
  const byteModel = buildSlowFast(CONFIG, undefined, { inputFormat: 'uint8-thwc' });
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clipstream-sf-input-'));
    await writeFile(join(dir, 'float.onnx'), floatModel.bytes);
    await writeFile(join(dir, 'u8.onnx'), byteModel.bytes);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("declares uint8 [batch, T, H, W, 3] and says so in its metadata; weights and layers are the float model's", async () => {
    expect(byteModel.inputs).toEqual([{ name: 'frames_u8', dims: ['batch', 16, 64, 64, 3], type: 'uint8' }]);
    expect(floatModel.inputs).toEqual([{ name: 'frames', dims: ['batch', 3, 16, 64, 64] }]);
    expect(JSON.parse(byteModel.metadata.preprocessing!)).toMatchObject({ input: 'uint8-thwc', mean: 0.45, std: 0.225 });
    expect(JSON.parse(floatModel.metadata.preprocessing!)).not.toHaveProperty('input');
    expect(byteModel.layerSizes).toEqual(floatModel.layerSizes);
    expect(describeSlowFast(CONFIG, { inputFormat: 'uint8-thwc' }).stateDictShapes).toEqual(describeSlowFast(CONFIG).stateDictShapes);
    const info = await readModelInfo(join(dir, 'u8.onnx'));
    expect(info.inputs[0]).toEqual({ name: 'frames_u8', dims: ['batch', 16, 64, 64, 3], type: 'uint8' });
    expect((await readModelInfo(join(dir, 'float.onnx'))).inputs[0]!.type).toBe('float32');
    expect(() => buildSlowFast(CONFIG, undefined, { inputFormat: 'rgb' as never })).toThrow(/inputFormat must be/);
  });

  it("gives the float model's outputs on the same frames (normalised in the graph instead of in JS)", async () => {
    const vids = [video(1), video(2)];
    const per = vids[0]!.frames.length;
    const bytes = new Uint8Array(2 * per);
    const floats = new Float32Array(2 * per);
    const lut = normalisationTable(0.45, 0.225);
    vids.forEach((v, i) => {
      bytes.set(v.frames, i * per);
      writeVideoCTHW(v, lut, floats, i * per);
    });
    const fs = await ort.InferenceSession.create(floatModel.bytes, SESSION_OPTIONS);
    const bs = await ort.InferenceSession.create(byteModel.bytes, SESSION_OPTIONS);
    const a = await fs.run({ frames: new ort.Tensor('float32', floats, [2, 3, 16, 64, 64]) });
    const b = await bs.run({ frames_u8: new ort.Tensor('uint8', bytes, [2, 16, 64, 64, 3]) });
    for (const l of LAYERS) {
      expect(b[l]!.dims).toEqual([2, floatModel.layerSizes[l]]);
      // Float32 x·a + b in the graph vs the float64 table rounded once: an ulp or so per pixel.
      expect(relDiff(b[l]!.data as Float32Array, a[l]!.data as Float32Array), l).toBeLessThan(1e-5);
    }
    // A different clip gives different features (the graph does look at the bytes).
    expect(relDiff((b.layer_4!.data as Float32Array).slice(0, 288), (b.layer_4!.data as Float32Array).slice(288))).toBeGreaterThan(1e-3);
    await fs.release();
    await bs.release();
  });

  it('still runs as a float16 model (its in-graph cast goes to float16)', async () => {
    const half = await ort.InferenceSession.create(toFloat16Model(byteModel.bytes), SESSION_OPTIONS);
    const full = await ort.InferenceSession.create(byteModel.bytes, SESSION_OPTIONS);
    const feeds = { frames_u8: new ort.Tensor('uint8', video(3).frames, [1, 16, 64, 64, 3]) };
    const h = await half.run(feeds);
    const f = await full.run(feeds);
    for (const l of LAYERS) {
      expect(h[l]!.type).toBe('float32');
      expect(relDiff(h[l]!.data as Float32Array, f[l]!.data as Float32Array), l).toBeLessThan(1e-2);
    }
    await half.release();
    await full.release();
  });

  for (const worker of [true, false]) {
    it(`Extractor picks the path from the model's input type and both give the same features (worker: ${worker})`, async () => {
      const vids = [video(4), video(5), video(6)];
      const results: Record<string, Float32Array>[][] = [];
      for (const file of ['float.onnx', 'u8.onnx']) {
        const ex = await Extractor.load(join(dir, file), { device: 'cpu', intraOpThreads: 1, worker });
        expect(ex.inputFormat).toBe(file === 'u8.onnx' ? 'uint8-thwc' : 'float-cthw');
        // Two batches, so the reused batch buffer is used again.
        const batches = [[sample(0, vids[0]!), sample(1, vids[1]!)], [sample(2, vids[2]!)]];
        for (const b of batches) await ex.runBatch(b);
        await ex.close();
        results.push(
          batches.flat().map((s) => {
            expect(s.failure).toBeUndefined();
            return Object.fromEntries(LAYERS.map((l) => [l, s.visualFeatures![0]!.feat_array[l]!.data]));
          }),
        );
      }
      for (let i = 0; i < 3; i++) for (const l of LAYERS) expect(relDiff(results[1]![i]![l]!, results[0]![i]![l]!), `${i} ${l}`).toBeLessThan(1e-5);
      // The frames of the samples are untouched (shared decoded buffers are not moved or changed).
      expect(vids[0]!.frames).toEqual(video(4).frames);
    });
  }

  it('Extractor refuses video of the wrong size for a uint8 model, naming both', async () => {
    const ex = await Extractor.load(join(dir, 'u8.onnx'), { device: 'cpu', intraOpThreads: 1, worker: false });
    const v = { ...video(7), height: 32, frames: new Uint8Array(16 * 32 * 64 * 3) };
    const s = sample(0, v);
    await ex.runBatch([s]);
    await ex.close();
    expect(s.failure?.error.message).toMatch(/decoded video is 16×32×64 .* expects 16×64×64/);
  });
});
