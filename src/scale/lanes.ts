/**
 * Long-lived runs a queue worker feeds its units into, for jobs whose units are final when
 * reported (extract, segments). A run per unit drains its pipeline at the end of every unit:
 * the decoder waits for the first clip, the model waits at the last. A lane is one run of the
 * job (one set of options) that takes unit after unit as the worker is handed them, so the next
 * shard is read while the last clips of the one before are still in the model, as in one local
 * run. Each unit's result comes back as soon as the run records it (`onUnitDone`), so the
 * worker acknowledges units one by one, not at the end of the lane.
 *
 * Lanes and per-unit runs share one set of `Slots`: a worker never runs more than its
 * concurrency of runs at once. A lane with no unit in hand and none coming for `idleMs` ends
 * (its run finishes and writes its log); a unit that comes later starts a new one.
 */
import { ClipstreamError } from '../errors.js';
import type { UnitResult } from '../stage/job-run.js';
import type { Slots } from '../stage/slots.js';

/** A unit held ahead that no run had started when the worker stopped taking units: it goes back to the queue. */
export class HandedBackError extends ClipstreamError {
  constructor(unit: string) {
    super('ERR_ABORTED', `${unit} was held ahead and not started; handed back`, { where: { key: unit } });
    this.name = 'HandedBackError';
  }
}

function wakeAll(g: Group): void {
  for (const wake of g.idle.splice(0)) wake();
}

interface Waiter {
  resolve: (r: UnitResult) => void;
  reject: (err: unknown) => void;
}

/** One lane's run: `feed` yields unit ids, `onUnitDone` takes each unit's result. */
export type LaneRun = (feed: AsyncIterable<string>, onUnitDone: (result: UnitResult) => void, signal: AbortSignal) => Promise<unknown>;

interface Group {
  /** Units handed to the worker, not yet taken by a lane. */
  buffer: string[];
  /** The callers waiting for each unit's result (a unit handed twice has two). */
  waiters: Map<string, Waiter[]>;
  lanes: number;
  /** Lanes blocked on an empty feed, woken by the next unit. */
  idle: Array<() => void>;
  run: LaneRun;
  /** What the lane runs (the job's name), for messages. */
  name: string;
}

export interface FeedLanesOptions {
  slots: Slots;
  /** Lanes one set of options may run at once (the worker's concurrency). */
  maxLanes: number;
  /** A lane that waits this long for a unit ends. Default 2000 ms. */
  idleMs?: number;
  /** Aborts every lane (a hard stop): units in hand and waiting are rejected with its reason. */
  signal: AbortSignal;
  /** Called with the number of lanes running whenever it goes from 0 to 1 or back. */
  onLanes?: (running: number) => void;
}

export class FeedLanes {
  readonly #o: FeedLanesOptions;
  readonly #groups = new Map<string, Group>();
  readonly #running = new Set<Promise<void>>();
  #closed = false;
  #handedBack = false;

