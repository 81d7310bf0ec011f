import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Detection } from '../../src/faces/boxes.js';
import { loadFaceDetector } from '../../src/faces/detector.js';
import type { RawOutput } from '../../src/faces/tensors.js';
import { decodeUltraface, orderUltrafaceOutputs } from '../../src/faces/ultraface.js';
import { decodeYunet, orderYunetOutputs, YUNET_STRIDES } from '../../src/faces/yunet.js';
import { GraphBuilder, int, ints } from '../../src/models/onnx-graph.js';

/** Known faces in a 64×64 model input (centre, size, 5 landmarks). */
const FACES: Array<Detection & { stride: number }> = [
  {
    x1: 10,
    y1: 6,
    x2: 30,
    y2: 30,
    score: 0,
    stride: 8,
    landmarks: [
      [15, 14],
      [25, 14],
      [20, 19],
      [16, 25],
      [24, 25],
    ],
  },
  {
    x1: 30,
    y1: 20,
    x2: 62,
    y2: 60,
    score: 0,
    stride: 16,
    landmarks: [
      [40, 33],
      [52, 33],
      [46, 41],
      [41, 50],
      [51, 50],
    ],
  },
];

/** The inverse of YuNet's decoding: what a model would output for FACES, at cls 0.9 and obj 0.8. */
function encodeYunet(width: number, height: number): RawOutput[] {
  const outs = new Map<string, RawOutput>();
  for (const s of YUNET_STRIDES) {
    const cells = Math.ceil(width / s) * Math.ceil(height / s);
    for (const [k, c] of [
      ['cls', 1],
      ['obj', 1],
      ['bbox', 4],
      ['kps', 10],
    ] as const) {
      outs.set(`${k}_${s}`, { name: `${k}_${s}`, dims: [1, cells, c], data: new Float32Array(cells * c) });
    }
  }
  for (const f of FACES) {
    const s = f.stride;
    const cols = Math.ceil(width / s);
    const cx = (f.x1 + f.x2) / 2 / s;
    const cy = (f.y1 + f.y2) / 2 / s;
    const c = Math.floor(cx);
    const r = Math.floor(cy);
    const idx = r * cols + c;
    outs.get(`cls_${s}`)!.data[idx] = 0.9;
    outs.get(`obj_${s}`)!.data[idx] = 0.8;
    outs.get(`bbox_${s}`)!.data.set([cx - c, cy - r, Math.log((f.x2 - f.x1) / s), Math.log((f.y2 - f.y1) / s)], idx * 4);
    outs.get(`kps_${s}`)!.data.set(
      f.landmarks!.flatMap(([x, y]) => [x / s - c, y / s - r]),
      idx * 10,
    );
  }
  return [...outs.values()];
}

function expectSameFaces(found: Detection[], score: number) {
  expect(found).toHaveLength(FACES.length);
  const sorted = [...found].sort((a, b) => a.x1 - b.x1);
  sorted.forEach((d, i) => {
    const f = FACES[i]!;
    for (const k of ['x1', 'y1', 'x2', 'y2'] as const) expect(d[k]).toBeCloseTo(f[k], 3);
    expect(d.score).toBeCloseTo(score, 5);
    if (d.landmarks)
      d.landmarks.forEach(([x, y], j) => {
        expect(x).toBeCloseTo(f.landmarks![j]![0], 3);
        expect(y).toBeCloseTo(f.landmarks![j]![1], 3);
      });
  });
}

describe('YuNet decoding (OpenCV FaceDetectorYN formulas)', () => {
  it('round-trips known boxes and landmarks, with outputs in any order when named', () => {
    const outs = encodeYunet(64, 64);
    const shuffled = [...outs].reverse();
    expectSameFaces(decodeYunet(orderYunetOutputs(shuffled), 0, 64, 64, 0.5), Math.sqrt(0.9 * 0.8));
  });

  it('uses the model order when outputs are unnamed, and thresholds on √(cls·obj)', () => {
    const byName = new Map(encodeYunet(64, 64).map((o) => [o.name, o]));
    const canonical = ['cls', 'obj', 'bbox', 'kps'].flatMap((k) => YUNET_STRIDES.map((s) => byName.get(`${k}_${s}`)!));
    const outs = canonical.map((o, i) => ({ ...o, name: String(100 + i) }));
    // Stride-major order without names cannot be told apart: the shape check says so.
    expect(() => decodeYunet(orderYunetOutputs([...byName.values()].map((o, i) => ({ ...o, name: String(i) }))), 0, 64, 64, 0.5)).toThrow(
      'YuNet output for stride 8 does not fit input 64×64 (8×8 cells): cls 64×1, obj 64×10, bbox 16×4, kps 4×1',
    );
    expect(decodeYunet(orderYunetOutputs(outs), 0, 64, 64, 0.5)).toHaveLength(2);
    expect(decodeYunet(orderYunetOutputs(outs), 0, 64, 64, 0.86)).toHaveLength(0);
  });

  it('rejects a model with the wrong number of outputs', () => {
    expect(() => orderYunetOutputs(encodeYunet(64, 64).slice(0, 9))).toThrow(
      'YuNet models have 12 outputs (cls, obj, bbox, kps per stride 8/16/32) but this one has 9',
    );
  });
});

