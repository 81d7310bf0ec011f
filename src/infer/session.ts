import ort from 'onnxruntime-node';
import { availableParallelism } from 'node:os';
import { ClipstreamError } from '../errors.js';
import type { WarningHandler } from '../types.js';
import { defaultWarningHandler } from '../types.js';

export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

/** Parses `auto`, `cpu`, `cuda` or `cuda:N`; throws naming the option otherwise. */
export function parseDevice(value: unknown, name = 'options.device'): { kind: 'auto' | 'cpu' | 'cuda'; deviceId: number } {
  if (value === 'auto' || value === 'cpu') return { kind: value, deviceId: 0 };
  if (typeof value === 'string') {
    const m = /^cuda(?::(\d+))?$/.exec(value);
    if (m) return { kind: 'cuda', deviceId: m[1] ? Number(m[1]) : 0 };
  }
  throw new ClipstreamError(
    'ERR_INVALID_OPTION',
    `Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for ${name} but received ${typeof value === 'string' ? `'${value}'` : String(value)}`,
    { where: { option: name } },
  );
}

export interface SessionOptions {
  device?: Device | string;
  /** Threads ONNX Runtime uses inside one operator (default: all cores). */
  intraOpThreads?: number;
  /** Let idle ONNX Runtime threads spin (ORT's default). Off by default: the cores are shared with ffmpeg. */
  spin?: boolean;
  /**
   * ONNX Runtime's CPU memory arena (here and in ORT, default on; extract's models turn it off).
   * The arena never gives memory back, and every new batch shape grows it: with it, the visual
   * model alone went from 620 MB to 1.15 GB over eight batches of varying size. Off, a run's
   * buffers are freed after it, at some CPU per run (bench/RESULTS.md, "Models and memory").
   */
  memoryArena?: boolean;
  /**
   * Warn also when `device: 'auto'` falls back to the CPU. Off by default: `auto` means "CUDA if
   * there is one", so a machine without it is no surprise; asking for `cuda` always warns.
   */
  verbose?: boolean;
  onWarning?: WarningHandler;
}

export interface LoadedSession {
  session: ort.InferenceSession;
  /** The execution provider actually in use. */
  provider: 'cuda' | 'cpu';
  path: string;
  /** The options the session was created with (to open the same session elsewhere, e.g. a worker). */
  options: ort.InferenceSession.SessionOptions;
}

// One attempt and at most one warning per process: a run with two models must not print it twice, nor try twice.
let cudaFailure: { reason: string; cause: unknown } | null = null;
let cudaWarned = false;

/**
 * Opens something that holds an ONNX Runtime session (a session here, or one in a worker
 * thread) on the requested device. `cuda` and `auto` first try the CUDA execution provider;
 * when it cannot load (no GPU, no CUDA libraries, a CPU-only build of onnxruntime-node), the
 * CPU is used instead and one warning per process says why. `open` receives the session
 * options to use and is called at most twice.
 */
export async function openOnDevice<T>(
  path: string,
  options: SessionOptions,
  open: (sessionOptions: ort.InferenceSession.SessionOptions) => Promise<T>,
): Promise<{ value: T; provider: 'cuda' | 'cpu'; options: ort.InferenceSession.SessionOptions }> {
  const device = parseDevice(options.device ?? 'auto');
  const onWarning = options.onWarning ?? defaultWarningHandler;
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: options.intraOpThreads ?? availableParallelism(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // Idle ORT threads sleep instead of spinning: the cores are shared with the ffmpeg decoders,
    // and spinning threads take CPU from them (bench: about 10% more CPU per clip with spinning).
    ...(options.spin ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
    enableCpuMemArena: options.memoryArena ?? true,
  };
  if (device.kind !== 'cpu' && cudaFailure === null) {
    // ONNX Runtime logs its own multi-line error when the CUDA provider library is absent;
    // our one warning below says it better, so its logger is quietened for this attempt.
    const level = ort.env.logLevel;
    ort.env.logLevel = 'fatal';
    try {
      const cudaOptions: ort.InferenceSession.SessionOptions = {
        ...base,
        logSeverityLevel: 4,
        executionProviders: [{ name: 'cuda', deviceId: device.deviceId } as ort.InferenceSession.ExecutionProviderConfig],
      };
      return { value: await open(cudaOptions), provider: 'cuda', options: cudaOptions };
    } catch (err) {
      cudaFailure ??= { reason: (err as Error).message.split('\n')[0]!, cause: err };
    } finally {
      ort.env.logLevel = level ?? 'warning';
    }
  }
  // `auto` on a machine without CUDA is the expected case: quiet unless asked (verbose).
  if (device.kind !== 'cpu' && cudaFailure && !cudaWarned && (device.kind === 'cuda' || options.verbose)) {
    cudaWarned = true;
    onWarning(
      new ClipstreamError(
        'ERR_MODEL',
        `CUDA execution provider could not be loaded (${cudaFailure.reason}); running on CPU. ` +
          `For GPU inference install onnxruntime-node's CUDA provider and CUDA 12 / cuDNN 9 (see docs/gpu.md).`,
        { cause: cudaFailure.cause, where: { file: path } },
      ),
    );
  }
  const cpuOptions: ort.InferenceSession.SessionOptions = { ...base, executionProviders: ['cpu'] };
  try {
    return { value: await open(cpuOptions), provider: 'cpu', options: cpuOptions };
  } catch (err) {
    throw new ClipstreamError('ERR_MODEL', `cannot load model ${path}: ${(err as Error).message}`, { cause: err, where: { file: path } });
  }
}

/**
 * Opens an ONNX Runtime session in this thread on the requested device (see openOnDevice).
 *
 * @example
 * const { session, provider } = await loadSession('models/vggish_small.onnx', { device: 'auto' });
 */
export async function loadSession(path: string, options: SessionOptions = {}): Promise<LoadedSession> {
  const { value: session, provider, options: used } = await openOnDevice(path, options, (o) => ort.InferenceSession.create(path, o));
  return { session, provider, path, options: used };
}
