import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/errors.js';
import { loadFaceDetector } from '../../src/faces/detector.js';
import { loadScorer } from '../../src/infer/scorers.js';
import { renderFace } from '../../src/faces/synthetic.js';
import { SYNTHETIC_DETECTOR_FILE } from '../../src/faces/synthetic-detector.js';
import { Extractor } from '../../src/infer/extractor.js';
import { BatchQueue, ModelRunner } from '../../src/infer/model-runner.js';
import { channelTables, normalisationTable, writePlanes, writeVideoCTHW } from '../../src/infer/tensors.js';
import { GraphBuilder, ints, int } from '../../src/models/onnx-graph.js';
import { toModelInput } from '../../src/segments/compose.js';
import { FrameModel } from '../../src/segments/model.js';
import { MATTE_FIXTURE, renderMatteFrame } from '../../fixtures/matte.js';
import type { Sample } from '../../src/types.js';

const DETECTOR = join('models', SYNTHETIC_DETECTOR_FILE);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bits = (a: ArrayLike<number>) => Buffer.from(Float32Array.from(a).buffer).toString('hex');

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const bytes = (n: number, seed: number) => {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'model-runner-'));
  // [B, 3] → [B, 3]: doubles its input; any batch size.
  const g = new GraphBuilder('double');
  g.addInput('x', ['batch', 3]);
  g.addNode('Add', ['x', 'x'], 'y');
  g.addOutput('y', ['batch', 3]);
  await writeFile(join(dir, 'double.onnx'), g.toBuffer());
  const iqa = new GraphBuilder('iqa');
  iqa.addInput('x', ['batch', 3, 16, 16]);
  iqa.addNode('ReduceMean', ['x'], 'score', { axes: ints([1, 2, 3]), keepdims: int(0) });
  iqa.addOutput('score', ['batch']);
  await writeFile(join(dir, 'iqa.onnx'), iqa.toBuffer());
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('BatchQueue: batching by backpressure', () => {
  it('fills batches up to batchSize from what is queued while the model is busy', async () => {
    const q = new BatchQueue<number, number>({
      batchSize: 4,
      run: async (b) => {
        await sleep(20);
        return b.map((x) => x * 10);
      },
    });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => q.submit(i)));
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i * 10));
    // All ten were queued at once: full batches, the rest in the last one.
    expect(q.batchSizes).toEqual([4, 4, 2]);
  });

  it('never waits for a full batch when items trickle in', async () => {
    const q = new BatchQueue<number, number>({ batchSize: 8, run: async (b) => b });
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      expect(await q.submit(i)).toBe(i);
      await sleep(10);
    }
    expect(q.batchSizes).toEqual([1, 1, 1, 1, 1]);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('batches only items of one group, oldest first, and fails only the batch that threw', async () => {
    const q = new BatchQueue<{ size: number; v: number }, number>({
      batchSize: 8,
      groupKey: (x) => String(x.size),
      run: async (b) => {
        if (b.some((x) => x.v < 0)) throw new Error('bad batch');
        return b.map((x) => x.v);
      },
    });
    const all = [
      q.submit({ size: 1, v: 1 }),
      q.submit({ size: 2, v: 2 }),
      q.submit({ size: 1, v: 3 }),
      q.submit({ size: 2, v: -1 }),
      q.submit({ size: 1, v: 5 }),
    ].map((p) => p.catch((e: Error) => e.message));
    expect(await Promise.all(all)).toEqual([1, 'bad batch', 3, 'bad batch', 5]);
    expect(q.batchSizes).toEqual([3, 2]);
  });
});

