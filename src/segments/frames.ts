/**
 * The frame timeline of a source video, read from its packets (no decoding): every frame's
 * presentation timestamp and which frames are keyframes. Segments are planned on this, so
 * boundaries are exact frames even for variable frame rates, and each segment's decode can
 * start at the keyframe before it.
 */
import { ClipstreamError } from '../errors.js';
import { ffprobePath } from '../media/ffmpeg-path.js';
import { probeVideo, type VideoInfo } from '../media/probe.js';
import { describeExit, runTool, stderrTail, type RunResult } from '../media/process.js';

export interface FrameTimeline {
  info: VideoInfo;
  /** Presentation timestamps (seconds, as ffprobe prints them), ascending. */
  pts: Float64Array;
  /** Indices (into `pts`) of keyframes, ascending. */
  keyframes: number[];
  /** Size of decoded frames after ffmpeg's autorotation. */
  width: number;
  height: number;
  /** avg_frame_rate as ffprobe gives it (e.g. `30000/1001`), the output's frame rate. */
  rate: string;
  /** Rotation of the display matrix in degrees (0 when none). */
  rotation: number;
  /** Start times (seconds) of the container, the video stream and the first audio stream (null: no audio). */
  formatStart: number;
  videoStart: number;
  audioStart: number | null;
  audioDuration: number | null;
}

/** Why an ffprobe run failed: how it ended (exit code, or the signal that killed it) and its last words. */
function ended(r: RunResult): string {
  const tail = stderrTail(r.stderr);
  return `ffprobe ${describeExit(r)}${tail ? `: ${tail}` : ''}`;
}

function fail(path: string, why: string): ClipstreamError {
  return new ClipstreamError('ERR_DECODE', `cannot read the frames of ${path}: ${why}`, { where: { file: path } });
}

/**
 * Probes `path`: stream facts (probeVideo), rotation, start times, and the timestamp and key
 * flag of every video packet.
 *
 * @example const t = await probeFrames('talk.mp4'); t.pts.length // number of frames
 */
export async function probeFrames(path: string, options: { signal?: AbortSignal } = {}): Promise<FrameTimeline> {
  const info = await probeVideo(path, { ...options });
  const where = { file: path };
  const meta = await runTool(
    ffprobePath(),
    [
      '-v',
      'error',
      '-show_entries',
      'stream=codec_type,start_time,duration,avg_frame_rate,r_frame_rate:stream_tags=rotate:stream_side_data=rotation:format=start_time',
      '-of',
      'json',
      path,
    ],
    {
      signal: options.signal,
      timeoutMs: 60_000,
      where,
    },
  );
  if (meta.code !== 0) throw fail(path, ended(meta));
  const json = JSON.parse(meta.stdout.toString('utf8')) as { streams: Record<string, unknown>[]; format?: { start_time?: string } };
  const v = json.streams.find((s) => s.codec_type === 'video')!;
  const a = json.streams.find((s) => s.codec_type === 'audio');
  const side = (v.side_data_list as { rotation?: number }[] | undefined)?.find((d) => d.rotation !== undefined)?.rotation;
  const rotation = Number(side ?? (v.tags as { rotate?: string } | undefined)?.rotate ?? 0) || 0;
  const quarter = Math.abs(Math.round(rotation / 90)) % 2 === 1;

  // Packets in file order; -read_intervals is not used so that nothing is skipped.
  const res = await runTool(
    ffprobePath(),
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,dts_time,flags', '-of', 'csv=p=0', path],
    {
      signal: options.signal,
      timeoutMs: 600_000,
      where,
    },
  );
  if (res.code !== 0) throw fail(path, ended(res));
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
  if (rows.length === 0) throw fail(path, 'the video stream has no packets');
  rows.sort((x, y) => x.t - y.t);
  const pts = Float64Array.from(rows, (r) => r.t);
  const keyframes: number[] = [];
  rows.forEach((r, i) => r.key && keyframes.push(i));
  if (keyframes[0] !== 0) keyframes.unshift(0);
  const num = (x: unknown) => (x === undefined || x === 'N/A' ? NaN : Number(x));
  const videoStart = Number.isFinite(num(v.start_time)) ? num(v.start_time) : pts[0]!;
  return {
    info,
    pts,
    keyframes,
    width: quarter ? info.height : info.width,
    height: quarter ? info.width : info.height,
    rate: String(v.avg_frame_rate && v.avg_frame_rate !== '0/0' ? v.avg_frame_rate : v.r_frame_rate),
    rotation,
    formatStart: Number.isFinite(num(json.format?.start_time)) ? num(json.format?.start_time) : videoStart,
    videoStart,
    audioStart: a ? (Number.isFinite(num(a.start_time)) ? num(a.start_time) : videoStart) : null,
    audioDuration: a && Number.isFinite(num(a.duration)) ? num(a.duration) : null,
  };
}
