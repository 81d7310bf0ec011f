import { ClipstreamError } from '../errors.js';
import { ffprobePath } from './ffmpeg-path.js';
import { runTool } from './process.js';

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

function rate(v: unknown): number {
  const [n, d] = String(v ?? '0/0').split('/').map(Number);
  return n && d ? n / d : 0;
}

/**
 * Probes a video with ffprobe. The frame count comes from the stream header when the
 * container has one (mp4), else from duration × fps.
 *
 * @example const info = await probeVideo('videos/abc.mp4'); // { fps: 25, numFrames: 750, ... }
 */
export async function probeVideo(path: string, options: { signal?: AbortSignal; ffprobe?: string; direct?: boolean } = {}): Promise<VideoInfo> {
  const args = ['-v', 'error', '-show_entries',
    'stream=codec_type,codec_name,width,height,pix_fmt,r_frame_rate,avg_frame_rate,nb_frames,bit_rate,duration:format=duration,bit_rate',
    '-of', 'json', path];
  const res = await runTool(options.ffprobe ?? ffprobePath(), args, { signal: options.signal, timeoutMs: 60_000, where: { file: path }, direct: options.direct });
  const fail = (why: string) => new ClipstreamError('ERR_DECODE', `cannot probe ${path}: ${why}`, { where: { file: path } });
  if (res.code !== 0) throw fail(res.stderr.trim().split('\n').pop() || `ffprobe exited with ${res.code ?? res.signal}`);
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
