/**
 * msgpack the way Python's `msgpack_numpy` (0.4.x) writes it, so that
 * `msgpack.unpackb(data, object_hook=msgpack_numpy.decode)` hands numpy arrays back.
 *
 * An ndarray is a 5-entry msgpack map whose keys are msgpack *bin* (Python `bytes`),
 * in this order (what `msgpack_numpy.encode` emits, confirmed byte for byte):
 *
 *   {b'nd': True, b'type': '<f4' (str), b'kind': b'' (bin), b'shape': [d0, d1, ...] (array of ints),
 *    b'data': <bin: C-order little-endian raw bytes>}
 *
 * `msgpack_numpy.decode` looks the keys up as bytes, so str keys would silently stay a
 * dict on the Python side; `b'type'` may be str or bytes (np.dtype takes both);
 * `b'kind'` only matters when it is b'V' or b'O'; `b'shape'` becomes the ndarray shape.
 */
import { endianness } from 'node:os';
import { Packr, Unpackr } from 'msgpackr';
import { ClipstreamError } from '../errors.js';
import type { FeatureRecord, FeatureSet, Tensor } from '../types.js';

// useRecords off: msgpackr's record/structure extension (ext 0x72) is unreadable in Python.
// moreTypes off: no ext types for Sets, Errors and such. Typed arrays never reach msgpackr:
// msgpackr 2.1 packs a Float32Array as ext 0x74 with moreTypes on, and as a bin of wrong
// bytes with it off (seen by experiment), so toPackable turns Tensors into Buffers first
// and refuses any other typed array. variableMapSize: fixmap for
// small maps, as Python writes them (smaller, and Python reads map16 too, but why differ).
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true, useFloat32: 0 });
// mapsAsObjects off: ndarray maps have bin keys that a plain object would stringify.
/** Shared by readFeatureShard, which words its own "not msgpack" error. */
export const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

const LITTLE_ENDIAN = endianness() === 'LE';
const K_ND = Buffer.from('nd');
const K_TYPE = Buffer.from('type');
const K_KIND = Buffer.from('kind');
const K_SHAPE = Buffer.from('shape');
const K_DATA = Buffer.from('data');

function swap32(bytes: Uint8Array): Buffer {
  const out = Buffer.from(bytes);
  out.swap32();
  return out;
}

/** Element count a shape implies; `[]` is a scalar (one element). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkTensor(t: Tensor, what: string): void {
  if (!(t?.data instanceof Float32Array) || !Array.isArray(t.shape)) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `${what}: expected a Tensor {data: Float32Array, shape: number[]}`);
  }
  if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `${what}: shape [${t.shape.join(', ')}] has a non-integer or negative dimension`);
  }
  if (shapeSize(t.shape) !== t.data.length) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `${what}: shape [${t.shape.join(', ')}] holds ${shapeSize(t.shape)} values but data has ${t.data.length}`);
  }
}

/**
 * The msgpack_numpy map for a float32 Tensor, ready for msgpackr (a Map keeps the bin keys).
 *
 * @example packr.pack(ndarrayMap({ data: new Float32Array([1, 2]), shape: [2] }))
 */
export function ndarrayMap(t: Tensor, what = 'tensor'): Map<Buffer, unknown> {
  checkTensor(t, what);
  const view = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  // A Buffer (not the Float32Array) so msgpackr writes bin, never a typed-array ext type.
  const data = LITTLE_ENDIAN ? Buffer.from(view.buffer, view.byteOffset, view.byteLength) : swap32(view);
  return new Map<Buffer, unknown>([
    [K_ND, true],
    [K_TYPE, '<f4'],
    [K_KIND, Buffer.alloc(0)],
    [K_SHAPE, [...t.shape]],
    [K_DATA, data],
  ]);
}

function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && (v as Tensor).data instanceof Float32Array && Array.isArray((v as Tensor).shape);
}

