import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticVideo } from '../../scripts/make-face-fixtures.js';
import { iou, nms } from '../../src/faces/boxes.js';
import { type FaceDetector, guessDetectorFormat, loadFaceDetector } from '../../src/faces/detector.js';
import { decodeSampledFrames } from '../../src/faces/frames.js';
import { probeVideo } from '../../src/media/probe.js';
import { decodeScrfd } from '../../src/faces/scrfd.js';
import { buildSyntheticDetector, SYNTHETIC_DETECTOR_FILE } from '../../src/faces/synthetic-detector.js';
import { gapTrajectory, landmarkOffsets, renderFace, SYNTHETIC_VIDEOS, trueBox } from '../../src/faces/synthetic.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';

const MODEL = join('models', SYNTHETIC_DETECTOR_FILE);
const SAMPLE_EVERY = 2;
let dir: string;
let detector: FaceDetector;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faces-det-'));
  for (const spec of SYNTHETIC_VIDEOS) await writeSyntheticVideo(spec, join(dir, `${spec.name}.mp4`));
  detector = await loadFaceDetector(MODEL, { device: 'cpu', intraOpThreads: 1 });
});
afterAll(async () => {
  await detector?.close();
  await rm(dir, { recursive: true, force: true });
});

async function detectVideo(name: string) {
  const path = join(dir, `${name}.mp4`);
  const probe = await probeVideo(path);
  const fit = detector.fit(probe.width, probe.height);
  const { frames, count } = await decodeSampledFrames(ffmpegPath(), path, { sampleEvery: SAMPLE_EVERY, ...fit });
  const bytes = fit.width * fit.height * 3;
  const inputs = Array.from({ length: count }, (_, i) => ({
    rgb: frames.subarray(i * bytes, (i + 1) * bytes),
    width: fit.width,
    height: fit.height,
    scale: fit.scale,
    sourceWidth: probe.width,
    sourceHeight: probe.height,
  }));
  const results = [];
  for (let i = 0; i < inputs.length; i += 8) results.push(...(await detector.detect(inputs.slice(i, i + 8))));
  return { probe, results };
}

describe('synthetic SCRFD-format detector', () => {
  it('is rebuilt byte for byte from scripts/build-face-detector.ts', async () => {
    expect(Buffer.compare(await readFile(MODEL), buildSyntheticDetector())).toBe(0);
  });

  it('is recognised as SCRFD with 9 outputs (scores, boxes, landmarks per stride 8/16/32)', () => {
    expect(detector.format).toBe('scrfd');
    expect(detector.batched).toBe(true);
    expect(detector.fit(320, 240)).toEqual({ width: 320, height: 240, scale: 1 });
    expect(detector.fit(1280, 720)).toEqual({ width: 320, height: 180, scale: 0.25 });
  });

  it('finds the moving face on the known trajectory: IoU >= 0.5 on at least 95% of sampled frames', async () => {
    const spec = SYNTHETIC_VIDEOS.find((s) => s.name === 'face_move')!;
    const { probe, results } = await detectVideo('face_move');
    expect(probe).toMatchObject({ width: 320, height: 240, fps: 25, audioCodec: 'aac' });
    expect(results.length).toBe(50);
    const ious = results.map((dets, i) => {
      const truth = trueBox(spec.trajectory, (i * SAMPLE_EVERY) / spec.fps)!;
      return dets.length ? iou(dets[0]!, truth) : 0;
    });
    const good = ious.filter((v) => v >= 0.5).length / ious.length;
    const mean = ious.reduce((a, b) => a + b, 0) / ious.length;
    console.log(
      `face_move: ${ious.length} sampled frames, IoU>=0.5 on ${(good * 100).toFixed(1)}%, mean IoU ${mean.toFixed(3)}, min ${Math.min(...ious).toFixed(3)}`,
    );
    expect(good).toBeGreaterThanOrEqual(0.95);
    // One face per frame: NMS removed the second anchor and neighbours.
    expect(results.filter((d) => d.length === 1).length / results.length).toBeGreaterThanOrEqual(0.95);
    // Landmarks follow the face: the left eye is near where it was drawn.
    const first = results[0]![0]!;
    const c = spec.trajectory(0)!;
    const [ex, ey] = landmarkOffsets()[0]!;
    expect(Math.hypot(first.landmarks![0]![0] - (c.cx + ex), first.landmarks![0]![1] - (c.cy + ey))).toBeLessThan(8);
  });

  it('finds nothing while the face is hidden and finds it again afterwards', async () => {
    const { results } = await detectVideo('face_gap');
    let falsePositives = 0;
    let misses = 0;
    results.forEach((dets, i) => {
      const visible = gapTrajectory((i * SAMPLE_EVERY) / 25) !== null;
      if (!visible && dets.length > 0) falsePositives++;
      if (visible && dets.length === 0) misses++;
    });
    expect(falsePositives).toBe(0);
    expect(misses).toBeLessThanOrEqual(1);
  });

  it('finds nothing on a frame without a face, and filters by minimum face size', async () => {
    const blank = renderFace(320, 240, null);
    const frame = { rgb: blank, width: 320, height: 240, scale: 1, sourceWidth: 320, sourceHeight: 240 };
    expect((await detector.detect([frame]))[0]).toEqual([]);
    const face = { ...frame, rgb: renderFace(320, 240, { cx: 100, cy: 100 }) };
    expect((await detector.detect([face]))[0]!.length).toBe(1);
    const strict = await loadFaceDetector(MODEL, { device: 'cpu', intraOpThreads: 1, minFaceSize: 60 });
    expect((await strict.detect([face]))[0]).toEqual([]);
    await strict.close();
  });
});

