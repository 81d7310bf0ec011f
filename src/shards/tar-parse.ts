/**
 * A streaming tar parser with the rules a dataset reader needs, which tar-stream does not
 * follow: every header's data blocks are skipped by the size it declares (tar-stream reads a
 * directory's data as headers), a missing end-of-archive is reported rather than taken as a
 * clean end, and a GNU long-name record that cannot be a name is dropped instead of renaming
 * the next member. ustar, GNU (long names, base-256 sizes) and pax (path, linkpath, size).
 */
import type { Readable } from 'node:stream';
import { ClipstreamError } from '../errors.js';

const BLOCK = 512;
/** Long-name and pax records larger than this are not headers (a retyped member, garbage). */
const MAX_META = 1 << 20;
const MAX_NAME = 65_536;

export type TarType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'contiguous-file'
  | 'pax-header'
  | 'pax-global-header'
  | 'gnu-long-path'
  | 'gnu-long-link-path'
  | `unknown type '${string}'`;

export interface TarHeader {
  name: string;
  type: TarType;
  size: number;
  linkname: string;
  /** Byte offset of the header in the (decompressed) tar. */
  offset: number;
}

/** Tar damage; the message says what and where. */
export class TarFormatError extends ClipstreamError {
  constructor(message: string) {
    super('ERR_TAR', message);
    this.name = 'TarFormatError';
  }
}

const TYPES: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
  x: 'pax-header',
  g: 'pax-global-header',
  L: 'gnu-long-path',
  K: 'gnu-long-link-path',
};

/** Reads exact byte counts from a stream, pulling chunk by chunk (backpressure kept). */
class Bytes {
  private readonly it: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  position = 0;

  constructor(source: Readable) {
    this.it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.buffered += r.value.length;
      }
    }
  }

  /** Up to `n` bytes (fewer only at the end of the stream), into `into` when given. */
  async read(n: number, into?: Buffer): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.buffered);
    if (!into && this.chunks.length > 0 && this.chunks[0]!.length >= take) {
      const first = this.chunks[0]!;
      const out = first.subarray(0, take);
      this.consume(take);
      return out;
    }
    const out = into ?? Buffer.allocUnsafe(take);
    let at = 0;
    while (at < take) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, take - at);
      c.copy(out, at, 0, k);
      at += k;
      this.consume(k);
    }
    return out.subarray(0, take);
  }

  /** Skips up to `n` bytes without keeping them; returns how many were there. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      await this.fill(1);
      if (this.buffered === 0) break;
      const k = Math.min(left, this.chunks[0]!.length);
      this.consume(k);
      left -= k;
    }
    return n - left;
  }

  private consume(k: number): void {
    const c = this.chunks[0]!;
    if (k === c.length) this.chunks.shift();
    else this.chunks[0] = c.subarray(k);
    this.buffered -= k;
    this.position += k;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function field(h: Buffer, at: number, len: number): string {
  const end = h.indexOf(0, at);
  return h.toString('utf8', at, end >= 0 && end < at + len ? end : at + len);
}

function octal(h: Buffer, at: number, len: number): number {
  if (h[at]! & 0x80) {
    // GNU base-256: big-endian, the top bit of the first byte is the marker.
    let v = h[at]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + h[at + i]!;
    return v;
  }
  const s = h
    .toString('latin1', at, at + len)
    .replace(/[\0 ]+$/, '')
    .replace(/^[\0 ]+/, '');
  return s === '' ? 0 : /^[0-7]+$/.test(s) ? parseInt(s, 8) : NaN;
}

function checksumOk(h: Buffer): boolean {
  const want = octal(h, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < buf.length) {
    const space = buf.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(buf.toString('latin1', at, space));
    if (!Number.isInteger(len) || len <= 0 || at + len > buf.length) break;
    const record = buf.toString('utf8', space + 1, at + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += len;
  }
  return out;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The name in a GNU long-name record, or null when the record cannot be one. */
function longName(buf: Buffer): string | null {
  const end = buf.indexOf(0);
  const body = end >= 0 ? buf.subarray(0, end) : buf;
  if (body.length === 0 || body.length > MAX_NAME || (end >= 0 && buf.subarray(end).some((b) => b !== 0))) return null;
  try {
    const s = fatalUtf8.decode(body);
    // Control characters: binary data, not a path.
    return body.some((b) => b < 0x20 || b === 0x7f) ? null : s;
  } catch {
    return null;
  }
}

export interface TarParser {
  /** The next member header (long names and pax applied), or null at the end of the archive. */
  next(): Promise<TarHeader | null>;
  /** The data of the member `next` returned last (call at most once; otherwise `next` skips it). */
  body(): Promise<Buffer>;
  /** How the archive ended: with its end-of-archive blocks, or without (maybe truncated). */
  readonly ending: 'end-blocks' | 'no-end-blocks' | null;
  /** Bytes consumed so far. */
  readonly position: number;
  close(): Promise<void>;
}

