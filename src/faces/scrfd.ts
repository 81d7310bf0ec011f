import { ClipstreamError } from '../errors.js';
import type { Detection } from './boxes.js';
import { imageRows, type RawOutput } from './tensors.js';

/** SCRFD variants by output count: strides and whether landmarks are present (insightface's `fmc`, `use_kps`). */
export function scrfdLayout(outputCount: number): { strides: number[]; kps: boolean } | null {
  switch (outputCount) {
    case 6:
      return { strides: [8, 16, 32], kps: false };
    case 9:
      return { strides: [8, 16, 32], kps: true };
    case 10:
      return { strides: [8, 16, 32, 64, 128], kps: false };
    case 15:
      return { strides: [8, 16, 32, 64, 128], kps: true };
    default:
      return null;
  }
}

/**
 * Decodes the outputs of an insightface SCRFD model for image `b` of the batch. Outputs come
 * in the model's order: scores per stride, then distance boxes, then (optionally) landmarks.
 * Anchor centres are `(x·stride, y·stride)` over the `⌊H/stride⌋ × ⌊W/stride⌋` grid, each
 * repeated once per anchor; boxes are `centre ∓ distance·stride`, landmarks `centre + offset·stride`.
 * Coordinates are in model-input pixels.
 *
 * @example
 * decodeScrfd(outputs, 0, 640, 640, 0.5) // [{ x1, y1, x2, y2, score, landmarks }]
 */
export function decodeScrfd(outputs: RawOutput[], b: number, inputWidth: number, inputHeight: number, scoreThreshold: number): Detection[] {
  const layout = scrfdLayout(outputs.length);
  if (!layout) {
    throw new ClipstreamError(
      'ERR_MODEL',
      `SCRFD models have 6, 9, 10 or 15 outputs but this one has ${outputs.length} (${outputs.map((o) => o.name).join(', ')})`,
    );
  }
  const n = layout.strides.length;
  const found: Detection[] = [];
  for (const [i, stride] of layout.strides.entries()) {
    const scores = imageRows(outputs[i]!, b);
    const boxes = imageRows(outputs[i + n]!, b);
    const kps = layout.kps ? imageRows(outputs[i + 2 * n]!, b) : null;
    const h = Math.floor(inputHeight / stride);
    const w = Math.floor(inputWidth / stride);
    const anchors = scores.rows / (h * w);
    if (!Number.isInteger(anchors) || anchors < 1 || boxes.rows !== scores.rows || boxes.cols !== 4) {
      throw new ClipstreamError(
        'ERR_MODEL',
        `SCRFD output for stride ${stride} has ${scores.rows} scores and ${boxes.rows}×${boxes.cols} boxes, which does not fit a ${w}×${h} grid for input ${inputWidth}×${inputHeight}`,
      );
    }
    for (let k = 0; k < scores.rows; k++) {
      const score = scores.data[k * scores.cols]!;
      if (!(score >= scoreThreshold)) continue;
      const loc = Math.floor(k / anchors);
      const cx = (loc % w) * stride;
      const cy = Math.floor(loc / w) * stride;
      const d = boxes.data.subarray(k * 4, k * 4 + 4);
      const det: Detection = { x1: cx - d[0]! * stride, y1: cy - d[1]! * stride, x2: cx + d[2]! * stride, y2: cy + d[3]! * stride, score };
      if (kps) {
        const p = kps.data.subarray(k * kps.cols, (k + 1) * kps.cols);
        det.landmarks = [];
        for (let j = 0; j + 1 < p.length; j += 2) det.landmarks.push([cx + p[j]! * stride, cy + p[j + 1]! * stride]);
      }
      found.push(det);
    }
  }
  return found;
}
