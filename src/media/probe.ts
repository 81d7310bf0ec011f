import { ClipstreamError } from '../errors.js';
import { ffmpegPath, ffprobePath } from './ffmpeg-path.js';
import { runTool, runToolOrThrow, type RunResult } from './process.js';

/** What clip planning and transcoding need to know about a source video. */
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

export interface ProbeOptions {
  signal?: AbortSignal;
  ffprobe?: string;
  /** ffmpeg for the fallback probe (and the frame pass); default FFMPEG_PATH or the bundled one. */
  ffmpeg?: string;
}

function rate(v: unknown): number {
  const [n, d] = String(v ?? '0/0')
    .split('/')
    .map(Number);
  return n && d ? n / d : 0;
}

/** Why a tool run did not give a usable answer, or null when it exited 0. */
function runFailure(tool: string, res: RunResult): string | null {
  if (res.killedBy) return `${tool} was killed (${res.killedBy === 'stall' ? 'no progress' : 'timeout'})`;
  if (res.signal) return `${tool} was killed by ${res.signal}`;
  if (res.code !== 0) return res.stderr.trim().split('\n').pop() || `${tool} exited with ${res.code}`;
  return null;
}

/** A crash (a signal, or no exit code) says nothing about the file: worth another route. */
const crashed = (res: RunResult) => res.signal !== null || (res.code === null && !res.killedBy);

/**
 * Probes a video with ffprobe. The frame count comes from the stream header when the
 * container has one (mp4), else from duration × fps: an estimate, which `probeFrames`
 * replaces with the real count where it matters. When ffprobe itself crashes (the bundled
 * build segfaults on MPEG-TS) the same facts are read from `ffmpeg -i`.
 *
 * @example const info = await probeVideo('videos/abc.mp4'); // { fps: 25, numFrames: 750, ... }
 */
export async function probeVideo(path: string, options: ProbeOptions = {}): Promise<VideoInfo> {
  const args = [
    '-v',
    'error',
    '-show_entries',
    'stream=codec_type,codec_name,width,height,pix_fmt,r_frame_rate,avg_frame_rate,nb_frames,bit_rate,duration:format=duration,bit_rate',
    '-of',
    'json',
    path,
  ];
  const fail = (why: string) => new ClipstreamError('ERR_DECODE', `cannot probe ${path}: ${why}`, { where: { file: path } });
  let res: RunResult | null = null;
  let why: string;
  try {
    res = await runTool(options.ffprobe ?? ffprobePath(), args, { signal: options.signal, timeoutMs: 60_000, where: { file: path } });
    why = runFailure('ffprobe', res) ?? '';
  } catch (err) {
    if (options.signal?.aborted) throw err;
    why = (err as Error).message;
  }
  if (res === null || crashed(res)) {
    try {
      return await probeWithFfmpeg(path, options);
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw fail(`${why}; the fallback through ffmpeg failed too: ${(err as Error).message}`);
    }
  }
  if (why) throw fail(why);
  let json: { streams?: Record<string, unknown>[]; format?: Record<string, unknown> };
  try {
    json = JSON.parse(res.stdout.toString('utf8'));
  } catch {
    throw fail('ffprobe printed no JSON');
  }
  const streams = json.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video');
  const a = streams.find((s) => s.codec_type === 'audio');
  if (!v) throw fail('no video stream');
  // avg_frame_rate is what the frames really average to; r_frame_rate can be a field rate.
  const fps = rate(v.avg_frame_rate) || rate(v.r_frame_rate);
  const durationS = Number(v.duration ?? json.format?.duration);
  if (!(fps > 0)) throw fail('no frame rate');
  if (!(durationS > 0)) throw fail('no duration');
  const nb = Number(v.nb_frames);
  return {
    path,
    durationS,
    fps,
    numFrames: Number.isInteger(nb) && nb > 0 ? nb : Math.round(durationS * fps),
    width: Number(v.width),
    height: Number(v.height),
    videoCodec: String(v.codec_name),
    pixFmt: String(v.pix_fmt),
    bitRate: Number(v.bit_rate) || Number(json.format?.bit_rate) || 0,
    audioCodec: a ? String(a.codec_name) : null,
  };
}

