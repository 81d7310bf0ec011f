import type { Where } from '../errors.js';
import { ClipstreamError } from '../errors.js';
import { toolOutput } from '../media/process.js';

export interface SampledFrame {
  rgb: Buffer;
  /** Position among the sampled frames; the source frame is `sample · sampleEvery`. */
  sample: number;
  /** Presentation time in seconds from the start of the file (NaN if ffmpeg did not say). */
  time: number;
}

const SHOWINFO = /^\[Parsed_showinfo_\d+ @/;

/**
 * Streams every `sampleEvery`-th frame (frames 0, k, 2k, ...) scaled to `width`×`height` RGB
 * from one ffmpeg, one frame at a time as the consumer asks (memory: a few frames, whatever
 * the video's length), with each frame's presentation time (ffmpeg's showinfo). ffmpeg
 * applies the display rotation, so frames are as displayed. A failed or stalled ffmpeg ends
 * the iteration with a ToolFailure naming the file.
 *
 * @example
 * for await (const f of sampledFrames(ffmpeg, 'a.mp4', { sampleEvery: 2, width: 320, height: 180 })) detect(f.rgb);
 */
export async function* sampledFrames(
  ffmpeg: string,
  path: string,
  o: { sampleEvery: number; width: number; height: number; stallTimeoutMs?: number; signal?: AbortSignal },
): AsyncGenerator<SampledFrame, void, undefined> {
  const where: Where = { file: path };
  const times: number[] = [];
  let wake: (() => void) | null = null;
  const vf = `select='not(mod(n\\,${o.sampleEvery}))',scale=${o.width}:${o.height}:flags=area,format=rgb24,showinfo`;
  const frames = toolOutput(
    ffmpeg,
    [
      '-hide_banner',
      '-nostats',
      '-nostdin',
      '-v',
      'info',
      '-i',
      path,
      '-map',
      '0:v:0',
      '-vf',
      vf,
      '-vsync',
      '0',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      'pipe:1',
    ],
    {
      chunkBytes: o.width * o.height * 3,
      what: 'cannot decode frames for detection',
      signal: o.signal,
      where,
      stallTimeoutMs: o.stallTimeoutMs ?? 30_000,
      onStderrLine: (line) => {
        if (!SHOWINFO.test(line)) return false;
        const m = /\bpts_time:(\S+)/.exec(line);
        if (m) {
          times.push(Number(m[1]));
          wake?.();
        }
        return true;
      },
    },
  );
  let sample = 0;
  let timesMissing = false;
  for await (const rgb of frames) {
    // ffmpeg writes a frame's showinfo line (stderr) before its pixels (stdout), but Node may
    // read the pixels first: wait for the line, briefly; an ffmpeg that prints none gets NaN.
    const deadline = Date.now() + 5000;
    while (times.length <= sample && !timesMissing) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100).unref();
      });
      wake = null;
      if (Date.now() > deadline) timesMissing = true;
    }
    yield { rgb, sample, time: times[sample] ?? Number.NaN };
    sample++;
  }
  if (sample === 0) throw new ClipstreamError('ERR_DECODE', `${path}: cannot decode frames for detection: ffmpeg decoded no frame`, { where });
}

/**
 * Decodes every `sampleEvery`-th frame into one buffer (frame i is source frame i·k). Holds the
 * whole video: for tests and short clips; the faces job streams with `sampledFrames`.
 *
 * @example
 * const frames = await decodeSampledFrames(ffmpeg, 'a.mp4', { sampleEvery: 2, width: 320, height: 180 });
 *
 * @internal used by tests only
 */
export async function decodeSampledFrames(
  ffmpeg: string,
  path: string,
  o: { sampleEvery: number; width: number; height: number; stallTimeoutMs?: number; signal?: AbortSignal },
): Promise<{ frames: Uint8Array; count: number; times: number[] }> {
  const parts: Buffer[] = [];
  const times: number[] = [];
  for await (const f of sampledFrames(ffmpeg, path, o)) {
    parts.push(f.rgb);
    times.push(f.time);
  }
  const all = Buffer.concat(parts);
  return { frames: new Uint8Array(all.buffer, all.byteOffset, all.length), count: parts.length, times };
}
