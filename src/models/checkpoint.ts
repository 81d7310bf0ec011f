import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ClipstreamError } from '../errors.js';
import { PickleBytes, unpickle, weightsFileError as fail, type Buildable, type PickleGlobal } from './pickle.js';
import { decodeTensorData, ITEM_SIZE, parseSafetensors, type SafetensorsEntry, type SafetensorsFile } from './safetensors.js';
import { readZip } from './zip.js';

/**
 * Published checkpoints read without Python: PyTorch `.pth`/`.pyth` (`torch.save`'s zip of
 * pickles and raw storages, or its legacy single-stream format) and SlowFast's Caffe2 `.pkl`
 * (a pickle of numpy arrays). Both come back as the `SafetensorsFile` the builders already take,
 * so every check of `selectStateDict` applies unchanged.
 */

/** Raw little-endian bytes of one storage (torch) or array (numpy). */
class Storage {
  bytes: Uint8Array | null = null;
  constructor(readonly dtype: string, readonly numel: number, readonly key: string) {}
}

/** A tensor as `torch._utils._rebuild_tensor_v2` describes it; materialised once its storage has bytes. */
class TensorRef {
  constructor(readonly storage: Storage, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
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
class NdArray implements Buildable {
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
    if (data.length !== numel * size) throw fail(this.where, `numpy array [${this.shape.join(', ')}] ${dtype.kind} needs ${numel * size} bytes but holds ${data.length}`);
    let bytes: Uint8Array = dtype.order === '>' ? byteswap(data, size) : data;
    if (fortran && this.shape.length > 1) {
      const rev = [...this.shape].reverse();
      bytes = gather(bytes, size, [...this.shape], contiguousStrides(rev).reverse(), 0);
    }
    this.bytes = bytes;
  }
}

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

const NP_DTYPES: Record<string, string> = {
  f2: 'F16', f4: 'F32', f8: 'F64', i1: 'I8', i2: 'I16', i4: 'I32', i8: 'I64', u1: 'U8', u2: 'U16', u4: 'U32', u8: 'U64', b1: 'BOOL',
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
function gather(src: Uint8Array, size: number, shape: number[], stride: number[], offset: number): Uint8Array {
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
function allowedGlobals(where: string): Map<string, PickleGlobal> {
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

function storageFromPid(pid: unknown, where: string, storages: Map<string, Storage>): Storage {
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

/** Tensors and arrays by dotted name (nested dicts are joined with '.'). */
function collect(value: unknown, prefix: string, out: Map<string, TensorRef | NdArray>): void {
  if (!(value instanceof Map)) return;
  for (const [k, v] of value) {
    const name = prefix + String(k);
    if (v instanceof TensorRef || v instanceof NdArray) out.set(name, v);
    else if (v instanceof Map) collect(v, `${name}.`, out);
  }
}

// Caffe2 -> PyTorch name rules, applied in order, as SlowFast's `c2_model_loading.get_name_convert_func`
// (the same table as scripts/export-weights.py).
const C2_RULES: Array<[RegExp, string]> = [
  [/^nonlocal_conv([0-9]+)_([0-9]+)_(.*)/, 's$1.pathway0_nonlocal$2_$3'],
  [/^(.*)_nonlocal([0-9]+)_(theta)(.*)/, '$1_nonlocal$2.conv_$3$4'],
  [/^(.*)_nonlocal([0-9]+)_(g)(.*)/, '$1_nonlocal$2.conv_$3$4'],
  [/^(.*)_nonlocal([0-9]+)_(phi)(.*)/, '$1_nonlocal$2.conv_$3$4'],
  [/^(.*)_nonlocal([0-9]+)_(out)(.*)/, '$1_nonlocal$2.conv_$3$4'],
  [/^(.*)_nonlocal([0-9]+)_(bn)_(.*)/, '$1_nonlocal$2.$3.$4'],
  [/^t_pool1_subsample_bn_(.*)/, 's1_fuse.bn.$1'],
  [/^t_pool1_subsample_(.*)/, 's1_fuse.conv_f2s.$1'],
  [/^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_bn_(.*)/, 's$1_fuse.bn.$3'],
  [/^t_res([0-9]+)_([0-9]+)_branch2c_bn_subsample_(.*)/, 's$1_fuse.conv_f2s.$3'],
  [/^res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)/, 's$1.pathway0_res$2.branch$3.$4_$5'],
  [/^res_conv1_bn_(.*)/, 's1.pathway0_stem.bn.$1'],
  [/^conv1_(.*)/, 's1.pathway0_stem.conv.$1'],
  [/^res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)/, 's$1.pathway0_res$2.branch$3_$4'],
  [/^res_conv1_(.*)/, 's1.pathway0_stem.conv.$1'],
  [/^t_res([0-9]+)_([0-9]+)_branch([0-9]+)([a-z])_(.*)/, 's$1.pathway1_res$2.branch$3.$4_$5'],
  [/^t_res_conv1_bn_(.*)/, 's1.pathway1_stem.bn.$1'],
  [/^t_conv1_(.*)/, 's1.pathway1_stem.conv.$1'],
  [/^t_res([0-9]+)_([0-9]+)_branch([0-9]+)_(.*)/, 's$1.pathway1_res$2.branch$3_$4'],
  [/^t_res_conv1_(.*)/, 's1.pathway1_stem.conv.$1'],
  [/pred_(.*)/, 'head.projection.$1'],
  [/(.*)bn.b$/, '$1bn.bias'],
  [/(.*)bn.s$/, '$1bn.weight'],
  [/(.*)bn.rm$/, '$1bn.running_mean'],
  [/(.*)bn.riv$/, '$1bn.running_var'],
  [/(.*)[._]b$/, '$1.bias'],
  [/(.*)[._]w$/, '$1.weight'],
];

/**
 * A Caffe2 blob name as SlowFast's converter maps it.
 *
 * @example caffe2ToPytorchName('res2_0_branch2a_bn_riv') // 's2.pathway0_res0.branch2.a_bn.running_var'
 */
export function caffe2ToPytorchName(name: string): string {
  for (const [re, to] of C2_RULES) name = name.replace(re, to);
  return name;
}

const PARAM_SUFFIXES = ['.weight', '.bias', '.running_mean', '.running_var'];

/** Which reader a weights file needs, from its first bytes (zip, pickle or safetensors). */
export type WeightsFormat = 'safetensors' | 'torch-zip' | 'torch-legacy' | 'caffe2-pickle' | 'pickle';

/**
 * Reads a PyTorch or Caffe2 checkpoint held in memory as a `SafetensorsFile` (float tensors by
 * PyTorch name). `.pyth`-style dicts are unwrapped (`model_state`, `state_dict`, `model`),
 * `module.` prefixes stripped, Caffe2 blob names mapped and momentum blobs dropped.
 *
 * @example
 * const ckpt = parseCheckpoint(await readFile('vggish-10086976.pth'), 'vggish-10086976.pth');
 * ckpt.tensor('features.0.weight').shape; // [64, 1, 3, 3]
 */
export function parseCheckpoint(bytes: Uint8Array, path: string): SafetensorsFile & { format: WeightsFormat } {
  const globals = allowedGlobals(path);
  const storages = new Map<string, Storage>();
  let root: unknown;
  let format: WeightsFormat;
  const kind = sniffWeights(bytes);
  if (kind === 'zip') {
    format = 'torch-zip';
    const members = readZip(bytes, path);
    const pkl = [...members.keys()].find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
    if (!pkl) throw fail(path, 'zip archive without data.pkl: not a torch.save checkpoint');
    const prefix = pkl.slice(0, -'data.pkl'.length);
    const order = members.get(`${prefix}byteorder`);
    if (order && new TextDecoder().decode(order.read()).trim() !== 'little') throw fail(path, 'big-endian torch checkpoints are not supported');
    root = unpickle(members.get(pkl)!.read(), 0, {
      globals,
      where: `${path} (${pkl})`,
      persistentLoad: (pid) => {
        const s = storageFromPid(pid, path, storages);
        if (!s.bytes) {
          const m = members.get(`${prefix}data/${s.key}`);
          if (!m) throw fail(path, `storage ${s.key} is missing from the archive (${prefix}data/${s.key})`);
          s.bytes = m.read();
        }
        return s;
      },
    }).value;
  } else if (kind === 'pickle') {
    const first = unpickle(bytes, 0, { globals, where: path });
    if (first.value === 0x1950a86a20f9469cfc6cn) {
      format = 'torch-legacy';
      let at = unpickle(bytes, first.end, { globals, where: path }).end; // protocol version
      at = unpickle(bytes, at, { globals, where: path }).end; // sys_info
      const main = unpickle(bytes, at, { globals, where: path, persistentLoad: (pid) => storageFromPid(pid, path, storages) });
      root = main.value;
      const keys = unpickle(bytes, main.end, { globals, where: path });
      let p = keys.end;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (const key of keys.value as string[]) {
        const s = storages.get(String(key));
        if (!s || p + 8 > bytes.byteLength) throw fail(path, `truncated legacy checkpoint: storage ${String(key)} is missing`);
        const numel = Number(view.getBigInt64(p, true));
        const len = numel * ITEM_SIZE[s.dtype]!;
        if (p + 8 + len > bytes.byteLength) throw fail(path, `truncated legacy checkpoint: storage ${s.key} needs ${len} bytes at ${p + 8}, the file has ${bytes.byteLength}`);
        s.bytes = bytes.subarray(p + 8, p + 8 + len);
        p += 8 + len;
      }
    } else {
      format = 'pickle';
      root = first.value;
    }
  } else {
    throw fail(path, 'not a PyTorch checkpoint (zip), a pickle or a safetensors file');
  }

  let dict = root;
  if (dict instanceof Map) {
    for (const key of ['model_state', 'state_dict', 'model']) {
      if (dict.get(key) instanceof Map) {
        dict = dict.get(key);
        break;
      }
    }
  }
  const caffe2 = format === 'pickle' && root instanceof Map && (root.get('blobs') instanceof Map || path.endsWith('.pkl'));
  if (caffe2) {
    format = 'caffe2-pickle';
    dict = root instanceof Map && root.get('blobs') instanceof Map ? root.get('blobs') : root;
  }
  const found = new Map<string, TensorRef | NdArray>();
  collect(dict, '', found);
  if (!found.size) throw fail(path, 'the checkpoint holds no tensors or arrays (expected a state dict)');

  const entries = new Map<string, SafetensorsEntry>();
  const data = new Map<string, Uint8Array>();
  for (let [name, v] of found) {
    if (caffe2) {
      if (name.endsWith('_momentum')) continue;
      name = caffe2ToPytorchName(name);
      if (!PARAM_SUFFIXES.some((s) => name.endsWith(s))) continue;
    } else if (name.startsWith('module.')) {
      name = name.slice('module.'.length);
    }
    let dtype: string;
    let shape: number[];
    let raw: Uint8Array;
    if (v instanceof NdArray) {
      ({ dtype, shape, bytes: raw } = v);
    } else {
      const s = v.storage;
      if (!s.bytes) throw fail(path, `tensor ${name}: storage ${s.key} has no data`);
      const size = ITEM_SIZE[s.dtype]!;
      if (s.bytes.length < s.numel * size) throw fail(path, `tensor ${name}: storage ${s.key} holds ${s.bytes.length} bytes, expected ${s.numel * size}`);
      let last = v.offset;
      for (let d = 0; d < v.shape.length; d++) last += (v.shape[d]! - 1) * v.stride[d]!;
      if (v.shape.some((d) => d === 0)) last = v.offset - 1;
      if (last >= s.numel) throw fail(path, `tensor ${name} [${v.shape.join(', ')}] reaches past the end of its storage (${s.numel} elements)`);
      dtype = s.dtype;
      shape = v.shape;
      raw = gather(s.bytes, size, v.shape, v.stride, v.offset);
    }
    entries.set(name, { name, dtype, shape, begin: 0, end: raw.length });
    data.set(name, raw);
  }
  return {
    path,
    format,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    metadata: {},
    entries,
    tensor(name) {
      const entry = entries.get(name);
      if (!entry) throw fail(path, `no tensor ${name}`);
      return { shape: [...entry.shape], data: decodeTensorData(entry, data.get(name)!, path) };
    },
  };
}

/**
 * Any weights file `models build --weights` takes: safetensors, PyTorch `.pth`/`.pyth` or a
 * Caffe2 `.pkl`, told apart by content.
 *
 * @example
 * const file = await readWeightsFile('SLOWFAST_8x8_R50.pkl');
 */
export async function readWeightsFile(path: string): Promise<SafetensorsFile & { format: WeightsFormat }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `${path}: cannot read weights file (${(err as Error).message})`, { where: { file: path }, cause: err });
  }
  return sniffWeights(bytes) === 'safetensors' ? { ...parseSafetensors(bytes, path), format: 'safetensors' } : parseCheckpoint(bytes, path);
}

/**
 * Tells safetensors (8-byte little-endian header length, then a JSON object) from a torch zip
 * (`PK\x03\x04`) or a pickle (PROTO 2..5). Safetensors is tried first: its length bytes may
 * begin with 0x80 too.
 */
export function sniffWeights(bytes: Uint8Array): 'safetensors' | 'zip' | 'pickle' | 'unknown' {
  if (bytes.length >= 9 && bytes[8] === 0x7b) {
    const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
    if (len <= BigInt(bytes.length - 8)) return 'safetensors';
  }
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'zip';
  if (bytes[0] === 0x80 && bytes[1]! >= 2 && bytes[1]! <= 5) return 'pickle';
  return 'unknown';
}

/**
 * Caffe2 stores some weights with fewer dimensions than PyTorch; as SlowFast's loader does, a
 * tensor whose element count fits is given the expected shape (trailing 1s).
 */
export function conformShapes(file: SafetensorsFile, expected: ReadonlyMap<string, readonly number[]>): void {
  for (const [name, shape] of expected) {
    const e = file.entries.get(name);
    if (!e || e.shape.length >= shape.length) continue;
    const n = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
    if (n(e.shape) === n(shape)) e.shape = [...shape];
  }
}
