import type { Sample, StreamItem } from '../types.js';
import { generatorStage } from '../stage/generator.js';
import { validateInteger } from '../util/validate.js';

/** `T`: the items flowing through; `S`: the ones batched (default: ACAV samples). */
export interface BatchStageOptions<T = StreamItem, S extends T = T> {
  /** Most samples handed to `run` at once. */
  batchSize: number;
  /** Samples queued while a batch runs (default: `batchSize`); this bounds memory. */
  queueSize?: number;
  /** Which items this stage works on; everything else passes through in order. */
  accept: (item: T) => item is S;
  /** Processes a batch in place (sets features or `failure` on each sample). */
  run: (batch: S[], signal: AbortSignal) => Promise<void>;
  /** Called with the size of every batch, for statistics. */
  onBatch?: (size: number) => void;
  /**
   * Batches `run` may have at once (default 1). With 2, a second batch starts while the first
   * runs, but only once a full one is queued: a model on a worker thread then finds its next
   * batch waiting instead of idling through the hand-off back and forth (see extractFeatures).
   */
  inFlight?: 1 | 2;
}

/**
 * Stage that batches by backpressure, never by a timer: while a batch runs, samples queue
 * up (at most `queueSize`); when `run` is free again it takes what is queued, up to
 * `batchSize`. A fast producer therefore fills batches and a slow one gets small batches
 * with low latency. Item order is kept, pass-through items included.
 *
 * @example
 * batchStage({ batchSize: 8, accept: isLive, run: async (batch) => { ... } })
 */
export function batchStage<T = StreamItem, S extends T = Sample & T>(options: BatchStageOptions<T, S>) {
  const batchSize = validateInteger(options.batchSize, 'options.batchSize', 1, 4096);
  const queueSize = validateInteger(options.queueSize ?? batchSize, 'options.queueSize', 1, 65536);
  return generatorStage<T, T>(
    (source, signal) => batches<T, S>(source, signal, batchSize, queueSize, options),
    // The stage's own queue does the buffering; Node's buffers stay minimal.
    { writableHighWaterMark: 1, readableHighWaterMark: 1 },
  );
}

interface Running<T> {
  /** The items taken from the queue (pass-through ones included), in order. */
  group: T[];
  /** The run of their accepted samples; null when there were none. */
  done: Promise<void> | null;
}

async function* batches<T, S extends T>(
  source: AsyncIterable<T>,
  signal: AbortSignal,
  batchSize: number,
  queueSize: number,
  options: BatchStageOptions<T, S>,
): AsyncGenerator<T, void, undefined> {
  const queue: T[] = [];
  /** How many items of `queue` are accepted ones. */
  let accepted = 0;
  const inFlight = options.inFlight ?? 1;
  /** Started batches, oldest first; their items go downstream in this order. */
  const running: Running<T>[] = [];
  let done = false;
  /** Set when the consumer side stops early, so that a producer waiting for room gives up. */
  let stopped = false;
  let failure: { error: unknown } | null = null;
  let wakeConsumer: (() => void) | null = null;
  let wakeProducer: (() => void) | null = null;
  const notify = () => {
    const w = wakeConsumer;
    wakeConsumer = null;
    w?.();
  };

  const pump = (async () => {
    try {
      for await (const item of source) {
        queue.push(item);
        if (options.accept(item)) accepted++;
        // A full batch is waiting while another runs: start it now (inFlight 2).
        if (running.length > 0 && mayStart()) running.push(start());
        notify();
        while (queue.length >= queueSize && !signal.aborted && !stopped) {
          await new Promise<void>((resolve) => {
            wakeProducer = resolve;
          });
        }
        if (signal.aborted || stopped) return;
      }
    } catch (error) {
      failure = { error };
    } finally {
      done = true;
      notify();
    }
  })();

  const releaseProducer = () => {
    const w = wakeProducer;
    wakeProducer = null;
    w?.();
  };
  signal.addEventListener(
    'abort',
    () => {
      releaseProducer();
      notify();
    },
    { once: true },
  );

  // Whether a batch may start now: the model is free, or (inFlight 2) one runs and a full batch waits.
  function mayStart(): boolean {
    if (queue.length === 0 || signal.aborted || failure) return false;
    return running.length === 0 || (running.length < inFlight && accepted >= batchSize);
  }

  // Takes what is queued now, up to batchSize accepted samples, keeping order, and starts it.
  function start(): Running<T> {
    const group: T[] = [];
    const batch: S[] = [];
    while (queue.length > 0 && batch.length < batchSize) {
      const item = queue.shift()!;
      group.push(item);
      if (options.accept(item)) batch.push(item);
    }
    accepted -= batch.length;
    releaseProducer();
    if (batch.length === 0) return { group, done: null };
    options.onBatch?.(batch.length);
    const done = options.run(batch, signal);
    // Awaited below; until then a rejection must not count as unhandled.
    done.catch(() => {});
    return { group, done };
  }

  try {
    for (;;) {
      if (failure) throw (failure as { error: unknown }).error;
      if (running.length === 0) {
        if (queue.length === 0) {
          if (done) break;
          await new Promise<void>((resolve) => {
            wakeConsumer = resolve;
          });
          continue;
        }
        if (signal.aborted) return;
        running.push(start());
      }
      const finished = running[0]!;
      if (finished.done) await finished.done;
      running.shift();
      // The model is free: the next batch (what is queued now) starts before this one's items
      // go downstream, so handing them on overlaps with the next run. With another still running
      // (inFlight 2), only a full one starts.
      if (mayStart()) running.push(start());
      for (const item of finished.group) yield item;
    }
  } finally {
    // Without this a failed batch with a full queue left the producer waiting for room forever.
    stopped = true;
    releaseProducer();
    // Stopped early (error, abort, downstream gone): let the batches already started finish first.
    for (const r of running) if (r.done) await r.done.catch(() => {});
    await pump;
  }
}