  constructor(o: FeedLanesOptions) {
    this.#o = o;
    o.signal.addEventListener('abort', () => this.#rejectWaiting(o.signal.reason), { once: true });
  }

  /**
   * Hands `unit` to a lane of `key` (one set of job options), started with `run` when none has
   * room; resolves with the unit's result as the run records it. `name` (the job) is for messages.
   */
  submit(key: string, unit: string, run: LaneRun, name = key): Promise<UnitResult> {
    if (this.#o.signal.aborted) return Promise.reject(this.#o.signal.reason);
    if (this.#handedBack) return Promise.reject(new HandedBackError(unit));
    let g = this.#groups.get(key);
    if (!g) {
      g = { buffer: [], waiters: new Map(), lanes: 0, idle: [], run, name };
      this.#groups.set(key, g);
    }
    const result = new Promise<UnitResult>((resolve, reject) => {
      const list = g.waiters.get(unit) ?? [];
      list.push({ resolve, reject });
      g.waiters.set(unit, list);
    });
    g.buffer.push(unit);
    const wake = g.idle.shift();
    if (wake) wake();
    else if (g.lanes < this.#o.maxLanes) this.#startLane(key, g);
    return result;
  }

  /**
   * Stops taking units: the units held ahead that no run has started are rejected with
   * `HandedBackError` (the worker returns them to the queue); the runs finish the units they have.
   */
  handBack(): void {
    this.#closed = true;
    this.#handedBack = true;
    for (const g of this.#groups.values()) {
      for (const unit of g.buffer.splice(0)) this.#settle(g, unit, (w) => w.reject(new HandedBackError(unit)));
      wakeAll(g);
    }
  }

  /** No unit waits any more: lanes end once their units are done; resolves when every lane has. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const g of this.#groups.values()) wakeAll(g);
    while (this.#running.size > 0) await Promise.all(this.#running);
  }

  #lanes = 0;

  #startLane(key: string, g: Group): void {
    g.lanes++;
    if (this.#lanes++ === 0) this.#o.onLanes?.(1);
    const inHand = new Set<string>();
    let took = 0;
    const p = (async () => {
      let release: (() => void) | null = null;
      let failure: unknown = null;
      try {
        release = await this.#o.slots.acquire(this.#o.signal);
        if (g.buffer.length === 0) return;
        await g.run(
          this.#feed(g, inHand, () => took++),
          (r) => {
            inHand.delete(r.unit);
            this.#settle(g, r.unit, (w) => w.resolve(r));
          },
          this.#o.signal,
        );
      } catch (err) {
        failure = err;
      } finally {
        release?.();
        g.lanes--;
        if (--this.#lanes === 0) this.#o.onLanes?.(0);
        const why =
          failure ??
          new ClipstreamError('ERR_PIPELINE', `the ${g.name} run ended before it reported the unit`, {
            where: { key: [...inHand][0] ?? '' },
          });
        for (const unit of inHand) this.#settle(g, unit, (w) => w.reject(why));
        // A run that failed before it took any unit fails the units waiting for it too (the same options would fail again).
        if (failure !== null && took === 0) for (const unit of g.buffer.splice(0)) this.#settle(g, unit, (w) => w.reject(failure));
        if (g.buffer.length > 0 && g.lanes < this.#o.maxLanes && !this.#o.signal.aborted) this.#startLane(key, g);
        if (g.lanes === 0 && g.buffer.length === 0 && g.waiters.size === 0) this.#groups.delete(key);
      }
    })();
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p));
  }

  async *#feed(g: Group, inHand: Set<string>, took: () => void): AsyncGenerator<string, void, undefined> {
    const idleMs = this.#o.idleMs ?? 2000;
    for (let first = true; ; first = false) {
      if (this.#o.signal.aborted) return;
      // Another run waits for this lane's slot (another job's unit, another set of options): end
      // here, so it is not starved; the units left wait for a new lane behind it.
      if (!first && this.#o.slots.waiting > 0) return;
      const unit = g.buffer.shift();
      if (unit !== undefined) {
        inHand.add(unit);
        took();
        yield unit;
        continue;
      }
      if (this.#closed) return;
      const woken = await new Promise<boolean>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          const i = g.idle.indexOf(wake);
          if (i >= 0) g.idle.splice(i, 1);
          resolve(false);
        }, idleMs);
        g.idle.push(wake);
      });
      // Idle means no unit in hand either: a lane waiting for the worker's next unit while its own are still running is busy.
      if (!woken && g.buffer.length === 0 && inHand.size === 0) return;
    }
  }

  #settle(g: Group, unit: string, f: (w: Waiter) => void): void {
    const list = g.waiters.get(unit);
    g.waiters.delete(unit);
    for (const w of list ?? []) f(w);
  }

  #rejectWaiting(reason: unknown): void {
    for (const g of this.#groups.values()) {
      for (const unit of g.buffer.splice(0)) this.#settle(g, unit, (w) => w.reject(reason));
      wakeAll(g);
    }
  }
}
