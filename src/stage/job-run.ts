/**
 * The handle between a job and the job runner (src/run/runner.ts): what a job's body and its
 * stages see of a run (its units, where each unit's result and item counts go), the result of
 * one unit, and the report of a run. Below the job folders, so a job's stages can take the run
 * handle without importing the runner; `runJob` creates it.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { defaultWarningHandler, type WarningHandler } from '../types.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { Partition } from '../util/partition.js';
import { emptyProgress, type JobProgress } from '../util/progress.js';
import { UnitLocks, type LockedPolicy } from '../util/unit-locks.js';

/** What became of one unit. `status` is the job's own words ('written', 'skipped (done before)', ...). */
export interface UnitResult {
  unit: string;
  outcome: 'done' | 'skipped' | 'failed';
  status: string;
  error?: string;
  /** Anything else the job wants in the log for this unit. */
  [field: string]: unknown;
}

/**
 * What a job whose units are final when reported (extract, segments) takes to be fed its units
 * by a queue worker: one long-lived run instead of a run per unit, so its pipeline stays full
 * between units (see `JobRunOptions.feed`).
 */
export interface FeedOptions {
  /** Unit ids handed to the run while it runs; takes the place of `partition` and `only`. */
  feed?: AsyncIterable<string>;
  /** Each unit's first result, once it is in the run log and its lock let go. */
  onUnitDone?: (result: UnitResult) => void;
}

export interface JobRunOptions<U> extends FeedOptions {
  /** The job's name (`extract`, `clips`, ...; the names come from the job definitions, src/cli/jobs.ts). */
  job: string;
  /** Every unit of the job in a fixed order, before partitioning: every rank sees the same list. */
  units: readonly U[];
  /** A unit's stable id: its key in the log, the queue and `only`. */
  unitId: (unit: U) => string;
  /** Units not yet finished that this run is asked for, when known ahead (clips, frames) for an ETA. */
  itemsExpected?: number | null;
  partition?: Partition;
  /** Only these unit ids (a queue worker runs the unit it was handed). An id not among `units` is an error. */
  only?: readonly string[];
  // `feed`: unit ids handed to this run while it runs (a queue worker's long-lived run):
  // `pending()` yields each as it comes, and the run ends when the feed does. Takes the place of
  // the share and `only`; an id not among `units` gets a failed result (`permanent: true`).
  /** Where the run log goes; null for none. Created when missing. */
  logDir: string | null;
  /** Folders whose dead temp files (a killed run's) are removed first. `logDir` is always one. */
  tempDirs?: readonly string[];
  /** Written into the log under `options`. */
  logOptions?: Record<string, unknown>;
  /** Extra top-level fields of the log (extract keeps `shards` and `shard_results`), computed at every write. */
  logFields?: (results: UnitResult[]) => Record<string, unknown>;
  /** One lock per unit, beside its final output. */
  locks?: { finalPath: (unit: U) => string; onLocked?: LockedPolicy; isDone?: (unit: U) => Promise<boolean> };
  /** A unit finished by an earlier run: its result (outcome 'skipped'); null to run it. Called after its lock is held. */
  resume?: (unit: U) => Promise<UnitResult | null>;
  /** Nouns for the progress display. */
  unitNoun?: string;
  itemNoun?: string;
  signal?: AbortSignal;
  onWarning?: WarningHandler;
  onProgress?: (progress: JobProgress) => void;
}

export interface JobReport {
  job: string;
  logPath: string | null;
  partition: Partition;
  /** One per unit of this run's share, in list order; units never reached are `failed` with status 'not run'. */
  units: UnitResult[];
  done: number;
  skipped: number;
  failed: number;
  items: { done: number; failed: number; skipped: number };
  seconds: number;
}

