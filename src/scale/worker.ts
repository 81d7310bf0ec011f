/**
 * A queue worker: takes unit jobs from BullMQ, runs each with the job's own code, and
 * acknowledges on success. Retries, backoff and stalled-job recovery are BullMQ's: a worker
 * killed mid-unit stops renewing its job lock, and after `lockSeconds` the job goes back to the
 * queue for another worker (which resumes the unit from its journal).
 */
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { ClipstreamError } from '../errors.js';
import { checkRedis, DEFAULT_QUEUE, redisConnection, type UnitJobData } from './queue.js';

/** A unit the worker should not retry (it cannot get better): BullMQ fails it at once. */
export class PermanentUnitError extends UnrecoverableError {}

export type UnitRunner = (data: UnitJobData, signal: AbortSignal) => Promise<Record<string, unknown>>;

export interface WorkerOptions {
  redis: string;
  queue?: string;
  /** Units run at once by this worker; default 1. */
  concurrency?: number;
  /** Job lock time: a worker silent this long is taken for dead and its unit handed out again. Default 30. */
  lockSeconds?: number;
  /** Aborting stops taking units and waits for the units in hand (see `stop`). */
  signal?: AbortSignal;
  /** Called on every unit event, for the worker's log. */
  onEvent?: (line: string) => void;
  /** Stop (gracefully) once nothing waits in the queue: for batch jobs of workers that should end. */
  exitWhenDrained?: boolean;
}

export interface WorkerHandle {
  /** Resolves once the worker has stopped. */
  done: Promise<{ completed: number; failed: number }>;
  /** Stops at once: units in hand are aborted and go back to the queue, not counted as a failed try. */
  stop(): void;
}

/**
 * Starts a worker that runs `run` for every unit job. Aborting `signal` is a graceful stop:
 * no new units, the units in hand finish, then `done` resolves; `stop()` during that returns
 * the units in hand to the queue instead.
 *
 * @example
 * const w = await startWorker({ redis: 'redis://127.0.0.1:6379', concurrency: 2 }, runUnit);
 * await w.done;
 */
export async function startWorker(options: WorkerOptions, run: UnitRunner): Promise<WorkerHandle> {
  await checkRedis(options.redis);
  const lockMs = Math.round((options.lockSeconds ?? 30) * 1000);
  const hard = new AbortController();
  const log = options.onEvent ?? (() => {});
  let completed = 0;
  let failed = 0;

  const processor = async (job: Job<UnitJobData>, token?: string) => {
    const started = Date.now();
    log(`start ${job.data.unit} (try ${job.attemptsMade + 1})`);
    try {
      return await run(job.data, hard.signal);
    } catch (err) {
      if (hard.signal.aborted) {
        // Handed back, not failed: another worker (or this one, restarted) takes it up.
        await job.moveToDelayed(Date.now(), token);
        log(`returned ${job.data.unit} to the queue (stopped after ${((Date.now() - started) / 1000).toFixed(1)} s)`);
        throw new DelayedError();
      }
      throw err;
    }
  };
  const worker = new Worker<UnitJobData>(options.queue ?? DEFAULT_QUEUE, processor, {
    connection: redisConnection(options.redis),
    concurrency: options.concurrency ?? 1,
    lockDuration: lockMs,
    stalledInterval: Math.max(1000, Math.round(lockMs / 2)),
    // A unit whose worker died a few times is still a good unit: only errors count as tries.
    maxStalledCount: 10,
    autorun: false,
  });
  worker.on('completed', (job, result: Record<string, unknown>) => {
    completed++;
    log(`done ${job.data.unit}${result?.summary ? `: ${String(result.summary)}` : ''}`);
  });
  worker.on('failed', (job, err) => {
    if (err instanceof DelayedError || err.name === 'DelayedError') return;
    const final = !job || job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError;
    if (final) failed++;
    log(`${final ? 'failed' : 'will retry'} ${job?.data.unit ?? '?'}: ${err.message}`);
  });
  worker.on('stalled', (id) => log(`job ${id} stalled (its worker stopped answering); back in the queue`));
  worker.on('error', (err) => log(`error: ${err.message}`));

  let closing: Promise<void> | null = null;
  const close = (force: boolean) => (closing ??= worker.close(force));
  if (options.exitWhenDrained) {
    const queue = new Queue(options.queue ?? DEFAULT_QUEUE, { connection: redisConnection(options.redis) });
    // Retries waiting out their backoff are still work: only an empty wait list and no delayed unit end it.
    worker.on('drained', () => {
      void queue.getJobCounts('waiting', 'prioritized', 'delayed').then(
        (c) => {
          if ((c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0) > 0) return;
          log('queue drained: stopping once the units in hand are done');
          void close(false).finally(() => queue.close());
        },
        () => {},
      );
    });
  }
  options.signal?.addEventListener('abort', () => void close(false), { once: true });
  const running = worker.run();
  const done = (async () => {
    await running;
    await closing;
    return { completed, failed };
  })();
  return {
    done,
    stop() {
      hard.abort(new ClipstreamError('ERR_PIPELINE', 'worker stopped'));
      void close(false);
    },
  };
}
