import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clipStats, detectionStats, imageStats } from '../../src/faces/scores.js';
import { loadScorer, parseScorerSpec, spreadIndices } from '../../src/infer/scorers.js';
import { GraphBuilder, int, ints } from '../../src/models/onnx-graph.js';

const solid = (n: number, rgb: [number, number, number]) => {
  const f = new Uint8Array(n * n * 3);
  for (let i = 0; i < n * n; i++) f.set(rgb, i * 3);
  return f;
};

describe('image statistics', () => {
  it('flat grey: no sharpness, brightness = grey / 255, no contrast', () => {
    expect(imageStats(solid(16, [51, 51, 51]), 16, 16)).toEqual({ sharpness: 0, brightness: expect.closeTo(0.2, 6), contrast: expect.closeTo(0, 6) });
  });

  it('a one-pixel checkerboard: Laplacian ±1020 everywhere, so variance 1020²; contrast 0.5', () => {
    const f = new Uint8Array(16 * 16 * 3);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) if ((x + y) % 2 === 0) f.set([255, 255, 255], (y * 16 + x) * 3);
    const s = imageStats(f, 16, 16);
    expect(s.sharpness).toBeCloseTo(1020 * 1020, -1);
    expect(s.brightness).toBeCloseTo(0.5, 3);
    expect(s.contrast).toBeCloseTo(0.5, 3);
    // A clip's value is the mean over its frames: a sharp one and a flat one halve it.
    expect(clipStats([f, solid(16, [128, 128, 128])], 16, 16).sharpness).toBeCloseTo((1020 * 1020) / 2, -1);
  });

  it('spreads frame indices evenly, first and last included', () => {
    expect(spreadIndices(3, 8)).toEqual([0, 1, 2]);
    expect(spreadIndices(100, 5)).toEqual([0, 25, 50, 74, 99]);
  });

  it('summarises detector confidence and face size', () => {
    const d = (score: number, side: number) => ({ x1: 0, y1: 0, x2: side, y2: side, score });
    expect(detectionStats([d(0.5, 10), d(0.9, 30)], 320, 240)).toEqual({
      det_score_mean: 0.7,
      det_score_min: 0.5,
      det_score_max: 0.9,
      num_detections: 2,
      face_size: 20,
      face_size_ratio: 20 / 240,
    });
  });
});

describe('ONNX scorers', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faces-scorers-'));
    const scalar = new GraphBuilder('iqa');
    scalar.addInput('x', [1, 3, 32, 32]);
    scalar.addNode('ReduceMean', ['x'], 'score', { axes: ints([1, 2, 3]), keepdims: int(0) });
    scalar.addOutput('score', [1]);
    await writeFile(join(dir, 'iqa.onnx'), scalar.toBuffer());
    const embed = new GraphBuilder('encoder');
    embed.addInput('x', ['batch', 3, 'h', 'w']);
    embed.addNode('GlobalAveragePool', ['x'], 'p');
    embed.addNode('Flatten', ['p'], 'embedding');
    embed.addOutput('embedding', ['batch', 3]);
    await writeFile(join(dir, 'encoder.onnx'), embed.toBuffer());
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['unit', (102 + 153 + 204) / 3 / 255],
    ['raw', (102 + 153 + 204) / 3],
    ['imagenet', ((0.4 - 0.485) / 0.229 + (0.6 - 0.456) / 0.224 + (0.8 - 0.406) / 0.225) / 3],
  ] as const)('a scalar model scores a clip with the mean over frames (%s normalisation)', async (norm, expected) => {
    const s = await loadScorer({ name: 'iqa', path: join(dir, 'iqa.onnx'), norm }, { device: 'cpu', intraOpThreads: 1 });
    expect(s.column).toBe('iqa_score');
    expect(await s.score([solid(64, [102, 153, 204]), solid(64, [102, 153, 204])], 64)).toBeCloseTo(expected, 4);
    await s.close();
  });

  it('an embedding model scores consistency: cosine of each frame to the mean embedding', async () => {
    const s = await loadScorer(parseScorerSpec(`clip=${join(dir, 'encoder.onnx')}:unit`), { device: 'cpu', intraOpThreads: 1 });
    const red = solid(32, [255, 0, 0]);
    const blue = solid(32, [0, 0, 255]);
    expect(await s.score([red, red, red], 32)).toBeCloseTo(1, 5);
    expect(await s.score([red, blue, red, blue], 32)).toBeCloseTo(Math.SQRT1_2, 4);
    await s.close();
  });

  it.each([
    ['hyperiqa=models/hyperiqa.onnx', { name: 'hyperiqa', path: 'models/hyperiqa.onnx', norm: 'imagenet' }],
    ['clipiqa+=m/clipiqa.onnx:clip', { name: 'clipiqa+', path: 'm/clipiqa.onnx', norm: 'clip' }],
  ])('parses %s', (text, spec) => {
    expect(parseScorerSpec(text)).toEqual(spec);
  });

  it('rejects a scorer without a name', () => {
    expect(() => parseScorerSpec('models/x.onnx')).toThrow(
      "scorer 'models/x.onnx' is not name=path.onnx[:imagenet|clip|unit|raw] (e.g. hyperiqa=models/hyperiqa.onnx)",
    );
  });
});
