import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DbBox, dbPostprocess, detInputSize, detInputTensor } from '../../src/features/db-postprocess.js';
import { loadSession } from '../../src/infer/session.js';
import { defaultTextDetectorModel } from '../../src/infer/text-detector.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { SHARED_MISSING } from '../helpers/shared.js';
import { type Background, HAS_PHOTO_BACKGROUNDS, type Subtitle, subtitledFrame } from '../helpers/subtitles.js';

/**
 * The TypeScript DB post-processing against scripts/db_postprocess_reference.py (numpy + Debian's
 * cv2 4.6: findContours, minAreaRect, fillPoly, as PaddleOCR runs it, and a round-joined unclip) on
 * real probability maps: PP-OCRv4's output on frames with subtitles, testsrc2's own text, a rotated
 * frame and two lines of text. Same number of boxes, each matched by IoU >= 0.9, scores within 0.02.
 */
const PY = '/usr/bin/python3';
const HAS_CV2 = existsSync(PY) && spawnSync(PY, ['-c', 'import cv2, numpy'], { encoding: 'utf8' }).status === 0;
const REFERENCE = 'scripts/db_postprocess_reference.py';

let dir = '';
let session: ort.InferenceSession;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'db-post-'));
  if (HAS_CV2) session = (await loadSession(defaultTextDetectorModel(), { device: 'cpu' })).session;
});
afterAll(async () => {
  await session?.release();
  await rm(dir, { recursive: true, force: true });
});

async function probabilityMap(rgb: Uint8Array, width: number, height: number) {
  const size = detInputSize(width, height);
  const input = new ort.Tensor('float32', detInputTensor(rgb, width, height, size.width, size.height), [1, 3, size.height, size.width]);
  const out = (await session.run({ [session.inputNames[0]!]: input }))[session.outputNames[0]!]!;
  expect(out.dims).toEqual([1, 1, size.height, size.width]);
  return { map: out.data as Float32Array, ...size };
}

async function reference(map: Float32Array, mapWidth: number, mapHeight: number, width: number, height: number): Promise<DbBox[]> {
  const file = join(dir, `map-${mapWidth}x${mapHeight}-${Math.random().toString(36).slice(2)}.f32`);
  await writeFile(file, new Uint8Array(map.buffer, map.byteOffset, map.byteLength));
  const r = spawnSync(PY, [REFERENCE, file, String(mapWidth), String(mapHeight), String(width), String(height)], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as DbBox[];
}

/** Pixels (centres) inside a convex quadrilateral, on a width x height grid. */
function raster(points: [number, number][], width: number, height: number): Set<number> {
  const inside = new Set<number>();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sign = 0;
      let ok = true;
      for (let i = 0; i < points.length && ok; i++) {
        const [ax, ay] = points[i]!;
        const [bx, by] = points[(i + 1) % points.length]!;
        const c = (bx - ax) * (y + 0.5 - ay) - (by - ay) * (x + 0.5 - ax);
        if (c === 0) continue;
        if (sign === 0) sign = Math.sign(c);
        else if (Math.sign(c) !== sign) ok = false;
      }
      if (ok) inside.add(y * width + x);
    }
  }
  return inside;
}

function iou(a: Set<number>, b: Set<number>): number {
  let both = 0;
  for (const p of a) if (b.has(p)) both++;
  const union = a.size + b.size - both;
  return union === 0 ? 0 : both / union;
}

function expectSameBoxes(ours: DbBox[], theirs: DbBox[], width: number, height: number) {
  expect(ours.length).toBe(theirs.length);
  const theirRasters = theirs.map((b) => raster(b.points, width, height));
  const used = new Set<number>();
  for (const box of ours) {
    const mine = raster(box.points, width, height);
    let best = -1;
    let bestIou = 0;
    theirRasters.forEach((r, k) => {
      if (used.has(k)) return;
      const v = iou(mine, r);
      if (v > bestIou) [best, bestIou] = [k, v];
    });
    expect(bestIou, `box ${JSON.stringify(box.points)} vs ${JSON.stringify(theirs.map((t) => t.points))}`).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(box.score - theirs[best]!.score)).toBeLessThanOrEqual(0.02);
    used.add(best);
  }
}

