/**
 * Perceptual fingerprints of clips, for near-duplicate search (`clipstream dedup`). Pure: no I/O.
 *
 * **One frame** (`frameHash`): the gray frame is area-averaged to 32×32 (every source pixel
 * weighted by how much of it falls in the output cell), a 2-D DCT-II is taken, and the 8×8 block of
 * coefficients at vertical and horizontal frequencies 1..8 (the first row and column, DC among
 * them, left out, as the pHash library does) is compared with its median: bit `(u-1)*8 + (v-1)`,
 * counted from the most significant bit, is 1 where the coefficient exceeds the median by more
 * than 1e-6 of the block's largest magnitude (so a flat frame hashes to 0, not to rounding
 * noise). A re-encode, a rescale or a small crop moves few bits; different content moves about 32.
 * `scripts/fingerprint_reference.py` computes the same bits with numpy.
 *
 * **One clip** (`ClipFingerprinter`): every frame pushed is hashed and one 64-bit hash per frame
 * kept; at the end N frames are picked at the centres of N equal parts of the clip (frame
 * `floor((i + 0.5) * n / N)`), and the fingerprint is their hashes as N × 16 hex digits.
 *
 * **Distance** (`fingerprintDistance`): the mean Hamming distance between aligned frame hashes
 * (0..64, in steps of 1/N): one odd frame moves it little. A copy that starts a frame later picks
 * frames one frame away, which differ little. `dedup` finds pairs within a distance with banded
 * LSH over the N × 64 bits (see src/dedup/lsh.ts).
 *
 * @example
 * const fp = new ClipFingerprinter({ frames: 8 });
 * for (const frame of frames) fp.push(frame); // { index, rgb, width, height }
 * fp.finish() // { fingerprint: '8f3a...' } (8 × 16 hex digits)
 */
import { ClipstreamError } from '../errors.js';
import type { FrameScorer } from './clip-scores.js';

/** Side of the square the frame is averaged down to before the DCT. */
export const HASH_GRID = 32;
/**
 * Fingerprints at most this far apart (mean bits of 64 per frame) are near-duplicates by default:
 * re-encodes, half-size copies and 5 % crops of the test shots stay within it; clips of different
 * shots are about 30 apart.
 */
export const DEFAULT_MAX_DISTANCE = 12;
/** Frames hashed per clip by default. */
export const DEFAULT_FINGERPRINT_FRAMES = 8;

/** cos(pi * (2x + 1) * u / 64) for u = 1..8, x = 0..31: the rows of the DCT the hash uses. */
const DCT_ROWS: Float64Array = (() => {
  const m = new Float64Array(8 * HASH_GRID);
  for (let u = 1; u <= 8; u++) {
    for (let x = 0; x < HASH_GRID; x++) m[(u - 1) * HASH_GRID + x] = Math.cos((Math.PI * (2 * x + 1) * u) / (2 * HASH_GRID));
  }
  return m;
})();

/**
 * Weights of an area resize along one axis: for each output cell, the source pixels it covers and
 * how much of each (the cell spans `size / out` source pixels; weights sum to 1).
 */
function areaWeights(size: number, out: number): { first: Int32Array; weights: Float64Array[] } {
  const first = new Int32Array(out);
  const weights: Float64Array[] = [];
  const step = size / out;
  for (let o = 0; o < out; o++) {
    const lo = o * step;
    const hi = (o + 1) * step;
    const a = Math.floor(lo);
    const b = Math.min(size, Math.ceil(hi));
    const w = new Float64Array(b - a);
    for (let s = a; s < b; s++) w[s - a] = (Math.min(hi, s + 1) - Math.max(lo, s)) / step;
    first[o] = a;
    weights.push(w);
  }
  return { first, weights };
}

const weightCache = new Map<string, { first: Int32Array; weights: Float64Array[] }>();
function cachedWeights(size: number): { first: Int32Array; weights: Float64Array[] } {
  const key = String(size);
  let w = weightCache.get(key);
  if (!w) {
    if (weightCache.size > 64) weightCache.clear();
    w = areaWeights(size, HASH_GRID);
    weightCache.set(key, w);
  }
  return w;
}