describe('decodeScrfd', () => {
  it('decodes distance boxes and landmarks from anchor centres, 2 anchors per cell, batched and unbatched', () => {
    // 32×32 input: stride 8 → 4×4 grid ×2 anchors = 32 rows; stride 16 → 8; stride 32 → 2.
    const mk = (name: string, rows: number, cols: number, batched: boolean) => ({
      name,
      dims: batched ? [1, rows, cols] : [rows, cols],
      data: new Float32Array(rows * cols),
    });
    for (const batched of [true, false]) {
      const outs = [8, 16, 32]
        .flatMap((s) => [mk(`score_${s}`, (32 / s) ** 2 * 2, 1, batched)])
        .concat([8, 16, 32].map((s) => mk(`bbox_${s}`, (32 / s) ** 2 * 2, 4, batched)))
        .concat([8, 16, 32].map((s) => mk(`kps_${s}`, (32 / s) ** 2 * 2, 10, batched)));
      // Cell (x=2, y=1) of stride 8 → location 1*4+2 = 6, anchor 1 → row 13; centre (16, 8).
      outs[0]!.data[13] = 0.9;
      outs[3]!.data.set([1, 0.5, 2, 1], 13 * 4);
      outs[6]!.data.set([0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0], 13 * 10);
      const dets = decodeScrfd(outs, 0, 32, 32, 0.5);
      expect(dets).toHaveLength(1);
      expect(dets[0]).toMatchObject({ x1: 8, y1: 4, x2: 32, y2: 16, score: expect.closeTo(0.9, 5) });
      expect(dets[0]!.landmarks![0]).toEqual([20, 12]);
    }
  });

  it('rejects an output count that is no SCRFD variant, naming the outputs', () => {
    expect(() => decodeScrfd([{ name: 'a', dims: [1, 1], data: new Float32Array(1) }], 0, 32, 32, 0.5)).toThrow(
      'SCRFD models have 6, 9, 10 or 15 outputs but this one has 1 (a)',
    );
  });

  it.each([
    [
      [
        ['scores', [1, 4420, 2]],
        ['boxes', [1, 4420, 4]],
      ],
      'ultraface',
    ],
    [['cls', 'obj', 'bbox', 'kps'].flatMap((k) => [8, 16, 32].map((s) => [`${k}_${s}`, [1, 100, 1]])), 'yunet'],
    [Array.from({ length: 6 }, (_, i) => [String(400 + i), [12800, 1]]), 'scrfd'],
    [Array.from({ length: 15 }, (_, i) => [String(400 + i), [1, 12800, 1]]), 'scrfd'],
    [[['logits', [1, 1000]]], null],
  ] as const)('guesses the format from the outputs (%#)', (outs, expected) => {
    expect(guessDetectorFormat((outs as ReadonlyArray<readonly [string, readonly number[]]>).map(([name, dims]) => ({ name, dims: [...dims] })))).toBe(
      expected,
    );
  });
});

describe('nms', () => {
  it('keeps the best of overlapping boxes and the separate ones', () => {
    const d = (x: number, score: number) => ({ x1: x, y1: 0, x2: x + 10, y2: 10, score });
    expect(nms([d(0, 0.5), d(1, 0.9), d(30, 0.7)], 0.4).map((k) => k.score)).toEqual([0.9, 0.7]);
    expect(nms([d(0, 0.5), d(1, 0.9)], 0.9).length).toBe(2);
  });
});