/**
 * The facts of `probeVideo` from ffmpeg's own description of its input (`ffmpeg -i`,
 * which exits 1 for want of an output but prints every stream first).
 *
 * @example parseFfmpegInfo('  Duration: 00:00:02.02, start: 1.400000, bitrate: 235 kb/s\n    Stream #0:0: Video: h264 ..., yuv420p, 160x120, 25 fps', 'a.ts')
 */
export function parseFfmpegInfo(stderr: string, path: string, options: { rateOptional?: boolean } = {}): VideoInfo {
  const fail = (why: string) => new ClipstreamError('ERR_DECODE', `cannot probe ${path} with ffmpeg: ${why}`, { where: { file: path } });
  const dur = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(stderr);
  const video = /Stream #\d+:\d+[^:]*: Video: (\w+)[^\n]*/.exec(stderr);
  const audio = /Stream #\d+:\d+[^:]*: Audio: (\w+)/.exec(stderr);
  if (!video) throw fail(`no video stream (${stderr.trim().split('\n').pop() ?? 'no output'})`);
  const line = video[0];
  // Fields are comma-separated, but parentheses may hold commas too: drop them first.
  const fields = line
    .replace(/\([^()]*\)/g, '')
    .split(',')
    .map((f) => f.trim());
  const size = /(\d+)x(\d+)/.exec(fields.find((f) => /^\d+x\d+/.test(f)) ?? '');
  const fps = Number(/([\d.]+) fps/.exec(line)?.[1] ?? /([\d.]+k?) tbr/.exec(line)?.[1]);
  const durationS = dur ? Number(dur[1]) * 3600 + Number(dur[2]) * 60 + Number(dur[3]) : NaN;
  if (!(fps > 0) && !options.rateOptional) throw fail('no frame rate');
  if (!(durationS > 0) && !options.rateOptional) throw fail('no duration');
  const kbps = (s: string | undefined) => (s ? Number(s) * 1000 : 0);
  return {
    path,
    durationS,
    fps: fps || 0,
    numFrames: fps > 0 && durationS > 0 ? Math.round(durationS * fps) : 0,
    width: Number(size?.[1] ?? 0),
    height: Number(size?.[2] ?? 0),
    videoCodec: video[1]!,
    pixFmt: (fields[1] ?? '').split(' ')[0] ?? '',
    bitRate: kbps(/(\d+) kb\/s/.exec(line)?.[1]) || kbps(/bitrate: (\d+) kb\/s/.exec(stderr)?.[1]),
    audioCodec: audio ? audio[1]! : null,
  };
}

async function probeWithFfmpeg(path: string, options: ProbeOptions): Promise<VideoInfo> {
  const res = await runTool(options.ffmpeg ?? ffmpegPath(), ['-hide_banner', '-nostdin', '-i', path], {
    signal: options.signal,
    timeoutMs: 60_000,
    where: { file: path },
  });
  if (res.signal || res.killedBy) throw new Error(runFailure('ffmpeg', res)!);
  return parseFfmpegInfo(res.stderr, path);
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
  const times = await decodedFrameTimes(path, options, false);
  const n = times.length;
  const last = n > 1 ? times[n - 1]! - times[n - 2]! : 1 / (options.fps && options.fps > 0 ? options.fps : 25);
  return { times: Float64Array.from(times), endS: times[n - 1]! + last };
}

