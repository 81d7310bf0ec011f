/**
 * The locks one run holds on its output units (src/util/lock.ts), for any job: take one before
 * a unit starts, release it once the unit's final file is in place, release all at the end.
 */
import { ClipstreamError } from '../errors.js';
import type { WarningHandler } from '../types.js';
import { describeHolder, lockPathFor, tryLock, waitForLock, type UnitLock } from './lock.js';

export type LockedPolicy = 'skip' | 'wait';

export interface UnitLocksOptions {
  /** The job's name, written into each lock (`extract`, `worker`). */
  owner: string;
  /** What to do with a unit another live run holds: skip it (default) or wait for it. */
  onLocked?: LockedPolicy;
  onWarning: WarningHandler;
  signal?: AbortSignal;
  staleMs?: number;
}

export class UnitLocks {
  readonly #held = new Map<string, UnitLock>();
  readonly #o: UnitLocksOptions;

  constructor(options: UnitLocksOptions) {
    this.#o = options;
  }

  /**
   * Takes the lock of the unit whose final file is `finalPath`. Returns null when this run may
   * go on (it holds the lock, or, waiting, `done()` said the unit was finished meanwhile), else
   * a sentence naming the holder, for the log.
   */
  async take(unit: string, finalPath: string, done: () => Promise<boolean>): Promise<string | null> {
    const path = lockPathFor(finalPath);
    const got = await tryLock(path, { owner: this.#o.owner, staleMs: this.#o.staleMs });
    if ('lock' in got) {
      if (got.tookOver) {
        this.#o.onWarning(
          new ClipstreamError('ERR_IO', `${unit}: took over the lock ${path} left by a run that is gone (${describeHolder(got.tookOver)})`, {
            where: { shard: unit, file: path },
          }),
        );
      }
      this.#held.set(unit, got.lock);
      return null;
    }
    const holder = `locked by another run: ${describeHolder(got.heldBy)} holds ${path}`;
    if (this.#o.onLocked !== 'wait') {
      this.#o.onWarning(new ClipstreamError('ERR_IO', `${unit}: skipped, ${holder}`, { where: { shard: unit, file: path } }));
      return holder;
    }
    const lock = await waitForLock(path, { owner: this.#o.owner, staleMs: this.#o.staleMs, signal: this.#o.signal, giveUp: done });
    if (lock) this.#held.set(unit, lock);
    return null;
  }

  async release(unit: string): Promise<void> {
    const lock = this.#held.get(unit);
    this.#held.delete(unit);
    await lock?.release();
  }

  async releaseAll(): Promise<void> {
    for (const unit of [...this.#held.keys()]) await this.release(unit);
  }
}
