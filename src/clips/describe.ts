import { stat } from 'node:fs/promises';
import { clipFile, filteredFile, plannedSubject } from './cut.js';
import { videoStage, type VideoContext, type VideoStage } from './item.js';
import type { ClipRecord } from '../sinks/clip-table.js';
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

/** The row of a clip a filter kept out before or instead of writing it: no file (filename '', size 0, no codecs); size and rate are the source's. */
function skippedRecord(clip: PlannedClip, info: VideoInfo): ClipRecord {
  const s = plannedSubject(clip, info);
  return {
    clip_id: clip.clipId,
    filename: '',
    video_id: clip.videoId,
    source: info.path,
    start_frame: clip.startFrame,
    end_frame: clip.endFrame,
    num_frames: s.num_frames,
    start_s: clip.startS,
    end_s: clip.endS,
    fps: s.fps!,
    width: s.width!,
    height: s.height!,
    size_bytes: 0,
    video_codec: '',
    audio_codec: '',
    bit_rate: 0,
  };
}

/** Stage 5: a `clips.csv` row for every finished, verified clip (`item.records`), in plan order; it runs for partly failed videos too. */
export function describeStage(ctx: VideoContext): VideoStage {
  const step = videoStage(
    async (item) => {
      for (const c of item.clips ?? []) {
        const clipInfo = item.done.get(c.clipId);
        const verdict = item.verdicts.get(c.clipId);
        const scores = item.scores.get(c.clipId);
        const filter = verdict ? { kept: verdict.kept, filter_reason: verdict.reason } : {};
        if (!clipInfo) {
          // Kept out by a filter and not written (filtered: 'skip'): a row all the same, without a file.
          if (verdict && !verdict.kept) item.records.push({ ...skippedRecord(c, item.info!), ...(scores ? { scores } : {}), ...filter });
          continue;
        }
        const file = verdict && !verdict.kept ? filteredFile(ctx, c) : clipFile(ctx, c);
        const record = recordOf(c, item.info!, clipInfo, (await stat(file)).size);
        item.records.push({ ...record, ...(scores ? { scores } : {}), ...filter });
      }
      item.row.num_clips = item.records.filter((r) => r.kept !== false).length;
      // Not needed past here; a long video's frame times are the biggest thing an item holds.
      item.frames = undefined;
      item.timing = undefined;
    },
    ctx,
    'describe',
  );
  return declareStage(step, { name: 'describe', needs: ['info', 'clips', 'done'], adds: ['records'], drops: ['frames', 'timing'] });
}