/** The handle a job's body gets: the units to do, and where results and item counts go. */
export class JobRun<U> {
  readonly job: string;
  readonly started = Date.now();
  readonly logPath: string | null;
  readonly partition: Partition;
  /** This run's units (share, then `only`), in list order; for a fed run, the units handed to it so far. */
  readonly units: readonly U[];
  readonly signal: AbortSignal | undefined;
  readonly onWarning: WarningHandler;
  readonly #o: JobRunOptions<U>;
  readonly #results = new Map<string, UnitResult>();
  readonly #progress: JobProgress;
  readonly #locks: UnitLocks | null;
  #logChain: Promise<void> = Promise.resolve();
  /** Lock releases started by unitDone, awaited by close(): a process that exits right after the job leaves no lock file. */
  readonly #releases = new Set<Promise<void>>();
  #pendingCalled = false;
  /** A fed run's units by id (the whole list). */
  readonly #byId: Map<string, U> | null;
  /** The ids of `units` in order, for the results (a fed run's unknown ids too). */
  readonly #order: string[];
  readonly #ids: Set<string>;

  constructor(o: JobRunOptions<U>, units: readonly U[], partition: Partition) {
    this.#o = o;
    this.job = o.job;
    this.units = o.feed ? [] : units;
    this.#byId = o.feed ? new Map(units.map((u) => [o.unitId(u), u] as const)) : null;
    this.#order = this.units.map((u) => o.unitId(u));
    this.#ids = new Set(this.#order);
    this.partition = partition;
    this.signal = o.signal;
    this.onWarning = o.onWarning ?? defaultWarningHandler;
    this.logPath = o.logDir === null ? null : join(o.logDir, `log_${hostname()}_${process.pid}_${this.started}.json`);
    this.#progress = emptyProgress(o.job, units.length, o.itemsExpected ?? null, o.unitNoun, o.itemNoun);
    this.#locks = o.locks ? new UnitLocks({ owner: o.job, onLocked: o.locks.onLocked, onWarning: this.onWarning, signal: o.signal }) : null;
  }

  /**
   * The units to work on, in order, pulled one at a time: a unit's lock is taken when it is
   * pulled; a unit locked elsewhere or finished before is recorded here and not yielded.
   */
  async *pending(): AsyncGenerator<U, void, undefined> {
    if (this.#pendingCalled) throw new ClipstreamError('ERR_PIPELINE', 'JobRun.pending() may be iterated once');
    this.#pendingCalled = true;
    for await (const unit of this.#o.feed ? this.#fed(this.#o.feed) : this.units) {
      if (this.signal?.aborted) return;
      const id = this.#o.unitId(unit);
      if (this.#locks && this.#o.locks) {
        const isDone = this.#o.locks.isDone ?? (async (u: U) => (await this.#o.resume?.(u)) != null);
        const lockedBy = await this.#locks.take(id, this.#o.locks.finalPath(unit), () => isDone(unit));
        if (lockedBy) {
          this.unitDone({ unit: id, outcome: 'skipped', status: 'skipped (locked)', lockedBy });
          continue;
        }
      }
      const before = this.#o.resume ? await this.#o.resume(unit) : null;
      if (before) {
        this.unitDone(before);
        continue;
      }
      yield unit;
    }
  }

  /**
   * A fed run's units as their ids come. Each joins `units`; an unknown id gets its failed
   * result here; a unit handed again while in hand is dropped, and one handed again after its
   * result (a retry) runs again, its earlier result replaced.
   */
  async *#fed(feed: AsyncIterable<string>): AsyncGenerator<U, void, undefined> {
    const seen = new Set<string>();
    for await (const id of feed) {
      if (this.signal?.aborted) return;
      const unit = this.#byId!.get(id);
      if (seen.has(id)) {
        const before = this.#results.get(id);
        if (!before || unit === undefined) continue;
        // A lock kept past its result (an unfinished unit) is this run's own: let go of it to take it again.
        await this.#locks?.release(id);
        this.#results.delete(id);
        this.#progress.unitsDone--;
        if (before.outcome === 'failed') this.#progress.unitsFailed--;
        if (before.outcome === 'skipped') this.#progress.unitsSkipped--;
      } else {
        seen.add(id);
        this.#order.push(id);
        this.#ids.add(id);
        this.#progress.unitsTotal++;
        if (unit !== undefined) (this.units as U[]).push(unit);
      }
      if (unit === undefined) {
        this.unitDone({ unit: id, outcome: 'failed', status: `not among the ${this.job} job's units`, code: 'ERR_BAD_ARGUMENT', permanent: true });
        continue;
      }
      yield unit;
    }
  }

