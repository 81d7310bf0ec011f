import { mkdir, rm, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { ClipstreamError, toClipstreamError } from '../errors.js';
import { splitAudio, remixClip } from './audio.js';
import { downloadFile, downloadYouTube, type DownloadOptions } from './download.js';
import type { EncoderChoice } from './encoders.js';
import { fixedParts, fixedStride, planSpans, type FixedStrideOptions, type PlannedClip, type PlanResult, type SpanIssue, type SpanSpec, type VideoTiming } from './plan.js';
import { probeFrames, probeVideo, type FrameTimes, type VideoInfo } from '../media/probe.js';
import type { ClipRecord } from './package.js';
import type { SourceRow } from './sources.js';
import { transcodeClips, verifyClip, type ClipJob, type TranscodeOptions } from './transcode.js';

/** How clips are chosen for each video; exactly one of the three. */
export type ClipPlanSpec =
  | { kind: 'spans'; spans: Map<string, SpanSpec[]>; pastEnd?: 'clip' | 'drop' }
  | { kind: 'stride'; stride: FixedStrideOptions }
  | { kind: 'parts'; minutes: number };

/** One row of `videos.csv` (seed 002's metadata, plus the error and duration). */
export interface VideoRow {
  video_id: string;
  downloaded: boolean;
  failed: boolean;
  error: string;
  path: string;
  duration: number | '';
  num_clips: number;
}

export const VIDEO_COLUMNS: readonly (keyof VideoRow)[] = ['video_id', 'downloaded', 'failed', 'error', 'path', 'duration', 'num_clips'];

export interface VideoContext {
  clipsDir: string;
  downloadsDir: string;
  workDir: string;
  plan: ClipPlanSpec;
  encoder: EncoderChoice;
  transcode: Omit<TranscodeOptions, 'encoder' | 'hwaccel' | 'bitRate' | 'signal'>;
  useInputBitRate: boolean;
  ignoreAudio: boolean;
  download: DownloadOptions;
  ytDlpPath?: string;
  signal?: AbortSignal;
}

export interface VideoResult {
  row: VideoRow;
  records: ClipRecord[];
  issues: SpanIssue[];
  /** Clips cut in this run (the others existed). */
  made: number;
}

const safe = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, '-');

async function exists(p: string): Promise<boolean> {
  try {
    return (await stat(p)).size > 0;
  } catch {
    return false;
  }
}

/** Makes the source available locally: in place, downloaded over HTTP, or via yt-dlp. */
export async function obtainSource(src: SourceRow, ctx: VideoContext): Promise<string> {
  if (src.kind === 'path') {
    if (!(await exists(src.location))) throw new ClipstreamError('ERR_IO', `video ${src.videoId}: ${src.location} does not exist or is empty`, { where: { key: src.videoId, file: src.location } });
    return src.location;
  }
  if (src.kind === 'url') {
    const ext = extname(new URL(src.location).pathname).toLowerCase() || '.mp4';
    const dest = join(ctx.downloadsDir, `${safe(src.videoId)}${ext}`);
    await downloadFile(src.location, dest, { ...ctx.download, signal: ctx.signal });
    return dest;
  }
  const dest = join(ctx.downloadsDir, `${safe(src.videoId)}.mp4`);
  await downloadYouTube(src.location, dest, { ytDlpPath: ctx.ytDlpPath, signal: ctx.signal });
  return dest;
}

export function planFor(videoId: string, timing: VideoTiming, plan: ClipPlanSpec): PlanResult {
  if (plan.kind === 'spans') return planSpans(plan.spans.get(videoId) ?? [], timing, plan.pastEnd);
  if (plan.kind === 'parts') return fixedParts(videoId, timing, plan.minutes);
  return fixedStride(videoId, timing, plan.stride);
}

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

