/**
 * Scores of a clip file that exists (a clip of an earlier run made without scores, or a clip
 * made elsewhere for `clipstream score`): one ffmpeg decodes it to small RGB24 frames
 * (`scoreFilter`, the same as the cut's second output) streamed into the scorers; memory is
 * one frame.
 */
import { ClipstreamError } from '../errors.js';
import { clipScorers, FrameSplitter, scoreSize, type ScoreSetup } from '../features/clip-scores.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { toolOutput } from '../media/process.js';
import { probeVideo } from '../media/probe.js';

/** The filter that turns a clip's frames into the frames scores are computed on: area-averaged to `w` × `h`, RGB24. */
export const scoreFilter = (w: number, h: number) => `scale=${w}:${h}:flags=area,format=rgb24`;

export interface ScoreFileOptions {
  ffmpegPath?: string;
  signal?: AbortSignal;
  /** Kill a decoder that makes no progress for this long (default 120 s). */
  stallTimeoutMs?: number;
}

/**
 * Decodes `file` (its first video stream, not rotated) at the score size and returns its scores
 * under `setup`, with the number of frames seen.
 *
 * @example const { scores } = await scoreClipFile('clips/a_0_50.mp4', { names: ['motion'], columns: ['motion'] }) // { motion: 0.012 }
 */
export async function scoreClipFile(
  file: string,
  setup: ScoreSetup,
  o: ScoreFileOptions = {},
): Promise<{ scores: Record<string, number | string>; frames: number; width: number; height: number }> {
  const info = await probeVideo(file, { signal: o.signal });
  if (!(info.width > 0 && info.height > 0)) throw new ClipstreamError('ERR_DECODE', `${file} has no video stream to score`, { where: { file } });
  const { width, height } = scoreSize(info.width, info.height);
  const set = clipScorers(setup, info.numFrames);
  const split = new FrameSplitter(width, height, (f) => set.pushSync(f));
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-noautorotate', '-i', file, '-map', '0:v:0', '-vsync', '0'];
  args.push('-vf', scoreFilter(width, height), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  for await (const frame of toolOutput(o.ffmpegPath ?? ffmpegPath(), args, {
    chunkBytes: split.frameBytes,
    what: `cannot decode ${file} for scores`,
    where: { file },
    stallTimeoutMs: o.stallTimeoutMs ?? 120_000,
    signal: o.signal,
  })) {
    await split.write(frame);
  }
  split.end();
  if (split.frames === 0) throw new ClipstreamError('ERR_DECODE', `${file}: no frame decoded to score`, { where: { file } });
  return { scores: await set.finish(), frames: split.frames, width, height };
}
