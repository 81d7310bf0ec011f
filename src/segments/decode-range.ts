/**
 * Decodes frames `[startFrame, endFrame)` of a source straight through a pipe: ffmpeg seeks to
 * the keyframe before the range, frames are kept from the range's first timestamp on
 * (`-copyts`, so timestamps are the ones the plan was made from), and exactly the range's
 * frame count is read. Nothing is written to disk; memory is a few frames.
 */
import { ClipstreamError } from '../errors.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import type { FrameTimeline } from '../media/probe.js';
import { toolOutput } from '../media/process.js';

export interface FrameRange {
  startFrame: number;
  endFrame: number;
}

/** ffmpeg arguments for a range decode (exported for the bench and the split step). */
export function rangeDecodeArgs(path: string, t: FrameTimeline, r: FrameRange, keyframe: number): string[] {
  const args = ['-hide_banner', '-nostdin', '-nostats', '-v', 'error', '-copyts'];
  const kfPts = t.pts[keyframe]!;
  // -ss counts from the container start; half a frame earlier so rounding never skips the keyframe.
  const before = keyframe > 0 ? Math.min(0.5 * (kfPts - t.pts[keyframe - 1]!), 1e-3) : 0;
  const seek = kfPts - t.formatStart - before;
  if (keyframe > 0 && seek > 0) args.push('-noaccurate_seek', '-ss', seek.toFixed(6));
  args.push('-i', path, '-map', '0:v:0');
  const filters: string[] = [];
  if (r.startFrame > 0) {
    const startPts = t.pts[r.startFrame]!;
    const gap = Math.min(0.5 * (startPts - t.pts[r.startFrame - 1]!), 1e-4);
    filters.push(`select='gte(t\\,${(startPts - gap).toFixed(6)})'`);
  }
  filters.push('format=rgb24');
  args.push('-vf', filters.join(','), '-vsync', '0', '-frames:v', String(r.endFrame - r.startFrame), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  return args;
}

/**
 * Yields the range's frames as RGB24 buffers of width×height×3 bytes (display orientation).
 * Throws, naming the file and range, when ffmpeg fails (a ToolFailure) or gives a different frame count.
 *
 * @example
 * for await (const frame of decodeRange('a.mp4', timeline, { startFrame: 50, endFrame: 100 }, 50)) { ... }
 */
export async function* decodeRange(
  path: string,
  t: FrameTimeline,
  r: FrameRange,
  keyframe: number,
  options: { signal?: AbortSignal; stallTimeoutMs?: number } = {},
): AsyncGenerator<Uint8Array> {
  const frames = `frames ${r.startFrame}-${r.endFrame - 1}`;
  const want = r.endFrame - r.startFrame;
  let got = 0;
  for await (const frame of toolOutput(ffmpegPath(), rangeDecodeArgs(path, t, r, keyframe), {
    chunkBytes: t.width * t.height * 3,
    what: `decoding ${frames} failed`,
    signal: options.signal,
    stallTimeoutMs: options.stallTimeoutMs ?? 60_000,
    where: { file: path },
  })) {
    got++;
    yield frame;
  }
  if (got !== want) throw new ClipstreamError('ERR_DECODE', `${path}: decoding ${frames} gave ${got} of ${want} frames`, { where: { file: path } });
}

/**
 * Pulls up to `ahead` items from `source` before they are asked for, so a decoder keeps
 * working while the model runs; memory is bounded by `ahead`.
 */
export async function* prefetch<T>(source: AsyncIterable<T>, ahead: number): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const queue: Promise<IteratorResult<T>>[] = [];
  let ended = false;
  const fill = () => {
    while (!ended && queue.length < ahead) {
      const p = it.next();
      queue.push(p);
      p.then(
        (r) => {
          if (r.done) ended = true;
        },
        () => {
          ended = true;
        },
      );
    }
  };
  try {
    for (;;) {
      fill();
      const r = await queue.shift()!;
      if (r.done) return;
      yield r.value;
    }
  } finally {
    // Let every pending pull settle, then close the source (kills its ffmpeg).
    await Promise.allSettled(queue);
    await it.return?.(undefined);
  }
}