function recordOf(clip: PlannedClip, info: VideoInfo, clipInfo: VideoInfo, size: number, filename: string): ClipRecord {
  return {
    clip_id: clip.clipId,
    filename,
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
  const row: VideoRow = { video_id: src.videoId, downloaded: false, failed: false, error: '', path: '', duration: '', num_clips: 0 };
  const records: ClipRecord[] = [];
  const issues: SpanIssue[] = [];
  const clipErrors: string[] = [];
  let made = 0;
  try {
    const path = await obtainSource(src, ctx);
    row.downloaded = true;
    row.path = path;
    const ffmpeg = ctx.transcode.ffmpegPath;
    const info = await probeVideo(path, { signal: ctx.signal, ffmpeg });
    // Headers can be wrong about the frames: plan on the ones that decode.
    const frames = await probeFrames(path, { ffmpegPath: ffmpeg, signal: ctx.signal, fps: info.fps });
    const timing = timingOf(info, frames);
    row.duration = Math.round(timing.times![timing.numFrames]! * 1000) / 1000;
    const planned = planFor(src.videoId, timing, ctx.plan);
    issues.push(...planned.issues);
    const withAudio = !ctx.ignoreAudio && info.audioCodec !== null;
    const finalOf = (c: PlannedClip) => join(ctx.clipsDir, `${c.stem}.mp4`);
    const done = new Map<string, VideoInfo>();
    const todo: PlannedClip[] = [];
    for (const c of planned.clips) {
      const file = finalOf(c);
      if (!(await exists(file))) {
        todo.push(c);
        continue;
      }
      // A file under a final name from an older run is checked, never trusted blindly.
      try {
        done.set(c.clipId, await verifyClip(file, c.endFrame - c.startFrame, { audio: withAudio, signal: ctx.signal }));
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        await rm(file, { force: true });
        todo.push(c);
      }
    }
    if (todo.length > 0) {
      const flac = join(ctx.workDir, `${safe(src.videoId)}.flac`);
      if (withAudio && !(await exists(flac))) {
        await splitAudio(path, flac, src.videoId, { ffmpegPath: ffmpeg, signal: ctx.signal, startS: frames.times[0] });
      }
      const videoOut = (c: PlannedClip) => (withAudio ? join(ctx.workDir, `${c.stem}.video.mp4`) : finalOf(c));
      await mkdir(ctx.clipsDir, { recursive: true });
      const clipDone = async ({ clip, out }: ClipJob) => {
        const file = finalOf(clip);
        if (withAudio) {
          try {
            await remixClip(out, flac, clip, file, { ffmpegPath: ffmpeg, signal: ctx.signal });
          } finally {
            await rm(out, { force: true });
          }
        }
        try {
          done.set(clip.clipId, await verifyClip(file, clip.endFrame - clip.startFrame, { audio: withAudio, signal: ctx.signal }));
        } catch (err) {
          await rm(file, { force: true });
          throw err;
        }
        made++;
      };
      const clipFailed = (job: ClipJob, err: Error) => {
        clipErrors.push(`clip ${job.clip.clipId}: ${err.message}`);
        issues.push({ videoId: src.videoId, span: `frames ${job.clip.startFrame}-${job.clip.endFrame}`, action: 'failed', reason: err.message });
      };
      await transcodeClips(info, src.videoId, todo.map((clip) => ({ clip, out: videoOut(clip) })), {
        ...ctx.transcode,
        encoder: ctx.encoder.encoder,
        hwaccel: ctx.encoder.hwaccel,
        bitRate: ctx.useInputBitRate && info.bitRate > 0 ? info.bitRate : undefined,
        frameTimes: frames,
        onClipDone: clipDone,
        onClipFailed: clipFailed,
        signal: ctx.signal,
      });
      await rm(flac, { force: true });
    }
    for (const c of planned.clips) {
      const clipInfo = done.get(c.clipId);
      if (!clipInfo) continue;
      const st = await stat(finalOf(c));
      records.push(recordOf(c, info, clipInfo, st.size, `${c.stem}.mp4`));
    }
    row.num_clips = records.length;
    if (clipErrors.length > 0) {
      row.error = `video ${src.videoId}: ${clipErrors.length} of ${planned.clips.length} clips failed: ${clipErrors.join('; ')}`;
      row.failed = records.length === 0;
    }
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    const e = toClipstreamError(err, 'ERR_DECODE', { key: src.videoId });
    row.failed = true;
    row.error = e.message.startsWith(`video ${src.videoId}`) ? e.message : `video ${src.videoId}: ${e.message}`;
    row.num_clips = 0;
    records.length = 0;
  }
  return { row, records, issues, made };
}