const TWO_LINES: Subtitle[] = [
  { text: 'Where are you going tonight?', fontsize: 24, x: 90, y: 280 },
  { text: 'Nowhere, I stay home.', fontsize: 24, x: 140, y: 312 },
];

const FRAMES: Array<{ name: string; background: Background; width: number; height: number; subtitles: Subtitle[]; rotate?: number }> = [
  { name: 'testsrc2 (its own text) with a subtitle, 640x360', background: 'testsrc2', width: 640, height: 360, subtitles: [TWO_LINES[0]!] },
  { name: 'testsrc2 rotated by 0.2 rad, 640x360', background: 'testsrc2', width: 640, height: 360, subtitles: [], rotate: 0.2 },
  { name: 'mandelbrot with two lines, 640x360', background: 'mandelbrot', width: 640, height: 360, subtitles: TWO_LINES },
  { name: 'testsrc2 at 320x180', background: 'testsrc2', width: 320, height: 180, subtitles: [] },
  {
    name: 'photo with two lines, 640x360',
    background: { photo: 'ultraface-imgs-19.jpg' },
    width: 640,
    height: 360,
    subtitles: TWO_LINES,
  },
];

describe.skipIf(!HAS_CV2)('DB post-processing against the numpy/cv2 reference', () => {
  for (const f of FRAMES) {
    const photo = typeof f.background === 'object';
    it.skipIf(photo && !HAS_PHOTO_BACKGROUNDS)(`${f.name}${photo && !HAS_PHOTO_BACKGROUNDS ? ` (${SHARED_MISSING})` : ''}`, async () => {
      let rgb = subtitledFrame(f.background, f.width, f.height, f.subtitles);
      if (f.rotate !== undefined) rgb = rotated(rgb, f.width, f.height, f.rotate);
      const { map, width: mw, height: mh } = await probabilityMap(rgb, f.width, f.height);
      const ours = dbPostprocess(map, mw, mh, f.width, f.height);
      const theirs = await reference(map, mw, mh, f.width, f.height);
      expect(ours.length).toBeGreaterThan(0);
      expectSameBoxes(ours, theirs, f.width, f.height);
    });
  }

  it('a hand-made map: a ring, a block with a slit (a hole contour that scores above box_thresh), a rotated bar, specks', async () => {
    const [w, h] = [120, 64];
    const map = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        // ring: 0.9 between radii 4 and 14 around (20, 20)
        const r = Math.hypot(x - 20, y - 20);
        if (r >= 4 && r <= 14) map[y * w + x] = 0.9;
        // bar rotated by 0.35 rad around (64, 40)
        const u = (x - 64) * Math.cos(0.35) + (y - 40) * Math.sin(0.35);
        const v = -(x - 64) * Math.sin(0.35) + (y - 40) * Math.cos(0.35);
        if (Math.abs(u) <= 22 && Math.abs(v) <= 5) map[y * w + x] = 0.8;
        // block 24 x 8 at (92, 6) with a 16 x 2 slit of 0.25 (under thresh) in its middle
        if (x >= 92 && x < 116 && y >= 6 && y < 14) map[y * w + x] = x >= 96 && x < 112 && y >= 9 && y < 11 ? 0.25 : 1;
      }
    }
    map[5 * w + 60] = 1; // specks below min_size
    map[6 * w + 61] = 1;
    const ours = dbPostprocess(map, w, h, w * 4, h * 4);
    const theirs = await reference(map, w, h, w * 4, h * 4);
    // the ring, the bar, the block and the slit (the hole's border, RETR_LIST lists it); the ring's hole scores under 0.6
    expect(ours.length).toBe(4);
    expectSameBoxes(ours, theirs, w * 4, h * 4);
  });
});

function rotated(rgb: Uint8Array, width: number, height: number, angle: number): Uint8Array {
  const r = spawnSync(
    ffmpegPath(),
    [
      '-v',
      'error',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-s',
      `${width}x${height}`,
      '-i',
      'pipe:0',
      '-vf',
      `rotate=${angle}`,
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      'pipe:1',
    ],
    { input: rgb, maxBuffer: 1 << 26 },
  );
  if (r.status !== 0) throw new Error(String(r.stderr));
  return new Uint8Array(r.stdout);
}