describe('ModelRunner', () => {
  it.each(['worker', 'main'] as const)('runs named inputs and hands the input buffers back (%s thread)', async (thread) => {
    const m = await ModelRunner.open(join(dir, 'double.onnx'), { device: 'cpu', intraOpThreads: 1, thread });
    expect(m.thread).toBe(thread);
    expect(m.batched).toBe(true);
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const { outputs, feeds } = await m.run({ x: { data, dims: [2, 3] } }, ['y']);
    expect(Array.from(outputs.y!.data)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(outputs.y!.dims).toEqual([2, 3]);
    expect(Array.from(feeds.x!.data)).toEqual([1, 2, 3, 4, 5, 6]);
    await m.close();
  });

  it.each(['worker', 'main'] as const)('a failed run is ERR_INFERENCE naming the model file and the key, with the cause (%s thread)', async (thread) => {
    const path = join(dir, 'double.onnx');
    const m = await ModelRunner.open(path, { device: 'cpu', intraOpThreads: 1, thread });
    // Four values where the model wants [batch, 3].
    const err = await m.run({ x: { data: new Float32Array(4), dims: [1, 4] } }, ['y'], { key: 'clip-7/12', batch: 'a batch of 1' }).catch((e: unknown) => e);
    await m.close();
    expect(err).toBeInstanceOf(ClipstreamError);
    const e = err as ClipstreamError;
    expect(e.code).toBe('ERR_INFERENCE');
    expect(e.where).toEqual({ file: path, key: 'clip-7/12' });
    expect(e.message).toContain(`model ${path} failed on a batch of 1 (clip-7/12): `);
    expect(e.cause).toBeInstanceOf(Error);
    // The cause is ONNX Runtime's own complaint about the shape.
    expect((e.cause as Error).message).toMatch(/dimension|shape|Got invalid/i);
  });

  it('a CUDA request falls back to the CPU with exactly one warning, however many models open', async () => {
    const warnings: ClipstreamError[] = [];
    const onWarning = (w: Error) => warnings.push(w as ClipstreamError);
    const path = join(dir, 'double.onnx');
    const a = await ModelRunner.open(path, { device: 'cuda', intraOpThreads: 1, onWarning });
    const b = await ModelRunner.open(path, { device: 'cuda:0', intraOpThreads: 1, thread: 'main', onWarning });
    const c = await loadFaceDetector(DETECTOR, { device: 'cuda', intraOpThreads: 1, onWarning });
    const providers = [a.provider, b.provider, c.provider];
    // The models still run.
    expect(Array.from((await b.run({ x: { data: new Float32Array([1, 1, 1]), dims: [1, 3] } }, ['y'])).outputs.y!.data)).toEqual([2, 2, 2]);
    await Promise.all([a.close(), b.close(), c.close()]);
    if (providers.every((p) => p === 'cuda')) {
      // A machine with CUDA: nothing to warn about.
      expect(warnings).toEqual([]);
      return;
    }
    expect(providers).toEqual(['cpu', 'cpu', 'cpu']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(/^CUDA execution provider could not be loaded \(.+\); running on CPU\./);
    expect(warnings[0]!.where.file).toBe(path);
  });
});

describe('the model users give the same outputs on the worker and on the main thread', () => {
  it('face detector: identical detections', async () => {
    const frames = [
      [320, 240],
      [640, 480],
      [500, 300],
    ].map(([W, H], i) => ({ W: W!, H: H!, i }));
    const results: string[] = [];
    for (const thread of ['worker', 'main'] as const) {
      const det = await loadFaceDetector(DETECTOR, { device: 'cpu', intraOpThreads: 1, thread });
      const inputs = frames.map(({ W, H, i }) => {
        const fit = det.fit(W, H);
        return { rgb: renderFace(fit.width, fit.height, { cx: 70 + 15 * i, cy: 80 }), ...fit, sourceWidth: W, sourceHeight: H };
      });
      const found = await det.detect(inputs);
      await det.close();
      expect(found.map((f) => f.length)).toEqual([1, 1, 1]);
      results.push(JSON.stringify(found));
    }
    expect(results[1]).toBe(results[0]);
  });

  it('scorer, feature extractor and frame model: identical bits', async () => {
    const out: Record<string, string[]> = { scorer: [], audio: [], matte: [] };
    for (const thread of ['worker', 'main'] as const) {
      const s = await loadScorer({ name: 'iqa', path: join(dir, 'iqa.onnx'), norm: 'imagenet' }, { device: 'cpu', intraOpThreads: 1, thread });
      out.scorer!.push(String(await s.score([bytes(32 * 32 * 3, 1), bytes(32 * 32 * 3, 2), bytes(32 * 32 * 3, 3)], 32)));
      await s.close();

      const ex = await Extractor.load('models/vggish_small.onnx', { device: 'cpu', intraOpThreads: 1, worker: thread === 'worker' });
      const r = rng(9);
      const samples = [1, 2].map((sec, i) => ({
        kind: 'sample',
        __key__: `k${i}`,
        __url__: 's.tar',
        shard: { url: 's.tar', name: 's', index: 0 },
        index: i,
        files: {},
        entry: { filename: `k${i}.mp4`, id: `k${i}`, segment: [0, sec] },
        audio: { pcm: Float32Array.from({ length: 16000 * sec }, () => r() * 2 - 1), sampleRate: 16000 },
      })) as Sample[];
      await ex.runBatch(samples);
      await ex.close();
      out.audio!.push(samples.map((x) => Object.values(x.audioFeatures![0]!.feat_array).map((t) => bits(t.data))).join('|'));

      const m = await FrameModel.open('models/rvm_synthetic.onnx', { device: 'cpu', intraOpThreads: 1, thread });
      const { width: w, height: h } = MATTE_FIXTURE;
      const [a, b] = await Promise.all([0, 5].map((k) => m.submit(toModelInput(renderMatteFrame(MATTE_FIXTURE, k), w, h), null, h, w, 1)));
      const c = await m.submit(toModelInput(renderMatteFrame(MATTE_FIXTURE, 6), w, h), b!.state, h, w, 1);
      out.matte!.push([a!, c].map((x) => bits(x.pha!)).join('|'));
      expect(m.batchSizes).toEqual([2, 1]);
      await m.close();
    }
    for (const [k, [worker, main]] of Object.entries(out)) expect(main, k).toBe(worker);
  });
});

describe('Extractor per-clip failures go through onError', () => {
  const wrongSize = (): Sample =>
    ({
      kind: 'sample',
      __key__: 'bad',
      __url__: 's.tar',
      shard: { url: 's.tar', name: 's', index: 0 },
      index: 0,
      files: {},
      entry: { filename: 'bad.mp4', id: 'bad', segment: [0, 1] },
      video: { frames: new Uint8Array(2 * 8 * 8 * 3), numFrames: 2, height: 8, width: 8, decodedFrames: 2 },
    }) as Sample;

  it("'skip' (the default) marks the clip failed with the model file and key; 'throw' stops; a function decides", async () => {
    const ex = await Extractor.load('models/slowfast_small.onnx', { device: 'cpu', intraOpThreads: 1, worker: false });
    const s = wrongSize();
    await ex.runBatch([s]);
    expect(s.failure?.stage).toBe('infer:visual');
    expect(s.failure?.status).toBe('failed');
    expect(s.failure?.error.where).toMatchObject({ key: 'bad', file: 'models/slowfast_small.onnx' });
    expect(s.failure?.error.message).toMatch(/^bad: decoded video is 2×8×8 /);
    await expect(ex.runBatch([wrongSize()], 'throw')).rejects.toThrow(/bad: decoded video is 2×8×8/);
    const seen: string[] = [];
    const t = wrongSize();
    await ex.runBatch([t], (err, key) => {
      seen.push(`${key}:${err.code}`);
      return 'skip';
    });
    expect(seen).toEqual(['bad:ERR_MODEL']);
    expect(t.failure).toBeDefined();
    await ex.close();
  });
});

describe('tensor packing equals the per-pixel formulas it replaced, bit for bit', () => {
  it('C×T×H×W clips through a normalisation table', () => {
    const video = { frames: bytes(3 * 5 * 7 * 3, 4), numFrames: 3, height: 5, width: 7, decodedFrames: 3 };
    const lut = normalisationTable(0.45, 0.225);
    const got = new Float32Array(2 + 3 * 3 * 5 * 7);
    writeVideoCTHW(video, lut, got, 2);
    // Reference: index (c, t, y, x) directly.
    const want = new Float32Array(got.length);
    for (let c = 0; c < 3; c++)
      for (let t = 0; t < 3; t++) for (let p = 0; p < 35; p++) want[2 + c * 105 + t * 35 + p] = (video.frames[(t * 35 + p) * 3 + c]! / 255 - 0.45) / 0.225;
    expect(bits(got)).toBe(bits(want));
  });

  it.each([
    ['SCRFD, RGB', [127.5, 127.5, 127.5], [128, 128, 128], 1, false],
    ['YuNet, BGR', [0, 0, 0], [1, 1, 1], 1, true],
    ['ImageNet on [0, 1]', [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 1 / 255, false],
  ] as const)('an image placed top-left in a larger input (%s)', (_, mean, std, scale, bgr) => {
    const [w, h, W, H] = [5, 3, 8, 4];
    const rgb = bytes(w * h * 3, 5);
    const got = new Float32Array(2 * 3 * W * H);
    writePlanes(rgb, w, h, channelTables(mean, std, scale), got, 3 * W * H, { planeSize: W * H, rowStride: W, bgr });
    const want = new Float32Array(got.length);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < 3; c++) want[3 * W * H + (bgr ? 2 - c : c) * W * H + y * W + x] = (rgb[(y * w + x) * 3 + c]! * scale - mean[c]!) / std[c]!;
    expect(bits(got)).toBe(bits(want));
  });
});