  /**
   * Records a unit's result (the last stage calls it once per unit); releases its lock (unless
   * `keepLock`: a unit whose output is still open, released when the run ends) and rewrites the log.
   */
  unitDone(result: UnitResult, o: { keepLock?: boolean } = {}): void {
    const first = !this.#results.has(result.unit);
    this.#results.set(result.unit, result);
    if (first) {
      this.#progress.unitsDone++;
      if (result.outcome === 'failed') this.#progress.unitsFailed++;
      if (result.outcome === 'skipped') this.#progress.unitsSkipped++;
    }
    let released: Promise<void> = Promise.resolve();
    if (this.#locks && !o.keepLock) {
      const p: Promise<void> = this.#locks.release(result.unit).catch(() => {});
      this.#releases.add(p);
      void p.finally(() => this.#releases.delete(p));
      released = p;
    }
    this.#emit();
    const logged = this.writeLog(false).catch((err: unknown) =>
      this.onWarning(new ClipstreamError('ERR_IO', `run log ${this.logPath}: ${(err as Error).message}`, { cause: err, where: { file: this.logPath ?? '' } })),
    );
    const tell = this.#o.onUnitDone;
    if (first && tell) void Promise.all([logged, released]).then(() => tell(result));
  }

  /** Counts one item (a clip, a frame) of a unit. */
  item(outcome: 'done' | 'failed' | 'skipped', n = 1): void {
    if (outcome === 'done') this.#progress.itemsDone += n;
    else if (outcome === 'failed') this.#progress.itemsFailed += n;
    else this.#progress.itemsSkipped += n;
    this.#emit();
  }

  /** Whether the unit is among this run's units (a fed run's: handed to it so far). */
  hasUnit(unitId: string): boolean {
    return this.#ids.has(unitId);
  }

  /** The result recorded for a unit so far, if any. */
  resultOf(unitId: string): UnitResult | undefined {
    return this.#results.get(unitId);
  }

  progress(): JobProgress {
    return { ...this.#progress, elapsedSeconds: (Date.now() - this.started) / 1000 };
  }

  #emit(): void {
    this.#o.onProgress?.(this.progress());
  }

  /** Every result in list order; units with none yet get `placeholder`. */
  results(placeholder: (id: string) => UnitResult = (id) => ({ unit: id, outcome: 'failed', status: 'not run' })): UnitResult[] {
    return this.#order.map((id) => this.#results.get(id) ?? placeholder(id));
  }

  /** Rewrites the log (one write at a time, so an earlier write never lands after a later one). */
  writeLog(finished: boolean): Promise<void> {
    const path = this.logPath;
    if (path === null) return Promise.resolve();
    this.#logChain = this.#logChain
      .catch(() => {})
      .then(() => {
        const results = this.results((id) => ({ unit: id, outcome: 'failed', status: 'pending' }));
        const log = {
          job: this.job,
          hostname: hostname(),
          pid: process.pid,
          timestamp: this.started / 1000,
          time: new Date(this.started).toISOString(),
          finished,
          partition: { rank: this.partition.rank, world: this.partition.world, from: this.partition.from, units_in_list: this.#o.units.length },
          ...(this.#o.only ? { only: this.#o.only } : {}),
          options: this.#o.logOptions ?? {},
          progress: this.progress(),
          results,
          ...(this.#o.logFields?.(results) ?? {}),
        };
        return writeFileAtomic(path, `${JSON.stringify(log, null, 2)}\n`);
      });
    return this.#logChain;
  }

  /** Releases every lock still held (the runner calls it on every way out). */
  async close(): Promise<void> {
    await Promise.all(this.#releases);
    await this.#locks?.releaseAll();
  }
}
