/**
 * The spatial step of SlowFast / ACAV100M done in JS on RGB frames, because no ffmpeg scaler
 * equals it: torch `F.interpolate(mode='bilinear', align_corners=False)` (two taps, no
 * antialias) of the short side to `size`, then the square crop. swscale's bilinear averages
 * an area when downscaling, and scaling before the RGB conversion differs again.
 * Only the pixels inside the crop are computed.
 */
import { shortSideScale } from './sampling.js';

export type CropMode = 'top-left' | 'center';

/** Tap indices and weights along one axis, as torch computes them (float32 scale, src clamped at 0). */
function taps(inSize: number, outSize: number, first: number, count: number): { i0: Int32Array; i1: Int32Array; w1: Float64Array } {
  const f = Math.fround;
  const scale = f(inSize / outSize);
  const i0 = new Int32Array(count);
  const i1 = new Int32Array(count);
  const w1 = new Float64Array(count);
  for (let k = 0; k < count; k++) {
    const src = Math.max(0, f(f(scale * f(first + k + 0.5)) - 0.5));
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[k] = lo;
    i1[k] = lo < inSize - 1 ? lo + 1 : lo;
    w1[k] = Math.min(Math.max(f(src - lo), 0), 1);
  }
  return { i0, i1, w1 };
}

/** Crop offset on the scaled image (SlowFast's uniform_crop; spatial index 0 or 1). */
function cropOffsets(width: number, height: number, size: number, crop: CropMode): { x: number; y: number } {
  let x = Math.ceil((width - size) / 2);
  let y = Math.ceil((height - size) / 2);
  if (crop === 'top-left') {
    if (height > width) y = 0;
    else x = 0;
  }
  return { x, y };
}

/** A reusable resizer for frames of one source size (taps computed once, rows blended in two passes). */
export class FrameResizer {
  private readonly x: ReturnType<typeof taps>;
  private readonly y: ReturnType<typeof taps>;
  /** Source rows the crop reads, and where each one's horizontal pass lands in `rows`. */
  private readonly needed: number[];
  private readonly slot: Int32Array;
  private readonly rows: Float64Array;

  constructor(
    readonly srcWidth: number,
    readonly srcHeight: number,
    readonly size: number,
    crop: CropMode,
  ) {
    const scaled = shortSideScale(srcWidth, srcHeight, size);
    const at = cropOffsets(scaled.width, scaled.height, size, crop);
    // SlowFast leaves a frame whose short side already is `size` alone; scale 1 is the identity here too.
    this.x = taps(srcWidth, scaled.width, at.x, size);
    this.y = taps(srcHeight, scaled.height, at.y, size);
    this.needed = [...new Set([...this.y.i0, ...this.y.i1])].sort((a, b) => a - b);
    this.slot = new Int32Array(srcHeight).fill(-1);
    this.needed.forEach((row, i) => {
      this.slot[row] = i * size * 3;
    });
    this.rows = new Float64Array(this.needed.length * size * 3);
  }

  /** Bytes of one source frame. */
  get frameBytes(): number {
    return this.srcWidth * this.srcHeight * 3;
  }

  /**
   * Resizes the RGB frame at `src[srcOffset..]` into `dst[dstOffset..]` (size×size×3), rounding
   * to the nearest level: out = wy0·(wx0·p00 + wx1·p01) + wy1·(wx0·p10 + wx1·p11), in doubles.
   */
  resize(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number): void {
    const { i0: x0, i1: x1, w1: wx } = this.x;
    const { i0: y0, i1: y1, w1: wy } = this.y;
    const rowBytes = this.srcWidth * 3;
    const size = this.size;
    const rows = this.rows;
    // Horizontal pass, once per source row the crop needs.
    let o = 0;
    for (const row of this.needed) {
      const base = srcOffset + row * rowBytes;
      for (let c = 0; c < size; c++) {
        const l = base + x0[c]! * 3;
        const r = base + x1[c]! * 3;
        const q = wx[c]!;
        const p = 1 - q;
        rows[o++] = p * src[l]! + q * src[r]!;
        rows[o++] = p * src[l + 1]! + q * src[r + 1]!;
        rows[o++] = p * src[l + 2]! + q * src[r + 2]!;
      }
    }
    // Vertical pass.
    const width = size * 3;
    o = dstOffset;
    for (let r = 0; r < size; r++) {
      const top = this.slot[y0[r]!]!;
      const bottom = this.slot[y1[r]!]!;
      const b = wy[r]!;
      const a = 1 - b;
      for (let k = 0; k < width; k++) dst[o++] = a * rows[top + k]! + b * rows[bottom + k]! + 0.5; // truncation after +0.5 rounds; values are within 0..255
    }
  }
}
