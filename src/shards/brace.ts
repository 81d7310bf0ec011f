import { ClipstreamError } from '../errors.js';

/** More shards than this in one pattern is almost surely a typo (ACAV100M has ~100k shards). */
export const MAX_EXPANDED_SHARDS = 1_000_000;

/*
 * Python's braceexpand (ACAV100M and webdataset use it) is the reference, not bash: a pattern is
 * a product of literals and brace groups; a group `{...}` is an integer range, a letter range
 * (over A-Z then a-z only), or a comma list of patterns; any other group stays literal, braces
 * included, with its inside still expanded (`{a.{1,2}}` gives `{a.1}` `{a.2}`). A `}` with no
 * open group is a plain character, so `}{` is literal, but braces must balance by the end.
 * Backslash escapes the next character; escapes are removed from the finished names.
 * Groups are parsed into a tree first so the number of names is known before any is made.
 */

type Part =
  | { kind: 'text'; text: string }
  | { kind: 'ints'; start: bigint; step: bigint; count: number; width: number }
  | { kind: 'chars'; chars: string[] }
  | { kind: 'list'; options: Pattern[] };
type Pattern = Part[];

// Python's `$` also matches before a final newline; `\n?$` keeps that. Digits are ASCII only
// (Python's `\d` also takes other scripts' digits: the one place this expander differs).
const INT_RANGE = /^(-?[0-9]+)\.\.(-?[0-9]+)(?:\.\.-?([0-9]+))?\n?$/;
const CHAR_RANGE = /^([A-Za-z])\.\.([A-Za-z])(?:\.\.-?([0-9]+))?\n?$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Thrown inside the parser and turned into the message that names the pattern (`unbalanced` below). */
class Unbalanced extends ClipstreamError {
  constructor() {
    super('ERR_INVALID_OPTION', 'unbalanced braces');
  }
}

function parsePattern(s: string, escape: boolean): Pattern {
  const parts: Pattern = [];
  let start = 0;
  let depth = 0;
  let pos = 0;
  for (; pos < s.length; pos++) {
    const c = s[pos];
    if (escape && c === '\\') {
      pos++;
    } else if (c === '{') {
      if (depth === 0 && pos > start) {
        parts.push({ kind: 'text', text: s.slice(start, pos) });
        start = pos;
      }
      depth++;
    } else if (c === '}' && --depth === 0) {
      const inner = s.slice(start + 1, pos);
      const group = parseGroup(inner, escape);
      if (group) parts.push(group);
      else parts.push({ kind: 'text', text: '{' }, { kind: 'list', options: [parsePattern(inner, escape)] }, { kind: 'text', text: '}' });
      start = pos + 1;
    }
  }
  if (depth !== 0) throw new Unbalanced();
  if (start < s.length) parts.push({ kind: 'text', text: s.slice(start) });
  return parts;
}

function parseGroup(inner: string, escape: boolean): Part | null {
  let m = INT_RANGE.exec(inner);
  if (m) return intRange(m[1]!, m[2]!, m[3]);
  m = CHAR_RANGE.exec(inner);
  if (m) return charRange(m[1]!, m[2]!, m[3]);
  return commaList(inner, escape);
}

/** A step of 0 means 1; zero-padding applies when either end (other than 0 or -0) starts with 0 or -0. */
const stepOf = (digits: string | undefined) => (digits && BigInt(digits) !== 0n ? BigInt(digits) : 1n);

function intRange(left: string, right: string, stepDigits: string | undefined): Part {
  const padded = [left, right].some((e) => e !== '0' && e !== '-0' && (e.startsWith('0') || e.startsWith('-0')));
  const from = BigInt(left);
  const to = BigInt(right);
  const step = stepOf(stepDigits);
  const span = from < to ? to - from : from - to;
  return { kind: 'ints', start: from, step: from < to ? step : -step, count: Number(span / step) + 1, width: padded ? Math.max(left.length, right.length) : 0 };
}

function charRange(left: string, right: string, stepDigits: string | undefined): Part {
  const step = stepOf(stepDigits);
  const from = ALPHABET.indexOf(left);
  const to = ALPHABET.indexOf(right);
  const chars: string[] = [];
  if (from < to) for (let i = from; i <= to; i += Number(step > 52n ? 52n : step)) chars.push(ALPHABET[i]!);
  else for (let i = from; i >= to; i -= Number(step > 52n ? 52n : step)) chars.push(ALPHABET[i]!);
  return { kind: 'chars', chars };
}

