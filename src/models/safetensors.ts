import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { ClipstreamError } from '../errors.js';
import { floatToHalfBits } from './fp16.js';
import type { ImportedWeights, ParamTensor, StateDict } from './params.js';

/** Dtypes converted to float32 on load; any other dtype is kept in the header but cannot be used as a parameter. */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16', 'F64'] as const;
export type FloatDtype = (typeof FLOAT_DTYPES)[number];

/** Bytes per element of every safetensors dtype (spec of huggingface/safetensors). */
export const ITEM_SIZE: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** Largest header we accept (the reference implementation's limit). */
const MAX_HEADER = 100_000_000;

/** One tensor as the header declares it; `begin`/`end` are byte offsets into the data section. */
export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** A parsed safetensors file: header checked, data converted to float32 on request. */
export interface SafetensorsFile {
  /** File path (or a label for in-memory buffers), used in every error message. */
  path: string;
  /** sha256 of the whole file. */
  sha256: string;
  /** The optional `__metadata__` string map. */
  metadata: Record<string, string>;
  /** Tensors in header order. */
  entries: Map<string, SafetensorsEntry>;
  /** A tensor converted to float32 (F32, F16, BF16, F64); throws ERR_MODEL naming the tensor for other dtypes. */
  tensor(name: string): ParamTensor;
}

function fail(path: string, message: string, cause?: unknown): ClipstreamError {
  return new ClipstreamError('ERR_MODEL', `${path}: ${message}`, { where: { file: path }, cause });
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** IEEE half to float32 (exact: every half is a float32). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Converts one tensor's little-endian bytes (`data[entry.begin..entry.end]`) to float32; other dtypes are an ERR_MODEL naming it. */
export function decodeTensorData(entry: SafetensorsEntry, data: Uint8Array, path: string): Float32Array {
  const n = entry.shape.reduce((a, b) => a * b, 1);
  const bytes = data.subarray(entry.begin, entry.end);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (entry.dtype) {
    case 'F32':
      if (endianness() === 'LE')
        new Uint8Array(out.buffer).set(bytes); // copies: the data may be unaligned
      else for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = view.getUint16(i * 2, true) << 16;
      if (endianness() !== 'LE') for (let i = 0; i < n; i++) out[i] = new DataView(u.buffer).getFloat32(i * 4, true);
      return out;
    }
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      return out;
    default:
      throw fail(path, `tensor ${entry.name} has dtype ${entry.dtype}; expected one of ${FLOAT_DTYPES.join(', ')} (converted to float32)`);
  }
}

/**
 * Parses safetensors bytes: 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the raw
 * little-endian data. Every entry is checked (known dtype, integer shape, offsets inside the
 * file and matching dtype x shape) so a corrupt or truncated file fails here, naming the tensor.
 *
 * @example
 * const st = parseSafetensors(await readFile('vggish.safetensors'), 'vggish.safetensors');
 * st.tensor('features.0.weight').shape; // [64, 1, 3, 3]
 */
export function parseSafetensors(bytes: Uint8Array, path = '<buffer>'): SafetensorsFile {
  if (bytes.byteLength < 8) throw fail(path, `not a safetensors file: ${bytes.byteLength} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER || 8 + headerLen > bytes.byteLength) {
    throw fail(path, `corrupt safetensors header: declares ${headerLen} header bytes but the file has ${bytes.byteLength - 8} after the length`);
  }
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLen).toString('utf8'));
  } catch (err) {
    throw fail(path, `corrupt safetensors header: not JSON (${(err as Error).message})`, err);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw fail(path, 'corrupt safetensors header: expected a JSON object');
  }
  const data = bytes.subarray(8 + headerLen);
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null) throw fail(path, 'corrupt safetensors header: __metadata__ is not an object');
      metadata = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
      throw fail(path, `corrupt safetensors header: tensor ${name} lacks dtype, shape or data_offsets`);
    }
    const itemSize = ITEM_SIZE[e.dtype];
    if (itemSize === undefined) throw fail(path, `tensor ${name} has unknown dtype ${e.dtype}`);
    const shape = e.shape as unknown[];
    if (!shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw fail(path, `corrupt safetensors header: tensor ${name} has shape ${JSON.stringify(shape)}`);
    }
    const [begin, end] = e.data_offsets as unknown[];
    if (e.data_offsets.length !== 2 || !Number.isInteger(begin) || !Number.isInteger(end) || (begin as number) < 0 || (end as number) < (begin as number)) {
      throw fail(path, `corrupt safetensors header: tensor ${name} has data_offsets ${JSON.stringify(e.data_offsets)}`);
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if ((end as number) - (begin as number) !== numel * itemSize) {
      throw fail(
        path,
        `tensor ${name}: ${e.dtype} ${fmt(shape as number[])} needs ${numel * itemSize} bytes but data_offsets span ${(end as number) - (begin as number)}`,
      );
    }
    if ((end as number) > data.byteLength) {
      throw fail(path, `truncated: tensor ${name} ends at data byte ${end as number} but the file holds only ${data.byteLength} data bytes`);
    }
    entries.set(name, { name, dtype: e.dtype, shape: shape as number[], begin: begin as number, end: end as number });
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return {
    path,
    sha256,
    metadata,
    entries,
    tensor(name) {
      const entry = entries.get(name);
      if (!entry) throw fail(path, `no tensor ${name}`);
      return { shape: [...entry.shape], data: decodeTensorData(entry, data, path) };
    },
  };
}

/**
 * Reads and parses a safetensors file.
 *
 * @example
 * const st = await readSafetensors('slowfast_r50.safetensors');
 * [...st.entries.keys()].length; // number of tensors
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `${path}: cannot read weights file (${(err as Error).message})`, { where: { file: path }, cause: err });
  }
  return parseSafetensors(bytes, path);
}

/**
 * Picks the tensors an architecture needs (`describeVggish(c).stateDictShapes` and the like)
 * out of a safetensors file, as float32. Extra tensors (`num_batches_tracked`, optimizer
 * state) are ignored. A missing tensor, a wrong shape or a non-float dtype is an ERR_MODEL
 * naming the file, the tensor, the expected shape and the one found; all problems are listed,
 * not just the first. `optional` names tensors used only when present (e.g. VGGish PCA).
 *
 * @example
 * const st = await readSafetensors('vggish.safetensors');
 * const params = selectStateDict(st, describeVggish(VGGISH_FULL).stateDictShapes);
 */
export function selectStateDict(
  file: SafetensorsFile,
  expected: ReadonlyMap<string, readonly number[]>,
  optional: ReadonlyMap<string, readonly number[]> = new Map(),
): StateDict {
  const problems: string[] = [];
  const out: StateDict = new Map();
  const check = (name: string, shape: readonly number[], required: boolean): void => {
    const entry = file.entries.get(name);
    if (!entry) {
      if (required) problems.push(`missing tensor ${name} (expected shape ${fmt(shape)})`);
      return;
    }
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      problems.push(`tensor ${name} has shape ${fmt(entry.shape)} but the architecture needs ${fmt(shape)}`);
      return;
    }
    if (!(FLOAT_DTYPES as readonly string[]).includes(entry.dtype)) {
      problems.push(`tensor ${name} ${fmt(shape)} has dtype ${entry.dtype}; expected one of ${FLOAT_DTYPES.join(', ')}`);
      return;
    }
    out.set(name, file.tensor(name));
  };
  for (const [name, shape] of expected) check(name, shape, true);
  for (const [name, shape] of optional) check(name, shape, false);
  if (problems.length) {
    const shown = problems
      .slice(0, 20)
      .map((p) => `  ${p}`)
      .join('\n');
    const more = problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : '';
    throw new ClipstreamError(
      'ERR_MODEL',
      `${file.path}: weights do not fit the architecture (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${shown}${more}`,
      { where: { file: file.path } },
    );
  }
  return out;
}

/**
 * A safetensors file as builder input: the selected tensors plus the file's sha256 and the dataset label.
 *
 * @example
 * const weights = await loadImportedWeights('vggish.safetensors', describeVggish(VGGISH_FULL).stateDictShapes, 'YouTube-8M');
 * buildVggish(VGGISH_FULL, weights);
 */
export async function loadImportedWeights(
  path: string,
  expected: ReadonlyMap<string, readonly number[]>,
  dataset: string,
  optional?: ReadonlyMap<string, readonly number[]>,
): Promise<ImportedWeights> {
  const file = await readSafetensors(path);
  return { params: selectStateDict(file, expected, optional), sha256: file.sha256, dataset };
}

/** A tensor to write: float32 data, stored as `dtype` (F32 default; F16/BF16/F64 convert). */
export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
  dtype?: FloatDtype;
}

/**
 * Serialises tensors as safetensors (header padded with spaces to a multiple of 8, as the
 * reference writer does). Used by tests and by anyone re-saving converted weights.
 *
 * @example
 * const bytes = encodeSafetensors(new Map([['w', { shape: [2], data: new Float32Array([1, 2]) }]]));
 */
export function encodeSafetensors(tensors: ReadonlyMap<string, TensorToWrite>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const dtype = t.dtype ?? 'F32';
    const n = t.data.length;
    const buf = Buffer.alloc(n * ITEM_SIZE[dtype]);
    for (let i = 0; i < n; i++) {
      const v = t.data[i];
      if (dtype === 'F32') buf.writeFloatLE(v, i * 4);
      else if (dtype === 'F64') buf.writeDoubleLE(v, i * 8);
      else if (dtype === 'F16') buf.writeUInt16LE(floatToHalfBits(v), i * 2);
      else {
        const u = new Uint32Array(new Float32Array([v]).buffer)[0];
        buf.writeUInt16LE((u + 0x7fff + ((u >>> 16) & 1)) >>> 16, i * 2);
      }
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + buf.length] };
    offset += buf.length;
    chunks.push(buf);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json, 'utf8'), ...chunks]);
}
