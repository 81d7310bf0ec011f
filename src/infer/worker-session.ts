import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type ort from 'onnxruntime-node';

const require = createRequire(import.meta.url);

/**
 * onnxruntime-node's `session.run` returns a promise but computes on the calling thread: for
 * the whole inference the event loop is blocked, so ffmpeg's pipes are not drained, its
 * processes stall on a full pipe, and decoding cannot overlap with inference. The session
 * therefore lives in a worker thread. The code is plain CommonJS passed with `eval`, so it
 * runs the same from the TypeScript sources (tsx, vitest) and from `dist/`.
 */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session = null;
// A quiet attempt (openOnDevice's CUDA try, logSeverityLevel 4) quietens this thread's ORT logger too;
// the caller prints one clear warning instead of ORT's multi-line error.
const level = ort.env.logLevel;
if (workerData.options && workerData.options.logSeverityLevel >= 4) ort.env.logLevel = 'fatal';
ort.InferenceSession.create(workerData.path, workerData.options).then(
  (s) => { ort.env.logLevel = level || 'warning'; session = s; parentPort.postMessage({ type: 'ready' }); },
  (e) => { ort.env.logLevel = level || 'warning'; parentPort.postMessage({ type: 'failed', message: String(e && e.message || e) }); },
);
parentPort.on('message', async (m) => {
  if (m.type === 'close') {
    try { if (session) await session.release(); } finally { parentPort.postMessage({ type: 'closed' }); }
    return;
  }
  // Several named inputs (recurrent models: frame, states, ratio) or the one input of a feature model.
  const back = m.feeds ? [...new Set(Object.values(m.feeds).map((f) => f.data.buffer))] : [m.data.buffer];
  try {
    const feeds = {};
    if (m.feeds) for (const [k, f] of Object.entries(m.feeds)) feeds[k] = new ort.Tensor(f.data instanceof Uint8Array ? 'uint8' : 'float32', f.data, f.dims);
    else feeds[m.input] = new ort.Tensor(m.data instanceof Uint8Array ? 'uint8' : 'float32', m.data, m.dims);
    const out = await session.run(feeds, m.outputs);
    const outputs = {};
    // new Float32Array(typed array) copies in bulk; Float32Array.from would walk an iterator element by element.
    for (const name of m.outputs) outputs[name] = { data: new Float32Array(out[name].data), dims: Array.from(out[name].dims) };
    for (const name of m.outputs) back.push(outputs[name].data.buffer);
    parentPort.postMessage({ type: 'result', id: m.id, input: m.data, feeds: m.feeds, outputs }, back);
  } catch (e) {
    parentPort.postMessage({ type: 'result', id: m.id, input: m.data, feeds: m.feeds, error: String(e && e.message || e) }, back);
  }
});
`;

export interface WorkerRunResult {
  /** The input array, handed back (its buffer was moved to the worker and back, not copied). */
  input: Float32Array | Uint8Array;
  outputs?: Record<string, { data: Float32Array; dims: number[] }>;
  error?: string;
}

/** An ONNX Runtime session running in a worker thread; inputs and outputs move without copies. */
export class WorkerSession {
  private readonly worker: Worker;
  private readonly pending = new Map<number, (r: WorkerRunResult) => void>();
  private nextId = 1;
  private failure: Error | null = null;

  private constructor(worker: Worker) {
    this.worker = worker;
    worker.on('message', (m: { type: string; id?: number } & WorkerRunResult) => {
      if (m.type !== 'result') return;
      const done = this.pending.get(m.id!);
      this.pending.delete(m.id!);
      if (this.pending.size === 0) this.worker.unref();
      done?.(m);
    });
    const fail = (err: Error) => {
      this.failure = err;
      for (const [, done] of this.pending) done({ input: new Float32Array(0), error: err.message });
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`inference worker exited (code ${code})`)));
  }

  /** Starts a worker and opens the model in it with the given session options. */
  static open(path: string, options: ort.InferenceSession.SessionOptions): Promise<WorkerSession> {
    const worker = new Worker(WORKER_CODE, { eval: true, workerData: { path, options, ortPath: require.resolve('onnxruntime-node') } });
    return new Promise((resolve, reject) => {
      const onMessage = (m: { type: string; message?: string }) => {
        if (m.type === 'ready') {
          cleanup();
          worker.unref();
          resolve(new WorkerSession(worker));
        } else if (m.type === 'failed') {
          cleanup();
          void worker.terminate();
          reject(new Error(m.message));
        }
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
    });
  }

  /**
   * Runs the model on `data` (float32, or uint8 for a model that takes bytes; its whole buffer is transferred to the worker and comes back in
   * the result: the caller must not touch it until then). Never rejects: errors come back in
   * `error` together with the input.
   */
  run(inputName: string, data: Float32Array | Uint8Array, dims: number[], outputs: string[]): Promise<WorkerRunResult> {
    if (this.failure) return Promise.resolve({ input: data, error: this.failure.message });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      // Keep the process alive while a result is due; idle, the worker does not hold it open.
      this.worker.ref();
      this.worker.postMessage({ type: 'run', id, input: inputName, data, dims, outputs }, [data.buffer as ArrayBuffer]);
    });
  }

  /**
   * Runs the model on several named inputs (e.g. RVM's `src`, `r1i`..`r4i`, `downsample_ratio`).
   * Every input buffer is transferred and comes back in `feeds`; never rejects.
   *
   * @example
   * const r = await ws.runFeeds({ src: { data, dims: [1, 3, h, w] } }, ['pha']);
   */
  runFeeds(
    feeds: Record<string, { data: Float32Array; dims: number[] }>,
    outputs: string[],
  ): Promise<WorkerRunResult & { feeds?: Record<string, { data: Float32Array; dims: number[] }> }> {
    if (this.failure) return Promise.resolve({ input: new Float32Array(0), feeds, error: this.failure.message });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.worker.ref();
      const buffers = [...new Set(Object.values(feeds).map((f) => f.data.buffer as ArrayBuffer))];
      this.worker.postMessage({ type: 'run', id, feeds, outputs }, buffers);
    });
  }

  async close(): Promise<void> {
    if (this.failure) return;
    await new Promise<void>((resolve) => {
      const onMessage = (m: { type: string }) => {
        if (m.type === 'closed') {
          this.worker.off('message', onMessage);
          resolve();
        }
      };
      this.worker.on('message', onMessage);
      this.worker.ref();
      this.worker.postMessage({ type: 'close' });
    });
    this.failure = new Error('session closed');
    await this.worker.terminate();
  }
}
