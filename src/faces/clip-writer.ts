import { ClipstreamError, type Where } from '../errors.js';
import { runTool, succeeded, ToolFailure, toolOutput } from '../media/process.js';
import { withAtomicFile } from '../util/atomic.js';
import { squareAndResize, type CropBox } from './crops.js';
import { rawRgbInputArgs } from '../media/raw-video.js';

/**
 * Streams `count` source frames from `startTime` (the presentation time of the first one),
 * cropped to `crop.inner` at the displayed resolution, padded to the square and resized to
 * `size`×`size` RGB, one frame at a time. ffmpeg seeks to the clip (input `-ss`, exact: it
 * decodes from the keyframe before and drops the frames ahead), so a clip late in a long video
 * costs its own length, not the video's; half a frame of margin absorbs timestamp rounding.
 * Fewer frames than `count` is an error naming the file.
 *
 * @example
 * for await (const face of croppedFrames(ffmpeg, 'a.mp4', { startTime: 2, count: 100, fps: 25, crop, size: 512 })) encode(face);
 */
export async function* croppedFrames(
  ffmpeg: string,
  path: string,
  o: {
    startTime: number;
    count: number;
    fps: number;
    crop: CropBox;
    size: number;
    /** The filter to square pixels at the display size (squarePixelsFilter), null when they are square. */
    squarePixels?: string | null;
    signal?: AbortSignal;
  },
): AsyncGenerator<Uint8Array, void, undefined> {
  const where: Where = { file: path };
  const { x, y, width, height } = o.crop.inner;
  const seek = o.startTime - 0.5 / o.fps;
  // The crop is in displayed pixels: non-square ones are resampled to square first.
  // rgb24 before the crop: cropping yuv420p would round odd offsets to even ones.
  const vf = `${o.squarePixels ? `${o.squarePixels},` : ''}format=rgb24,crop=${width}:${height}:${x}:${y}`;
  const args = ['-hide_banner', '-nostats', '-nostdin', '-v', 'error'];
  if (seek > 0) args.push('-ss', seek.toFixed(6));
  args.push('-i', path, '-map', '0:v:0', '-vf', vf, '-frames:v', String(o.count), '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  let n = 0;
  for await (const inner of toolOutput(ffmpeg, args, {
    chunkBytes: width * height * 3,
    what: `cannot decode the frames of a face clip from ${o.startTime.toFixed(3)} s`,
    signal: o.signal,
    where,
    stallTimeoutMs: 60_000,
  })) {
    yield await squareAndResize(inner, o.crop, o.size);
    n++;
  }
  if (n < o.count) {
    throw new ClipstreamError('ERR_ENCODE', `${path}: a face clip from ${o.startTime.toFixed(3)} s should have ${o.count} frames but ffmpeg decoded ${n}`, {
      where,
    });
  }
}

export interface EncodeOptions {
  /** libx264 constant rate factor (default 18). */
  crf?: number;
  /** libx264 preset (default `veryfast`). */
  preset?: string;
  /** Audio bitrate for AAC (default `128k`). */
  audioBitrate?: string;
}

/**
 * Encodes `count` square RGB frames (an array or a stream of them) as an H.264 mp4 at `fps`,
 * with the source's audio from `startTime` for the clip's duration when `withAudio` (a source
 * without audio gives a silent clip, not an error). `colour` (media/facts.ts: rgbToYuvFilter,
 * outputTagArgs) converts by the source's matrix and range and tags the clip with its colour. Written to a temporary name and renamed, so
 * the file appears whole; an error from the frame stream fails the clip with that error.
 *
 * @example
 * await encodeFaceClip(ffmpeg, frames, frames.length, 512, 25, { source: 'a.mp4', startTime: 2, withAudio: true }, 'out/clips/a_000.mp4');
 */
export async function encodeFaceClip(
  ffmpeg: string,
  frames: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  count: number,
  size: number,
  fps: number,
  audio: { source: string; startTime: number; withAudio: boolean },
  outPath: string,
  options: EncodeOptions = {},
  signal?: AbortSignal,
  colour: { filter: string | null; tags: string[] } = { filter: null, tags: [] },
): Promise<void> {
  const duration = count / fps;
  const args = ['-hide_banner', '-nostats', '-v', 'error', '-y', ...rawRgbInputArgs(size, size, fps)];
  if (audio.withAudio)
    args.push(
      '-ss',
      audio.startTime.toFixed(6),
      '-t',
      duration.toFixed(6),
      '-i',
      audio.source,
      '-map',
      '0:v:0',
      '-map',
      '1:a:0?',
      '-c:a',
      'aac',
      '-b:a',
      options.audioBitrate ?? '128k',
    );
  if (colour.filter) args.push('-vf', colour.filter);
  args.push(
    '-c:v',
    'libx264',
    '-preset',
    options.preset ?? 'veryfast',
    '-crf',
    String(options.crf ?? 18),
    '-pix_fmt',
    'yuv420p',
    ...colour.tags,
    '-t',
    duration.toFixed(6),
    '-movflags',
    '+faststart',
    '-f',
    'mp4',
  );
  let inputError: { error: unknown } | null = null;
  async function* input(): AsyncGenerator<Uint8Array> {
    try {
      for await (const f of frames) yield f;
    } catch (error) {
      inputError = { error };
      throw error;
    }
  }
  await withAtomicFile(outPath, async (tmp) => {
    const r = await runTool(ffmpeg, [...args, tmp], { input: input(), signal, where: { file: outPath }, stallTimeoutMs: 120_000 });
    if (inputError) throw (inputError as { error: unknown }).error;
    if (!succeeded(r))
      throw new ToolFailure(ffmpeg, `cannot encode face clip ${outPath} from ${audio.source}`, r, { where: { file: outPath }, code: 'ERR_ENCODE' });
  });
}

/**
 * Writes the audio span as 16-bit PCM WAV (source sample rate and channels). Returns false,
 * writing nothing, when the source has no audio stream.
 *
 * @example
 * await extractAudioSpan(ffmpeg, 'a.mp4', 2, 4, 'out/audio/a_000.wav')
 */
export async function extractAudioSpan(
  ffmpeg: string,
  source: string,
  startTime: number,
  duration: number,
  outPath: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const args = [
    '-hide_banner',
    '-nostats',
    '-v',
    'error',
    '-y',
    '-ss',
    startTime.toFixed(6),
    '-t',
    duration.toFixed(6),
    '-i',
    source,
    '-map',
    '0:a:0',
    '-c:a',
    'pcm_s16le',
    '-f',
    'wav',
  ];
  try {
    await withAtomicFile(outPath, async (tmp) => {
      const r = await runTool(ffmpeg, [...args, tmp], { signal, where: { file: outPath }, stallTimeoutMs: 60_000 });
      if (!succeeded(r))
        throw Object.assign(new ToolFailure(ffmpeg, `cannot write audio ${outPath} from ${source}`, r, { where: { file: outPath }, code: 'ERR_ENCODE' }), {
          noAudio: /matches no streams/.test(r.stderr),
        });
    });
    return true;
  } catch (err) {
    if ((err as { noAudio?: boolean }).noAudio) return false;
    throw err;
  }
}
