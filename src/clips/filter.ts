/**
 * Filters on clips: `--filter "motion>=0.02,text_area<=0.1,black<=0.5,duration>=2"`. Each term is
 * `column op number` with op one of >=, <=, >, <, ==, !=; a clip is kept when it passes every
 * term. A clip that fails is never dropped without a word: its row says `kept=false` and
 * `filter_reason` (the failed terms, negated: `motion<0.02`, joined by `;`).
 *
 * Columns: the scores (src/features/clip-scores.ts, and plug-in scorers' columns) and the clip's
 * own fields, which need no score: `duration` (end_s − start_s), `num_frames`, `width`, `height`,
 * `fps`, `start_s`, `end_s`. A clip decided on its own fields alone is decided before it is cut.
 */
import { ClipstreamError } from '../errors.js';

export type FilterOp = '>=' | '<=' | '>' | '<' | '==' | '!=';

/** One term of a filter: keep clips whose `column` `op` `value` holds. */
export interface FilterRule {
  column: string;
  op: FilterOp;
  value: number;
}

/** Clip fields a filter can use without any score. */
export const CLIP_FILTER_FIELDS = ['duration', 'num_frames', 'width', 'height', 'fps', 'start_s', 'end_s'] as const;

const NEGATE: Record<FilterOp, FilterOp> = { '>=': '<', '<=': '>', '>': '<=', '<': '>=', '==': '!=', '!=': '==' };
const TERM = /^\s*([A-Za-z_][A-Za-z0-9_+.-]*)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$/;

const bad = (term: string, why: string, option: string) =>
  new ClipstreamError('ERR_INVALID_OPTION', `${option}: filter term '${term}' ${why}`, { where: { option } });

/**
 * Parses a filter (a string, or rules already made) against the columns a run has; a term that
 * is not `column op number`, or names a column the run does not compute, is an error naming it.
 *
 * @example parseFilter('motion>=0.02, duration>=2', ['motion']) // [{ column: 'motion', op: '>=', value: 0.02 }, { column: 'duration', op: '>=', value: 2 }]
 */
export function parseFilter(filter: string | readonly FilterRule[], columns: readonly string[], option = 'options.filter'): FilterRule[] {
  const known = new Set<string>([...columns, ...CLIP_FILTER_FIELDS]);
  const check = (r: FilterRule, term: string): FilterRule => {
    if (!known.has(r.column))
      throw bad(term, `names '${r.column}', which is not a score this run computes nor a clip field (known: ${[...known].join(', ')})`, option);
    if (!(r.op in NEGATE)) throw bad(term, `has operator '${r.op}' (use >=, <=, >, <, == or !=)`, option);
    if (typeof r.value !== 'number' || !Number.isFinite(r.value)) throw bad(term, `compares with '${r.value}', which is not a number`, option);
    return { column: r.column, op: r.op, value: r.value };
  };
  if (typeof filter !== 'string') return filter.map((r) => check(r, formatRule(r)));
  const terms = filter.split(',').filter((t) => t.trim() !== '');
  return terms.map((term) => {
    const m = TERM.exec(term);
    if (!m) throw bad(term.trim(), 'is not <column><op><number> (e.g. motion>=0.02; ops >=, <=, >, <, ==, !=)', option);
    const value = Number(m[3]);
    if (m[3] === '' || !Number.isFinite(value)) throw bad(term.trim(), `compares with '${m[3]}', which is not a number`, option);
    return check({ column: m[1]!, op: m[2] as FilterOp, value }, term.trim());
  });
}

/** A rule as text: `motion>=0.02`. */
export const formatRule = (r: FilterRule): string => `${r.column}${r.op}${r.value}`;

/** The reason a clip failing `r` gets: the rule negated (`motion<0.02`). */
export const failReason = (r: FilterRule): string => `${r.column}${NEGATE[r.op]}${r.value}`;

function holds(x: number, r: FilterRule): boolean {
  switch (r.op) {
    case '>=':
      return x >= r.value;
    case '<=':
      return x <= r.value;
    case '>':
      return x > r.value;
    case '<':
      return x < r.value;
    case '==':
      return x === r.value;
    case '!=':
      return x !== r.value;
  }
}

/** What a filter needs of a clip: its fields and, for score rules, its scores. */
export interface FilterSubject {
  start_s: number;
  end_s: number;
  num_frames: number;
  width?: number;
  height?: number;
  fps?: number;
  scores?: Record<string, number | string>;
}

export interface Verdict {
  kept: boolean;
  /** The failed rules, negated, joined by ';' ('' when kept). */
  reason: string;
}

function valueOf(c: FilterSubject, column: string): number | string | undefined {
  if (column === 'duration') return Math.round((c.end_s - c.start_s) * 1e6) / 1e6;
  if ((CLIP_FILTER_FIELDS as readonly string[]).includes(column)) return (c as unknown as Record<string, number | undefined>)[column];
  return c.scores?.[column];
}

/**
 * The verdict on a clip: out when a rule it can be decided on fails (the reason lists those);
 * null when it passes those and a rule's value is not known yet (its score is not computed: the
 * clip is decided once it is). A score that is '' (not measured) fails its rule.
 *
 * @example decide([{ column: 'motion', op: '>=', value: 0.02 }], { start_s: 0, end_s: 2, num_frames: 50, scores: { motion: 0.01 } }) // { kept: false, reason: 'motion<0.02' }
 */
export function decide(rules: readonly FilterRule[], c: FilterSubject): Verdict | null {
  const failed: string[] = [];
  let unknown = false;
  for (const r of rules) {
    const v = valueOf(c, r.column);
    if (v === undefined) unknown = true;
    else if (typeof v !== 'number' || !holds(v, r)) failed.push(failReason(r));
  }
  // A clip failing a rule it can be decided on is out, whatever the rules not known yet say (they are then not in its reason).
  if (failed.length > 0) return { kept: false, reason: failed.join(';') };
  return unknown ? null : { kept: true, reason: '' };
}

/** Counts of each reason over rows: a reason of several failed rules counts once for each. */
export function countReasons(rows: readonly { kept?: boolean; filter_reason?: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rows) {
    if (r.kept !== false || !r.filter_reason) continue;
    for (const reason of r.filter_reason.split(';')) counts[reason] = (counts[reason] ?? 0) + 1;
  }
  return counts;
}
