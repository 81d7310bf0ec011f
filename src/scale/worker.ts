/**
 * A queue worker: takes unit jobs from BullMQ, runs each with the job's own code, and
 * acknowledges on success. Retries, backoff and stalled-job recovery are BullMQ's: a worker
 * killed mid-unit stops renewing its job lock, and after `lockSeconds` the job goes back to the
 * queue for another worker (which resumes the unit from its journal).
 */
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { ClipstreamError, isErrorCode, type ErrorCode } from '../errors.js';
import type { JobDefinition } from '../run/job-definition.js';
import type { UnitResult } from '../stage/job-run.js';
import type { WarningHandler } from '../types.js';
import { Slots } from '../stage/slots.js';
import { FeedLanes, HandedBackError } from './lanes.js';
import { checkRedis, DEFAULT_QUEUE, redisConnection, type UnitJobData } from './queue.js';
import { admitUnit, type TrustPolicy, UnitRefusedError } from './unit-trust.js';

/**
 * A unit the worker should not retry (it cannot get better): BullMQ fails it at once. Its `name`
 * is `UnrecoverableError`, which is how BullMQ knows such an error; `code` says why it failed.
 */
export class PermanentUnitError extends ClipstreamError {
  constructor(message: string, code: ErrorCode) {
    super(code, message);
    this.name = 'UnrecoverableError';
  }
}

/** A unit another live run holds: handed back to the queue for later, not a failed try. */
export class UnitBusyError extends ClipstreamError {
  constructor(message: string) {
    super('ERR_BUSY', message);
    this.name = 'UnitBusyError';
  }
}

/** The ErrorCode a unit's result or error carries; a Node errno code (`ENOENT`) is an I/O failure. */
const codeOf = (code: unknown, fallback: ErrorCode): ErrorCode => (isErrorCode(code) ? code : code === undefined ? fallback : 'ERR_IO');

// Errors no retry can fix (bad options, a model that cannot be opened): the unit fails at once.
const PERMANENT_CODES = new Set(['ERR_INVALID_OPTION', 'ERR_MODEL', 'ENOENT']);
// A unit whose input is not there: no retry brings it.
const MISSING = /\bmissing\b|does not exist|not found|no such file|ENOENT/i;

export type UnitVerdict =
  | { kind: 'done'; summary: string }
  | { kind: 'retry'; reason: string }
  | { kind: 'permanent'; reason: string }
  | { kind: 'busy'; reason: string };

/**
 * What the queue does with a unit, from the unit's result in the job's report (any job): done
 * and skipped-as-finished are acknowledged; a unit locked by another live run goes back to the
 * queue; a failure is permanent when the job says so (`permanent: true`, an error `code` no
 * retry fixes) or its input is missing, and otherwise tried again.
 */
export function unitVerdict(r: UnitResult | undefined, unit: string): UnitVerdict {
  if (!r) return { kind: 'retry', reason: `${unit}: the job reported no result for this unit` };
  const reason = String(r.error ?? r.status);
  const summary = typeof r.summary === 'string' ? r.summary : r.status;
  if (r.outcome === 'done') return { kind: 'done', summary };
  if (r.outcome === 'skipped')
    return r.lockedBy || /\blocked\b/.test(r.status) ? { kind: 'busy', reason: String(r.lockedBy ?? r.status) } : { kind: 'done', summary };
  if (r.permanent === true || PERMANENT_CODES.has(String(r.code ?? '')) || MISSING.test(r.status) || MISSING.test(String(r.error ?? '')))
    return { kind: 'permanent', reason };
  return { kind: 'retry', reason };
}

export interface DefinitionRunnerOptions {
  /** Passed to every run (jobs that open models through it keep them across units). */
  models?: unknown;
  onWarning?: WarningHandler;
  /** Runs at once (the worker's `--concurrency`); default 1. */
  concurrency?: number;
  /**
   * Units held per run beyond the one it works on, so a fed run's pipeline does not drain
   * between units (`--prefetch`); default 2, 0 for none.
   */
  prefetch?: number;
  /** A fed run with no unit for this long ends; default 2000 ms. */
  idleMs?: number;
  /**
   * What queued units may make this worker run (src/scale/unit-trust.ts); default: no `pipe:`
   * command and no executable from the queue, signatures not checked.
   */
  trust?: TrustPolicy;
}

