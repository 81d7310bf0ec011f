import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import { ClipstreamError } from '../errors.js';
import { REQUIRED_METADATA, type AudioPreprocessing, type FeatureModelKind, type VisualPreprocessing } from './metadata.js';
import type { Dim } from './onnx-graph.js';

const { onnx } = onnxProto;

/** A graph input or output: name and dims, symbolic ones as their names (`batch`). */
export interface TensorInfo {
  name: string;
  dims: Dim[];
  /** Element type (`float32`, `uint8`, `float16`, ...; `unknown` for others). */
  type: TensorElementType;
}

export type TensorElementType = 'float32' | 'float16' | 'uint8' | 'int8' | 'int32' | 'int64' | 'unknown';

const ELEMENT_TYPES: Record<number, TensorElementType> = {
  [onnx.TensorProto.DataType.FLOAT]: 'float32',
  [onnx.TensorProto.DataType.FLOAT16]: 'float16',
  [onnx.TensorProto.DataType.UINT8]: 'uint8',
  [onnx.TensorProto.DataType.INT8]: 'int8',
  [onnx.TensorProto.DataType.INT32]: 'int32',
  [onnx.TensorProto.DataType.INT64]: 'int64',
};

/** What a clipstream ONNX model declares about itself. */
export interface ModelInfo {
  path: string;
  kind: FeatureModelKind;
  extractorName: string;
  dataset: string;
  /** `seeded:<seed>` or `imported:<sha256>`. */
  weights: string;
  preprocessing: VisualPreprocessing | AudioPreprocessing;
  /** Names of the feature outputs, in order (`layer_0..layer_4`). */
  layers: string[];
  /** Feature size of each layer, from the last dim of its graph output. */
  layerSizes: Record<string, number>;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  opset: number;
  /** Every metadata prop, verbatim. */
  metadata: Record<string, string>;
}

type Long = { toNumber(): number };
const toNumber = (v: number | Long | null | undefined): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

function tensorInfo(v: onnxProto.onnx.IValueInfoProto): TensorInfo {
  const dims = v.type?.tensorType?.shape?.dim ?? [];
  return {
    name: v.name ?? '',
    type: ELEMENT_TYPES[v.type?.tensorType?.elemType ?? 0] ?? 'unknown',
    dims: dims.map((d) => (d.dimParam ? d.dimParam : d.dimValue != null ? toNumber(d.dimValue) : '?')),
  };
}

function parseJson(text: string, key: string, fail: (m: string) => ClipstreamError): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw fail(`metadata ${key} is not valid JSON`);
  }
}

/**
 * Reads a model's interface and clipstream metadata without creating an inference session.
 * Throws ERR_MODEL naming the file when it is not ONNX or is not a clipstream model.
 *
 * @example
 * const info = await readModelInfo('models/vggish_small.onnx');
 * info.layerSizes.layer_4; // 128
 */
export async function readModelInfo(path: string): Promise<ModelInfo> {
  const fail = (message: string, cause?: unknown): ClipstreamError =>
    new ClipstreamError('ERR_MODEL', `Cannot use model ${path}: ${message}`, { cause, where: { file: path } });
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw fail((err as Error).message, err);
  }
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw fail(`not a valid ONNX model (${(err as Error).message})`, err);
  }
  // Protobuf decodes many random byte strings without error; a model needs at least a graph with outputs.
  const graphInputs = model.graph?.input ?? [];
  const graphOutputs = model.graph?.output ?? [];
  if (graphOutputs.length === 0 || graphInputs.length === 0 || toNumber(model.irVersion) === 0) {
    throw fail('not a valid ONNX model (no graph, inputs or outputs)');
  }

  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps) if (p.key) metadata[p.key] = p.value ?? '';
  const missing = REQUIRED_METADATA.filter((k) => metadata[k] === undefined);
  if (missing.length > 0) throw fail(`missing clipstream metadata ${missing.join(', ')}`);

  const kind = metadata['clipstream.kind'];
  if (kind !== 'visual' && kind !== 'audio') throw fail(`clipstream.kind is '${kind}', expected 'visual' or 'audio'`);
  const layers = parseJson(metadata.layers, 'layers', fail);
  if (!Array.isArray(layers) || layers.some((l) => typeof l !== 'string')) throw fail('metadata layers is not a list of names');
  const preprocessing = parseJson(metadata.preprocessing, 'preprocessing', fail);
  if (typeof preprocessing !== 'object' || preprocessing === null) throw fail('metadata preprocessing is not an object');

  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  // Older exporters list initializers among the inputs; they are not things a caller feeds.
  const inputs = graphInputs.filter((v) => !initializers.has(v.name)).map(tensorInfo);
  const outputs = graphOutputs.map(tensorInfo);
  const layerSizes: Record<string, number> = {};
  for (const layer of layers as string[]) {
    const out = outputs.find((o) => o.name === layer);
    if (!out) throw fail(`layer ${layer} is not a graph output`);
    const last = out.dims[out.dims.length - 1];
    if (typeof last !== 'number' || last <= 0) throw fail(`layer ${layer} has no fixed feature size (dims [${out.dims.join(', ')}])`);
    layerSizes[layer] = last;
  }

  const opset = model.opsetImport.find((o) => !o.domain)?.version;
  return {
    path,
    kind,
    extractorName: metadata.extractor_name,
    dataset: metadata.dataset,
    weights: metadata.weights,
    preprocessing: preprocessing as VisualPreprocessing | AudioPreprocessing,
    layers: layers as string[],
    layerSizes,
    inputs,
    outputs,
    opset: toNumber(opset),
    metadata,
  };
}
