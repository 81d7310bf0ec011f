import { videoStage, type ClipPlanSpec, type VideoContext, type VideoStage } from './item.js';
import { fixedParts, fixedStride, planSpans, type PlanResult, type VideoTiming } from './plan.js';
import { declareStage } from '../stage/contract.js';

export function planFor(videoId: string, timing: VideoTiming, plan: ClipPlanSpec): PlanResult {
  if (plan.kind === 'spans') return planSpans(plan.spans.get(videoId) ?? [], timing, plan.pastEnd);
  if (plan.kind === 'parts') return fixedParts(videoId, timing, plan.minutes);
  return fixedStride(videoId, timing, plan.stride);
}

/** Stage 3: the clips of each video (`item.clips`) from its real frames; changed spans go to `item.issues`. */
export function planStage(ctx: VideoContext): VideoStage {
  return declareStage(
    videoStage(
      async (item) => {
        const planned = planFor(item.source.videoId, item.timing!, ctx.plan);
        item.clips = planned.clips;
        item.issues.push(...planned.issues);
      },
      ctx,
      'plan',
    ),
    { name: 'plan', needs: ['timing'], adds: ['clips'] },
  );
}
