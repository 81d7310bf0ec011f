/**
 * The embedding spill: every clip's embedding, L2-normalised, as IEEE float16 rows in one file,
 * so that semantic dedup holds a bounded number of rows in memory whatever the number of clips.
 *
 * Node has no mmap: "memory-mapped" here means file-backed and bounded. Rows are written by
 * appending and read back with positional reads (`FileHandle.read(buffer, 0, n, position)`) in
 * chunks of a fixed number of rows, so the operating system's page cache, not the process
 * heap, holds the file.
 *
 * Layout (little-endian): a 64-byte header (`CSSPILL1`, then uint32 dim, float64 rows; the rest
 * zero) and `rows × dim` float16 values, row after row. numpy reads it as
 * `np.fromfile(path, dtype='<f2', offset=64).reshape(rows, dim)`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { ClipstreamError } from '../errors.js';
import { floatToHalfBits } from '../models/fp16.js';

export const SPILL_MAGIC = 'CSSPILL1';
export const SPILL_HEADER_BYTES = 64;

/** float16 bits → float value, by a table of all 65,536 halves (exact: every half is a float32). */
const HALF_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return t;
})();

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * Writes `v` (length dim) as float16 into `out` at row offset `at` (in halves): each value
 * rounded to float32, then to the nearest half (ties to even), as numpy's
 * `astype(float32).astype(float16)`. Normal halves inline; the rest by floatToHalfBits.
 */
export function encodeHalfRow(v: ArrayLike<number>, out: Uint16Array, at: number): void {
  for (let i = 0; i < v.length; i++) {
    F32[0] = v[i]!;
    const u = U32[0]!;
    const e = ((u >>> 23) & 0xff) - 112;
    if (e <= 0 || e >= 0x1f) {
      out[at + i] = floatToHalfBits(F32[0]!);
      continue;
    }
    let h = ((u >>> 16) & 0x8000) | (e << 10) | ((u >>> 13) & 0x3ff);
    const rem = u & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    out[at + i] = h;
  }
}

/**
 * Decodes `rows` float16 rows into float32 and re-normalises each to unit length (float16
 * rounding moves the norm by up to ~1e-3; cosine similarity is then exactly a dot product).
 */
export function decodeHalfRows(src: Uint16Array, rows: number, dim: number, out: Float32Array = new Float32Array(rows * dim)): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s = 0;
    for (let i = 0; i < dim; i++) {
      const x = HALF_TABLE[src[o + i]!]!;
      out[o + i] = x;
      s += x * x;
    }
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let i = 0; i < dim; i++) out[o + i] = out[o + i]! * inv;
  }
  return out;
}

/** Appends rows to a new spill file; `finish()` writes the header with the row count. */
export class SpillWriter {
  rows = 0;
  #buf: Uint16Array;
  #fill = 0;
  #pos = SPILL_HEADER_BYTES;

  private constructor(
    readonly path: string,
    readonly dim: number,
    private readonly fh: FileHandle,
    chunkRows: number,
  ) {
    this.#buf = new Uint16Array(chunkRows * dim);
  }

  static async create(path: string, dim: number, chunkRows = 1024): Promise<SpillWriter> {
    const fh = await open(path, 'w');
    await fh.write(Buffer.alloc(SPILL_HEADER_BYTES), 0, SPILL_HEADER_BYTES, 0);
    return new SpillWriter(path, dim, fh, chunkRows);
  }

