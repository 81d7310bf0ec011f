import type { DeclaredTensor, GraphBuilder } from './onnx-graph.js';
import { ClipstreamError } from '../errors.js';

/** A model's declared interface, known without running it. */
export interface ModelDescription {
  inputs: DeclaredTensor[];
  outputs: DeclaredTensor[];
  /** Feature size of each `layer_k` output (its last declared dim). */
  layerSizes: Record<string, number>;
  metadata: Record<string, string>;
  parameterCount: number;
}

/** What an architecture declares, plus the PyTorch state dict (names and shapes) it is built from. */
export interface ArchitectureDescription extends ModelDescription {
  stateDictShapes: Map<string, number[]>;
}

/** A serialised model plus its description. */
export interface BuiltModel extends ModelDescription {
  bytes: Buffer;
}

/**
 * Reads a built graph's declared interface; layer sizes are the last dim of each layer output.
 *
 * @example
 * describeGraph(g, ['layer_0']).layerSizes; // { layer_0: 88 }
 */
export function describeGraph(g: GraphBuilder, layers: readonly string[]): ModelDescription {
  const outputs = g.declaredOutputs();
  const layerSizes: Record<string, number> = {};
  for (const name of layers) {
    const out = outputs.find((o) => o.name === name);
    const last = out?.dims[out.dims.length - 1];
    if (typeof last !== 'number') throw new ClipstreamError('ERR_MODEL', `Graph ${g.name} declares no fixed-size output ${name}`);
    layerSizes[name] = last;
  }
  return {
    inputs: g.declaredInputs(),
    outputs,
    layerSizes,
    metadata: g.metadataEntries(),
    parameterCount: g.parameterCount(),
  };
}
