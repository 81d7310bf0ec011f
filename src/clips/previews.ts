/**
 * `clips --previews`: each cut clip gets `previews/<clip stem>.webp`, a small animated WebP made
 * by PreviewWriter (src/sinks/preview.ts) from the small frames the cut's ffmpeg decodes for the
 * scores anyway (the score size, SCORE_WIDTH px wide), and a `preview` column in clips.csv (that
 * path relative to the output folder, '' when the clip had no frame). The preview rides on the
 * score setup as one more per-clip scorer, so it is kept in `.scores/` like the scores, and a clip
 * not cut again keeps its preview; one whose preview is gone is scored again from its file.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { SCORE_WIDTH, type ScoreSetup } from '../features/clip-scores.js';
import { PreviewWriter } from '../sinks/preview.js';

/** The clips.csv column of a clip's preview. */
export const PREVIEW_COLUMN = 'preview';

/** `setup` (or no scores at all) with the preview writer added as a per-clip scorer writing under `outputDir`. */
export function withPreviews(setup: ScoreSetup | undefined, outputDir: string): ScoreSetup {
  const base: ScoreSetup = setup ?? { names: [], columns: [] };
  return {
    ...base,
    columns: [...base.columns, PREVIEW_COLUMN],
    plugins: [...(base.plugins ?? []), (clip) => new PreviewWriter({ outputDir, clipId: clip.stem, width: SCORE_WIDTH })],
  };
}

/** Whether kept scores' preview (if they name one) is still there under `outputDir`. */
export async function previewThere(scores: Record<string, number | string>, outputDir: string): Promise<boolean> {
  const p = scores[PREVIEW_COLUMN];
  if (typeof p !== 'string' || p === '') return true;
  try {
    await access(join(outputDir, p));
    return true;
  } catch {
    return false;
  }
}
