import { PickleBytes, weightsFileError as fail, type Buildable, type PickleGlobal } from './pickle.js';
import { ITEM_SIZE } from './safetensors.js';

/**
 * What the allowlisted pickle globals build: torch storages and tensor views, numpy arrays and
 * dtypes. Plain data holders; nothing here runs code from a file.
 */

/** Raw little-endian bytes of one storage (torch) or array (numpy). */
export class Storage {
  bytes: Uint8Array | null = null;
  constructor(
    readonly dtype: string,
    readonly numel: number,
    readonly key: string,
  ) {}
}

/** A tensor as `torch._utils._rebuild_tensor_v2` describes it; materialised once its storage has bytes. */
export class TensorRef {
  constructor(
    readonly storage: Storage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** `numpy.dtype(...)` then BUILD: kind (`f4`) and byte order (`<`, `>`, `|`). */
class NpDtype implements Buildable {
  order = '<';
  constructor(readonly kind: string) {}
  setState(state: unknown): void {
    if (Array.isArray(state) && typeof state[1] === 'string') this.order = state[1];
  }
}

/** `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` then BUILD with (version, shape, dtype, fortran, raw bytes). */
export class NdArray implements Buildable {
  dtype = '';
  shape: number[] = [];
  bytes: Uint8Array = new Uint8Array(0);
  constructor(private readonly where: string) {}
  setState(state: unknown): void {
    if (!Array.isArray(state) || state.length < 5) throw fail(this.where, 'unsupported numpy array state');
    const [, shape, dtype, fortran, raw] = state as [unknown, number[], unknown, boolean, unknown];
    if (!(dtype instanceof NpDtype)) throw fail(this.where, 'numpy array without a dtype');
    // Python 2 files hold the raw data as a str (latin1: one char per byte).
    const data = raw instanceof PickleBytes ? raw.data : typeof raw === 'string' ? latin1Bytes(raw, this.where) : null;
    if (!data) throw fail(this.where, `numpy array of dtype ${dtype.kind} holds Python objects, which are refused`);
    this.dtype = npDtype(dtype, this.where);
    this.shape = [...shape];
    const size = ITEM_SIZE[this.dtype]!;
    const numel = this.shape.reduce((a, b) => a * b, 1);
    if (data.length !== numel * size)
      throw fail(this.where, `numpy array [${this.shape.join(', ')}] ${dtype.kind} needs ${numel * size} bytes but holds ${data.length}`);
    let bytes: Uint8Array = dtype.order === '>' ? byteswap(data, size) : data;
    if (fortran && this.shape.length > 1) {
      const rev = [...this.shape].reverse();
      bytes = gather(bytes, size, [...this.shape], contiguousStrides(rev).reverse(), 0);
    }
    this.bytes = bytes;
  }
}

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const NP_DTYPES: Record<string, string> = {
  f2: 'F16',
  f4: 'F32',
  f8: 'F64',
  i1: 'I8',
  i2: 'I16',
  i4: 'I32',
  i8: 'I64',
  u1: 'U8',
  u2: 'U16',
  u4: 'U32',
  u8: 'U64',
  b1: 'BOOL',
};

function npDtype(d: NpDtype, where: string): string {
  const code = NP_DTYPES[d.kind.replace(/^[<>|=]/, '')];
  if (!code) throw fail(where, `numpy dtype '${d.kind}' is not supported (float, int and bool arrays are)`);
  return code;
}

function latin1Bytes(text: string, where: string): Uint8Array {
  if (/[^\u0000-\u00ff]/.test(text)) throw fail(where, 'latin1 bytes hold a character above U+00FF (corrupt pickle)');
  return Buffer.from(text, 'latin1');
}

function byteswap(data: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += size) for (let k = 0; k < size; k++) out[i + k] = data[i + size - 1 - k]!;
  return out;
}

function contiguousStrides(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Copies a strided view (element strides) into a contiguous row-major buffer. */
export function gather(src: Uint8Array, size: number, shape: number[], stride: number[], offset: number): Uint8Array {
  const numel = shape.reduce((a, b) => a * b, 1);
  const contiguous = stride.every((s, i) => shape[i] === 1 || s === contiguousStrides(shape)[i]);
  if (contiguous) return src.subarray(offset * size, (offset + numel) * size);
  const out = new Uint8Array(numel * size);
  const idx = new Array<number>(shape.length).fill(0);
  for (let n = 0; n < numel; n++) {
    let e = offset;
    for (let d = 0; d < shape.length; d++) e += idx[d]! * stride[d]!;
    out.set(src.subarray(e * size, e * size + size), n * size);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

const g = (global: string, call?: (args: unknown[]) => unknown): [string, PickleGlobal] => [global, { global, call }];

/** The globals torch and numpy checkpoints use, and nothing else. */
export function allowedGlobals(where: string): Map<string, PickleGlobal> {
  const rebuild = (args: unknown[]) => {
    const [storage, offset, shape, stride] = args as [unknown, number, number[], number[]];
    if (!(storage instanceof Storage)) throw fail(where, 'tensor rebuild without a storage');
    return new TensorRef(storage, offset, [...shape], [...stride]);
  };
  const reconstruct = () => new NdArray(where);
  const entries: Array<[string, PickleGlobal]> = [
    g('collections.OrderedDict', (args) => new Map((args[0] as Array<[unknown, unknown]> | undefined) ?? [])),
    g('builtins.dict', () => new Map()),
    g('torch._utils._rebuild_tensor_v2', rebuild),
    g('torch._utils._rebuild_tensor', rebuild),
    g('torch._utils._rebuild_parameter', (args) => args[0]),
    g('_codecs.encode', (args) => {
      const [text, encoding] = args as [string, string];
      if (encoding !== 'latin1' && encoding !== 'latin-1') throw fail(where, `_codecs.encode with encoding ${encoding} is refused (only latin1 bytes)`);
      return new PickleBytes(latin1Bytes(text, where));
    }),
    g('numpy.core.multiarray._reconstruct', reconstruct),
    g('numpy._core.multiarray._reconstruct', reconstruct),
    g('numpy.ndarray'),
    g('numpy.dtype', (args) => new NpDtype(String(args[0]))),
    g('numpy.core.multiarray.scalar', (args) => scalar(args, where)),
    g('numpy._core.multiarray.scalar', (args) => scalar(args, where)),
  ];
  for (const name of Object.keys(STORAGE_DTYPES)) entries.push(g(`torch.${name}`));
  return new Map(entries);
}

/** A numpy scalar (`model_iter`, `lr` in Caffe2 files): kept as a number. */
function scalar(args: unknown[], where: string): number {
  const [dtype, raw] = args as [NpDtype, unknown];
  const code = npDtype(dtype, where);
  const bytes = raw instanceof PickleBytes ? raw.data : latin1Bytes(String(raw), where);
  if (bytes.length < (ITEM_SIZE[code] ?? 8)) return Number.NaN;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (code === 'F64') return v.getFloat64(0, true);
  if (code === 'F32') return v.getFloat32(0, true);
  if (code === 'I64') return Number(v.getBigInt64(0, true));
  if (code === 'I32') return v.getInt32(0, true);
  return Number.NaN;
}

export function storageFromPid(pid: unknown, where: string, storages: Map<string, Storage>): Storage {
  const t = pid as unknown[];
  if (!Array.isArray(t) || t[0] !== 'storage') throw fail(where, `unsupported persistent id ${JSON.stringify(t?.[0])}`);
  const [, type, key, , numel, view] = t as [string, PickleGlobal, string, string, number, unknown];
  const name = type?.global?.replace(/^torch\./, '');
  const dtype = name ? STORAGE_DTYPES[name] : undefined;
  if (!dtype) throw fail(where, `unsupported storage type ${type?.global ?? String(type)}`);
  if (view) throw fail(where, `storage ${key} is a view of another storage (legacy format), which is not supported`);
  const k = String(key);
  let s = storages.get(k);
  if (!s) {
    s = new Storage(dtype, numel, k);
    storages.set(k, s);
  }
  return s;
}
