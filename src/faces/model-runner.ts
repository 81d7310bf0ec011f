import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { ClipstreamError } from '../errors.js';
import { loadSession, openOnDevice, type SessionOptions } from '../infer/session.js';
import { WorkerSession } from '../infer/worker-session.js';

/** Inputs, outputs and metadata of an ONNX graph, read from the file (no session needed). */
export interface GraphInterface {
  inputName: string;
  inputDims: Array<number | string>;
  outputs: Array<{ name: string; dims: Array<number | string> }>;
  metadata: Record<string, string>;
}

type Long = { toNumber(): number };
const num = (v: number | Long | null | undefined): number => (v == null ? 0 : typeof v === 'number' ? v : v.toNumber());

/** Reads a model's one image input, its outputs and metadata; `what` names the model in errors. */
export async function readGraphInterface(path: string, what = 'model'): Promise<GraphInterface> {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnxProto.onnx.ModelProto.decode(await readFile(path));
  } catch (err) {
    throw new ClipstreamError('ERR_MODEL', `Cannot use ${what} ${path}: ${(err as Error).message}`, { cause: err, where: { file: path } });
  }
  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const dims = (v: onnxProto.onnx.IValueInfoProto) =>
    (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue != null ? num(d.dimValue) : '?'));
  const inputs = (model.graph?.input ?? []).filter((v) => !initializers.has(v.name));
  if (inputs.length !== 1 || !model.graph?.output?.length) {
    throw new ClipstreamError('ERR_MODEL', `Cannot use ${what} ${path}: expected one image input and some outputs, found ${inputs.length} input(s)`, {
      where: { file: path },
    });
  }
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? '';
  return {
    inputName: inputs[0]!.name ?? 'input',
    inputDims: dims(inputs[0]!),
    outputs: model.graph.output.map((o) => ({ name: o.name ?? '', dims: dims(o) })),
    metadata,
  };
}

export type ModelOutputs = Record<string, { data: Float32Array; dims: number[] }>;

/**
 * One float32 input in, named outputs back: the part of a session the face models use. On the
 * worker thread (the default) `session.run` does not block the event loop, so the ffmpeg pipes
 * keep flowing while a batch runs; `thread: 'main'` runs in this thread (bench comparison).
 */
export interface ModelRunner {
  readonly path: string;
  readonly provider: 'cpu' | 'cuda';
  /** Runs the model; `data`'s buffer may be moved to the worker: do not use it afterwards. */
  run(input: string, data: Float32Array, dims: number[], outputs: string[]): Promise<ModelOutputs>;
  close(): Promise<void>;
}

export interface ModelRunnerOptions extends SessionOptions {
  /** Where `session.run` computes: a worker thread (default) or this thread. */
  thread?: 'worker' | 'main';
}

/**
 * Opens a model on the requested device (CUDA, then CPU with one warning) in a worker thread or here.
 *
 * @example
 * const runner = await openModelRunner('models/face_detector_synthetic.onnx', { device: 'cpu' });
 * const out = await runner.run('input', data, [1, 3, 240, 320], ['score_8']);
 */
export async function openModelRunner(path: string, options: ModelRunnerOptions = {}): Promise<ModelRunner> {
  if ((options.thread ?? 'worker') === 'main') {
    const { session, provider } = await loadSession(path, options);
    return {
      path,
      provider,
      run: async (input, data, dims, outputs) => {
        const result = await session.run({ [input]: new ort.Tensor('float32', data, dims) }, outputs);
        const out: ModelOutputs = {};
        for (const name of outputs) out[name] = { data: result[name]!.data as Float32Array, dims: result[name]!.dims.map(Number) };
        return out;
      },
      close: () => session.release(),
    };
  }
  const { value: worker, provider } = await openOnDevice(path, options, (o) => WorkerSession.open(path, o));
  return {
    path,
    provider,
    run: async (input, data, dims, outputs) => {
      const r = await worker.run(input, data, dims, outputs);
      if (r.error !== undefined || !r.outputs) throw new Error(r.error ?? 'no outputs');
      return r.outputs;
    },
    close: () => worker.close(),
  };
}
