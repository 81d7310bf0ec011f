/**
 * From near-duplicate groups to what `dedup` writes: the clip each group keeps (by a rule),
 * `duplicates.csv` (one row per clip of a group of two or more: group, clip_id, kept, distance to
 * the kept clip) and the keep list (src/util/keep-list.ts), both written atomically.
 */
import { ClipstreamError } from '../errors.js';
import { fingerprintDistance } from '../features/fingerprint.js';
import { writeFileAtomic } from '../util/atomic.js';
import { writeCsvAtomic } from '../util/csv.js';
import { formatKeepList } from '../util/keep-list.js';
import type { DedupClip } from './inputs.js';

/** Which clip of a group is kept: the longest, the first in input order, or the highest value of a clips.csv column. */
export type KeepRule = { kind: 'longest' } | { kind: 'first' } | { kind: 'score'; column: string };

/** Parses `longest`, `first` or `score:<column>`. */
export function parseKeepRule(text: string, option = 'options.keep'): KeepRule {
  if (text === 'longest' || text === 'first') return { kind: text };
  const m = /^score:(.+)$/.exec(text);
  if (m) return { kind: 'score', column: m[1]!.trim() };
  throw new ClipstreamError('ERR_INVALID_OPTION', `${option} must be longest, first or score:<column>, got '${text}'`, { where: { option } });
}

export const DUPLICATES_COLUMNS = ['group', 'clip_id', 'kept', 'distance'];

export interface DuplicateRow {
  group: number;
  clip_id: string;
  kept: boolean;
  distance: number;
}

export interface Decision {
  /** Rows of duplicates.csv, by group then input order. */
  rows: DuplicateRow[];
  /** Indices of the clips kept, in input order. */
  kept: number[];
  groups: number;
}

/** The value a rule ranks a clip by (higher wins; ties go to the earlier clip). */
function rankOf(rule: KeepRule, clip: DedupClip): number {
  if (rule.kind === 'first') return 0;
  if (rule.kind === 'longest') return Number.isFinite(clip.durationS) ? clip.durationS : clip.frames;
  const v = Number(clip.row?.[rule.column] ?? Number.NaN);
  return Number.isFinite(v) && clip.row?.[rule.column] !== '' ? v : Number.NEGATIVE_INFINITY;
}

/**
 * Picks the kept clip of every group (`groupOf[i]`: the group of clip i, named by its first
 * member) and lists the rows of duplicates.csv. Groups are numbered from 0 in the order of their
 * first clip; clips alone in their group are kept and get no row.
 */
export function decide(clips: readonly DedupClip[], groupOf: ArrayLike<number>, rule: KeepRule, table?: string): Decision {
  if (rule.kind === 'score' && clips.length > 0 && !clips.some((c) => c.row && rule.column in c.row)) {
    const where = table ?? 'the input';
    throw new ClipstreamError('ERR_INVALID_OPTION', `keep=score:${rule.column}: ${where} has no column '${rule.column}'`, {
      where: { option: 'options.keep', ...(table ? { file: table } : {}) },
    });
  }
  const members = new Map<number, number[]>();
  for (let i = 0; i < clips.length; i++) {
    const g = groupOf[i]!;
    const list = members.get(g);
    if (list) list.push(i);
    else members.set(g, [i]);
  }
  const rows: DuplicateRow[] = [];
  const keep = new Uint8Array(clips.length);
  let groups = 0;
  // Map iteration is insertion order: groups by their first member.
  for (const list of members.values()) {
    if (list.length === 1) {
      keep[list[0]!] = 1;
      continue;
    }
    let best = list[0]!;
    for (const i of list) if (rankOf(rule, clips[i]!) > rankOf(rule, clips[best]!)) best = i;
    keep[best] = 1;
    for (const i of list) {
      rows.push({ group: groups, clip_id: clips[i]!.clipId, kept: i === best, distance: fingerprintDistance(clips[i]!.fingerprint, clips[best]!.fingerprint) });
    }
    groups++;
  }
  const kept: number[] = [];
  for (let i = 0; i < clips.length; i++) if (keep[i]) kept.push(i);
  return { rows, kept, groups };
}

/** Writes duplicates.csv and the keep list (each atomically: whole or not at all). */
export async function writeDecision(d: Decision, clips: readonly DedupClip[], paths: { duplicates: string; keepList: string }): Promise<void> {
  await writeCsvAtomic(paths.duplicates, DUPLICATES_COLUMNS, d.rows);
  const names: string[] = [];
  for (const i of d.kept) {
    const c = clips[i]!;
    names.push(c.clipId);
    if (c.stem !== c.clipId) names.push(c.stem);
  }
  await writeFileAtomic(paths.keepList, formatKeepList(names));
}
