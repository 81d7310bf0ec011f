import sharp from 'sharp';
import { validateInteger, validateNumber } from '../util/validate.js';
import type { Box } from './boxes.js';

/** A square crop in source pixels, and the part of it that lies inside the frame. */
export interface CropBox {
  /** The square, possibly reaching outside the frame. */
  x: number;
  y: number;
  size: number;
  /** Inside-the-frame part: what ffmpeg crops. */
  inner: { x: number; y: number; width: number; height: number };
  /** Padding added around `inner` to make the square again. */
  pad: { left: number; top: number; right: number; bottom: number };
}

/**
 * One crop for a whole track: the union of its boxes (or their mean, `mode: 'mean'`), squared
 * on its longer side, enlarged by `enlarge` (1.4 in seed 002) about its centre, then clipped
 * to the frame; what was clipped is recorded as padding so the crop stays square.
 *
 * @example
 * trackCrop(boxes, 1920, 1080, { enlarge: 1.4 }) // { x, y, size, inner, pad }
 */
export function trackCrop(boxes: Box[], frameWidth: number, frameHeight: number, options: { enlarge?: number; mode?: 'union' | 'mean' } = {}): CropBox {
  const enlarge = validateNumber(options.enlarge ?? 1.4, 'options.enlarge', 0.1, 10);
  let b: Box;
  if ((options.mode ?? 'union') === 'union') {
    b = {
      x1: Math.min(...boxes.map((d) => d.x1)),
      y1: Math.min(...boxes.map((d) => d.y1)),
      x2: Math.max(...boxes.map((d) => d.x2)),
      y2: Math.max(...boxes.map((d) => d.y2)),
    };
  } else {
    const mean = (f: (d: Box) => number) => boxes.reduce((a, d) => a + f(d), 0) / boxes.length;
    b = { x1: mean((d) => d.x1), y1: mean((d) => d.y1), x2: mean((d) => d.x2), y2: mean((d) => d.y2) };
  }
  const cx = (b.x1 + b.x2) / 2;
  const cy = (b.y1 + b.y2) / 2;
  const size = Math.max(2, Math.round(Math.max(b.x2 - b.x1, b.y2 - b.y1) * enlarge));
  const x = Math.round(cx - size / 2);
  const y = Math.round(cy - size / 2);
  const ix = Math.min(Math.max(0, x), frameWidth - 1);
  const iy = Math.min(Math.max(0, y), frameHeight - 1);
  const ix2 = Math.max(ix + 1, Math.min(frameWidth, x + size));
  const iy2 = Math.max(iy + 1, Math.min(frameHeight, y + size));
  return {
    x,
    y,
    size,
    inner: { x: ix, y: iy, width: ix2 - ix, height: iy2 - iy },
    pad: { left: ix - x, top: iy - y, right: x + size - ix2, bottom: y + size - iy2 },
  };
}

/**
 * Places one cropped RGB frame (`inner` size) into the padded square (black padding) and
 * resizes it to `outSize`×`outSize` with sharp (Lanczos). Returns raw RGB.
 *
 * @example
 * const face = await squareAndResize(innerRgb, crop, 512);
 */
export async function squareAndResize(inner: Uint8Array, crop: CropBox, outSize: number): Promise<Buffer> {
  validateInteger(outSize, 'outSize', 8, 8192);
  const { width, height } = crop.inner;
  let square: Uint8Array = inner;
  if (crop.pad.left || crop.pad.top || crop.pad.right || crop.pad.bottom) {
    square = new Uint8Array(crop.size * crop.size * 3);
    for (let y = 0; y < height; y++) {
      square.set(inner.subarray(y * width * 3, (y + 1) * width * 3), ((y + crop.pad.top) * crop.size + crop.pad.left) * 3);
    }
  }
  return sharp(square, { raw: { width: crop.size, height: crop.size, channels: 3 } })
    .resize(outSize, outSize, { kernel: 'lanczos3', fit: 'fill' })
    .raw()
    .toBuffer();
}
