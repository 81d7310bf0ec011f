import type { Detection } from './boxes.js';
import { spreadIndices } from '../infer/scorers.js';

export interface ImageStats {
  /** Variance of the 4-neighbour Laplacian of the luma (0–255 scale): higher is sharper. */
  sharpness: number;
  /** Mean luma / 255. */
  brightness: number;
  /** Standard deviation of luma / 255 (RMS contrast). */
  contrast: number;
}

/**
 * Sharpness, brightness and contrast of one RGB image (BT.601 luma).
 *
 * @example
 * imageStats(rgb, 512, 512) // { sharpness: 153.2, brightness: 0.41, contrast: 0.18 }
 */
export function imageStats(rgb: Uint8Array, width: number, height: number): ImageStats {
  const n = width * height;
  const y = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    y[i] = 0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!;
    sum += y[i]!;
  }
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (y[i]! - mean) ** 2;
  let lsum = 0;
  let lsq = 0;
  let count = 0;
  for (let r = 1; r < height - 1; r++) {
    for (let c = 1; c < width - 1; c++) {
      const i = r * width + c;
      const l = y[i - 1]! + y[i + 1]! + y[i - width]! + y[i + width]! - 4 * y[i]!;
      lsum += l;
      lsq += l * l;
      count++;
    }
  }
  const lmean = count ? lsum / count : 0;
  return { sharpness: count ? lsq / count - lmean * lmean : 0, brightness: mean / 255, contrast: Math.sqrt(sq / n) / 255 };
}

/** Mean image statistics over up to `count` evenly spread frames of a clip. */
export function clipStats(frames: Uint8Array[], width: number, height: number, count = 8): ImageStats {
  const picked = spreadIndices(frames.length, count).map((i) => imageStats(frames[i]!, width, height));
  const avg = (f: (s: ImageStats) => number) => picked.reduce((a, s) => a + f(s), 0) / Math.max(1, picked.length);
  return { sharpness: avg((s) => s.sharpness), brightness: avg((s) => s.brightness), contrast: avg((s) => s.contrast) };
}

/**
 * Detector confidence statistics and face size of a track: the mean of √(w·h) of its boxes in
 * source pixels, and that size over the frame's shorter side.
 *
 * @example
 * detectionStats(track.detections, 1920, 1080).det_score_mean
 */
export function detectionStats(dets: Detection[], frameWidth: number, frameHeight: number) {
  const scores = dets.map((d) => d.score);
  const size = dets.reduce((a, d) => a + Math.sqrt(Math.max(0, d.x2 - d.x1) * Math.max(0, d.y2 - d.y1)), 0) / dets.length;
  return {
    det_score_mean: scores.reduce((a, b) => a + b, 0) / scores.length,
    det_score_min: Math.min(...scores),
    det_score_max: Math.max(...scores),
    num_detections: dets.length,
    face_size: size,
    face_size_ratio: size / Math.min(frameWidth, frameHeight),
  };
}
