import { videoStage, type ClipPlanSpec, type VideoContext, type VideoItem, type VideoStage } from './item.js';
import { fixedParts, fixedStride, planShots, planSpans, type PlanResult, type VideoTiming } from './plan.js';
import { declareStage } from '../stage/contract.js';
import { runShotDetector } from '../features/shot-runner.js';
import { shotsFromBoundaries } from '../features/shots.js';
import { createShotDetector, shotsKey, type RecordedShots, type ShotsPlan } from './shots.js';

export function planFor(videoId: string, timing: VideoTiming, plan: ClipPlanSpec, shots?: RecordedShots): PlanResult {
  if (plan.kind === 'spans') return planSpans(plan.spans.get(videoId) ?? [], timing, plan.pastEnd);
  if (plan.kind === 'parts') return fixedParts(videoId, timing, plan.minutes);
  if (plan.kind === 'shots') return planShots(videoId, timing, shots?.rows ?? [], plan);
  return fixedStride(videoId, timing, plan.stride);
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * The shots of a video for `--split=shots`: those its earlier record holds when they were found
 * with the same settings (a finished video is not detected again), else one streaming detection
 * pass over the source. Shots cover the probed frames [0, numFrames), on the plan's frame times.
 */
async function shotsOf(item: VideoItem, plan: ShotsPlan, ctx: VideoContext, signal: AbortSignal | undefined): Promise<RecordedShots> {
  const key = shotsKey(plan);
  const id = item.source.videoId;
  const earlier = await ctx.recordedShots?.(id);
  if (earlier && earlier.key === key) return earlier;
  const timing = item.timing!;
  const detector = await createShotDetector(plan.detector, {
    threshold: plan.threshold,
    minShotS: plan.minShotS,
    fades: plan.fades,
    model: plan.model,
    signal,
  });
  const found = await runShotDetector(item.path!, detector, { facts: item.facts, times: timing.times, signal, ffmpeg: ctx.transcode.ffmpegPath });
  const timeOf = (n: number) => round6(timing.times ? timing.times[n]! : n / timing.fps);
  const boundaries = found.boundaries.filter((b) => b.frame < timing.numFrames);
  const rows = shotsFromBoundaries(boundaries, timing.numFrames, timeOf).map((s) => ({ video_id: id, ...s, score: round6(s.score) }));
  return { key, rows };
}

/** Stage 3: the clips of each video (`item.clips`) from its real frames; changed spans go to `item.issues`. With `--split=shots`, the shots are found here first (`item.shots`). */
export function planStage(ctx: VideoContext): VideoStage {
  return declareStage(
    videoStage(
      async (item) => {
        if (ctx.plan.kind === 'shots') item.shots = await shotsOf(item, ctx.plan, ctx, ctx.signal);
        const planned = planFor(item.source.videoId, item.timing!, ctx.plan, item.shots);
        item.clips = planned.clips;
        item.issues.push(...planned.issues);
      },
      ctx,
      'plan',
    ),
    { name: 'plan', needs: ['timing'], adds: ['clips'] },
  );
}
