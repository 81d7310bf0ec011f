import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import { ClipstreamError } from '../errors.js';

/** A graph input or output: name, dims (symbolic ones by name, e.g. `batch`) and element type. */
export interface GraphTensor {
  name: string;
  dims: Array<number | string>;
  type: 'float32' | 'float16' | 'uint8' | 'int8' | 'int32' | 'int64' | 'unknown';
}

/** What an ONNX file declares: its real inputs (initializers left out), outputs and metadata. */
export interface GraphInfo {
  path: string;
  inputs: GraphTensor[];
  outputs: GraphTensor[];
  metadata: Record<string, string>;
}

const { DataType } = onnxProto.onnx.TensorProto;
const TYPES: Record<number, GraphTensor['type']> = {
  [DataType.FLOAT]: 'float32',
  [DataType.FLOAT16]: 'float16',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
};

type Long = { toNumber(): number };
const num = (v: number | Long | null | undefined): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

function tensor(v: onnxProto.onnx.IValueInfoProto): GraphTensor {
  return {
    name: v.name ?? '',
    dims: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue != null ? num(d.dimValue) : '?')),
    type: TYPES[v.type?.tensorType?.elemType ?? 0] ?? 'unknown',
  };
}

/**
 * Reads a model's interface from the file, no session needed; `what` names the model in errors.
 *
 * @example
 * const g = await readGraph('models/rvm_synthetic.onnx'); // g.inputs[0].name === 'src'
 */
export async function readGraph(path: string, what = 'model'): Promise<GraphInfo> {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnxProto.onnx.ModelProto.decode(await readFile(path));
  } catch (err) {
    throw new ClipstreamError('ERR_MODEL', `Cannot use ${what} ${path}: ${(err as Error).message}`, { cause: err, where: { file: path } });
  }
  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? '';
  return {
    path,
    inputs: (model.graph?.input ?? []).filter((v) => !initializers.has(v.name)).map(tensor),
    outputs: (model.graph?.output ?? []).map(tensor),
    metadata,
  };
}

/** Inputs, outputs and metadata of a one-image ONNX graph, read from the file (no session needed). */
export interface GraphInterface {
  inputName: string;
  inputDims: Array<number | string>;
  outputs: Array<{ name: string; dims: Array<number | string> }>;
  metadata: Record<string, string>;
  /** Everything the file declares, for the model runner. */
  graph: GraphInfo;
}

/** Reads a model's one image input, its outputs and metadata; `what` names the model in errors. */
export async function readGraphInterface(path: string, what = 'model'): Promise<GraphInterface> {
  const graph = await readGraph(path, what);
  if (graph.inputs.length !== 1 || graph.outputs.length === 0) {
    throw new ClipstreamError('ERR_MODEL', `Cannot use ${what} ${path}: expected one image input and some outputs, found ${graph.inputs.length} input(s)`, {
      where: { file: path },
    });
  }
  return {
    inputName: graph.inputs[0]!.name,
    inputDims: graph.inputs[0]!.dims,
    outputs: graph.outputs.map((o) => ({ name: o.name, dims: o.dims })),
    metadata: graph.metadata,
    graph,
  };
}
