/**
 * Runs a ShotDetector over a video in one streaming pass: ffmpeg decodes every frame (no frame
 * dropped or duplicated: `-vsync 0`), autorotated and scaled to the detector's frame size in
 * display geometry (the SAR applied: the frame size comes from the display size of
 * src/media/facts.ts), as packed RGB24 through a pipe, one frame at a time. Memory: one pipe's
 * worth plus what the detector keeps (O(window)), whatever the video's length.
 */
import { ClipstreamError, type Where } from '../errors.js';
import { probeMedia, type MediaFacts } from '../media/facts.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { toolOutput } from '../media/process.js';
import { shotsFromBoundaries, type Shot, type ShotBoundary, type ShotDetector } from './shots.js';

export interface RunShotDetectorOptions {
  signal?: AbortSignal;
  /** Binary to run (default: FFMPEG_PATH or the bundled one). */
  ffmpeg?: string;
  /** The source's facts when already probed (with or without a timeline). */
  facts?: MediaFacts;
  /**
   * Frame i's time in seconds from the first frame (and entry `frames`: where the last frame ends),
   * e.g. clips' content times. Default: the probed timeline's (when its timestamps never restart),
   * else i / fps.
   */
  times?: ArrayLike<number>;
  /** Kill an ffmpeg that produced no frame for this long (default 30 s). */
  stallTimeoutMs?: number;
}

export interface ShotsResult {
  shots: Shot[];
  boundaries: ShotBoundary[];
  /** The video's frame rate (its average, as probed). */
  fps: number;
  /** Frames decoded. */
  frames: number;
}

/**
 * The scaler of the detection decode. PySceneDetect resizes full-size BGR frames with cv2.resize's
 * INTER_LINEAR, which samples 2x2 source pixels per output pixel whatever the factor (no
 * averaging: noise survives the downscale). Among ffmpeg's scalers `fast_bilinear` (2-tap, no
 * widening with the factor) is the one that does the same; `full_chroma_int` interpolates chroma as
 * a full-size decode to BGR does. Measured on the shot zoo and the 1080p regression file against
 * PyAV BGR + cv2.resize at the same size (per-frame content scores, mean |difference|): area
 * 0.29-5.53, bilinear 0.39-6.43, fast_bilinear 0.11-1.52, fast_bilinear+full_chroma_int 0.03-0.85
 * (docs/zoo.md, "The shot zoo"). The scale and the conversion to RGB happen in one swscale pass at
 * the small size: no full-size RGB frame is ever made.
 */
const SHOT_SCALE_FLAGS = 'fast_bilinear+full_chroma_int';

/** The ffmpeg arguments of the detection decode: every frame of the first video stream, `width`×`height` packed RGB24 on stdout. */
export function shotDecodeArgs(path: string, width: number, height: number): string[] {
  return [
    '-hide_banner',
    '-nostats',
    '-nostdin',
    '-v',
    'error',
    '-i',
    path,
    '-map',
    '0:v:0',
    '-vf',
    `scale=${width}:${height}:flags=${SHOT_SCALE_FLAGS},format=rgb24`,
    '-vsync',
    '0',
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    'pipe:1',
  ];
}

/**
 * Decodes `path` and pushes every frame into `detector`; the shots cover the decoded frames.
 *
 * @example
 * const r = await runShotDetector('a.mp4', withFades(contentDetector()));
 * r.shots[1].start_frame // the first frame after the first cut
 */
export async function runShotDetector(path: string, detector: ShotDetector, options: RunShotDetectorOptions = {}): Promise<ShotsResult> {
  const where: Where = { file: path };
  const facts =
    options.facts ?? (options.times ? await probeMedia(path, { signal: options.signal }) : await probeMedia(path, { signal: options.signal, timeline: true }));
  const fps = facts.video.fps;
  const g = facts.geometry;
  const size = detector.frameSize({ width: g.displayWidth, height: g.displayHeight });
  if (!(size.width > 0 && size.height > 0 && Number.isInteger(size.width) && Number.isInteger(size.height))) {
    throw new ClipstreamError('ERR_PIPELINE', `shot detector ${detector.name} asked for a ${size.width}x${size.height} frame size`, { where });
  }
  let times = options.times;
  const tl = facts.timeline;
  if (!times && tl && tl.resets.length === 0 && tl.pts.length > 0) {
    const t = new Float64Array(tl.pts.length + 1);
    for (let i = 0; i < tl.pts.length; i++) t[i] = tl.pts[i]! - tl.pts[0]!;
    t[tl.pts.length] = t[tl.pts.length - 1]! + (tl.frameIntervalS > 0 ? tl.frameIntervalS : 1 / fps);
    times = t;
  }
  const timeOf = (i: number) => (times && i < times.length ? times[i]! : i / fps);
  const frameBytes = size.width * size.height * 3;
  let index = 0;
  for await (const rgb of toolOutput(options.ffmpeg ?? ffmpegPath(), shotDecodeArgs(path, size.width, size.height), {
    chunkBytes: frameBytes,
    what: 'cannot decode frames for shot detection',
    signal: options.signal,
    where,
    stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
  })) {
    await detector.push({ index, time: timeOf(index), rgb, width: size.width, height: size.height });
    index++;
  }
  if (index === 0) throw new ClipstreamError('ERR_DECODE', `${path}: cannot detect shots: ffmpeg decoded no frame`, { where });
  const boundaries = (await detector.finish()).filter((b) => b.frame > 0 && b.frame < index);
  const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
  return { shots: shotsFromBoundaries(boundaries, index, (i) => round6(timeOf(i))), boundaries, fps, frames: index };
}
