import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transnetV2Detector } from '../../src/infer/transnetv2.js';
import { GraphBuilder, int, ints } from '../../src/models/onnx-graph.js';

/**
 * The windowing of the TransNetV2 detector, on a real ONNX graph made here that has TransNetV2's
 * interface (uint8 frames [batch, 100, 27, 48, 3] in, [batch, 100, 1] probabilities out) but a
 * readable rule instead of a network:
 *   single_frame_prob[p] = R of window position p's top-left pixel / 255 (what that frame says);
 *   many_hot_prob[p]     = mean over the 100 positions of that R / 255 (what the whole window held).
 * Frame i is painted with R = i % 256, so each prediction says which frame it came from, and the
 * window mean says whether the padding (25 copies of the first frame before, the last after) was right.
 */

const W = 48;
const H = 27;

function standIn(): Buffer {
  const g = new GraphBuilder('transnetv2-stand-in');
  g.addInput('frames', ['batch', 100, H, W, 3], 'uint8');
  const f = g.addNode('Cast', ['frames'], 'f', { to: int(1) });
  const starts = g.addInt64Initializer('starts', [3], [0, 0, 0]);
  const ends = g.addInt64Initializer('ends', [3], [1, 1, 1]);
  const axes = g.addInt64Initializer('axes', [3], [2, 3, 4]);
  const red = g.addNode('Slice', [f, starts, ends, axes], 'red');
  const shape = g.addInt64Initializer('shape', [3], [-1, 100, 1]);
  const perFrame = g.addNode('Reshape', [red, shape], 'per_frame');
  const scale = g.addInitializer('scale', [], new Float32Array([255]));
  const single = g.addNode('Div', [perFrame, scale], 'single_frame_prob');
  const mean = g.addNode('ReduceMean', [single], 'window_mean', { axes: ints([1]), keepdims: int(1) });
  const zero = g.addInitializer('zero', [], new Float32Array([0]));
  g.addNode('Add', [g.addNode('Mul', [single, zero], 'zeros'), mean], 'many_hot_prob');
  g.addOutput('single_frame_prob', ['batch', 100, 1]);
  g.addOutput('many_hot_prob', ['batch', 100, 1]);
  return g.toBuffer();
}

function frame(index: number, red: number) {
  const rgb = new Uint8Array(W * H * 3).fill(40);
  rgb[0] = red;
  return { index, time: index / 25, rgb, width: W, height: H };
}

/** Expected window mean for the frame `f` of a video of `n` frames, from TransNetV2's padding rule. */
function windowMean(f: number, n: number, red: (i: number) => number): number {
  const w = Math.floor(f / 50);
  let sum = 0;
  for (let p = 0; p < 100; p++) sum += red(Math.min(Math.max(50 * w + p - 25, 0), n - 1));
  return sum / 100 / 255;
}

describe('transnetv2 detector: windows of 100, stride 50, 25 frames of padding', () => {
  let dir = '';
  let model = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tnv2-unit-'));
    model = join(dir, 'stand-in.onnx');
    await writeFile(model, standIn());
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([1, 24, 50, 75, 100, 137, 263])('%i frames: one prediction per frame, from that frame, with the right window around it', async (n) => {
    const red = (i: number) => (i * 37 + 11) % 256;
    const got: Array<[number, number, number]> = [];
    const d = await transnetV2Detector({ model, device: 'cpu', intraOpThreads: 1, onPrediction: (i, s, m) => got.push([i, s, m]) });
    expect(d.frameSize({ width: 1920, height: 1080 })).toEqual({ width: 48, height: 27 });
    let most = 0;
    for (let i = 0; i < n; i++) {
      await d.push(frame(i, red(i)));
      most = Math.max(most, d.heldFrames);
    }
    await d.finish();
    expect(got.map((g) => g[0])).toEqual(Array.from({ length: n }, (_, i) => i));
    for (const [i, single, many] of got) {
      expect(Math.round(single * 255), `frame ${i}`).toBe(red(i));
      expect(many, `window of frame ${i}`).toBeCloseTo(windowMean(i, n, red), 5);
    }
    expect(most).toBeLessThanOrEqual(100);
  });

  it('a run of frames over the threshold ends a shot; the first frame under it starts the next (predictions_to_scenes)', async () => {
    // Transition runs: [0, 1] (at the start: ends no shot), [10], [48..52] (across windows 0 and 1),
    // [99, 100] (across windows 1 and 2), [140..] to the end (starts no shot). Peaks give the scores.
    const runs: Array<[number, number, number]> = [
      [0, 1, 200],
      [10, 10, 140],
      [48, 52, 255],
      [99, 100, 180],
      [140, 149, 250],
    ];
    const redOf = (i: number) => {
      const r = runs.find(([a, b]) => i >= a && i <= b);
      if (!r) return 30;
      return i === r[1] || r[0] === r[1] ? r[2] : 130;
    };
    const d = await transnetV2Detector({ model, device: 'cpu', intraOpThreads: 1 });
    for (let i = 0; i < 150; i++) await d.push(frame(i, redOf(i)));
    const b = await d.finish();
    expect(b.map((x) => [x.frame, Math.round(x.score * 255), x.kind])).toEqual([
      [11, 140, 'cut'],
      [53, 255, 'cut'],
      [101, 180, 'cut'],
    ]);
  });

  it('the threshold is the one given: at 0.6 a run peaking at 140/255 = 0.55 is no transition', async () => {
    const d = await transnetV2Detector({ model, device: 'cpu', threshold: 0.6, intraOpThreads: 1 });
    for (let i = 0; i < 60; i++) await d.push(frame(i, i === 20 ? 140 : i === 40 ? 200 : 0));
    expect((await d.finish()).map((x) => x.frame)).toEqual([41]);
  });

  it('memory is one window: 3000 frames never hold more than 100, in a buffer of fixed size', async () => {
    const d = await transnetV2Detector({ model, device: 'cpu', intraOpThreads: 1 });
    let most = 0;
    for (let i = 0; i < 3000; i++) {
      await d.push(frame(i, i % 256));
      most = Math.max(most, d.heldFrames);
    }
    expect(most).toBeLessThanOrEqual(100);
    expect(most).toBeGreaterThanOrEqual(50);
    expect(d.heldBytes).toBe(100 * W * H * 3);
    await d.finish();
    expect(d.heldFrames).toBe(0);
  });

  it('refuses frames of another size, out of order, and a model that is not TransNetV2, naming what is wrong', async () => {
    const d = await transnetV2Detector({ model, device: 'cpu', intraOpThreads: 1 });
    await expect(d.push({ ...frame(0, 0), width: 64 })).rejects.toThrow('transnetv2: frame 0 is 64x27');
    await expect(d.push(frame(3, 0))).rejects.toThrow('expected frame 0, got frame 3');
    await d.finish();
    const g = new GraphBuilder('other');
    g.addInput('x', ['batch', 4]);
    g.addNode('Relu', ['x'], 'y');
    g.addOutput('y', ['batch', 4]);
    const other = join(dir, 'other.onnx');
    await writeFile(other, g.toBuffer());
    await expect(transnetV2Detector({ model: other, device: 'cpu' })).rejects.toThrow(`${other}: not a TransNetV2 model`);
    await expect(transnetV2Detector({ model, threshold: 1.5 })).rejects.toThrow('threshold must be a probability');
  });
});
