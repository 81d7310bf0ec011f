/**
 * The little decoding the report does itself: a preview for a clip that has none (a few frames,
 * decoded small by one ffmpeg, written by the same PreviewWriter the jobs use), and a strip of
 * frames (faces' crops per track, segments' composites and mattes) as one image by ffmpeg's tile filter.
 */
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { runToolOrThrow } from '../media/process.js';
import { probeVideo } from '../media/probe.js';
import { PreviewWriter } from '../sinks/preview.js';
import { withAtomicFile } from '../util/atomic.js';

const STALL_MS = 30_000;

/** ffmpeg's arguments up to its output: every `every`-th frame of `video`'s picture, through `filters`. */
function everyNthFrame(video: string, every: number, filters: string, frames: number): string[] {
  return ['-nostdin', '-v', 'error', '-i', video, '-an', '-vf', `select=not(mod(n\\,${every})),${filters}`, '-vsync', '0', '-frames:v', String(frames)];
}

/**
 * Decodes `frames` evenly spaced frames of `video`, `width` wide, and writes their animated WebP to
 * `<outDir>/<folder>/<clip>.webp`; returns its path relative to `outDir`.
 */
export async function makePreview(
  video: string,
  outDir: string,
  clipId: string,
  o: { frames?: number; width?: number; signal?: AbortSignal; folder?: string } = {},
): Promise<string> {
  const frames = o.frames ?? 12;
  const info = await probeVideo(video, { signal: o.signal });
  const w = Math.min(o.width ?? 192, info.width) & ~1 || 2;
  const h = Math.max(2, Math.round((w * info.height) / Math.max(1, info.width) / 2) * 2);
  const every = Math.max(1, Math.floor((info.numFrames || frames) / frames));
  const r = await runToolOrThrow(ffmpegPath(), [...everyNthFrame(video, every, `scale=${w}:${h}`, frames), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
    what: `preview of ${video}`,
    stallTimeoutMs: STALL_MS,
    signal: o.signal,
    where: { file: video },
  });
  const writer = new PreviewWriter({ outputDir: outDir, clipId, frames, width: w, folder: o.folder });
  const size = w * h * 3;
  for (let i = 0; (i + 1) * size <= r.stdout.length; i++)
    await writer.push({ index: i, rgb: r.stdout.subarray(i * size, (i + 1) * size), width: w, height: h });
  return String((await writer.finish()).preview);
}

/** Writes `count` evenly spaced frames of `video`, each `tileWidth` wide, side by side as one JPEG at `out`. */
export async function makeStrip(video: string, out: string, o: { count?: number; tileWidth?: number; signal?: AbortSignal } = {}): Promise<void> {
  const count = o.count ?? 8;
  const info = await probeVideo(video, { signal: o.signal });
  const every = Math.max(1, Math.floor((info.numFrames || count) / count));
  await withAtomicFile(out, (tmp) =>
    runToolOrThrow(
      ffmpegPath(),
      [
        ...everyNthFrame(video, every, `scale=${o.tileWidth ?? 96}:-2,tile=${count}x1:padding=2:color=white`, 1),
        ...['-f', 'image2', '-c:v', 'mjpeg', '-q:v', '5', tmp],
      ],
      { what: `frames of ${video}`, stallTimeoutMs: STALL_MS, signal: o.signal, where: { file: video } },
    ),
  );
}
