/**
 * Scores of a clip file that exists (a clip of an earlier run made without scores, or a clip
 * made elsewhere for `clipstream score`): one ffmpeg decodes it to small RGB24 frames
 * (`scoreFilter`, the same as the cut's second output) streamed into the scorers; memory is
 * one frame.
 */
import { basename } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { clipScorers, FrameSplitter, roundScore, scoreSize, spacedFrames, TEXT_FRAMES, type ScoreSetup } from '../features/clip-scores.js';
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
  const set = clipScorers(setup, info.numFrames, basename(file).replace(/\.[^.]*$/, ''));
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
  const scores = await set.finish();
  if (setup.textFile && setup.names.includes('text_area')) scores.text_area = await textAreaOfFile(file, setup.textFile, split.frames, o);
  return { scores, frames: split.frames, width, height };
}

/** The width text is detected at: PP-OCRv4 finds 14 px subtitles at 640 px wide (src/infer/text-detector.ts). */
export const TEXT_WIDTH = 640;

/**
 * `text_area` of a finished clip: the text detector on TEXT_FRAMES evenly spaced frames of its
 * `numFrames`, decoded from the file at TEXT_WIDTH px wide (never wider than the clip); the mean of
 * the fractions of the frame the boxes cover. One small ffmpeg that keeps only those frames.
 *
 * @example await textAreaOfFile('clips/a_0_50.mp4', { detector, area: textArea }, 50) // 0.031
 */
export async function textAreaOfFile(
  file: string,
  text: NonNullable<ScoreSetup['textFile']>,
  numFrames: number,
  o: ScoreFileOptions = {},
): Promise<number | ''> {
  const picks = spacedFrames(numFrames, text.frames ?? TEXT_FRAMES);
  if (picks.length === 0) return '';
  const info = await probeVideo(file, { signal: o.signal });
  const w = Math.min(text.width ?? TEXT_WIDTH, info.width - (info.width % 2));
  const h = Math.max(2, 2 * Math.round((info.height * w) / info.width / 2));
  const select = `select='${picks.map((n) => `eq(n\,${n})`).join('+')}'`;
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-noautorotate', '-i', file, '-map', '0:v:0', '-vsync', '0'];
  args.push('-vf', `${select},scale=${w}:${h}:flags=area,format=rgb24`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  let sum = 0;
  let seen = 0;
  for await (const frame of toolOutput(o.ffmpegPath ?? ffmpegPath(), args, {
    chunkBytes: w * h * 3,
    what: `cannot decode ${file} for text_area`,
    where: { file },
    stallTimeoutMs: o.stallTimeoutMs ?? 120_000,
    signal: o.signal,
  })) {
    if (frame.length !== w * h * 3) continue;
    sum += text.area(await text.detector.detect(new Uint8Array(frame.buffer, frame.byteOffset, frame.length), w, h), w, h);
    seen++;
  }
  return seen === 0 ? '' : roundScore(sum / seen);
}