/**
 * Runs each unit job with its job's definition, the same code as the plain command. A job whose
 * units are final when reported (`feedable`: extract, segments) runs in a lane
 * (src/scale/lanes.ts): one long-lived `run({ ...optionsFromArgs(args), feed, onUnitDone })` per
 * set of options, fed unit after unit. Any other runs `run({ ...options, only: [unit], onLocked:
 * 'wait' })` per unit. Both turn the unit's result into the queue's answer (see `unitVerdict`).
 * At most `concurrency` runs go at once, lanes included; `close()` ends the lanes.
 */
// biome-ignore lint/suspicious/noExplicitAny: each definition has its own options type; the worker only passes them through
export function definitionRunner(definitions: Partial<Record<string, JobDefinition<any>>>, o: DefinitionRunnerOptions = {}): UnitRunner {
  const concurrency = o.concurrency ?? 1;
  const slots = new Slots(concurrency);
  let lanes: FeedLanes | null = null;
  // Units held beyond the runs: only while a lane runs (a unit of a job run per unit would only wait for a slot).
  const holds = concurrency * (1 + Math.max(0, o.prefetch ?? 2));
  let setHolds: ((n: number) => void) | null = null;
  const shared = { ...(o.models !== undefined ? { models: o.models } : {}), ...(o.onWarning ? { onWarning: o.onWarning } : {}) };
  const runner: UnitRunner = async (data, signal) => {
    const def = definitions[data.job];
    if (!def)
      throw new PermanentUnitError(
        `this worker does not know the job '${String(data.job)}' (it knows ${Object.keys(definitions).join(', ')})`,
        'ERR_INVALID_OPTION',
      );
    // Whoever can write to Redis wrote this unit: it is checked before any of it is used.
    let admitted: { unit: string; args: Record<string, unknown> };
    try {
      admitted = admitUnit(def.spec, def.pathArgs, data, o.trust);
    } catch (err) {
      if (err instanceof UnitRefusedError) throw new PermanentUnitError(err.message, err.code);
      throw err;
    }
    const { unit, args } = admitted;
    let r: UnitResult | undefined;
    try {
      const options = def.optionsFromArgs(args);
      if (def.feedable) {
        // One signal for the worker's life (its hard stop): the lanes take it from the first unit.
        lanes ??= new FeedLanes({ slots, maxLanes: concurrency, idleMs: o.idleMs, signal, onLanes: (n) => setHolds?.(n > 0 ? holds : concurrency) });
        const key = `${data.job}\0${JSON.stringify(args)}`;
        r = await lanes.submit(key, unit, (feed, onUnitDone, laneSignal) => def.run({ ...options, ...shared, feed, onUnitDone, signal: laneSignal }), data.job);
      } else {
        const release = await slots.acquire(signal);
        try {
          const report = await def.run({
            ...options,
            only: [unit],
            // A second delivery of a unit still in hand elsewhere waits for it instead of skipping it.
            onLocked: 'wait',
            ...shared,
            signal,
          });
          r = report.run.units.find((u) => u.unit === unit) ?? report.run.units[0];
        } finally {
          release();
        }
      }
    } catch (err) {
      const e = err as ClipstreamError;
      if (!signal.aborted && PERMANENT_CODES.has(e.code)) throw new PermanentUnitError(e.message, codeOf(e.code, 'ERR_IO'));
      throw err;
    }
    const v = unitVerdict(r, unit);
    if (v.kind === 'permanent') throw new PermanentUnitError(v.reason, codeOf(r?.code, 'ERR_IO'));
    if (v.kind === 'busy') throw new UnitBusyError(v.reason);
    if (v.kind === 'retry') throw new ClipstreamError(codeOf(r?.code, 'ERR_PIPELINE'), v.reason, { transient: true });
    return { ...r, summary: v.summary };
  };
  runner.attach = (set) => {
    setHolds = set;
  };
  runner.handBack = () => lanes?.handBack();
  runner.close = async () => {
    await lanes?.close();
  };
  return runner;
}

