/**
 * Each finished clip's scores are kept beside the output (`outputDir/.scores/<clip stem>.json`,
 * written atomically before the clip gets its final name), so a re-run, or one that resumes a
 * killed run, finds the scores of clips it does not cut again: the same numbers an uninterrupted
 * run writes. A clip without them (made by an older version, or with scores off) is scored
 * from its file (`scoreClipFile`).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ScoreSetup } from '../features/clip-scores.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { PlannedClip } from './plan.js';
import { PREVIEW_COLUMN, previewThere, withPreviews } from './previews.js';
import { scoreClipFile } from './score-file.js';

export const SCORES_DIR = '.scores';

export type ClipScores = Record<string, number | string>;

const storedPath = (scoresDir: string, clip: Pick<PlannedClip, 'stem'>) => join(scoresDir, `${clip.stem}.json`);

/** Keeps a clip's scores (atomically). */
export async function storeScores(scoresDir: string, clip: Pick<PlannedClip, 'stem'>, scores: ClipScores): Promise<void> {
  await writeFileAtomic(storedPath(scoresDir, clip), `${JSON.stringify(scores)}\n`);
}

/** The kept scores of a clip, or null when there are none (or not every column asked for). */
export async function readScores(scoresDir: string, clip: Pick<PlannedClip, 'stem'>, columns: readonly string[]): Promise<ClipScores | null> {
  try {
    const s = JSON.parse(await readFile(storedPath(scoresDir, clip), 'utf8')) as ClipScores;
    if (typeof s !== 'object' || s === null) return null;
    return columns.every((c) => c in s) ? s : null;
  } catch {
    return null;
  }
}

/** The scores of a clip that exists: kept ones when they hold every column of `setup` (and its preview is there), else from its file (then kept). */
export async function scoresOfExisting(
  scoresDir: string,
  clip: Pick<PlannedClip, 'stem'>,
  file: string,
  setup: ScoreSetup,
  o: { ffmpegPath?: string; signal?: AbortSignal } = {},
): Promise<ClipScores> {
  const kept = await readScores(scoresDir, clip, setup.columns);
  if (kept) {
    // Its preview gone: made again from the file, the other scores kept as they are.
    if (!(await previewThere(kept, dirname(scoresDir)))) {
      kept[PREVIEW_COLUMN] = (await scoreClipFile(file, withPreviews(undefined, dirname(scoresDir)), o)).scores[PREVIEW_COLUMN] ?? '';
      await storeScores(scoresDir, clip, kept);
    }
    return pick(kept, setup.columns);
  }
  const { scores } = await scoreClipFile(file, setup, o);
  await storeScores(scoresDir, clip, scores);
  return scores;
}

/** Only `columns`, in their order. */
export const pick = (s: ClipScores, columns: readonly string[]): ClipScores => Object.fromEntries(columns.map((c) => [c, s[c] ?? '']));