describe('UltraFace decoding (corner-form boxes normalised to the input)', () => {
  it('round-trips known boxes', () => {
    const n = 20;
    const scores = new Float32Array(n * 2);
    const boxes = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) scores.set([0.95, 0.05], i * 2);
    FACES.forEach((f, j) => {
      const i = 3 + 7 * j;
      scores.set([0.1, 0.9], i * 2);
      boxes.set([f.x1 / 64, f.y1 / 48, f.x2 / 64, f.y2 / 48], i * 4);
    });
    const outs: RawOutput[] = [
      { name: 'boxes', dims: [1, n, 4], data: boxes },
      { name: 'scores', dims: [1, n, 2], data: scores },
    ];
    const found = decodeUltraface(orderUltrafaceOutputs(outs), 0, 64, 48, 0.7);
    expectSameFaces(
      found.map((d) => ({ ...d })),
      0.9,
    );
  });
});

describe('FaceDetector on a model file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'faces-dec-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('tells UltraFace from its outputs, feeds RGB at the fixed input size and maps boxes back to the source', async () => {
    // Face score = sigmoid(10 · mean(R − B)) of the normalised input: red frames have a face, blue ones do not.
    const g = new GraphBuilder('fake_ultraface');
    g.addInput('input', [1, 3, 240, 320]);
    g.addInitializer('rb', [1, 3, 1, 1], new Float32Array([1, 0, -1]));
    g.addNode('Conv', ['input', 'rb'], 'diff', { kernel_shape: ints([1, 1]) });
    g.addNode('ReduceMean', ['diff'], 'm', { axes: ints([1, 2, 3]), keepdims: int(1) });
    g.addInitializer('ten', [1], new Float32Array([10]));
    g.addNode('Mul', ['m', 'ten'], 'm10');
    g.addNode('Sigmoid', ['m10'], 'face');
    g.addInt64Initializer('shape', [3], [1, 1, 1]);
    g.addNode('Reshape', ['face', 'shape'], 'face3');
    g.addInitializer('one', [1], new Float32Array([1]));
    g.addNode('Sub', ['one', 'face3'], 'bg3');
    g.addNode('Concat', ['bg3', 'face3'], 'scores', { axis: int(2) });
    g.addInitializer('box', [1, 1, 4], new Float32Array([0.25, 0.25, 0.5, 0.75]));
    g.addNode('Identity', ['box'], 'boxes');
    g.addOutput('scores', [1, 1, 2]);
    g.addOutput('boxes', [1, 1, 4]);
    const path = join(dir, 'ultraface.onnx');
    await writeFile(path, g.toBuffer());

    const det = await loadFaceDetector(path, { device: 'cpu', intraOpThreads: 1, scoreThreshold: 0.7 });
    expect(det.format).toBe('ultraface');
    expect(det.batched).toBe(false);
    const fit = det.fit(640, 480);
    expect(fit).toEqual({ width: 320, height: 240, scale: 0.5 });
    const solid = (rgb: [number, number, number]) => {
      const f = new Uint8Array(320 * 240 * 3);
      for (let i = 0; i < 320 * 240; i++) f.set(rgb, i * 3);
      return { rgb: f, ...fit, sourceWidth: 640, sourceHeight: 480 };
    };
    const [red, blue] = await det.detect([solid([250, 0, 0]), solid([0, 0, 250])]);
    expect(red).toHaveLength(1);
    expect(red![0]).toMatchObject({ x1: 160, y1: 120, x2: 320, y2: 360 });
    expect(blue).toEqual([]);
    await det.close();
    await expect(loadFaceDetector(path, { format: 'scrfd', device: 'cpu' }).then((d) => d.detect([solid([250, 0, 0])]))).rejects.toThrow(
      'SCRFD models have 6, 9, 10 or 15 outputs but this one has 2 (scores, boxes)',
    );
  });

  it('names the model and suggests --detector_format when the outputs fit no format', async () => {
    const g = new GraphBuilder('classifier');
    g.addInput('x', [1, 3, 8, 8]);
    g.addNode('GlobalAveragePool', ['x'], 'p');
    g.addNode('Flatten', ['p'], 'logits');
    g.addOutput('logits', [1, 3]);
    const path = join(dir, 'classifier.onnx');
    await writeFile(path, g.toBuffer());
    await expect(loadFaceDetector(path, { device: 'cpu' })).rejects.toThrow(
      `Cannot tell the format of face detector ${path} from its 1 outputs (logits); set the format (scrfd, yunet or ultraface) with --detector_format`,
    );
  });
});
