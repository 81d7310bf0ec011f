import { ClipstreamError } from '../errors.js';
import { type MediaFacts, type ProbeOptions, probeMedia, rateFraction, runFailure } from './facts.js';
import { ffmpegPath } from './ffmpeg-path.js';
import { runTool } from './process.js';

export { rateFraction, type ProbeOptions };

/** What clip planning and transcoding need to know about a source video: a view of its MediaFacts (media/facts.ts). */
export interface VideoInfo {
  path: string;
  durationS: number;
  fps: number;
  numFrames: number;
  width: number;
  height: number;
  videoCodec: string;
  pixFmt: string;
  /** Video stream bit rate in bit/s, or the container's when the stream has none; 0 if unknown. */
  bitRate: number;
  audioCodec: string | null;
}

/** The VideoInfo view of a file's facts. */
export function videoInfoOf(f: Pick<MediaFacts, 'path' | 'video' | 'geometry' | 'audio'>): VideoInfo {
  return {
    path: f.path,
    durationS: f.video.durationS,
    fps: f.video.fps,
    numFrames: f.video.frameCount,
    width: f.geometry.codedWidth,
    height: f.geometry.codedHeight,
    videoCodec: f.video.codec,
    pixFmt: f.video.pixFmt,
    bitRate: f.video.bitRate,
    audioCodec: f.audio[0]?.codec ?? null,
  };
}

/**
 * Probes a video with ffprobe (probeMedia's cheap part, without the tail read). The frame
 * count comes from the stream header when the container has an index (mp4, not a fragmented
 * one), else from duration × fps: an estimate, which `probeFrames` replaces with the real count
 * where it matters. When ffprobe itself crashes (the bundled build segfaults on MPEG-TS) the
 * same facts are read from `ffmpeg -i`.
 *
 * @example const info = await probeVideo('videos/abc.mp4'); // { fps: 25, numFrames: 750, ... }
 */
export async function probeVideo(path: string, options: ProbeOptions = {}): Promise<VideoInfo> {
  return videoInfoOf(await probeMedia(path, { ...options, lastPacket: false }));
}

/** The real frames of a video's first video stream, as ffmpeg decodes them. */
export interface FrameTimes {
  /** Presentation time of each decoded frame in seconds, as stored in the file (ffmpeg's `-copyts` timeline). */
  times: Float64Array;
  /** Where the last frame ends: its time plus the last frame interval. */
  endS: number;
}

/**
 * Decodes the first video stream once and lists every frame's presentation time. This is
 * the truth that clip planning needs: headers lie (a webm whose audio outlasts its video,
 * an mp4 cut with `-c copy` that still counts its pre-roll), and VFR frames are not at
 * `n / fps`. It runs through the ffmpeg that cuts the clips, so frame `n` here is frame `n`
 * of `trim=start_frame=n` there, and a time here is a time for its `trim` under `-copyts`.
 * Frames are passed through to a null-cost encoder (`wrapped_avframe`) at a 1 µs time base.
 *
 * @example const { times, endS } = await probeFrames('videos/abc.mp4'); // times.length: the real frame count
 */
export async function probeFrames(path: string, options: { ffmpegPath?: string; signal?: AbortSignal; fps?: number } = {}): Promise<FrameTimes> {
  const times = await decodedFrameTimes(path, options);
  const n = times.length;
  const last = n > 1 ? times[n - 1]! - times[n - 2]! : 1 / (options.fps && options.fps > 0 ? options.fps : 25);
  return { times: Float64Array.from(times), endS: times[n - 1]! + last };
}