/**
 * Runs one unit job. A runner that keeps its own concurrency may `attach`: the worker gives it a
 * setter for how many units it is handed at once (at first the worker's concurrency). `close` is
 * called once the worker has stopped taking units.
 */
export interface UnitRunner {
  (data: UnitJobData, signal: AbortSignal): Promise<Record<string, unknown>>;
  attach?: (setHolds: (units: number) => void) => void;
  /** The worker stops taking units (a graceful stop): units held ahead and not started are rejected with `HandedBackError`. */
  handBack?: () => void;
  close?: () => Promise<void>;
}

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
  const onEvent = options.onEvent ?? (() => {});
  // Unit ids and reasons come from the queue: a line break or terminal escape in one must not forge log lines.
  const log = (line: string) => onEvent(line.replace(/\p{Cc}/gu, (c) => JSON.stringify(c).slice(1, -1)));
  let completed = 0;
  let failed = 0;

  let inHand = 0;
  const processor = async (job: Job<UnitJobData>, token?: string) => {
    const started = Date.now();
    log(`start ${job.data.unit} (try ${job.attemptsMade + 1})`);
    inHand++;
    try {
      return await run(job.data, hard.signal);
    } catch (err) {
      if (hard.signal.aborted) {
        // Handed back, not failed: another worker (or this one, restarted) takes it up.
        await job.moveToDelayed(Date.now(), token);
        log(`returned ${job.data.unit} to the queue (stopped after ${((Date.now() - started) / 1000).toFixed(1)} s)`);
        throw new DelayedError();
      }
      if (err instanceof HandedBackError) {
        await job.moveToDelayed(Date.now(), token);
        log(`returned ${job.data.unit} to the queue (held ahead, not started)`);
        throw new DelayedError();
      }
      if (err instanceof UnitBusyError) {
        // Another live run holds it: look again later, without spending a try.
        await job.moveToDelayed(Date.now() + Math.min(lockMs, 5000), token);
        log(`${job.data.unit} is in hand elsewhere (${err.message}); back in the queue for later`);
        throw new DelayedError();
      }
      throw err;
    } finally {
      inHand--;
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
  run.attach?.((n) => {
    worker.concurrency = Math.max(1, n);
  });
  worker.on('completed', (job, result: Record<string, unknown>) => {
    completed++;
    log(`done ${job.data.unit}${result?.summary ? `: ${String(result.summary)}` : ''}`);
  });
  worker.on('failed', (job, err) => {
    if (err instanceof DelayedError || err.name === 'DelayedError') return;
    const final = !job || job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError || err.name === 'UnrecoverableError';
    if (final) failed++;
    log(`${final ? 'failed' : 'will retry'} ${job?.data.unit ?? '?'}: ${err.message}`);
  });
  worker.on('stalled', (id) => log(`job ${id} stalled (its worker stopped answering); back in the queue`));
  worker.on('error', (err) => log(`error: ${err.message}`));

  let closing: Promise<void> | null = null;
  const close = (force: boolean) => (closing ??= worker.close(force));
  if (options.exitWhenDrained) {
    const queue = new Queue(options.queue ?? DEFAULT_QUEUE, { connection: redisConnection(options.redis) });
    let drained = false;
    // Retries waiting out their backoff are still work, and so are this worker's own units in hand
    // (one that fails now is a retry later): only an empty wait list, no delayed unit and nothing
    // in hand end it. Checked when the queue runs dry and again as each unit in hand ends.
    const check = () => {
      if (!drained || inHand > 0 || closing) return;
      void queue.getJobCounts('waiting', 'prioritized', 'delayed').then(
        (c) => {
          if ((c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0) > 0 || inHand > 0 || closing) return;
          log('queue drained: stopping');
          void close(false).finally(() => queue.close());
        },
        () => {},
      );
    };
    worker.on('drained', () => {
      drained = true;
      check();
    });
    worker.on('completed', check);
    worker.on('failed', check);
  }
  options.signal?.addEventListener(
    'abort',
    () => {
      // Units held ahead go back at once; the units in hand finish.
      run.handBack?.();
      void close(false);
    },
    { once: true },
  );
  const running = worker.run();
  const done = (async () => {
    try {
      await running;
      await closing;
    } finally {
      await run.close?.();
    }
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