/** Splits on top-level commas; null when there is none (then the group is not a list). */
function commaList(inner: string, escape: boolean): Part | null {
  const options: Pattern[] = [];
  let start = 0;
  let depth = 0;
  for (let pos = 0; pos < inner.length; pos++) {
    const c = inner[pos];
    if (escape && c === '\\') pos++;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === ',' && depth === 0) {
      options.push(parsePattern(inner.slice(start, pos), escape));
      start = pos + 1;
    }
  }
  if (depth !== 0) throw new Unbalanced();
  if (options.length === 0) return null;
  options.push(parsePattern(inner.slice(start), escape));
  return { kind: 'list', options };
}

function countOf(p: Pattern): number {
  let n = 1;
  for (const part of p) {
    if (part.kind === 'ints') n *= part.count;
    else if (part.kind === 'chars') n *= part.chars.length;
    else if (part.kind === 'list') n *= part.options.reduce((sum, o) => sum + countOf(o), 0);
  }
  return n;
}

/** `%0Nd`: the sign counts toward the width. */
function formatInt(v: bigint, width: number): string {
  const digits = (v < 0n ? -v : v).toString();
  return v < 0n ? `-${digits.padStart(width - 1, '0')}` : digits.padStart(width, '0');
}

function valuesOf(part: Part): string[] {
  switch (part.kind) {
    case 'text':
      return [part.text];
    case 'ints':
      return Array.from({ length: part.count }, (_, i) => formatInt(part.start + part.step * BigInt(i), part.width));
    case 'chars':
      return part.chars;
    case 'list':
      return part.options.flatMap(expandTree);
  }
}

/** The product of the parts, leftmost varying slowest. */
function expandTree(p: Pattern): string[] {
  let names = [''];
  for (const part of p) {
    const values = valuesOf(part);
    names = names.flatMap((prefix) => values.map((v) => prefix + v));
  }
  return names;
}

function unbalanced(pattern: string): ClipstreamError {
  // braceexpand raises UnbalancedBracesError; bash would silently keep the text, which for a
  // shard list means "read one file with braces in its name": never what was meant.
  return new ClipstreamError('ERR_INVALID_OPTION', `Unbalanced braces in shard pattern '${pattern}' (escape a literal brace as \\{ or \\})`, {
    where: { file: pattern },
  });
}

/**
 * Expands one pattern exactly as Python's `braceexpand(pattern, escape)` does, duplicates and
 * order kept. Throws for unbalanced braces and for patterns of MAX_EXPANDED_SHARDS names or more.
 */
export function braceExpand(pattern: string, options: { escape?: boolean } = {}): string[] {
  const escape = options.escape ?? true;
  let tree: Pattern;
  try {
    tree = parsePattern(pattern, escape);
  } catch (err) {
    if (err instanceof Unbalanced) throw unbalanced(pattern);
    throw err;
  }
  if (countOf(tree) >= MAX_EXPANDED_SHARDS) {
    throw new ClipstreamError(
      'ERR_INVALID_OPTION',
      `Shard pattern '${pattern}' expands to ${MAX_EXPANDED_SHARDS} or more names; split it into smaller ranges`,
      {
        where: { file: pattern },
      },
    );
  }
  const names = expandTree(tree);
  // As Python's `\\(.)`: a backslash before a newline stays.
  return escape ? names.map((n) => n.replace(/\\([^\n])/g, '$1')) : names;
}

/**
 * Expands shard patterns the way Python's `braceexpand` (used by ACAV100M and webdataset)
 * does: zero-padded numeric ranges, steps, letter ranges and comma lists, nested.
 * Order is kept and duplicates are dropped (first occurrence wins), so overlapping
 * patterns do not read a shard twice. A pattern without braces is returned as is.
 *
 * @example
 * expandShardPatterns('data/shard-{000000..000002}.tar')
 * // ['data/shard-000000.tar', 'data/shard-000001.tar', 'data/shard-000002.tar']
 * expandShardPatterns(['a/shard-00000{0..1}.tar', 'b/shard-{x,y}.tar'])
 * // ['a/shard-000000.tar', 'a/shard-000001.tar', 'b/shard-x.tar', 'b/shard-y.tar']
 */
export function expandShardPatterns(patterns: string | string[]): string[] {
  const list = typeof patterns === 'string' ? [patterns] : patterns;
  if (!Array.isArray(list)) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `Expected a shard pattern string or an array of them but received ${typeof patterns}`);
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const pattern of list) {
    if (typeof pattern !== 'string' || pattern.length === 0) {
      throw new ClipstreamError('ERR_INVALID_OPTION', `Expected a non-empty shard pattern string but received ${JSON.stringify(pattern)}`);
    }
    for (const url of braceExpand(pattern)) {
      if (!seen.has(url)) {
        seen.add(url);
        out.push(url);
      }
    }
  }
  return out;
}
