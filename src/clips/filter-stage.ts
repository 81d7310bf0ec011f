import { mkdir, rename, rm } from 'node:fs/promises';
import { ClipstreamError } from '../errors.js';
import { declareStage } from '../stage/contract.js';
import { clipFile, filteredFile, plannedSubject } from './cut.js';
import { decide } from './filter.js';
import { videoStage, type VideoContext, type VideoStage } from './item.js';

/**
 * Stage 4b, with a filter: decides each finished clip on its fields and scores (`item.verdicts`).
 * A clip kept out moves to `filteredDir` (`filtered: 'keep'`) or is removed (`'skip'`; its scores
 * stay in `.scores/`, so a re-run decides it again without cutting it). Without a filter it
 * passes every video on untouched.
 */
export function filterStage(ctx: VideoContext): VideoStage {
  const step = videoStage(
    async (item) => {
      const f = ctx.filter;
      if (!f) return;
      for (const c of item.clips ?? []) {
        if (!item.done.has(c.clipId)) continue;
        const verdict = decide(f.rules, plannedSubject(c, item.info!, item.scores.get(c.clipId)));
        if (!verdict)
          throw new ClipstreamError('ERR_INVALID_OPTION', `clip ${c.clipId}: the filter needs a score this clip does not have`, { where: { key: c.clipId } });
        item.verdicts.set(c.clipId, verdict);
        if (verdict.kept) continue;
        if (f.filtered === 'keep') {
          await mkdir(ctx.filteredDir!, { recursive: true });
          await rename(clipFile(ctx, c), filteredFile(ctx, c));
        } else {
          await rm(clipFile(ctx, c), { force: true });
          item.done.delete(c.clipId);
        }
      }
    },
    ctx,
    'filter',
  );
  return declareStage(step, { name: 'filter', needs: ['info', 'clips', 'done'], adds: ['verdicts'] });
}
