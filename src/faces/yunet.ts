import { ClipstreamError } from '../errors.js';
import type { Detection } from './boxes.js';
import { imageRows, type RawOutput } from './tensors.js';

export const YUNET_STRIDES = [8, 16, 32] as const;

/**
 * Puts YuNet's 12 outputs in the order cls, obj, bbox, kps × strides 8/16/32, using the
 * names OpenCV Zoo's export gives them (`cls_8`, `obj_16`, ...) and the model order otherwise.
 */
export function orderYunetOutputs(outputs: RawOutput[]): RawOutput[] {
  if (outputs.length !== 12) {
    throw new ClipstreamError('ERR_MODEL', `YuNet models have 12 outputs (cls, obj, bbox, kps per stride 8/16/32) but this one has ${outputs.length}`);
  }
  const byName = new Map(outputs.map((o) => [o.name, o]));
  const named = ['cls', 'obj', 'bbox', 'kps'].flatMap((k) => YUNET_STRIDES.map((s) => byName.get(`${k}_${s}`)));
  return named.every((o) => o !== undefined) ? (named as RawOutput[]) : outputs;
}

/**
 * Decodes YuNet (OpenCV Zoo, 2023) outputs for image `b`, as OpenCV's `FaceDetectorYN` does:
 * per stride, a `rows × cols` grid (`⌈H/stride⌉ × ⌈W/stride⌉`) with one prediction per cell;
 * score = √(clamp(cls)·clamp(obj)); centre = (col + dx, row + dy)·stride; size = exp(dw, dh)·stride;
 * landmarks = (col + kx, row + ky)·stride. Coordinates are in model-input pixels.
 *
 * @example
 * decodeYunet(orderYunetOutputs(outputs), 0, 640, 640, 0.6)
 */
export function decodeYunet(outputs: RawOutput[], b: number, inputWidth: number, inputHeight: number, scoreThreshold: number): Detection[] {
  const found: Detection[] = [];
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  for (const [i, stride] of YUNET_STRIDES.entries()) {
    const cls = imageRows(outputs[i]!, b);
    const obj = imageRows(outputs[i + 3]!, b);
    const bbox = imageRows(outputs[i + 6]!, b);
    const kps = imageRows(outputs[i + 9]!, b);
    const cols = Math.ceil(inputWidth / stride);
    const rows = Math.ceil(inputHeight / stride);
    const cells = rows * cols;
    if (
      cls.rows !== cells ||
      obj.rows !== cells ||
      bbox.rows !== cells ||
      kps.rows !== cells ||
      cls.cols !== 1 ||
      obj.cols !== 1 ||
      bbox.cols !== 4 ||
      kps.cols !== 10
    ) {
      throw new ClipstreamError(
        'ERR_MODEL',
        `YuNet output for stride ${stride} does not fit input ${inputWidth}×${inputHeight} (${cols}×${rows} cells): ` +
          `cls ${cls.rows}×${cls.cols}, obj ${obj.rows}×${obj.cols}, bbox ${bbox.rows}×${bbox.cols}, kps ${kps.rows}×${kps.cols}`,
      );
    }
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const idx = r * cols + c;
        const score = Math.sqrt(clamp(cls.data[idx * cls.cols]!) * clamp(obj.data[idx * obj.cols]!));
        if (!(score >= scoreThreshold)) continue;
        const d = bbox.data.subarray(idx * 4, idx * 4 + 4);
        const cx = (c + d[0]!) * stride;
        const cy = (r + d[1]!) * stride;
        const w = Math.exp(d[2]!) * stride;
        const h = Math.exp(d[3]!) * stride;
        const p = kps.data.subarray(idx * kps.cols, (idx + 1) * kps.cols);
        const landmarks: Array<[number, number]> = [];
        for (let j = 0; j + 1 < p.length; j += 2) landmarks.push([(c + p[j]!) * stride, (r + p[j + 1]!) * stride]);
        found.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, landmarks });
      }
    }
  }
  return found;
}
