/**
 * The `dedup` job: near-duplicate clips found across a whole output, one kept per group.
 *
 *   input: a clips output (its clips.csv; the `fingerprint` column when there, else the clip
 *          files), a folder of clips, or tar shards (paths or brace patterns, as extract takes)
 *   outputDir/fingerprints.csv   fingerprints dedup computed (a cache: a rerun decodes nothing twice)
 *   outputDir/duplicates.csv     group, clip_id, kept, distance: every clip of a group of two or more
 *   outputDir/keep.txt           the clips that go on, one a line (src/util/keep-list.ts), for
 *                                `extract --keep_list`, `bundle --keep_list`, `clips --keep_list`
 *
 * Fingerprints (src/features/fingerprint.ts) within `maxDistance` (mean Hamming bits per frame)
 * are grouped by banded LSH and union-find (src/dedup/lsh.ts): no all-pairs comparison. A rerun
 * writes the same files; each is written atomically.
 */
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { DEFAULT_FINGERPRINT_FRAMES, DEFAULT_MAX_DISTANCE } from '../features/fingerprint.js';
import { decide, parseKeepRule, writeDecision } from '../dedup/groups.js';
import { inputKind, readDedupClips, type InputKind } from '../dedup/inputs.js';
import { type BandPlan, FingerprintSet, groupNearDuplicates } from '../dedup/lsh.js';
import { defaultWarningHandler, type WarningHandler } from '../types.js';
import { ensureOutputDir, validateInteger, validateNumber, validateString } from '../util/validate.js';

export interface DedupOptions {
  /** A clips output folder, a folder of clips, or tar shard paths / brace patterns. */
  input: string | string[];
  /** Where duplicates.csv, keep.txt and fingerprints.csv go; default the input when it is a clips output (required otherwise). */
  outputDir?: string;
  /** Largest distance (mean Hamming bits of 64 per frame) of near-duplicates; default 12. */
  maxDistance?: number;
  /** Which clip a group keeps: `longest` (default), `first`, or `score:<column>` (the highest value of a clips.csv column). */
  keep?: string;
  /** Frames per fingerprint computed here (default 8; a clips.csv's stored fingerprints set their own). */
  frames?: number;
  /** Clips decoded at once for their fingerprints; default 2. */
  parallel?: number;
  onWarning?: WarningHandler;
  signal?: AbortSignal;
}

export interface DedupReport {
  kind: InputKind;
  clips: number;
  /** Fingerprints computed in this run (others came from clips.csv or the cache). */
  fingerprinted: number;
  /** Clips without a fingerprint (unreadable): kept, and named in warnings. */
  unreadable: number;
  /** Groups of two or more near-duplicates. */
  groups: number;
  /** Clips dropped: in a group, not its kept one. */
  dropped: number;
  kept: number;
  duplicatesCsv: string;
  keepList: string;
  plan: BandPlan | null;
  /** Candidate pairs compared exactly. */
  compared: number;
  seconds: number;
}

/**
 * Finds near-duplicate clips and writes duplicates.csv and the keep list.
 *
 * @example
 * const report = await dedup({ input: 'out/clips', keep: 'longest' });
 * console.log(report.groups, report.dropped, report.keepList); // e.g. 3 4 'out/clips/keep.txt'
 */
export async function dedup(options: DedupOptions): Promise<DedupReport> {
  const started = Date.now();
  const input = (Array.isArray(options?.input) ? options.input : [validateString(options?.input, 'options.input')]).map((s, i) =>
    validateString(s, `options.input[${i}]`),
  );
  if (input.length === 0) throw new ClipstreamError('ERR_INVALID_OPTION', 'options.input names nothing', { where: { option: 'options.input' } });
  const maxDistance = validateNumber(options.maxDistance ?? DEFAULT_MAX_DISTANCE, 'options.maxDistance', 0, 32);
  const rule = parseKeepRule(options.keep ?? 'longest');
  const frames = validateInteger(options.frames ?? DEFAULT_FINGERPRINT_FRAMES, 'options.frames', 1, 256);
  const parallel = validateInteger(options.parallel ?? 2, 'options.parallel', 1, 64);
  const onWarning = options.onWarning ?? defaultWarningHandler;
  const kind = await inputKind(input);
  const outputDir = options.outputDir ?? (kind === 'clips output' ? input[0]! : undefined);
  if (outputDir === undefined) {
    throw new ClipstreamError(
      'ERR_INVALID_OPTION',
      `options.outputDir is needed: ${input.join(' ')} is ${kind === 'folder' ? 'a folder of clips' : 'tar shards'}, not a clips output`,
      {
        where: { option: 'options.outputDir' },
      },
    );
  }
  await ensureOutputDir(outputDir, 'options.outputDir');
  const read = await readDedupClips({ input, outputDir, frames, parallel, onWarning, signal: options.signal });
  const clips = read.clips;
  const usable = clips.map((c, i) => [c, i] as const).filter(([c]) => c.fingerprint !== '');
  const groupOf = Int32Array.from({ length: clips.length }, (_, i) => i);
  let plan: BandPlan | null = null;
  let compared = 0;
  if (usable.length > 1) {
    const set = FingerprintSet.fromHex(usable.map(([c]) => c.fingerprint));
    const got = groupNearDuplicates(set, { maxDistance, signal: options.signal });
    plan = got.plan;
    compared = got.compared;
    usable.forEach(([, i], k) => {
      groupOf[i] = usable[got.groupOf[k]!]![1];
    });
  }
  const decision = decide(clips, groupOf, rule, read.table);
  const duplicatesCsv = join(outputDir, 'duplicates.csv');
  const keepList = join(outputDir, 'keep.txt');
  await writeDecision(decision, clips, { duplicates: duplicatesCsv, keepList });
  return {
    kind,
    clips: clips.length,
    fingerprinted: read.computed,
    unreadable: clips.length - usable.length,
    groups: decision.groups,
    dropped: clips.length - decision.kept.length,
    kept: decision.kept.length,
    duplicatesCsv,
    keepList,
    plan,
    compared,
    seconds: (Date.now() - started) / 1000,
  };
}
