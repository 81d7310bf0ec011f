/**
 * The content timeline of a source whose timestamps break: they restart (two MPEG-TS joined
 * with `cat`) or jump (a hole of many frame intervals). Clips are planned on content time,
 * where each run of frames follows the one before it by one frame interval (a hole is closed,
 * a restart appended), so a clip's seconds are seconds of content; a clip never crosses a
 * break (plan.ts splits it there), because its audio could not cover the same span as its
 * frames. The file's own timestamps stay what cutting and audio work on, within a run.
 */
import type { TimelineFacts } from '../media/facts.js';
import { GAP_FACTOR } from '../media/facts.js';

/** What ends the run before a run: a restart of the timestamps, or a hole in them. */
export interface TimelineBreak {
  kind: 'reset' | 'gap';
  /** The last frame before the break and the first after it, as stored in the file (seconds). */
  fromS: number;
  toS: number;
}

/** A run of frames whose timestamps go on without a break. */
export interface TimelineRun {
  /** First frame, and one past the last. */
  start: number;
  end: number;
  /** The first frame's timestamp as stored in the file. */
  rawStartS: number;
  /** 0, then one more after each restart: a stored time means something only within its epoch. */
  epoch: number;
  /** The break before this run; absent for the first. */
  after?: TimelineBreak;
}

/** A break starting at frame `index`. */
export type IndexedBreak = TimelineBreak & { index: number };

/** The median interval between consecutive times; `fallback` for fewer than two. */
export function medianInterval(times: ArrayLike<number>, fallback: number): number {
  const n = times.length;
  if (n < 2) return fallback;
  const d = new Float64Array(n - 1);
  for (let i = 1; i < n; i++) d[i - 1] = times[i]! - times[i - 1]!;
  d.sort();
  const m = d[(n - 1) >> 1]!;
  return m > 0 ? m : fallback;
}

/**
 * Holes in ascending frame times, by the media-facts rule (an interval over GAP_FACTOR times
 * the median one): what a decode pass shows of a file without restarts.
 */
export function gapsOf(times: ArrayLike<number>, interval: number): IndexedBreak[] {
  const gaps: IndexedBreak[] = [];
  for (let i = 1; i < times.length; i++) {
    if (times[i]! - times[i - 1]! > GAP_FACTOR * interval) gaps.push({ kind: 'gap', index: i, fromS: times[i - 1]!, toS: times[i]! });
  }
  return gaps;
}

/** The restarts and holes of a probeMedia timeline, in frame order. */
export function breaksOf(t: Pick<TimelineFacts, 'resets' | 'gaps'>): IndexedBreak[] {
  const all = [...t.resets.map((r) => ({ kind: 'reset' as const, ...r })), ...t.gaps.map((g) => ({ kind: 'gap' as const, ...g }))];
  // A restart and a hole at one frame are one break: the restart (it changes the epoch).
  return all.sort((a, b) => a.index - b.index || (a.kind === 'reset' ? -1 : 1)).filter((b, i, xs) => i === 0 || xs[i - 1]!.index !== b.index);
}

/**
 * Content times (`n + 1` entries from 0, the last where the last frame ends) and the runs of
 * `raw`, the stored times of every frame in file order (ascending within a run). A frame
 * before a break lasts `interval`; the very last frame lasts as long as the one before it.
 *
 * @example contentTimes([1.4, 1.44, 1.4, 1.44], [{ kind: 'reset', index: 2, fromS: 1.44, toS: 1.4 }], 0.04).times // [0, 0.04, 0.08, 0.12, 0.16]
 */
export function contentTimes(raw: ArrayLike<number>, breaks: readonly IndexedBreak[], interval: number): { times: Float64Array; runs: TimelineRun[] } {
  const n = raw.length;
  const times = new Float64Array(n + 1);
  const runs: TimelineRun[] = [];
  let epoch = 0;
  const starts = [0, ...breaks.map((b) => b.index), n];
  for (let r = 0; r + 1 < starts.length; r++) {
    const start = starts[r]!;
    const end = starts[r + 1]!;
    if (end <= start) continue;
    const after = r > 0 ? breaks[r - 1] : undefined;
    if (after?.kind === 'reset') epoch++;
    const offset = start === 0 ? 0 : times[start - 1]! + interval;
    for (let i = start; i < end; i++) times[i] = offset + (raw[i]! - raw[start]!);
    runs.push({ start, end, rawStartS: raw[start]!, epoch, ...(after ? { after: { kind: after.kind, fromS: after.fromS, toS: after.toS } } : {}) });
  }
  const last = runs[runs.length - 1]!;
  times[n] = times[n - 1]! + (n - last.start > 1 ? raw[n - 1]! - raw[n - 2]! : interval);
  return { times, runs };
}

/** The run that frame `frame` is in. */
export function runOf(runs: readonly TimelineRun[], frame: number): TimelineRun {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (runs[mid]!.start <= frame) lo = mid;
    else hi = mid - 1;
  }
  return runs[lo]!;
}
