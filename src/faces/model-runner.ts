/**
 * The face models (detector, scorers) run on the library's one model runner
 * (`src/infer/model-runner.ts`): worker thread by default, `thread: 'main'` on request, CUDA
 * then CPU, errors naming the model file and the frame. This file only reads the one-image
 * interface they need.
 */
import { ClipstreamError } from '../errors.js';
import { type GraphInfo, readGraph } from '../infer/graph.js';

export { ModelRunner, openModelRunner, type ModelRunnerOptions } from '../infer/model-runner.js';

/** Inputs, outputs and metadata of an ONNX graph, read from the file (no session needed). */
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
