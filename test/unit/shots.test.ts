import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  adaptiveDetector,
  contentDetector,
  edgeMap,
  rgbToHsvPlanes,
  shotFrameSize,
  shotsFromBoundaries,
  withFades,
  type ShotBoundary,
  type ShotDetector,
  type ShotFrame,
} from '../../src/features/shots.js';

// Truth: the recipes of the synthetic frames below (where each scene starts), and OpenCV itself
// (scripts/shots_reference.py) for the HSV bytes and PySceneDetect's content scores.
const W = 64;
const H = 36;
const tmp = mkdtempSync(join(tmpdir(), 'shots-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const reference = (...args: string[]) => execFileSync('/usr/bin/python3', ['scripts/shots_reference.py', ...args], { maxBuffer: 1 << 26 });

/** A deterministic textured picture: seeded noise on a colour gradient. */
function scene(seed: number): Uint8Array {
  const f = new Uint8Array(W * H * 3);
  let s = seed * 2654435761;
  for (let i = 0; i < W * H; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = (s >>> 16) & 63;
    f[3 * i] = (seed * 53 + (i % W) * 2 + n) & 255;
    f[3 * i + 1] = (seed * 97 + Math.floor(i / W) * 3 + n) & 255;
    f[3 * i + 2] = (seed * 31 + n * 2) & 255;
  }
  return f;
}
const flat = (v: number) => new Uint8Array(W * H * 3).fill(v);
/** A horizontal colour ramp shifted by `dx` pixels (a pan). */
function ramp(dx: number): Uint8Array {
  const f = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const u = x + dx;
      const i = 3 * (y * W + x);
      f[i] = 128 + Math.round(120 * Math.sin(u / 5));
      f[i + 1] = 128 + Math.round(120 * Math.cos(u / 7));
      f[i + 2] = 128 + Math.round(100 * Math.sin(u / 3 + y / 9));
    }
  return f;
}

async function run(d: ShotDetector, frames: Uint8Array[], fps = 25): Promise<ShotBoundary[]> {
  for (let i = 0; i < frames.length; i++) await d.push({ index: i, time: i / fps, rgb: frames[i]!, width: W, height: H } satisfies ShotFrame);
  return d.finish();
}
const repeat = (f: Uint8Array, n: number) => Array.from({ length: n }, () => f);
const cuts = (b: ShotBoundary[]) => b.map((x) => x.frame);

describe('RGB -> HSV', () => {
  it('equals cv2.cvtColor(COLOR_RGB2HSV) on every 8-bit colour', () => {
    const out = join(tmp, 'hsv.bin');
    reference('hsv', out);
    const ref = readFileSync(out);
    const n = 1 << 24;
    const rgb = new Uint8Array(3 * n);
    for (let v = 0; v < n; v++) {
      rgb[3 * v] = v >>> 16;
      rgb[3 * v + 1] = (v >>> 8) & 255;
      rgb[3 * v + 2] = v & 255;
    }
    const h = new Uint8Array(n);
    const s = new Uint8Array(n);
    const val = new Uint8Array(n);
    rgbToHsvPlanes(rgb, n, h, s, val);
    let bad = 0;
    let first = -1;
    for (let v = 0; v < n; v++) {
      if (h[v] !== ref[3 * v] || s[v] !== ref[3 * v + 1] || val[v] !== ref[3 * v + 2]) {
        bad++;
        if (first < 0) first = v;
      }
    }
    expect({ bad, first }).toEqual({ bad: 0, first: -1 });
  }, 120_000);
});

describe('edge maps (PySceneDetect: cv2.Canny on V, thresholds from the median, cv2.dilate)', () => {
  it('equal OpenCV on textured, smooth and flat pictures', () => {
    const frames = [scene(1), scene(5), ramp(0), ramp(17), flat(90)];
    const raw = join(tmp, 'edges.rgb');
    const out = join(tmp, 'edges.bin');
    writeFileSync(raw, Buffer.concat(frames));
    reference('edges', raw, String(W), String(H), out);
    const ref = readFileSync(out);
    const n = W * H;
    expect(ref.subarray(0, n).includes(255) && ref.subarray(0, n).includes(0)).toBe(true); // a real map, not all one value
    frames.forEach((f, k) => {
      const h = new Uint8Array(n);
      const s = new Uint8Array(n);
      const v = new Uint8Array(n);
      rgbToHsvPlanes(f, n, h, s, v);
      const mine = edgeMap(v, W, H);
      let bad = 0;
      for (let i = 0; i < n; i++) if (mine[i] !== ref[k * n + i]) bad++;
      expect({ frame: k, bad }).toEqual({ frame: k, bad: 0 });
    });
  });
});

describe('content detector (PySceneDetect ContentDetector semantics)', () => {
  it('cuts on the first frame of each new scene, with the score OpenCV gives', async () => {
    const frames = [...repeat(scene(1), 30), ...repeat(scene(2), 30), ...repeat(scene(3), 30)];
    const b = await run(contentDetector(), frames);
    expect(cuts(b)).toEqual([30, 60]);
    expect(b.every((x) => x.kind === 'cut')).toBe(true);
    const raw = join(tmp, 'cuts.rgb');
    writeFileSync(raw, Buffer.concat(frames));
    const ref = JSON.parse(reference('scores', raw, String(W), String(H)).toString()) as number[];
    expect(b[0]!.score).toBeCloseTo(ref[30]!, 9);
    expect(b[1]!.score).toBeCloseTo(ref[60]!, 9);
    // With the edge component (weights 1, 1, 1, 1).
    const withEdges = await run(contentDetector({ weights: { edges: 1 } }), frames);
    const refEdges = JSON.parse(reference('scores', raw, String(W), String(H), '1,1,1,1').toString()) as number[];
    expect(cuts(withEdges)).toEqual([30, 60]);
    expect(withEdges[0]!.score).toBeCloseTo(refEdges[30]!, 9);
    expect(withEdges[0]!.score).not.toBeCloseTo(b[0]!.score, 3);
  });

  it('does not cut where the change stays under the threshold, and cuts at it (>=)', async () => {
    // Two grey levels d apart: H and S are 0, so the score is d / 3.
    expect(cuts(await run(contentDetector(), [...repeat(flat(100), 20), ...repeat(flat(180), 20)]))).toEqual([]); // 80 / 3 < 27
    expect(cuts(await run(contentDetector(), [...repeat(flat(100), 20), ...repeat(flat(181), 20)]))).toEqual([20]); // 81 / 3 = 27
  });

  it('takes no cut on a flash of 1 or 2 frames; PySceneDetect (flashFrames 0) cuts at the flash', async () => {
    for (const len of [1, 2]) {
      const frames = [...repeat(scene(1), 30), ...repeat(flat(255), len), ...repeat(scene(1), 30), ...repeat(scene(2), 30)];
      expect(cuts(await run(contentDetector(), frames))).toEqual([30 + len + 30]);
      // PySceneDetect: the flash start is a cut (30 frames after the start), the return is merged.
      expect(cuts(await run(contentDetector({ flashFrames: 0 }), frames))).toEqual([30, 30 + len + 30]);
    }
  });

  it('keeps shots at least min_scene_len apart by merging (PySceneDetect MERGE) or suppressing', async () => {
    // Scenes start at 0, 20, 25, 45: the 5-frame scene at 20 is shorter than 15 frames.
    const frames = [...repeat(scene(1), 20), ...repeat(scene(2), 5), ...repeat(scene(3), 20), ...repeat(scene(4), 30)];
    // MERGE: 20 is a cut (20 >= 15 after the start); 25 starts a merge, 45 extends it (>= 15 after 25),
    // and the merge ends on its last above frame, 45, once 15 frames passed without one.
    expect(cuts(await run(contentDetector(), frames))).toEqual([20, 45]);
    // SUPPRESS: 25 is dropped (5 after 20), 45 is 25 after the last cut.
    expect(cuts(await run(contentDetector({ filterMode: 'suppress' }), frames))).toEqual([20, 45]);
    // A minimum of 1 s at 25 fps: 20 is 0.8 s after the start, 25 is 1 s (a cut), 45 0.8 s after 25.
    expect(cuts(await run(contentDetector({ filterMode: 'suppress', minShotS: 1 }), frames))).toEqual([25]);
    // No minimum: every scene start.
    expect(cuts(await run(contentDetector({ minShotFrames: 0 }), frames))).toEqual([20, 25, 45]);
    // The first cut must be the minimum after the start.
    expect(cuts(await run(contentDetector(), [...repeat(scene(1), 10), ...repeat(scene(2), 40)]))).toEqual([]);
  });

  it('rejects bad options with the option named', () => {
    expect(() => contentDetector({ threshold: -1 })).toThrow(/threshold/);
    expect(() => contentDetector({ weights: { hue: 0, sat: 0, lum: 0 } })).toThrow(/weights/);
  });

  it("asks for PySceneDetect's downscaled size: larger side / 256 as the factor, sides rounded half to even, never upscaled", () => {
    // Sizes worked out by hand from PySceneDetect 0.7's rule (factor = max(w, h) / 256 when over 256).
    expect(shotFrameSize({ width: 1920, height: 1080 })).toEqual({ width: 256, height: 144 });
    expect(shotFrameSize({ width: 1080, height: 1920 })).toEqual({ width: 144, height: 256 });
    expect(shotFrameSize({ width: 720, height: 576 })).toEqual({ width: 256, height: 205 }); // 576 / 2.8125 = 204.8
    expect(shotFrameSize({ width: 639, height: 359 })).toEqual({ width: 256, height: 144 }); // 143.82
    expect(shotFrameSize({ width: 512, height: 270 })).toEqual({ width: 256, height: 135 });
    expect(shotFrameSize({ width: 512, height: 283 })).toEqual({ width: 256, height: 142 }); // 141.5: half to even
    expect(shotFrameSize({ width: 512, height: 285 })).toEqual({ width: 256, height: 142 }); // 142.5: half to even
    expect(shotFrameSize({ width: 256, height: 144 })).toEqual({ width: 256, height: 144 });
    expect(shotFrameSize({ width: 100, height: 75 })).toEqual({ width: 100, height: 75 });
    expect(shotFrameSize({ width: 1920, height: 1080 }, 160)).toEqual({ width: 160, height: 90 });
  });
});

describe('fades (ThresholdDetector semantics, fade_bias 0)', () => {
  it('a fade out and in is ONE boundary, in the middle of the dark run', async () => {
    // 30 bright frames, a fade down in 10 steps, 8 black, a fade up in 10 steps, 30 bright.
    const down = Array.from({ length: 10 }, (_, i) => flat(Math.round(200 * (1 - (i + 1) / 10))));
    const up = Array.from({ length: 10 }, (_, i) => flat(Math.round(200 * ((i + 1) / 10))));
    const levels = [...repeat(flat(200), 30), ...down, ...repeat(flat(0), 8), ...up, ...repeat(flat(200), 30)];
    const frames = levels;
    // Dark (< 12): the last step of the fade down (level 0) at 39 and the black 40-47; the first step
    // up (level 20) at 48 is bright again. The boundary: 39 + round(9 / 2), Python's round (half to even): 43.
    const b = await run(withFades(contentDetector()), frames);
    expect(b.filter((x) => x.kind === 'fade').map((x) => x.frame)).toEqual([43]);
    expect(b.filter((x) => x.kind === 'cut')).toEqual([]);
  });

  it('a hard cut to black and back is one fade boundary, not two cuts', async () => {
    const frames = [...repeat(scene(1), 30), ...repeat(flat(0), 10), ...repeat(scene(2), 30)];
    expect(cuts(await run(contentDetector(), frames))).toEqual([30]); // 40 is within 15 frames of 30: merged away
    const b = await run(withFades(contentDetector()), frames);
    expect(b).toEqual([{ frame: 35, score: 0, kind: 'fade' }]);
  });

  it('a video that starts black gets a boundary in the middle of its black start (PySceneDetect)', async () => {
    const frames = [...repeat(flat(0), 20), ...repeat(scene(1), 30)];
    expect(await run(withFades(contentDetector()), frames)).toEqual([{ frame: 10, score: 0, kind: 'fade' }]);
  });
});

describe('adaptive detector (AdaptiveDetector semantics)', () => {
  it('takes a jerky pan for no cut where the content detector cuts, and still finds the real cut', async () => {
    // The camera pans in bursts: 20 still frames, then 3 frames moving 6 px each, four times; 20 still
    // frames; then a cut (frame 112).
    const pan: Uint8Array[] = [];
    let x = 0;
    for (let burst = 0; burst < 4; burst++) {
      for (let i = 0; i < 20; i++) pan.push(ramp(x));
      for (let i = 0; i < 3; i++) {
        x += 6;
        pan.push(ramp(x));
      }
    }
    for (let i = 0; i < 20; i++) pan.push(ramp(x));
    const frames = [...pan, ...repeat(scene(7), 30)];
    const content = cuts(await run(contentDetector(), frames));
    // A fixed threshold cuts on the bursts (frames 20-22, 43-45, 66-68, 89-91): 20 is a cut; 21 starts a
    // merge that 43-45 extend, emitted on its last above frame, 45; 66 is a cut; 67 starts a merge that
    // 89-91 extend, emitted on 91; the real cut at 112 is 21 frames after 91.
    expect(content).toEqual([20, 45, 66, 91, 112]);
    expect(cuts(await run(adaptiveDetector(), frames))).toEqual([pan.length]);
  });
});

describe('shots from boundaries', () => {
  it('covers every frame once, end exclusive', () => {
    const shots = shotsFromBoundaries(
      [
        { frame: 30, score: 50, kind: 'cut' },
        { frame: 70, score: 3, kind: 'fade' },
      ],
      100,
      (i) => i / 25,
    );
    expect(shots.map((s) => [s.start_frame, s.end_frame, s.kind])).toEqual([
      [0, 30, 'start'],
      [30, 70, 'cut'],
      [70, 100, 'fade'],
    ]);
    expect(shots[2]!.end_s).toBe(4);
  });
});