/** The decode pass of probeFrames. */
async function decodedFrameTimes(path: string, options: { ffmpegPath?: string; signal?: AbortSignal }): Promise<number[]> {
  // -copyts: raw timestamps. Without it ffmpeg re-bases the timeline by the streams it maps
  // (an MPEG-TS read for its video alone starts at the video; for its audio, at the audio).
  const res = await runTool(
    options.ffmpegPath ?? ffmpegPath(),
    [
      '-hide_banner',
      '-nostdin',
      '-v',
      'error',
      '-copyts',
      '-i',
      path,
      '-map',
      '0:v:0',
      '-an',
      '-sn',
      '-dn',
      '-vsync',
      '0',
      '-r',
      '1000000',
      '-c:v',
      'wrapped_avframe',
      '-f',
      'framecrc',
      'pipe:1',
    ],
    { signal: options.signal, stallTimeoutMs: 120_000, where: { file: path } },
  );
  const why = runFailure('ffmpeg', res);
  if (why) throw new ClipstreamError('ERR_DECODE', `cannot count the frames of ${path}: ${why}`, { where: { file: path } });
  const text = res.stdout.toString('latin1');
  const times: number[] = [];
  let tb = 1e-6;
  for (const line of text.split('\n')) {
    if (line.startsWith('#tb 0:')) {
      const [n, d] = line.slice(6).trim().split('/').map(Number);
      if (n && d) tb = n / d;
    } else if (line.startsWith('0,')) {
      times.push(Number(line.split(',')[2]) * tb);
    }
  }
  if (times.length === 0)
    throw new ClipstreamError('ERR_DECODE', `cannot count the frames of ${path}: ffmpeg decoded no video frame`, { where: { file: path } });
  return times;
}

/** The frame timeline of a video: every frame's timestamp, its keyframes, and what a decode and a remux of it need (a view of MediaFacts). */
export interface FrameTimeline {
  info: VideoInfo;
  /** Presentation timestamps (seconds, as stored in the file), ascending. */
  pts: Float64Array;
  /** Indices (into `pts`) of keyframes, ascending; always starts with 0. */
  keyframes: number[];
  /** Size of decoded frames after ffmpeg's autorotation (stored pixels: the SAR is not applied). */
  width: number;
  height: number;
  /** The average frame rate as a fraction (e.g. `30000/1001`), the output's frame rate. */
  rate: string;
  /** Clockwise display rotation in degrees (0 when none): the convention of media/facts.ts. */
  rotation: number;
  /** Start times (seconds) of the container, the video stream and the first audio stream (null: no audio). */
  formatStart: number;
  videoStart: number;
  audioStart: number | null;
  audioDuration: number | null;
  /** How the frames were listed: ffprobe's packets (fast), or a decode pass where ffprobe failed. */
  method: 'packets' | 'decode';
}

/** The FrameTimeline view of facts probed with `timeline: true`. */
export function frameTimelineOf(f: MediaFacts): FrameTimeline {
  const t = f.timeline;
  if (!t) throw new ClipstreamError('ERR_PIPELINE', `${f.path}: the facts were probed without a timeline`, { where: { file: f.path } });
  let { pts, keyframes } = t;
  if (t.resets.length > 0) {
    // This view has always been one ascending list: the runs of a reset are merged by time.
    const key = new Set(keyframes);
    const order = Array.from(pts, (_, i) => i).sort((a, b) => pts[a]! - pts[b]!);
    pts = Float64Array.from(order, (i) => t.pts[i]!);
    keyframes = order.flatMap((i, k) => (key.has(i) ? [k] : []));
    if (keyframes[0] !== 0) keyframes.unshift(0);
  }
  const a = f.audio[0];
  const quarter = f.geometry.rotation === 90 || f.geometry.rotation === 270;
  const videoStart = f.video.startS;
  const formatStart = f.container.startS;
  return {
    info: videoInfoOf(f),
    pts,
    keyframes,
    width: quarter ? f.geometry.codedHeight : f.geometry.codedWidth,
    height: quarter ? f.geometry.codedWidth : f.geometry.codedHeight,
    rate: f.method === 'ffmpeg' ? rateFraction(f.video.fps) : f.video.rate,
    rotation: f.geometry.rotation,
    formatStart,
    videoStart,
    // ffmpeg -i names the audio stream but not its start: the container start stands for it (remux only needs to know it is there).
    audioStart: a ? (a.startS ?? (f.method === 'ffmpeg' ? formatStart : videoStart)) : null,
    audioDuration: a?.durationS ?? null,
    method: t.method,
  };
}

/**
 * The one frame-timestamp probe with keyframes (segments plans on it): probeMedia with
 * `timeline: true` — ffprobe's packet listing, which reads no pixels; where ffprobe fails or
 * dies by a signal (the bundled build segfaults on every MPEG-TS file), the same timeline from
 * ffmpeg itself (its description of the input and a decode pass). Memory: 8 bytes a frame.
 *
 * @example const t = await probeFrameTimeline('talk.mp4'); t.pts.length // number of frames
 */
export async function probeFrameTimeline(path: string, options: ProbeOptions = {}): Promise<FrameTimeline> {
  return frameTimelineOf(await probeMedia(path, { ...options, timeline: true }));
}