/** The frame area-averaged to 32×32, row-major, as float64 (rows first, then columns). */
export function areaDownscale(gray: Uint8Array, width: number, height: number): Float64Array {
  const cols = cachedWeights(width);
  const rows = cachedWeights(height);
  // Horizontal pass: height × 32.
  const mid = new Float64Array(height * HASH_GRID);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let o = 0; o < HASH_GRID; o++) {
      const a = cols.first[o]!;
      const w = cols.weights[o]!;
      let s = 0;
      for (let k = 0; k < w.length; k++) s += w[k]! * gray[row + a + k]!;
      mid[y * HASH_GRID + o] = s;
    }
  }
  // Vertical pass: 32 × 32.
  const out = new Float64Array(HASH_GRID * HASH_GRID);
  for (let o = 0; o < HASH_GRID; o++) {
    const a = rows.first[o]!;
    const w = rows.weights[o]!;
    for (let x = 0; x < HASH_GRID; x++) {
      let s = 0;
      for (let k = 0; k < w.length; k++) s += w[k]! * mid[(a + k) * HASH_GRID + x]!;
      out[o * HASH_GRID + x] = s;
    }
  }
  return out;
}

/**
 * The 64-bit perceptual hash of one gray frame (8 bits per pixel, row-major, `width × height`).
 *
 * @example frameHash(gray, 320, 240) // 0x8f3a01c2d4e5f607n
 */
export function frameHash(gray: Uint8Array, width: number, height: number): bigint {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || gray.length < width * height) {
    throw new ClipstreamError('ERR_FORMAT', `frameHash: a ${width}x${height} frame needs ${width * height} gray bytes, got ${gray.length}`);
  }
  const small = areaDownscale(gray, width, height);
  // C[u][v] = sum_y sum_x f(y, x) cos(pi (2y+1) u / 64) cos(pi (2x+1) v / 64), u, v = 1..8.
  const t = new Float64Array(8 * HASH_GRID); // t[u][x] = sum_y cos_u(y) f(y, x)
  for (let u = 0; u < 8; u++) {
    for (let y = 0; y < HASH_GRID; y++) {
      const c = DCT_ROWS[u * HASH_GRID + y]!;
      for (let x = 0; x < HASH_GRID; x++) t[u * HASH_GRID + x]! += c * small[y * HASH_GRID + x]!;
    }
  }
  const coef = new Float64Array(64);
  for (let u = 0; u < 8; u++) {
    for (let v = 0; v < 8; v++) {
      let s = 0;
      for (let x = 0; x < HASH_GRID; x++) s += t[u * HASH_GRID + x]! * DCT_ROWS[v * HASH_GRID + x]!;
      coef[u * 8 + v] = s;
    }
  }
  const sorted = Float64Array.from(coef).sort();
  const median = (sorted[31]! + sorted[32]!) / 2;
  let scale = 0;
  for (const c of coef) scale = Math.max(scale, Math.abs(c));
  const margin = 1e-6 * scale;
  let hi = 0;
  let lo = 0;
  for (let k = 0; k < 32; k++) hi = (hi << 1) | (coef[k]! - median > margin ? 1 : 0);
  for (let k = 32; k < 64; k++) lo = (lo << 1) | (coef[k]! - median > margin ? 1 : 0);
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** BT.601 luma of packed RGB24 pixels, rounded to 8 bits: (77 R + 150 G + 29 B + 128) >> 8. */
export function rgbToGray(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const n = width * height;
  if (rgb.length < n * 3) throw new ClipstreamError('ERR_FORMAT', `rgbToGray: a ${width}x${height} frame needs ${n * 3} RGB bytes, got ${rgb.length}`);
  const gray = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) gray[i] = (77 * rgb[j]! + 150 * rgb[j + 1]! + 29 * rgb[j + 2]! + 128) >> 8;
  return gray;
}

