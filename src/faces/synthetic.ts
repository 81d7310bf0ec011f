/**
 * The synthetic face that fixture videos show and that the shipped detector is built to find:
 * a light ellipse with two dark eyes and a dark mouth on a flat background. Its trajectory is
 * known in closed form, so tests compare detections with the truth frame by frame.
 */
import type { Box } from './boxes.js';

/** Half-width and half-height of the face ellipse, in pixels. */
export const FACE_HALF_WIDTH = 20;
export const FACE_HALF_HEIGHT = 26;
/** Colours (RGB): skin-like face, bluish background, so a red/blue swap is visible in tests. */
export const FACE_RGB: readonly [number, number, number] = [232, 190, 160];
export const BACKGROUND_RGB: readonly [number, number, number] = [50, 80, 130];
export const FEATURE_RGB: readonly [number, number, number] = [40, 25, 20];

/** Where the face is at time `t`, or `null` while it is hidden. */
export type Trajectory = (t: number) => { cx: number; cy: number } | null;

export interface SyntheticVideoSpec {
  name: string;
  width: number;
  height: number;
  fps: number;
  duration: number;
  /** Tone frequency of the audio track (Hz); null for no audio. */
  tone: number | null;
  trajectory: Trajectory;
}

/** Face moving across most of a 320×240 frame on a Lissajous curve. */
export const movingTrajectory: Trajectory = (t) => ({
  cx: 160 + 90 * Math.sin((2 * Math.PI * t) / 4),
  cy: 120 + 50 * Math.sin((2 * Math.PI * t) / 3 + 0.5),
});

/** Face drifting by a few pixels (a "talking head"), hidden from 1.6 s to 2.4 s. */
export const gapTrajectory: Trajectory = (t) =>
  t >= 1.6 && t < 2.4 ? null : { cx: 150 + 6 * Math.sin(2 * Math.PI * t * 0.5), cy: 115 + 4 * Math.cos(2 * Math.PI * t * 0.5) };

/** @internal used by scripts/make-face-fixtures.ts and the tests only */
export const SYNTHETIC_VIDEOS: readonly SyntheticVideoSpec[] = [
  { name: 'face_move', width: 320, height: 240, fps: 25, duration: 4, tone: 440, trajectory: movingTrajectory },
  { name: 'face_gap', width: 320, height: 240, fps: 25, duration: 4, tone: 660, trajectory: gapTrajectory },
];

/**
 * Ground-truth box of the ellipse (x1, y1, x2, y2 in pixels) at time `t`, or null.
 *
 * @internal used by tests only
 */
export function trueBox(trajectory: Trajectory, t: number): Box | null {
  const p = trajectory(t);
  if (!p) return null;
  return { x1: p.cx - FACE_HALF_WIDTH, y1: p.cy - FACE_HALF_HEIGHT, x2: p.cx + FACE_HALF_WIDTH, y2: p.cy + FACE_HALF_HEIGHT };
}

/** Face features in units of the half-axes, relative to the centre: eyes, mouth. */
const EYES = [
  { x: -0.42, y: -0.25, rx: 0.2, ry: 0.14 },
  { x: 0.42, y: -0.25, rx: 0.2, ry: 0.14 },
];
const MOUTH = { x: 0, y: 0.45, rx: 0.4, ry: 0.1 };

/** Five landmarks (eyes, nose, mouth corners) relative to the centre, in pixels. */
export function landmarkOffsets(): Array<[number, number]> {
  const a = FACE_HALF_WIDTH;
  const b = FACE_HALF_HEIGHT;
  return [
    [EYES[0]!.x * a, EYES[0]!.y * b],
    [EYES[1]!.x * a, EYES[1]!.y * b],
    [0, 0.1 * b],
    [(MOUTH.x - MOUTH.rx) * a, MOUTH.y * b],
    [(MOUTH.x + MOUTH.rx) * a, MOUTH.y * b],
  ];
}

/** 0..1: how much of the face (not its features) covers point (x, y), and which colour. */
function shade(px: number, py: number, cx: number, cy: number): 0 | 1 | 2 {
  const u = (px - cx) / FACE_HALF_WIDTH;
  const v = (py - cy) / FACE_HALF_HEIGHT;
  if (u * u + v * v > 1) return 0;
  for (const f of [...EYES, MOUTH]) {
    const du = (u - f.x) / f.rx;
    const dv = (v - f.y) / f.ry;
    if (du * du + dv * dv <= 1) return 2;
  }
  return 1;
}

const SUPERSAMPLE = 4;

/**
 * Renders one RGB frame (H×W×3) with the face centred at (cx, cy) in continuous pixel
 * coordinates (pixel x covers [x, x+1)). Edges are antialiased by 4×4 supersampling so
 * sub-pixel motion is visible to the detector.
 *
 * @example
 * const rgb = renderFace(320, 240, { cx: 160, cy: 120 });
 */
export function renderFace(width: number, height: number, face: { cx: number; cy: number } | null, out = new Uint8Array(width * height * 3)): Uint8Array {
  const palette = [BACKGROUND_RGB, FACE_RGB, FEATURE_RGB];
  for (let i = 0; i < width * height; i++) out.set(BACKGROUND_RGB, i * 3);
  if (!face) return out;
  const x0 = Math.max(0, Math.floor(face.cx - FACE_HALF_WIDTH - 1));
  const x1 = Math.min(width, Math.ceil(face.cx + FACE_HALF_WIDTH + 1));
  const y0 = Math.max(0, Math.floor(face.cy - FACE_HALF_HEIGHT - 1));
  const y1 = Math.min(height, Math.ceil(face.cy + FACE_HALF_HEIGHT + 1));
  const n = SUPERSAMPLE * SUPERSAMPLE;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const acc = [0, 0, 0];
      for (let sy = 0; sy < SUPERSAMPLE; sy++) {
        for (let sx = 0; sx < SUPERSAMPLE; sx++) {
          const c = palette[shade(x + (sx + 0.5) / SUPERSAMPLE, y + (sy + 0.5) / SUPERSAMPLE, face.cx, face.cy)]!;
          acc[0] += c[0];
          acc[1] += c[1];
          acc[2] += c[2];
        }
      }
      const o = (y * width + x) * 3;
      out[o] = Math.round(acc[0]! / n);
      out[o + 1] = Math.round(acc[1]! / n);
      out[o + 2] = Math.round(acc[2]! / n);
    }
  }
  return out;
}
