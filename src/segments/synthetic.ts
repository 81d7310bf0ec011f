/**
 * The synthetic matting fixture: a red disc moving over a flat blue background, with a white
 * flash frame and a beep at known times (for audio-sync checks). Its true mask is known in
 * closed form, so tests hold the matte to it frame by frame; the shipped matting model
 * (matting-model.ts) is built to find exactly this foreground and nothing else.
 */

export const MATTE_FG_RGB: readonly [number, number, number] = [230, 60, 40];
export const MATTE_BG_RGB: readonly [number, number, number] = [30, 70, 150];

export interface MatteVideoSpec {
  name: string;
  width: number;
  height: number;
  fps: number;
  /** Frames rendered. */
  frames: number;
  radius: number;
  /** Frames shown all white, each with a 40 ms 1 kHz beep starting at its timestamp. */
  flashFrames: number[];
}

/** The committed fixture (fixtures/segments/matte_move.mp4): 6 s at 25 fps, 160×120. */
export const MATTE_FIXTURE: MatteVideoSpec = { name: 'matte_move', width: 160, height: 120, fps: 25, frames: 150, radius: 22, flashFrames: [20, 60, 105, 130] };

/** Disc centre at time `t` (seconds), scaled to the frame so odd sizes work too. */
export function discCentre(spec: Pick<MatteVideoSpec, 'width' | 'height'>, t: number): { cx: number; cy: number } {
  return {
    cx: spec.width * (0.5 + 0.28 * Math.sin((2 * Math.PI * t) / 3)),
    cy: spec.height * (0.5 + 0.2 * Math.sin((2 * Math.PI * t) / 2.2 + 0.7)),
  };
}

/** True foreground mask (1 inside the disc) of the frame shown at time `t`; all 0 on a flash frame. */
export function trueMask(spec: MatteVideoSpec, t: number, flash = false): Uint8Array {
  const { width: w, height: h } = spec;
  const out = new Uint8Array(w * h);
  if (flash) return out;
  const { cx, cy } = discCentre(spec, t);
  const r2 = spec.radius * spec.radius;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) out[y * w + x] = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 < r2 ? 1 : 0;
  }
  return out;
}

/** RGB24 frame `k` of `spec` (at t = k / fps). */
export function renderMatteFrame(spec: MatteVideoSpec, k: number, out = new Uint8Array(spec.width * spec.height * 3)): Uint8Array {
  if (spec.flashFrames.includes(k)) return out.fill(255);
  const mask = trueMask(spec, k / spec.fps);
  for (let i = 0; i < mask.length; i++) {
    const c = mask[i] ? MATTE_FG_RGB : MATTE_BG_RGB;
    out[i * 3] = c[0];
    out[i * 3 + 1] = c[1];
    out[i * 3 + 2] = c[2];
  }
  return out;
}

/** ffmpeg `aevalsrc` expression: silence with a 1 kHz beep for 40 ms at each flash frame. */
export function beepExpression(spec: MatteVideoSpec): string {
  const on = spec.flashFrames.map((k) => `between(t\\,${(k / spec.fps).toFixed(4)}\\,${(k / spec.fps + 0.04).toFixed(4)})`).join('+');
  return `0.6*sin(2*PI*1000*t)*(${on})`;
}

/**
 * Intersection over union of a matte (alpha 0-255, thresholded at 128) and a true mask.
 *
 * @example matteIoU(alphaBytes, trueMask(MATTE_FIXTURE, 0.4)) // 0.97
 */
export function matteIoU(alpha: Uint8Array, mask: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < mask.length; i++) {
    const a = alpha[i]! >= 128;
    const m = mask[i] === 1;
    if (a && m) inter++;
    if (a || m) union++;
  }
  return union === 0 ? 1 : inter / union;
}
