import { stat } from 'node:fs/promises';
import { clipFile } from './cut.js';
import { videoStage, type VideoContext, type VideoStage } from './item.js';
import type { ClipRecord } from './package.js';
import type { PlannedClip } from './plan.js';
import type { VideoInfo } from '../media/probe.js';
import { declareStage } from '../stage/contract.js';

function recordOf(clip: PlannedClip, info: VideoInfo, clipInfo: VideoInfo, size: number): ClipRecord {
  return {
    clip_id: clip.clipId,
    filename: `${clip.stem}.mp4`,
    video_id: clip.videoId,
    source: info.path,
    start_frame: clip.startFrame,
    end_frame: clip.endFrame,
    num_frames: clip.endFrame - clip.startFrame,
    start_s: clip.startS,
    end_s: clip.endS,
    fps: Math.round(info.fps * 1e6) / 1e6,
    width: clipInfo.width,
    height: clipInfo.height,
    size_bytes: size,
    video_codec: clipInfo.videoCodec,
    audio_codec: clipInfo.audioCodec ?? '',
    bit_rate: clipInfo.bitRate,
  };
}

/** Stage 5: a `clips.csv` row for every finished, verified clip (`item.records`), in plan order; it runs for partly failed videos too. */
export function describeStage(ctx: VideoContext): VideoStage {
  const step = videoStage(
    async (item) => {
      for (const c of item.clips ?? []) {
        const clipInfo = item.done.get(c.clipId);
        if (!clipInfo) continue;
        const record = recordOf(c, item.info!, clipInfo, (await stat(clipFile(ctx, c))).size);
        const scores = item.scores.get(c.clipId);
        item.records.push(scores ? { ...record, scores } : record);
      }
      item.row.num_clips = item.records.length;
      // Not needed past here; a long video's frame times are the biggest thing an item holds.
      item.frames = undefined;
      item.timing = undefined;
    },
    ctx,
    'describe',
  );
  return declareStage(step, { name: 'describe', needs: ['info', 'clips', 'done'], adds: ['records'], drops: ['frames', 'timing'] });
}
