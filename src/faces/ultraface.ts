import { ClipstreamError } from '../errors.js';
import type { Detection } from './boxes.js';
import { imageRows, type RawOutput } from './tensors.js';

/** UltraFace's two outputs: `scores` `[N, 2]` (background, face) and `boxes` `[N, 4]`, by name or by last dim. */
export function orderUltrafaceOutputs(outputs: RawOutput[]): [RawOutput, RawOutput] {
  const scores = outputs.find((o) => o.name === 'scores') ?? outputs.find((o) => o.dims[o.dims.length - 1] === 2);
  const boxes = outputs.find((o) => o.name === 'boxes') ?? outputs.find((o) => o.dims[o.dims.length - 1] === 4);
  if (outputs.length !== 2 || !scores || !boxes || scores === boxes) {
    throw new ClipstreamError(
      'ERR_MODEL',
      `UltraFace models have two outputs, scores [N, 2] and boxes [N, 4], but this one has ${outputs.map((o) => `${o.name} [${o.dims.join(', ')}]`).join(', ')}`,
    );
  }
  return [scores, boxes];
}

/**
 * Decodes Ultra-Light-Fast-Generic-Face-Detector outputs for image `b`. The published ONNX
 * files already convert the priors into corner-form boxes normalised to [0, 1] and apply the
 * softmax, so a face is `scores[:, 1]` and its box is `boxes · (W, H, W, H)` in model-input pixels.
 *
 * @example
 * decodeUltraface(orderUltrafaceOutputs(outputs), 0, 320, 240, 0.7)
 */
export function decodeUltraface(outputs: [RawOutput, RawOutput], b: number, inputWidth: number, inputHeight: number, scoreThreshold: number): Detection[] {
  const scores = imageRows(outputs[0], b);
  const boxes = imageRows(outputs[1], b);
  if (scores.rows !== boxes.rows) {
    throw new ClipstreamError('ERR_MODEL', `UltraFace outputs disagree: ${scores.rows} scores but ${boxes.rows} boxes`);
  }
  const found: Detection[] = [];
  for (let k = 0; k < scores.rows; k++) {
    const score = scores.data[k * scores.cols + 1]!;
    if (!(score >= scoreThreshold)) continue;
    const d = boxes.data.subarray(k * 4, k * 4 + 4);
    found.push({ x1: d[0]! * inputWidth, y1: d[1]! * inputHeight, x2: d[2]! * inputWidth, y2: d[3]! * inputHeight, score });
  }
  return found;
}