/** The frames of `count` a fingerprint of `frames` hashes picks: the centres of equal parts. */
export function pickFrames(count: number, frames: number): number[] {
  if (count <= 0) return [];
  return Array.from({ length: frames }, (_, i) => Math.min(count - 1, Math.floor(((i + 0.5) * count) / frames)));
}

/** A decoded frame as the clips job's frame stream hands it over: packed RGB24. */
export interface FingerprintFrame {
  index: number;
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** Options of ClipFingerprinter. */
export interface FingerprinterOptions {
  /** Frames hashed per clip (default 8); the fingerprint is 16 hex digits per frame. */
  frames?: number;
}

/**
 * Streams one clip's frames and gives its fingerprint: a FrameScorer with the column
 * `fingerprint` (N × 16 hex digits; '' for a clip without frames). Keeps one 64-bit hash per
 * frame, never a frame.
 *
 * @example
 * const fp = new ClipFingerprinter();
 * for (const f of frames) fp.push(f);
 * const { fingerprint } = fp.finish();
 */
export class ClipFingerprinter implements FrameScorer {
  readonly columns: readonly string[] = ['fingerprint'];
  private readonly frames: number;
  private hashes: bigint[] = [];

  constructor(options: FingerprinterOptions = {}) {
    const frames = options.frames ?? DEFAULT_FINGERPRINT_FRAMES;
    if (!Number.isInteger(frames) || frames < 1 || frames > 256) {
      throw new ClipstreamError('ERR_INVALID_OPTION', `options.frames must be an integer from 1 to 256, got ${frames}`, {
        where: { option: 'options.frames' },
      });
    }
    this.frames = frames;
  }

  /** Hashes one RGB frame. */
  push(frame: FingerprintFrame): void {
    this.hashes.push(frameHash(rgbToGray(frame.rgb, frame.width, frame.height), frame.width, frame.height));
  }

  /** Hashes one gray frame (a decoder that gives gray, as fingerprintClip's). */
  pushGray(gray: Uint8Array, width: number, height: number): void {
    this.hashes.push(frameHash(gray, width, height));
  }

  /** The fingerprint of the frames pushed; the fingerprinter is then empty again. */
  finish(): Record<string, number | string> {
    const picked = pickFrames(this.hashes.length, this.frames).map((i) => this.hashes[i]!);
    this.hashes = [];
    return { fingerprint: formatFingerprint(picked) };
  }
}

/** Frame hashes as a fingerprint: 16 lower-case hex digits each. */
export function formatFingerprint(hashes: readonly bigint[]): string {
  return hashes.map((h) => h.toString(16).padStart(16, '0')).join('');
}

const HEX = /^(?:[0-9a-f]{16})+$/i;

/** The frame hashes of a fingerprint (throws ERR_FORMAT on anything but 16-hex-digit groups). */
export function parseFingerprint(fingerprint: string): bigint[] {
  if (!HEX.test(fingerprint)) throw new ClipstreamError('ERR_FORMAT', `not a fingerprint (groups of 16 hex digits): '${fingerprint.slice(0, 40)}'`);
  const out: bigint[] = [];
  for (let i = 0; i < fingerprint.length; i += 16) out.push(BigInt(`0x${fingerprint.slice(i, i + 16)}`));
  return out;
}

/** Set bits of a 32-bit integer. */
export function popcount32(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Hamming distance of two 64-bit hashes. */
export function hammingDistance(a: bigint, b: bigint): number {
  const x = a ^ b;
  return popcount32(Number(x >> 32n)) + popcount32(Number(x & 0xffffffffn));
}

/**
 * The distance of two fingerprints: the mean Hamming distance (0..64) of their aligned frame
 * hashes. Fingerprints of different lengths, or empty ones, are 64 apart (never duplicates).
 *
 * @example fingerprintDistance(a, b) // 3.25
 */
export function fingerprintDistance(a: string, b: string): number {
  if (a.length !== b.length || a.length === 0) return 64;
  const ha = parseFingerprint(a);
  const hb = parseFingerprint(b);
  let sum = 0;
  for (let i = 0; i < ha.length; i++) sum += hammingDistance(ha[i]!, hb[i]!);
  return sum / ha.length;
}