/**
 * Parses a tar stream. `onProblem` hears about headers that are dropped without stopping
 * the archive (a long-name record that is no name). Damage that stops the archive (a bad
 * header checksum, data cut short) is thrown as TarFormatError.
 */
export function parseTar(source: Readable, onProblem: (message: string) => void = () => {}): TarParser {
  const bytes = new Bytes(source);
  let pending: { header: TarHeader; left: number; padding: number } | null = null;
  let ending: TarParser['ending'] = null;
  let global: Record<string, string> = {};

  const skipPending = async () => {
    if (!pending) return;
    const { left, padding, header } = pending;
    pending = null;
    const skipped = await bytes.skip(left + padding);
    if (skipped < left) throw new TarFormatError(`Unexpected end of data (member '${header.name}' at byte ${header.offset} declares ${header.size} bytes)`);
  };

  const readMeta = async (h: TarHeader): Promise<Buffer | null> => {
    if (h.size > MAX_META) return null;
    const buf = await bytes.read(h.size);
    if (buf.length < h.size) throw new TarFormatError('Unexpected end of data');
    await bytes.skip((BLOCK - (h.size % BLOCK)) % BLOCK);
    return Buffer.from(buf);
  };

  const parser: TarParser = {
    get ending() {
      return ending;
    },
    get position() {
      return bytes.position;
    },
    async next() {
      await skipPending();
      if (ending) return null;
      let name: string | null = null;
      let linkname: string | null = null;
      let pax: Record<string, string> = {};
      for (;;) {
        const offset = bytes.position;
        const h = await bytes.read(BLOCK);
        if (h.length === 0) {
          ending = 'no-end-blocks';
          return null;
        }
        if (h.length < BLOCK) throw new TarFormatError('Unexpected end of data');
        if (h.every((b) => b === 0)) {
          ending = 'end-blocks';
          return null;
        }
        if (!checksumOk(h)) throw new TarFormatError('Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?');
        const flag = String.fromCharCode(h[156]!);
        const type: TarType = TYPES[flag] ?? `unknown type '${flag}'`;
        let size = octal(h, 124, 12);
        if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`Invalid tar header at byte ${offset}: bad size field`);
        const magic = h.toString('latin1', 257, 263);
        const prefix = magic === 'ustar\0' ? field(h, 345, 155) : '';
        const header: TarHeader = { name: (prefix ? `${prefix}/` : '') + field(h, 0, 100), type, size, linkname: field(h, 157, 100), offset };
        if (type === 'gnu-long-path' || type === 'gnu-long-link-path') {
          const buf = await readMeta(header);
          const value = buf && longName(buf);
          if (value === null || value === undefined) {
            onProblem(`the GNU long-name record at byte ${offset} (${size} bytes) is not a file name (a member retyped as a long-name header?); skipped it`);
            if (!buf) await skipMember(header);
            continue;
          }
          if (type === 'gnu-long-path') name = value;
          else linkname = value;
          continue;
        }
        if (type === 'pax-header' || type === 'pax-global-header') {
          const buf = await readMeta(header);
          if (!buf) {
            onProblem(`the pax header at byte ${offset} is ${size} bytes, too large to be one; skipped it`);
            await skipMember(header);
            continue;
          }
          if (type === 'pax-global-header') global = { ...global, ...parsePax(buf) };
          else pax = parsePax(buf);
          continue;
        }
        const ext = { ...global, ...pax };
        if (ext.path) header.name = ext.path;
        if (ext.linkpath) header.linkname = ext.linkpath;
        if (ext.size && /^\d+$/.test(ext.size)) size = header.size = Number(ext.size);
        if (name !== null) header.name = name;
        if (linkname !== null) header.linkname = linkname;
        pending = { header, left: size, padding: (BLOCK - (size % BLOCK)) % BLOCK };
        return header;
      }
    },
    async body() {
      // Internal invariant: the reader calls body() once per header; a plain Error marks a bug here (test/unit/errors.test.ts allowlist).
      if (!pending) throw new Error('tar parser: body() without a member');
      const { left, padding } = pending;
      pending = null;
      const out = Buffer.allocUnsafe(left);
      const got = await bytes.read(left, out);
      if (got.length < left) throw new TarFormatError('Unexpected end of data');
      await bytes.skip(padding);
      return out;
    },
    close: () => bytes.close(),
  };

  async function skipMember(h: TarHeader): Promise<void> {
    const total = h.size + ((BLOCK - (h.size % BLOCK)) % BLOCK);
    if ((await bytes.skip(total)) < h.size) throw new TarFormatError('Unexpected end of data');
  }
  return parser;
}