/** The decode pass of probeFrames; `keysOnly` decodes the keyframes alone (`-skip_frame nokey`), for their times. */
async function decodedFrameTimes(path: string, options: { ffmpegPath?: string; signal?: AbortSignal }, keysOnly: boolean): Promise<number[]> {
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
      ...(keysOnly ? ['-skip_frame', 'nokey'] : []),
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

/** The frame timeline of a video: every frame's timestamp, its keyframes, and what a decode and a remux of it need. */
export interface FrameTimeline {
  info: VideoInfo;
  /** Presentation timestamps (seconds, as stored in the file), ascending. */
  pts: Float64Array;
  /** Indices (into `pts`) of keyframes, ascending; always starts with 0. */
  keyframes: number[];
  /** Size of decoded frames after ffmpeg's autorotation. */
  width: number;
  height: number;
  /** The average frame rate as a fraction (e.g. `30000/1001`), the output's frame rate. */
  rate: string;
  /** Rotation of the display matrix in degrees (0 when none). */
  rotation: number;
  /** Start times (seconds) of the container, the video stream and the first audio stream (null: no audio). */
  formatStart: number;
  videoStart: number;
  audioStart: number | null;
  audioDuration: number | null;
  /** How the frames were listed: ffprobe's packets (fast), or a decode pass where ffprobe failed. */
  method: 'packets' | 'decode';
}

/**
 * The one frame-timestamp probe with keyframes (segments plans on it): ffprobe's packet
 * listing, which reads no pixels; where ffprobe fails or dies by a signal (the bundled build
 * segfaults on every MPEG-TS file), the same timeline from ffmpeg itself: its description of
 * the input (`ffmpeg -i`) and two decode passes, every frame (probeFrames' pass) and the
 * keyframes alone. Memory: 8 bytes a frame.
 *
 * @example const t = await probeFrameTimeline('talk.mp4'); t.pts.length // number of frames
 */
export async function probeFrameTimeline(path: string, options: ProbeOptions = {}): Promise<FrameTimeline> {
  let info: VideoInfo | null = null;
  let why: string;
  try {
    info = await probeVideo(path, options);
    return await packetTimeline(path, info, options);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    why = (err as Error).message;
  }
  try {
    return await decodeTimeline(path, info, options);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new ClipstreamError('ERR_DECODE', `cannot read the frames of ${path}: ${why}; the decode pass failed too: ${(err as Error).message}`, {
      where: { file: path },
      cause: err,
    });
  }
}

const num = (x: unknown) => (x === undefined || x === 'N/A' ? NaN : Number(x));

/** Display size: a quarter turn swaps width and height. */
const displaySize = (info: VideoInfo, rotation: number) =>
  Math.abs(Math.round(rotation / 90)) % 2 === 1 ? { width: info.height, height: info.width } : { width: info.width, height: info.height };

async function packetTimeline(path: string, info: VideoInfo, options: ProbeOptions): Promise<FrameTimeline> {
  const where = { file: path };
  const ffprobe = options.ffprobe ?? ffprobePath();
  const meta = await runToolOrThrow(
    ffprobe,
    [
      '-v',
      'error',
      '-show_entries',
      'stream=codec_type,start_time,duration,avg_frame_rate,r_frame_rate:stream_tags=rotate:stream_side_data=rotation:format=start_time',
      '-of',
      'json',
      path,
    ],
    { what: 'cannot read the streams', signal: options.signal, timeoutMs: 60_000, where },
  );
  const json = JSON.parse(meta.stdout.toString('utf8')) as { streams: Record<string, unknown>[]; format?: { start_time?: string } };
  const v = json.streams.find((s) => s.codec_type === 'video')!;
  const a = json.streams.find((s) => s.codec_type === 'audio');
  const side = (v.side_data_list as { rotation?: number }[] | undefined)?.find((d) => d.rotation !== undefined)?.rotation;
  const rotation = Number(side ?? (v.tags as { rotate?: string } | undefined)?.rotate ?? 0) || 0;

  // Packets in file order; -read_intervals is not used so that nothing is skipped.
  const res = await runToolOrThrow(
    ffprobe,
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,dts_time,flags', '-of', 'csv=p=0', path],
    {
      what: 'cannot list the packets',
      signal: options.signal,
      timeoutMs: 600_000,
      where,
    },
  );
  const rows: { t: number; key: boolean }[] = [];
  for (const line of res.stdout.toString('utf8').split('\n')) {
    if (!line) continue;
    const [pts, dts, flags] = line.split(',');
    const t = Number(pts !== 'N/A' && pts !== '' ? pts : dts);
    if (!Number.isFinite(t)) continue;
    // 'D' marks packets the decoder discards (e.g. before an edit list's start): not frames.
    if (flags?.includes('D')) continue;
    rows.push({ t, key: flags?.startsWith('K') ?? false });
  }
  if (rows.length === 0) throw new ClipstreamError('ERR_DECODE', `${path}: the video stream has no packets`, { where });
  rows.sort((x, y) => x.t - y.t);
  const pts = Float64Array.from(rows, (r) => r.t);
  const keyframes: number[] = [];
  rows.forEach((r, i) => r.key && keyframes.push(i));
  if (keyframes[0] !== 0) keyframes.unshift(0);
  const videoStart = Number.isFinite(num(v.start_time)) ? num(v.start_time) : pts[0]!;
  return {
    info,
    pts,
    keyframes,
    ...displaySize(info, rotation),
    rate: String(v.avg_frame_rate && v.avg_frame_rate !== '0/0' ? v.avg_frame_rate : v.r_frame_rate),
    rotation,
    formatStart: Number.isFinite(num(json.format?.start_time)) ? num(json.format?.start_time) : videoStart,
    videoStart,
    audioStart: a ? (Number.isFinite(num(a.start_time)) ? num(a.start_time) : videoStart) : null,
    audioDuration: a && Number.isFinite(num(a.duration)) ? num(a.duration) : null,
    method: 'packets',
  };
}

/** A frame rate as a fraction: whole rates as N/1, NTSC rates as N000/1001, others in thousandths. */
export function rateFraction(fps: number): string {
  if (Math.abs(fps - Math.round(fps)) < 0.005) return `${Math.round(fps)}/1`;
  const ntsc = (fps * 1001) / 1000;
  if (Math.abs(ntsc - Math.round(ntsc)) < 0.005) return `${Math.round(ntsc) * 1000}/1001`;
  return `${Math.round(fps * 1000)}/1000`;
}

/** The timeline from ffmpeg alone; `known` is probeVideo's answer when it had one (a VFR MPEG-TS has no rate in `ffmpeg -i`: it comes from the frames then). */
async function decodeTimeline(path: string, known: VideoInfo | null, options: ProbeOptions): Promise<FrameTimeline> {
  const where = { file: path };
  const described = await runTool(options.ffmpeg ?? ffmpegPath(), ['-hide_banner', '-nostdin', '-i', path], {
    signal: options.signal,
    timeoutMs: 60_000,
    where,
  });
  if (described.signal || described.killedBy) throw new ClipstreamError('ERR_DECODE', `${path}: ${runFailure('ffmpeg', described)}`, { where });
  const text = described.stderr;
  const decode = { ffmpegPath: options.ffmpeg, signal: options.signal };
  const [all, keys] = await Promise.all([decodedFrameTimes(path, decode, false), decodedFrameTimes(path, decode, true)]);
  const pts = Float64Array.from(all).sort();
  const n = pts.length;
  const avg = n > 1 && pts[n - 1]! > pts[0]! ? (n - 1) / (pts[n - 1]! - pts[0]!) : 0;
  const info = known ?? parseFfmpegInfo(text, path, { rateOptional: true });
  if (!(info.fps > 0)) Object.assign(info, { fps: avg || 25, numFrames: n, durationS: info.durationS > 0 ? info.durationS : n / (avg || 25) });
  // Both passes print the same microsecond ticks, so a keyframe's time is found exactly.
  const index = new Map<number, number>();
  pts.forEach((t, i) => index.set(Math.round(t * 1e6), i));
  const keyframes = [...new Set(keys.map((t) => index.get(Math.round(t * 1e6))).filter((i): i is number => i !== undefined))].sort((x, y) => x - y);
  if (keyframes[0] !== 0) keyframes.unshift(0);
  const rotation = Number(/displaymatrix: rotation of (-?[\d.]+) degrees/.exec(text)?.[1] ?? 0) || 0;
  const start = Number(/Duration: [^,]*, start: (-?[\d.]+)/.exec(text)?.[1]);
  const videoStart = pts[0]!;
  const formatStart = Number.isFinite(start) ? start : videoStart;
  return {
    info,
    pts,
    keyframes,
    ...displaySize(info, rotation),
    rate: rateFraction(info.fps),
    rotation,
    formatStart,
    videoStart,
    // ffmpeg -i names the audio stream but not its start: the container start stands for it (remux only needs to know it is there).
    audioStart: info.audioCodec !== null ? formatStart : null,
    audioDuration: null,
    method: 'decode',
  };
}
