import { probeMedia } from '../media/facts.js';
import { probeFrames, videoInfoOf, type FrameTimes, type VideoInfo } from '../media/probe.js';
import { videoStage, type VideoContext, type VideoStage } from './item.js';
import type { VideoTiming } from './plan.js';
import { declareStage } from '../run/contract.js';

/** The real frames as plan timing: times from the first frame, the end appended. */
export function timingOf(info: VideoInfo, frames: FrameTimes): VideoTiming {
  const n = frames.times.length;
  const t0 = frames.times[0]!;
  const times = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) times[i] = frames.times[i]! - t0;
  times[n] = frames.endS - t0;
  // The header's rate is exact for constant-rate video; for VFR it is only a summary.
  return { fps: info.fps > 0 ? info.fps : n / times[n]!, numFrames: n, times };
}

/**
 * Stage 2: the header facts (`item.info`) and, because headers lie about frames, the real
 * frames by one decode (`item.frames`, `item.timing`); the row gets the video's length.
 */
export function probeStage(ctx: VideoContext): VideoStage {
  return declareStage(
    videoStage(
      async (item) => {
        const ffmpeg = ctx.transcode.ffmpegPath;
        const facts = await probeMedia(item.path!, { signal: ctx.signal, ffmpeg, lastPacket: false });
        const info = videoInfoOf(facts);
        const frames = await probeFrames(item.path!, { ffmpegPath: ffmpeg, signal: ctx.signal, fps: info.fps });
        item.facts = facts;
        item.info = info;
        item.frames = frames;
        item.timing = timingOf(info, frames);
        item.row.duration = Math.round(item.timing.times![item.timing.numFrames]! * 1000) / 1000;
      },
      ctx,
      'probe',
    ),
    { name: 'probe', needs: ['path'], adds: ['facts', 'info', 'frames', 'timing'] },
  );
}
