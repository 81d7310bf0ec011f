/** The worker's lanes (src/scale/lanes.ts) with a toy run in place of a job: no Redis needed. */
import { describe, expect, it } from 'vitest';
import { FeedLanes, HandedBackError, type LaneRun } from '../../src/scale/lanes.js';
import { Slots } from '../../src/stage/slots.js';
import type { UnitResult } from '../../src/stage/job-run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A run that takes its units one at a time and reports each `ms` later; records what each run did. */
function toyRuns(ms = 20, fail?: (unit: string) => Error | null) {
  const runs: string[][] = [];
  let live = 0;
  let mostLive = 0;
  const run: LaneRun = async (feed, onUnitDone) => {
    const mine: string[] = [];
    runs.push(mine);
    live++;
    mostLive = Math.max(mostLive, live);
    try {
      for await (const unit of feed) {
        const err = fail?.(unit);
        if (err) throw err;
        mine.push(unit);
        await sleep(ms);
        onUnitDone({ unit, outcome: 'done', status: 'written' });
      }
    } finally {
      live--;
    }
  };
  return { run, runs, mostLive: () => mostLive };
}

describe('FeedLanes', () => {
  it('feeds units of one set of options into one long-lived run, and ends it when idle', async () => {
    const ac = new AbortController();
    const lanes = new FeedLanes({ slots: new Slots(1), maxLanes: 1, idleMs: 100, signal: ac.signal });
    const toy = toyRuns();
    const results = await Promise.all(['a', 'b', 'c'].map((u) => lanes.submit('k', u, toy.run)));
    expect(results.map((r) => r.unit)).toEqual(['a', 'b', 'c']);
    // A unit handed while the run is busy waits for it: still one run.
    expect(toy.runs).toEqual([['a', 'b', 'c']]);
    await sleep(250);
    // Idle past idleMs: the run ended; the next unit starts another.
    expect((await lanes.submit('k', 'd', toy.run)).unit).toBe('d');
    expect(toy.runs).toEqual([['a', 'b', 'c'], ['d']]);
    await lanes.close();
  });

  it('keeps each set of options in its own run, and never runs more than the slots allow', async () => {
    const ac = new AbortController();
    const lanes = new FeedLanes({ slots: new Slots(2), maxLanes: 2, idleMs: 50, signal: ac.signal });
    const toy = toyRuns(10);
    const all = [];
    for (const k of ['x', 'y', 'z']) for (const u of ['1', '2', '3']) all.push(lanes.submit(k, `${k}${u}`, toy.run));
    await Promise.all(all);
    await lanes.close();
    expect(toy.mostLive()).toBeLessThanOrEqual(2);
    for (const k of ['x', 'y', 'z']) {
      const mine = toy.runs.filter((r) => r.some((u) => u.startsWith(k)));
      expect(
        mine.every((r) => r.every((u) => u.startsWith(k))),
        `units of ${k} ran only in runs of ${k}`,
      ).toBe(true);
      expect(mine.flat().sort()).toEqual([`${k}1`, `${k}2`, `${k}3`]);
    }
  });

  it('a busy lane gives its slot up to a run waiting for one (another job, other options) instead of starving it', async () => {
    const ac = new AbortController();
    const slots = new Slots(1);
    const lanes = new FeedLanes({ slots, maxLanes: 1, idleMs: 50, signal: ac.signal });
    const order: string[] = [];
    const toy = toyRuns(15);
    const tracked: LaneRun = (feed, onUnitDone, signal) =>
      toy.run(
        feed,
        (r) => {
          order.push(r.unit);
          onUnitDone(r);
        },
        signal,
      );
    const first = ['a1', 'a2', 'a3'].map((u) => lanes.submit('a', u, tracked));
    await sleep(5);
    // A unit run on its own (a clips video) asks for the only slot while the lane is busy.
    const other = slots.acquire().then((release) => {
      order.push('other');
      release();
    });
    const later = ['a4', 'a5'].map((u) => lanes.submit('a', u, tracked));
    await Promise.all([...first, ...later, other]);
    await lanes.close();
    const at = order.indexOf('other');
    expect(at, order.join(' ')).toBeGreaterThan(0);
    expect(at, `the waiting run got the slot before the lane's later units: ${order.join(' ')}`).toBeLessThan(order.length - 1);
    expect(toy.runs.length).toBeGreaterThan(1);
    expect(order.filter((u) => u !== 'other').sort()).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
  });

  it('a run that fails before it takes a unit fails the units waiting for it; one that fails later fails only its own', async () => {
    const ac = new AbortController();
    const lanes = new FeedLanes({ slots: new Slots(1), maxLanes: 1, idleMs: 50, signal: ac.signal });
    const bad: LaneRun = async () => {
      throw new Error('bad options');
    };
    const waiting = ['a', 'b'].map((u) => lanes.submit('bad', u, bad));
    for (const p of waiting) await expect(p).rejects.toThrow('bad options');
    const toy = toyRuns(5, (u) => (u === 'q' ? new Error('q broke the run') : null));
    const got = await Promise.allSettled(['p', 'q', 'r'].map((u) => lanes.submit('ok', u, toy.run)));
    expect(got.map((g) => g.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((got[1] as PromiseRejectedResult).reason)).toContain('q broke the run');
    // r was not lost with q's run: a new run took it.
    expect(toy.runs).toEqual([['p'], ['r']]);
    await lanes.close();
  });

  it('a unit the run ends without reporting is rejected, naming the run; a hard stop rejects the units waiting', async () => {
    const ac = new AbortController();
    const lanes = new FeedLanes({ slots: new Slots(1), maxLanes: 1, idleMs: 50, signal: ac.signal });
    const forgetful: LaneRun = async (feed) => {
      for await (const _ of feed) return;
    };
    await expect(lanes.submit('extract\0{}', 'a', forgetful, 'extract')).rejects.toThrow('the extract run ended before it reported the unit');
    let held: ((r: UnitResult) => void) | null = null;
    const stuck: LaneRun = async (feed, onUnitDone, signal) => {
      for await (const unit of feed) {
        held = onUnitDone;
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
        void unit;
      }
    };
    const inHand = lanes.submit('s', 'one', stuck);
    const queued = lanes.submit('s', 'two', stuck);
    await sleep(20);
    expect(held).not.toBeNull();
    ac.abort(new Error('worker stopped'));
    await expect(inHand).rejects.toThrow('worker stopped');
    await expect(queued).rejects.toThrow('worker stopped');
    await expect(lanes.submit('s', 'three', stuck)).rejects.toThrow('worker stopped');
    await lanes.close();
  });
});

describe('FeedLanes.handBack (a graceful stop)', () => {
  it('the run finishes the unit it has; units held ahead, and any handed later, are handed back', async () => {
    const ac = new AbortController();
    const lanes = new FeedLanes({ slots: new Slots(1), maxLanes: 1, idleMs: 1000, signal: ac.signal });
    // A run that takes its next unit only once the one before is done: the rest stay held ahead.
    const runs: string[][] = [];
    const run: LaneRun = async (feed, onUnitDone) => {
      const mine: string[] = [];
      runs.push(mine);
      for await (const unit of feed) {
        mine.push(unit);
        await sleep(60);
        onUnitDone({ unit, outcome: 'done', status: 'written' });
      }
    };
    const got = ['a', 'b', 'c'].map((u) => lanes.submit('k', u, run));
    await sleep(20);
    lanes.handBack();
    const settled = await Promise.allSettled([...got, lanes.submit('k', 'd', run)]);
    expect(settled.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
    for (const x of settled.slice(1)) expect((x as PromiseRejectedResult).reason).toBeInstanceOf(HandedBackError);
    await lanes.close();
    expect(runs).toEqual([['a']]);
  });
});

describe('Slots', () => {
  it('lets n holders in at once and the rest in order; an abort takes a waiter out', async () => {
    const slots = new Slots(2);
    const order: string[] = [];
    const r1 = await slots.acquire();
    const r2 = await slots.acquire();
    const w3 = slots.acquire().then((r) => {
      order.push('3');
      return r;
    });
    const ac = new AbortController();
    const w4 = slots.acquire(ac.signal);
    const w5 = slots.acquire().then((r) => {
      order.push('5');
      return r;
    });
    ac.abort(new Error('gone'));
    await expect(w4).rejects.toThrow('gone');
    r1();
    r1(); // a second release of one slot is ignored
    const r3 = await w3;
    expect(order).toEqual(['3']);
    r2();
    (await w5)();
    r3();
    expect(order).toEqual(['3', '5']);
  });
});
