import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type ort from 'onnxruntime-node';
import { ClipstreamError } from '../errors.js';

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
  // Every input buffer goes back with the result (moved, not copied), so the caller can reuse it.
  const back = [...new Set(Object.values(m.feeds).map((f) => f.data.buffer))];
  try {
    const feeds = {};
    for (const [k, f] of Object.entries(m.feeds)) feeds[k] = new ort.Tensor(f.data instanceof Uint8Array ? 'uint8' : 'float32', f.data, f.dims);
    const out = await session.run(feeds, m.outputs);
    const outputs = {};
    // new Float32Array(typed array) copies in bulk; Float32Array.from would walk an iterator element by element.
    for (const name of m.outputs) outputs[name] = { data: new Float32Array(out[name].data), dims: Array.from(out[name].dims) };
    for (const name of m.outputs) back.push(outputs[name].data.buffer);
    parentPort.postMessage({ type: 'result', id: m.id, feeds: m.feeds, outputs }, back);
  } catch (e) {
    parentPort.postMessage({ type: 'result', id: m.id, feeds: m.feeds, error: String(e && e.message || e) }, back);
  }
});
`;

/** One named input: float32, or uint8 for a model that takes bytes. */
export interface WorkerFeed {
  data: Float32Array | Uint8Array;
  dims: number[];
}

export interface WorkerRunResult {
  /** The inputs, handed back (their buffers were moved to the worker and back, not copied). */
  feeds: Record<string, WorkerFeed>;
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
      for (const [, done] of this.pending) done({ feeds: {}, error: err.message });
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new ClipstreamError('ERR_INFERENCE', `inference worker exited (code ${code})`)));
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
          reject(new ClipstreamError('ERR_MODEL', m.message ?? 'the model could not be opened in the worker'));
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
   * Runs the model on named inputs (one image, or e.g. RVM's `src`, `r1i`..`r4i`, `downsample_ratio`).
   * Every input buffer is transferred to the worker and comes back in `feeds` (the caller must not
   * touch it until then); never rejects: errors come back in `error`.
   *
   * @example
   * const r = await ws.runFeeds({ src: { data, dims: [1, 3, h, w] } }, ['pha']);
   */
  runFeeds(feeds: Record<string, WorkerFeed>, outputs: string[]): Promise<WorkerRunResult> {
    if (this.failure) return Promise.resolve({ feeds, error: this.failure.message });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      // Keep the process alive while a result is due; idle, the worker does not hold it open.
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
    this.failure = new ClipstreamError('ERR_INFERENCE', 'session closed');
    await this.worker.terminate();
  }
}
