/**
 * The one model runner: every ONNX model of the library (extract's feature models, the face
 * detector and scorers, segments' frame models) runs through `ModelRunner`.
 *
 * - **Thread.** onnxruntime-node's `session.run` returns a promise but computes on the calling
 *   thread, blocking the event loop (and with it the ffmpeg pipes) for the whole inference. The
 *   session therefore lives in a worker thread by default (`thread: 'worker'`); `thread: 'main'`
 *   runs it here (a caller that wants it, and the bench's comparison).
 * - **Device.** CUDA first when asked (`cuda`, `cuda:N`, `auto`), else the CPU, with one warning
 *   per process (`openOnDevice`).
 * - **Errors.** A failed run throws `ERR_INFERENCE` naming the model file and the item's key,
 *   with the cause kept.
 * - **Batching** by backpressure, never by a timer: `batchStage` for a stream of items,
 *   `BatchQueue` for callers that submit items one by one.
 * - **Tensors** are packed with the helpers of `tensors.ts`.
 */
import ort from 'onnxruntime-node';
import { ClipstreamError } from '../errors.js';
import { defaultWarningHandler } from '../types.js';
import { type GraphInfo, readGraph } from './graph.js';
import { openOnDevice, type SessionOptions } from './session.js';
import { WorkerSession } from './worker-session.js';

export { batchStage } from './batcher.js';
export { BatchQueue } from './batch-queue.js';

/** One named input: float32, or uint8 for a model that takes bytes. */
export interface Feed {
  data: Float32Array | Uint8Array;
  dims: number[];
}
export type Feeds = Record<string, Feed>;
export type ModelOutputs = Record<string, { data: Float32Array; dims: number[] }>;

export interface ModelRunnerOptions extends SessionOptions {
  /** Where `session.run` computes: a worker thread (default, keeps the event loop free) or this thread. */
  thread?: 'worker' | 'main';
  /**
   * When the worker thread cannot be used, warn and run in this thread instead of failing
   * (default false): still correct, only without the overlap.
   */
  mainThreadFallback?: boolean;
}

/** What a run is about, for its error message: the item's key and the batch in words. */
export interface RunContext {
  /** Key of the item (or of the first item of the batch) the run is for. */
  key?: string;
  /** The batch in words, e.g. `a batch of 4 frame(s) of 320x240`. */
  batch?: string;
}

export interface InferenceResult {
  outputs: ModelOutputs;
  /** The inputs, handed back: on the worker thread their buffers went there and back, so reuse these. */
  feeds: Feeds;
}

/**
 * An opened model: `run` takes named inputs and returns the named outputs.
 *
 * @example
 * const m = await ModelRunner.open('models/face_detector_synthetic.onnx', { device: 'auto' });
 * const { outputs } = await m.run({ input: { data, dims: [1, 3, 240, 320] } }, ['score_8'], { key: 'clip-0/12' });
 * await m.close();
 */
export class ModelRunner {
  readonly path: string;
  readonly provider: 'cpu' | 'cuda';
  readonly thread: 'worker' | 'main';
  /** The model's declared interface (inputs, outputs, metadata). */
  readonly graph: GraphInfo;
  /** Names the model in messages: `model`, `face detector`, `scorer clip`. */
  readonly what: string;
  private worker: WorkerSession | null;
  private session: ort.InferenceSession | null;

  private constructor(graph: GraphInfo, what: string, provider: 'cpu' | 'cuda', at: { worker: WorkerSession } | { session: ort.InferenceSession }) {
    this.path = graph.path;
    this.graph = graph;
    this.what = what;
    this.provider = provider;
    this.worker = 'worker' in at ? at.worker : null;
    this.session = 'session' in at ? at.session : null;
    this.thread = this.worker ? 'worker' : 'main';
  }

  /**
   * Opens `path` on the requested device and thread. `graph` is the interface when the caller
   * has read it already (else it is read here); `what` names the model in errors.
   */
  static async open(path: string, options: ModelRunnerOptions = {}, o: { graph?: GraphInfo; what?: string } = {}): Promise<ModelRunner> {
    const what = o.what ?? 'model';
    const graph = o.graph ?? (await readGraph(path, what));
    if ((options.thread ?? 'worker') === 'worker') {
      try {
        const opened = await openOnDevice(path, options, (s) => WorkerSession.open(path, s));
        return new ModelRunner(graph, what, opened.provider, { worker: opened.value });
      } catch (err) {
        if (!options.mainThreadFallback) throw err;
        (options.onWarning ?? defaultWarningHandler)(
          new ClipstreamError('ERR_MODEL', `${path}: cannot run the model in a worker thread (${(err as Error).message}); running it in the main thread`, {
            cause: err,
            where: { file: path },
          }),
        );
      }
    }
    const opened = await openOnDevice(path, options, (s) => ort.InferenceSession.create(path, s));
    return new ModelRunner(graph, what, opened.provider, { session: opened.value });
  }

  /** True unless the model's first input has its batch dim fixed to 1. */
  get batched(): boolean {
    return this.graph.inputs[0]?.dims[0] !== 1;
  }

  /**
   * Runs the model. On the worker thread the inputs' buffers move there and back: use the
   * `feeds` of the result, not the arrays passed in. A failure throws `ERR_INFERENCE` with
   * `where: { file, key }` and the cause.
   */
  async run(feeds: Feeds, outputs: string[], context: RunContext = {}): Promise<InferenceResult> {
    const fail = (cause: unknown, message: string) =>
      new ClipstreamError(
        'ERR_INFERENCE',
        `${this.what} ${this.path} failed${context.batch ? ` on ${context.batch}` : ''}${context.key ? ` (${context.key})` : ''}: ${message}`,
        {
          cause,
          where: { file: this.path, ...(context.key === undefined ? {} : { key: context.key }) },
        },
      );
    if (this.worker) {
      const r = await this.worker.runFeeds(feeds, outputs);
      if (r.error !== undefined || !r.outputs) {
        const message = r.error || 'the inference worker returned no outputs';
        throw fail(new ClipstreamError('ERR_INFERENCE', message), message);
      }
      return { outputs: r.outputs, feeds: r.feeds };
    }
    if (!this.session) throw fail(new ClipstreamError('ERR_INFERENCE', 'session closed'), 'the model is closed');
    const tensors: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) {
      tensors[name] = f.data instanceof Uint8Array ? new ort.Tensor('uint8', f.data, f.dims) : new ort.Tensor('float32', f.data, f.dims);
    }
    let result: ort.InferenceSession.ReturnType;
    try {
      result = await this.session.run(tensors, outputs);
    } catch (err) {
      throw fail(err, (err as Error).message);
    }
    const out: ModelOutputs = {};
    for (const name of outputs) out[name] = { data: result[name]!.data as Float32Array, dims: result[name]!.dims.map(Number) };
    return { outputs: out, feeds };
  }

  async close(): Promise<void> {
    const { worker, session } = this;
    this.worker = null;
    this.session = null;
    await worker?.close();
    await session?.release();
  }
}

/**
 * Opens a model runner (see `ModelRunner.open`).
 *
 * @example
 * const runner = await openModelRunner('models/face_detector_synthetic.onnx', { device: 'cpu', thread: 'main' });
 */
export function openModelRunner(path: string, options: ModelRunnerOptions = {}, o: { graph?: GraphInfo; what?: string } = {}): Promise<ModelRunner> {
  return ModelRunner.open(path, options, o);
}
