/**
 * One source video through the clips stages: obtain → probe → plan → cut (with audio) →
 * describe, each a stage file usable alone with `stream/promises.pipeline` (see item.ts).
 */
import { cutStage } from './cut.js';
import { describeStage } from './describe.js';
import { composeStages, videoItem, type VideoContext, type VideoRow, type VideoStage } from './item.js';
import { obtainStage } from './obtain.js';
import type { ClipRecord } from './package.js';
import { planStage } from './plan-stage.js';
import type { SpanIssue } from './plan.js';
import { probeStage } from './probe-stage.js';
import type { SourceRow } from './sources.js';

export { VIDEO_COLUMNS, type ClipPlanSpec, type VideoContext, type VideoRow } from './item.js';
export { obtainSource } from './obtain.js';
export { planFor } from './plan-stage.js';
export { timingOf } from './probe-stage.js';

export interface VideoResult {
  row: VideoRow;
  records: ClipRecord[];
  issues: SpanIssue[];
  /** Clips cut in this run (the others existed). */
  made: number;
}

/** The stages of one video, in order. */
export function videoStages(ctx: VideoContext): VideoStage[] {
  return [obtainStage(ctx), probeStage(ctx), planStage(ctx), cutStage(ctx), describeStage(ctx)];
}

/**
 * Everything for one source video: obtain, probe (header and real frames), plan, check the
 * clips already there, cut the rest (all of a chunk in one ffmpeg), add audio right after
 * each chunk, and describe the results. Never throws for a bad video: the failure is
 * recorded in the row, so the other videos go on; a bad clip costs that clip only (it is
 * listed in `issues` and the row's error). Only an abort propagates.
 *
 * @example const { row, records } = await processVideo(source, ctx);
 */
export async function processVideo(src: SourceRow, ctx: VideoContext): Promise<VideoResult> {
  const run = composeStages(videoStages(ctx));
  async function* one() {
    yield videoItem(src);
  }
  for await (const item of run(one())) return { row: item.row, records: item.records, issues: item.issues, made: item.made };
  throw new Error('unreachable: the stages dropped the video');
}