/** Replaces Tensors by ndarray maps and refuses other binary views, which would pack as ext types. */
function toPackable(v: unknown, path: string): unknown {
  if (isTensor(v)) return ndarrayMap(v, path);
  if (Array.isArray(v)) return v.map((x, i) => toPackable(x, `${path}[${i}]`));
  if (Buffer.isBuffer(v) || v === null || typeof v !== 'object') return v;
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, toPackable(x, `${path}.${String(k)}`)]));
  if (ArrayBuffer.isView(v)) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `${path}: ${v.constructor.name} is not a Tensor; wrap it as {data: Float32Array, shape}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toPackable(x, `${path}.${k}`);
  return out;
}

/**
 * Packs any value, writing each Tensor as a msgpack_numpy ndarray and objects as str-keyed maps.
 *
 * @example packMsgpackNumpy({ emb: { data: new Float32Array(128), shape: [128] } })
 */
export function packMsgpackNumpy(value: unknown): Buffer {
  // Copy: msgpackr may hand back a view into a buffer it reuses.
  return Buffer.from(packr.pack(toPackable(value, 'value')));
}

function binKey(k: unknown): string | undefined {
  return k instanceof Uint8Array ? Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('latin1') : undefined;
}

function ndarrayFromMap(m: Map<unknown, unknown>, where: string): Tensor | undefined {
  const fields = new Map<string, unknown>();
  for (const [k, v] of m) {
    const name = binKey(k);
    if (name !== undefined) fields.set(name, v);
  }
  if (fields.get('nd') !== true) return undefined;
  const typeField = fields.get('type');
  const type = typeField instanceof Uint8Array ? Buffer.from(typeField).toString('latin1') : typeField;
  const shape = fields.get('shape');
  const data = fields.get('data');
  if (type !== '<f4' && type !== '>f4' && type !== '=f4' && type !== '|f4') {
    throw new ClipstreamError('ERR_FORMAT', `${where}: ndarray of dtype ${JSON.stringify(type)} is not supported; clipstream Tensors are float32 ('<f4')`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0) || !(data instanceof Uint8Array)) {
    throw new ClipstreamError('ERR_FORMAT', `${where}: malformed msgpack_numpy ndarray (needs b'shape' as a list of ints and b'data' as bytes)`);
  }
  const n = shapeSize(shape as number[]);
  if (data.byteLength !== n * 4) {
    throw new ClipstreamError('ERR_FORMAT', `${where}: ndarray shape [${shape.join(', ')}] needs ${n * 4} bytes of data but has ${data.byteLength}`);
  }
  const bigEndian = type === '>f4' || (type === '=f4' && !LITTLE_ENDIAN);
  // Copy into a fresh (4-byte aligned) buffer: the source bytes sit at any offset in the file.
  const bytes = new Uint8Array(n * 4);
  bytes.set(data);
  if (bigEndian !== !LITTLE_ENDIAN) Buffer.from(bytes.buffer).swap32();
  return { data: new Float32Array(bytes.buffer), shape: [...(shape as number[])] };
}

/** Turns what msgpackr unpacked (Maps) back into objects, and ndarray maps into Tensors. */
export function reviveMsgpackNumpy(v: unknown, where: string): unknown {
  if (Array.isArray(v)) return v.map((x, i) => reviveMsgpackNumpy(x, `${where}[${i}]`));
  if (!(v instanceof Map)) return v;
  const t = ndarrayFromMap(v, where);
  if (t) return t;
  const out: Record<string, unknown> = {};
  for (const [k, x] of v) {
    const key = typeof k === 'string' ? k : (binKey(k) ?? String(k));
    out[key] = reviveMsgpackNumpy(x, `${where}.${key}`);
  }
  return out;
}

/**
 * Unpacks msgpack (from clipstream or from Python's msgpack_numpy), giving Tensors for ndarrays.
 *
 * @example unpackMsgpackNumpy(packMsgpackNumpy({ x: tensor })) // { x: { data: Float32Array, shape } }
 */
export function unpackMsgpackNumpy(bytes: Uint8Array, where = 'msgpack data'): unknown {
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch (err) {
    throw new ClipstreamError('ERR_FORMAT', `${where}: not valid msgpack (${(err as Error).message})`, { cause: err });
  }
  return reviveMsgpackNumpy(raw, where);
}

function fail(where: string, what: string): never {
  throw new ClipstreamError('ERR_FORMAT', `${where}: not a feature record: ${what}`);
}

function asFeatureSets(v: unknown, where: string): FeatureSet[] {
  if (!Array.isArray(v)) fail(where, 'expected a list of feature sets');
  return v.map((s, i) => {
    const at = `${where}[${i}]`;
    if (typeof s !== 'object' || s === null) fail(at, 'expected {extractor_name, dataset, feat_array}');
    const { extractor_name, dataset, feat_array } = s as Record<string, unknown>;
    if (typeof extractor_name !== 'string' || typeof dataset !== 'string') fail(at, 'extractor_name and dataset must be strings');
    if (typeof feat_array !== 'object' || feat_array === null || Array.isArray(feat_array)) fail(at, 'feat_array must be a map of layer name to array');
    for (const [layer, t] of Object.entries(feat_array)) if (!isTensor(t)) fail(`${at}.feat_array.${layer}`, 'expected an array');
    return { extractor_name, dataset, feat_array: feat_array as Record<string, Tensor> };
  });
}

/** Checks the seed-004 record shape; `where` names the file and record position in errors. */
export function asFeatureRecord(v: unknown, where: string): FeatureRecord {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(where, 'expected a map');
  const r = v as Record<string, unknown>;
  if (typeof r.filename !== 'string') fail(where, 'filename must be a string');
  if (typeof r.id !== 'string') fail(where, 'id must be a string');
  const seg = r.segment;
  if (!Array.isArray(seg) || seg.length !== 2 || seg.some((x) => typeof x !== 'number')) fail(where, 'segment must be [start, end]');
  if (r.__key__ !== undefined && typeof r.__key__ !== 'string') fail(where, '__key__ must be a string');
  const record: FeatureRecord = {
    filename: r.filename,
    id: r.id,
    segment: [seg[0], seg[1]],
    visual_features: asFeatureSets(r.visual_features, `${where}.visual_features`),
    audio_features: asFeatureSets(r.audio_features, `${where}.audio_features`),
  };
  // Shards written before the key was recorded have none.
  if (typeof r.__key__ === 'string') record.__key__ = r.__key__;
  if (r.audio_note !== undefined && typeof r.audio_note !== 'string') fail(where, 'audio_note must be a string');
  if (typeof r.audio_note === 'string') record.audio_note = r.audio_note;
  return record;
}

/**
 * One record as msgpack bytes, key order as seed 004 lists it.
 *
 * @example const bytes = encodeFeatureRecord({ filename: 'a_0.mp4', id: 'a', segment: [0, 10], visual_features: [], audio_features: [] })
 */
export function encodeFeatureRecord(record: FeatureRecord): Buffer {
  // Only the known fields, in a fixed order, so equal records always give equal bytes.
  return packMsgpackNumpy({
    filename: record.filename,
    id: record.id,
    segment: record.segment,
    visual_features: record.visual_features.map((s) => ({ extractor_name: s.extractor_name, dataset: s.dataset, feat_array: s.feat_array })),
    audio_features: record.audio_features.map((s) => ({ extractor_name: s.extractor_name, dataset: s.dataset, feat_array: s.feat_array })),
    // Added after the seed-004 fields: readers that ignore it see the old record.
    ...(record.__key__ === undefined ? {} : { __key__: record.__key__ }),
    ...(record.audio_note === undefined ? {} : { audio_note: record.audio_note }),
  });
}

/**
 * Decodes one record written by `encodeFeatureRecord` or by Python's msgpack_numpy.
 *
 * @example decodeFeatureRecord(encodeFeatureRecord(record)).visual_features[0].feat_array.layer_0.shape
 */
export function decodeFeatureRecord(bytes: Uint8Array, where = 'feature record'): FeatureRecord {
  return asFeatureRecord(unpackMsgpackNumpy(bytes, where), where);
}

/** The msgpack array header for `n` elements (fixarray, array16 or array32, smallest that fits). */
export function msgpackArrayHeader(n: number): Buffer {
  if (n < 16) return Buffer.from([0x90 | n]);
  if (n < 0x10000) return Buffer.from([0xdc, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}
