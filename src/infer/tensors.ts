/**
 * The one place model inputs are packed and outputs unpacked. Every model user (extract's
 * feature models, the face detector and scorers, segments' frame models) builds its batch with
 * these, so layout and normalisation are written once.
 */
import type { DecodedVideo, Tensor } from '../types.js';

/** Normalisation table: (x / 255 - mean) / std for every byte value, computed once. */
export function normalisationTable(mean: number, std: number): Float32Array {
  const lut = new Float32Array(256);
  for (let i = 0; i < 256; i++) lut[i] = (i / 255 - mean) / std;
  return lut;
}

/** One table per source channel (R, G, B): value = (byte · scale − mean[c]) / std[c], as float32. */
export type ChannelTables = readonly [Float32Array, Float32Array, Float32Array];

/**
 * Per-channel tables for (byte · scale − mean[c]) / std[c]. Each entry is the float32 of the same
 * double expression the model would get computed pixel by pixel, so a table gives identical bits.
 *
 * @example
 * channelTables([127.5, 127.5, 127.5], [128, 128, 128]) // SCRFD's (x − 127.5) / 128
 */
export function channelTables(mean: readonly number[], std: readonly number[], scale = 1): ChannelTables {
  const table = (c: number) => {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = (v * scale - mean[c]!) / std[c]!;
    return lut;
  };
  return [table(0), table(1), table(2)];
}

export interface PlaneLayout {
  /** Distance in `out` between the channel planes (H·W for an image, T·H·W for a C×T×H×W clip). */
  planeSize: number;
  /** Width of a row in `out` (default: the image's width); wider for an image placed top-left in a larger input. */
  rowStride?: number;
  /** Where the image starts in `rgb` (default 0). */
  srcOffset?: number;
  /** Write the channels in B, G, R order. */
  bgr?: boolean;
}

/**
 * Writes one H×W×3 uint8 image into `out` at `offset` as three planes (C×H×W), each byte mapped
 * through its channel's table. Straight into the batch buffer: no per-image float copy.
 */
export function writePlanes(
  rgb: Uint8Array,
  width: number,
  height: number,
  tables: ChannelTables,
  out: Float32Array,
  offset: number,
  layout: PlaneLayout,
): void {
  const stride = layout.rowStride ?? width;
  const [t0, t1, t2] = tables;
  // Source channel c (tables[c]) goes to plane c, or to plane 2 − c for BGR.
  const p0 = offset + (layout.bgr ? 2 : 0) * layout.planeSize;
  const p1 = offset + layout.planeSize;
  const p2 = offset + (layout.bgr ? 0 : 2) * layout.planeSize;
  let src = layout.srcOffset ?? 0;
  // Rows are contiguous in `out` unless the image sits in a wider input: then row by row.
  const rows = stride === width ? 1 : height;
  const run = stride === width ? width * height : width;
  for (let y = 0; y < rows; y++) {
    let d = y * stride;
    for (let x = 0; x < run; x++) {
      out[p0 + d] = t0[rgb[src]!]!;
      out[p1 + d] = t1[rgb[src + 1]!]!;
      out[p2 + d] = t2[rgb[src + 2]!]!;
      d++;
      src += 3;
    }
  }
}

/**
 * Writes one decoded clip (T×H×W×3 uint8) into `out` at `offset` as C×T×H×W float32,
 * normalised through `lut`. Done straight into the batch buffer, so no per-clip float copy.
 */
export function writeVideoCTHW(video: DecodedVideo, lut: Float32Array, out: Float32Array, offset: number): void {
  const { frames, numFrames, height, width } = video;
  const pixels = height * width;
  const tables: ChannelTables = [lut, lut, lut];
  for (let t = 0; t < numFrames; t++) {
    writePlanes(frames, width, height, tables, out, offset + t * pixels, { planeSize: numFrames * pixels, srcOffset: t * pixels * 3 });
  }
}

/** Copies `parts` one after the other into `out` from `offset`; returns the offset after the last. */
export function concatInto<T extends Float32Array | Uint8Array>(out: T, parts: readonly T[], offset = 0): number {
  let at = offset;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return at;
}

/** Item `i`'s share of a batched output of `batch` items (its own array when the batch is one: no copy). */
export function batchSlice(data: Float32Array, i: number, batch: number): Float32Array {
  if (batch === 1) return data;
  const n = data.length / batch;
  return data.slice(i * n, (i + 1) * n);
}

/** Mean over the first axis of rows [start, end) of a row-major [N, C] array. */
export function meanRows(data: Float32Array, columns: number, start: number, end: number): Tensor {
  const acc = new Float64Array(columns);
  for (let row = start; row < end; row++) {
    const base = row * columns;
    for (let c = 0; c < columns; c++) acc[c]! += data[base + c]!;
  }
  const n = end - start;
  const out = new Float32Array(columns);
  for (let c = 0; c < columns; c++) out[c] = acc[c]! / n;
  return { data: out, shape: [columns] };
}

/**
 * Batch buffers reused between batches (allocating ~25 MB per clip per batch is what makes GC
 * pause). A buffer taken goes to the model (maybe to the worker thread and back) and is given
 * back with `keep`; a detached one is dropped.
 */
export class BatchBuffers {
  /** At most two of each: a batch running and the next one packed (batchStage's inFlight 2). */
  private floats: Float32Array[] = [];
  private bytes: Uint8Array[] = [];

  /** A buffer of exactly `n` floats, a view of a reused one (a new one when none is big enough). */
  floatsOf(n: number): Float32Array {
    return BatchBuffers.take(this.floats, n, (k) => new Float32Array(k));
  }

  bytesOf(n: number): Uint8Array {
    return BatchBuffers.take(this.bytes, n, (k) => new Uint8Array(k));
  }

  /** Keeps a buffer that came back from the model for a next batch. */
  keep(data: Float32Array | Uint8Array): void {
    if (data.buffer.byteLength === 0) return;
    if (data instanceof Uint8Array) BatchBuffers.add(this.bytes, new Uint8Array(data.buffer));
    else BatchBuffers.add(this.floats, new Float32Array(data.buffer));
  }

  private static take<A extends Float32Array | Uint8Array>(list: A[], n: number, make: (n: number) => A): A {
    const at = list.findIndex((b) => b.length >= n);
    const buf = at < 0 ? make(n) : list.splice(at, 1)[0]!;
    return buf.subarray(0, n) as A;
  }

  private static add<A extends Float32Array | Uint8Array>(list: A[], buf: A): void {
    list.push(buf);
    // Keep the two largest: a smaller one is what a short last batch left.
    list.sort((a, b) => b.length - a.length);
    list.length = Math.min(list.length, 2);
  }
}
