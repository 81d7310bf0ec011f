import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ClipstreamError } from '../errors.js';
import { unpickle, weightsFileError as fail } from './pickle.js';
import { allowedGlobals, gather, NdArray, storageFromPid, TensorRef, type Storage } from './pickle-objects.js';
import { decodeTensorData, ITEM_SIZE, parseSafetensors, type SafetensorsEntry, type SafetensorsFile } from './safetensors.js';
import { caffe2ToPytorchName, PARAM_SUFFIXES } from './caffe2-names.js';
import { readZip } from './zip.js';

export { caffe2ToPytorchName };

/**
 * Published checkpoints read without Python: PyTorch `.pth`/`.pyth` (`torch.save`'s zip of
 * pickles and raw storages, or its legacy single-stream format) and SlowFast's Caffe2 `.pkl`
 * (a pickle of numpy arrays). Both come back as the `SafetensorsFile` the builders already take,
 * so every check of `selectStateDict` applies unchanged.
 */

/** Tensors and arrays by dotted name (nested dicts are joined with '.'). */
function collect(value: unknown, prefix: string, out: Map<string, TensorRef | NdArray>): void {
  if (!(value instanceof Map)) return;
  for (const [k, v] of value) {
    const name = prefix + String(k);
    if (v instanceof TensorRef || v instanceof NdArray) out.set(name, v);
    else if (v instanceof Map) collect(v, `${name}.`, out);
  }
}

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
        if (p + 8 + len > bytes.byteLength)
          throw fail(path, `truncated legacy checkpoint: storage ${s.key} needs ${len} bytes at ${p + 8}, the file has ${bytes.byteLength}`);
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
