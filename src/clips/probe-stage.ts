import { ClipstreamError } from '../errors.js';
import { probeMedia, type MediaFacts } from '../media/facts.js';
import { probeFrames, videoInfoOf, type FrameTimes, type VideoInfo } from '../media/probe.js';
import { videoStage, type VideoContext, type VideoStage } from './item.js';
import type { VideoTiming } from './plan.js';
import { breaksOf, contentTimes, gapsOf, medianInterval, type IndexedBreak } from './timeline.js';
import { declareStage } from '../stage/contract.js';

/**
 * The real frames as plan timing: times from the first frame, the end appended. Where the
 * timestamps restart or jump (`breaks`, at frame indices of `raw`: the stored times in file
 * order), the times are content times and the timing has its runs (timeline.ts).
 */
export function timingOf(info: VideoInfo, frames: FrameTimes, breaks: readonly IndexedBreak[] = [], raw: ArrayLike<number> = frames.times): VideoTiming {
  const n = frames.times.length;
  // The header's rate is exact for constant-rate video; for VFR it is only a summary.
  if (breaks.length > 0) {
    const { times, runs } = contentTimes(raw, breaks, medianInterval(raw, info.fps > 0 ? 1 / info.fps : 1 / 25));
    return { fps: info.fps > 0 ? info.fps : n / times[n]!, numFrames: n, times, runs };
  }
  const t0 = frames.times[0]!;
  const times = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) times[i] = frames.times[i]! - t0;
  times[n] = frames.endS - t0;
  return { fps: info.fps > 0 ? info.fps : n / times[n]!, numFrames: n, times };
}

/** Times that do not rise: ffmpeg's muxer clamps a restart to a run of equal times, so the decode pass cannot place those frames. */
function notRising(times: ArrayLike<number>): boolean {
  for (let i = 1; i < times.length; i++) if (!(times[i]! > times[i - 1]!)) return true;
  return false;
}

/**
 * Where the frames are, with their breaks: holes are seen in the decode pass itself; a restart
 * only in the packet listing of probeMedia's timeline, whose frames must then be the decoded ones.
 */
async function placeFrames(
  path: string,
  facts: MediaFacts,
  frames: FrameTimes,
  ctx: VideoContext,
): Promise<{ breaks: IndexedBreak[]; raw: ArrayLike<number> }> {
  const fallback = facts.video.fps > 0 ? 1 / facts.video.fps : 1 / 25;
  if (!notRising(frames.times)) return { breaks: gapsOf(frames.times, medianInterval(frames.times, fallback)), raw: frames.times };
  const timeline = (await probeMedia(path, { signal: ctx.signal, ffmpeg: ctx.transcode.ffmpegPath, lastPacket: false, timeline: true })).timeline!;
  if (timeline.resets.length === 0) return { breaks: [], raw: frames.times };
  if (timeline.pts.length !== frames.times.length) {
    const at = timeline.resets.map((r) => `frame ${r.index} (${r.fromS} s back to ${r.toS} s)`).join(', ');
    throw new ClipstreamError(
      'ERR_DECODE',
      `${path}: the timestamps restart at ${at}, and the packets (${timeline.pts.length} frames) and the decode (${frames.times.length} frames) disagree, so no clip can be placed with its audio; refused`,
      { where: { file: path } },
    );
  }
  return { breaks: breaksOf(timeline), raw: timeline.pts };
}

/**
 * Stage 2: the source's media facts (`item.facts`, and their VideoInfo view `item.info`) and,
 * because headers lie about frames, the real frames by one decode (`item.frames`,
 * `item.timing`); the row gets the video's length: its content, without holes, restarts counted.
 */
export function probeStage(ctx: VideoContext): VideoStage {
  return declareStage(
    videoStage(
      async (item) => {
        const ffmpeg = ctx.transcode.ffmpegPath;
        const facts = await probeMedia(item.path!, { signal: ctx.signal, ffmpeg, lastPacket: false });
        const info = videoInfoOf(facts);
        const frames = await probeFrames(item.path!, { ffmpegPath: ffmpeg, signal: ctx.signal, fps: info.fps });
        const { breaks, raw } = await placeFrames(item.path!, facts, frames, ctx);
        item.facts = facts;
        item.info = info;
        item.frames = frames;
        item.timing = timingOf(info, frames, breaks, raw);
        item.row.duration = Math.round(item.timing.times![item.timing.numFrames]! * 1000) / 1000;
      },
      ctx,
      'probe',
    ),
    { name: 'probe', needs: ['path'], adds: ['facts', 'info', 'frames', 'timing'] },
  );
}
