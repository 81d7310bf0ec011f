/**
 * The spatial step of SlowFast / ACAV100M done in JS on RGB frames, because no ffmpeg scaler
 * equals it: torch `F.interpolate(mode='bilinear', align_corners=False)` (two taps, no
 * antialias) of the short side to `size`, then the square crop. swscale's bilinear averages
 * an area when downscaling, and scaling before the RGB conversion differs again.
 * Only the pixels inside the crop are computed.
 */
import { ClipstreamError } from '../errors.js';
import { releaseKernel, resizeKernel } from './resize-kernel.js';
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

/** A rectangle of a source frame, in pixels. */
export interface SourceWindow {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Where a window of `width`×`height` lies in a `srcWidth`×`srcHeight` frame when it was cut for
 * `crop` (decode.ts, resizeWindowFilter): at the origin for `top-left`, centred (rounded down)
 * for `center`.
 */
export function windowAt(srcWidth: number, srcHeight: number, width: number, height: number, crop: CropMode): SourceWindow {
  if (crop === 'top-left') return { x: 0, y: 0, width, height };
  return { x: Math.floor((srcWidth - width) / 2), y: Math.floor((srcHeight - height) / 2), width, height };
}

/**
 * A reusable resizer for frames of one source size: taps computed once, rows blended in two
 * passes by the WebAssembly kernel (./resize-kernel.ts). Each resizer has its own kernel memory
 * holding its tables, the source frame (`input`, which a caller may fill piece by piece as
 * the bytes arrive), the blended rows and the output frame. With `window` the input holds only
 * that part of the source frame (what ffmpeg cut before the pipe); it must hold every pixel the
 * resize reads.
 */
export class FrameResizer {
  /** The source frame to resize next: fill it, then call `resizeInput`. */
  input: Uint8Array;
  private run: () => void;
  private output: Uint8Array;
  private release: () => void;

  constructor(
    readonly srcWidth: number,
    readonly srcHeight: number,
    readonly size: number,
    crop: CropMode,
    readonly window: SourceWindow = { x: 0, y: 0, width: srcWidth, height: srcHeight },
  ) {
    const scaled = shortSideScale(srcWidth, srcHeight, size);
    const at = cropOffsets(scaled.width, scaled.height, size, crop);
    // SlowFast leaves a frame whose short side already is `size` alone; scale 1 is the identity here too.
    const x = taps(srcWidth, scaled.width, at.x, size);
    const y = taps(srcHeight, scaled.height, at.y, size);
    const inside = (t: { i0: Int32Array; i1: Int32Array }, from: number, length: number) => Math.min(...t.i0) >= from && Math.max(...t.i1) < from + length;
    if (!inside(x, window.x, window.width) || !inside(y, window.y, window.height)) {
      throw new ClipstreamError(
        'ERR_DECODE',
        `the ${window.width}x${window.height} window at ${window.x},${window.y} of a ${srcWidth}x${srcHeight} frame misses pixels the resize to ${size} reads (a bug in clipstream)`,
      );
    }
    // Source rows the crop reads, and where each one's horizontal pass lands in the rows area.
    const needed = [...new Set([...y.i0, ...y.i1])].sort((a, b) => a - b);
    const slot = new Int32Array(srcHeight).fill(-1);
    const rowBytes = size * 3 * 8;
    needed.forEach((row, i) => {
      slot[row] = i * rowBytes;
    });
    // The memory layout (byte offsets): column taps, row taps, source row starts, rows, output, input.
    const colsAt = 0;
    const tapsAt = size * 24;
    const rowStartsAt = tapsAt + size * 24;
    const rowStartsEnd = rowStartsAt + needed.length * 4;
    const rowsAt = (rowStartsEnd + 7) & ~7;
    const dstAt = rowsAt + needed.length * rowBytes;
    const srcAt = dstAt + size * size * 3;
    const kernel = resizeKernel(srcAt + this.frameBytes);
    const mem = kernel.memory;
    // Per output column: left and right tap (byte offsets in a source row), p = 1 - q, q; per
    // output row: top and bottom row (byte offsets in the rows area), a = 1 - b, b.
    const tables = new DataView(mem.buffer);
    for (let k = 0; k < size; k++) {
      const c = colsAt + k * 24;
      tables.setInt32(c, (x.i0[k]! - window.x) * 3, true);
      tables.setInt32(c + 4, (x.i1[k]! - window.x) * 3, true);
      tables.setFloat64(c + 8, 1 - x.w1[k]!, true);
      tables.setFloat64(c + 16, x.w1[k]!, true);
      const t = tapsAt + k * 24;
      tables.setInt32(t, slot[y.i0[k]!]!, true);
      tables.setInt32(t + 4, slot[y.i1[k]!]!, true);
      tables.setFloat64(t + 8, 1 - y.w1[k]!, true);
      tables.setFloat64(t + 16, y.w1[k]!, true);
    }
    needed.forEach((row, i) => tables.setInt32(rowStartsAt + i * 4, (row - window.y) * window.width * 3, true));
    this.input = new Uint8Array(mem.buffer, srcAt, this.frameBytes);
    this.output = new Uint8Array(mem.buffer, dstAt, size * size * 3);
    this.run = () => {
      kernel.hpass(srcAt, rowStartsAt, rowStartsEnd, colsAt, tapsAt, rowsAt);
      kernel.vpass(tapsAt, rowStartsAt, rowsAt, size * 3, dstAt);
    };
    this.release = () => {
      this.run = () => {
        throw new ClipstreamError('ERR_PIPELINE', 'FrameResizer used after close() (a bug in clipstream)');
      };
      this.input = this.output = new Uint8Array(0);
      this.release = () => {};
      releaseKernel(kernel);
    };
  }

  /** Gives the kernel back for another resizer to use; this one can no longer resize. */
  close(): void {
    this.release();
  }

  /** Bytes of one input frame (the window of the source frame). */
  get frameBytes(): number {
    return this.window.width * this.window.height * 3;
  }

  /**
   * Resizes `input` and returns the size×size×3 result (a view, overwritten by the next call),
   * rounding to the nearest level: out = wy0·(wx0·p00 + wx1·p01) + wy1·(wx0·p10 + wx1·p11), in doubles.
   */
  resizeInput(): Uint8Array {
    this.run();
    return this.output;
  }

  /** Resizes the RGB frame at `src[srcOffset..]` into `dst[dstOffset..]` (size×size×3). */
  resize(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number): void {
    if (this.input.length === 0) this.run(); // closed: says so
    this.input.set(src.subarray(srcOffset, srcOffset + this.frameBytes));
    dst.set(this.resizeInput(), dstOffset);
  }
}