  /** Adds one row (already normalised; stored as float16). */
  async add(v: ArrayLike<number>): Promise<void> {
    encodeHalfRow(v, this.#buf, this.#fill * this.dim);
    this.rows++;
    if (++this.#fill * this.dim === this.#buf.length) await this.#flush();
  }

  /** Adds rows already in float16 bits. */
  async addHalf(bits: Uint16Array, rows: number): Promise<void> {
    await this.#flush();
    const bytes = Buffer.from(bits.buffer, bits.byteOffset, rows * this.dim * 2);
    await writeFully(this.fh, bytes, this.#pos, this.path);
    this.#pos += bytes.length;
    this.rows += rows;
  }

  async #flush(): Promise<void> {
    if (this.#fill === 0) return;
    const bytes = Buffer.from(this.#buf.buffer, 0, this.#fill * this.dim * 2);
    await writeFully(this.fh, bytes, this.#pos, this.path);
    this.#pos += bytes.length;
    this.#fill = 0;
  }

  /** Writes the remaining rows and the header, fsyncs and closes. */
  async finish(): Promise<void> {
    await this.#flush();
    const header = Buffer.alloc(SPILL_HEADER_BYTES);
    header.write(SPILL_MAGIC, 0, 'latin1');
    header.writeUInt32LE(this.dim, 8);
    header.writeDoubleLE(this.rows, 12);
    await writeFully(this.fh, header, 0, this.path);
    await this.fh.sync();
    await this.fh.close();
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

async function writeFully(fh: FileHandle, bytes: Buffer, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done).catch((err: unknown) => {
      throw new ClipstreamError('ERR_IO', `${path}: cannot write the embedding spill (${(err as Error).message})`, { cause: err, where: { file: path } });
    });
    done += bytesWritten;
  }
}

/** Positional, bounded reads of a spill file. */
export class SpillReader {
  private constructor(
    readonly path: string,
    readonly dim: number,
    readonly rows: number,
    private readonly fh: FileHandle,
  ) {}

  static async open(path: string): Promise<SpillReader> {
    const fh = await open(path, 'r').catch((err: unknown) => {
      throw new ClipstreamError('ERR_IO', `${path}: cannot open the embedding spill (${(err as Error).message})`, { cause: err, where: { file: path } });
    });
    const header = Buffer.alloc(SPILL_HEADER_BYTES);
    const { bytesRead } = await fh.read(header, 0, SPILL_HEADER_BYTES, 0);
    const size = (await fh.stat()).size;
    const dim = header.readUInt32LE(8);
    const rows = header.readDoubleLE(12);
    if (bytesRead < SPILL_HEADER_BYTES || header.toString('latin1', 0, 8) !== SPILL_MAGIC || size !== SPILL_HEADER_BYTES + rows * dim * 2) {
      await fh.close();
      throw new ClipstreamError('ERR_FORMAT', `${path} is not a complete embedding spill (header or size wrong)`, { where: { file: path } });
    }
    return new SpillReader(path, dim, rows, fh);
  }

  /** Reads `count` consecutive rows from `start` as float16 bits into `out`. */
  async readHalf(start: number, count: number, out: Uint16Array = new Uint16Array(count * this.dim)): Promise<Uint16Array> {
    const bytes = count * this.dim * 2;
    const buf = Buffer.from(out.buffer, out.byteOffset, bytes);
    let done = 0;
    const pos = SPILL_HEADER_BYTES + start * this.dim * 2;
    while (done < bytes) {
      const { bytesRead } = await this.fh.read(buf, done, bytes - done, pos + done);
      if (bytesRead === 0) throw new ClipstreamError('ERR_FORMAT', `${this.path}: ended early at row ${start}`, { where: { file: this.path } });
      done += bytesRead;
    }
    return out;
  }

  /** Reads the rows `indices` (ascending is fastest: runs of neighbours become one read) as float16 bits. */
  async readHalfRows(indices: ArrayLike<number>, out: Uint16Array = new Uint16Array(indices.length * this.dim)): Promise<Uint16Array> {
    let i = 0;
    while (i < indices.length) {
      let j = i + 1;
      while (j < indices.length && indices[j] === indices[j - 1]! + 1 && j - i < 4096) j++;
      await this.readHalf(indices[i]!, j - i, out.subarray(i * this.dim, j * this.dim));
      i = j;
    }
    return out;
  }

  /** Chunk buffers kept for the next pass (a Lloyd iteration each), while no pass uses them. */
  #chunkBuffers: { half: Uint16Array; x: Float32Array } | null = null;

  /**
   * The rows in chunks of `chunkRows`, each decoded to float32 and re-normalised. The buffers
   * are reused by every chunk, and by the next pass over this reader once this one ended.
   */
  async *chunks(chunkRows: number): AsyncGenerator<{ start: number; count: number; x: Float32Array }> {
    const size = chunkRows * this.dim;
    let buffers = this.#chunkBuffers;
    this.#chunkBuffers = null;
    if (!buffers || buffers.x.length < size) buffers = { half: new Uint16Array(size), x: new Float32Array(size) };
    const { half, x } = buffers;
    try {
      for (let start = 0; start < this.rows; start += chunkRows) {
        const count = Math.min(chunkRows, this.rows - start);
        await this.readHalf(start, count, half);
        decodeHalfRows(half, count, this.dim, x);
        yield { start, count, x: x.subarray(0, count * this.dim) };
      }
    } finally {
      this.#chunkBuffers = buffers;
    }
  }

  async close(): Promise<void> {
    this.#chunkBuffers = null;
    await this.fh.close().catch(() => {});
  }
}
