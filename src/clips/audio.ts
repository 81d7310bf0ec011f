import { ClipstreamError } from '../errors.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { runTool, stderrTail } from '../media/process.js';
import { withAtomicFile } from '../util/atomic.js';
import type { PlannedClip } from './plan.js';

export interface AudioOptions {
  ffmpegPath?: string;
  signal?: AbortSignal;
  /** AAC bit rate of remixed clips in bit/s; default 192000 (Sekai). */
  audioBitRate?: number;
}

/** One ffmpeg writing `finalPath` through withAtomicFile: whole (and fsynced) or not at all. */
function runAtomic(finalPath: string, args: (tmp: string) => string[], o: AudioOptions, what: string, where: { key?: string; file?: string }): Promise<void> {
  return withAtomicFile(finalPath, async (tmp) => {
    const res = await runTool(o.ffmpegPath ?? ffmpegPath(), ['-hide_banner', '-nostdin', '-v', 'error', '-progress', 'pipe:1', ...args(tmp)], {
      signal: o.signal,
      stallTimeoutMs: 120_000,
      where,
    });
    if (res.code !== 0 || res.killedBy || res.signal) {
      const why = res.killedBy ? `killed (${res.killedBy})` : res.signal ? `ffmpeg was killed by ${res.signal}` : `ffmpeg exited with ${res.code}`;
      throw new ClipstreamError('ERR_DECODE', `${what} failed: ${why}: ${stderrTail(res.stderr, 3)}`, { where });
    }
  });
}

const RATE = 48_000;

/**
 * Sekai's step 2: the first audio stream of a video, once, as FLAC 48 kHz stereo 16-bit.
 * Every clip's audio is then cut from this small lossless file instead of the big video.
 *
 * Sample 0 of the FLAC is the presentation time `startS` as stored in the file (`-copyts`:
 * the first video frame's, from probeFrames), whatever the streams' own start times and
 * edit lists say: audio that starts later is preceded by silence, audio that starts earlier
 * is trimmed, by the decoded timestamps. So a clip's audio at `[startS, endS)` seconds
 * from the first frame is at the same offsets in the FLAC, and stays in sync.
 *
 * @example await splitAudio('videos/abc.mp4', 'work/abc.flac', 'abc', { startS: 0.5 });
 */
export function splitAudio(
  videoPath: string,
  flacPath: string,
  videoId: string,
  options: AudioOptions & { startS?: number; epoch?: number } = {},
): Promise<void> {
  // Resample first, then align: one aresample doing both trims ~44 ms too much (its resampler
  // delay). min_hard_comp: pad or trim any gap over 5 ms (the default 100 ms would ignore a 40 ms offset).
  let align = `aresample=${RATE},aresample=async=1:min_hard_comp=0.005:first_pts=${Math.round((options.startS ?? 0) * RATE)}`;
  // Where the timestamps restart, a time means something only within its epoch: keep the audio
  // frames between the epoch-th and the next restart of their own timestamps (a step back of
  // more than 0.1 s, as ffmpeg tells a discontinuity), counted in register 0 as they pass.
  if (options.epoch !== undefined) align = `aselect='st(0,ld(0)+lt(t,prev_t-0.1))*0+eq(ld(0),${options.epoch})',${align}`;
  return runAtomic(
    flacPath,
    (tmp) => [
      '-copyts',
      '-i',
      videoPath,
      '-map',
      '0:a:0',
      '-vn',
      '-af',
      align,
      '-ac',
      '2',
      '-ar',
      String(RATE),
      '-sample_fmt',
      's16',
      '-c:a',
      'flac',
      '-f',
      'flac',
      tmp,
    ],
    options,
    `video ${videoId} (${videoPath}): splitting the audio to FLAC`,
    { key: videoId, file: videoPath },
  );
}

/**
 * Sekai's step 4: muxes a clip's video (copied, not re-encoded) with its audio span
 * `[startS, endS)` from the FLAC, encoded to AAC at 192 kbit/s, into a fast-start mp4.
 * The audio is exactly the clip's length: silence fills where the source has none. `fromS`:
 * where the clip's audio starts in the FLAC when that is not `startS` (a source whose
 * timestamps break: the FLAC of the clip's epoch, at its run's stored time).
 *
 * @example await remixClip('work/abc_0_50.video.mp4', 'work/abc.flac', clip, 'clips/abc_0_50.mp4');
 */
export function remixClip(
  videoOnly: string,
  flacPath: string,
  clip: PlannedClip,
  outPath: string,
  options: AudioOptions & { fromS?: number } = {},
): Promise<void> {
  const rate = options.audioBitRate ?? 192_000;
  const samples = Math.round((clip.endS - clip.startS) * RATE);
  return runAtomic(
    outPath,
    (tmp) => [
      '-i',
      videoOnly,
      '-ss',
      (options.fromS ?? clip.startS).toFixed(6),
      '-i',
      flacPath,
      '-map',
      '0:v:0',
      '-map',
      '1:a:0',
      '-af',
      `apad,atrim=end_sample=${samples}`,
      '-c:v',
      'copy',
      '-c:a',
      'aac',
      '-b:a',
      String(rate),
      '-map_metadata',
      '-1',
      '-movflags',
      '+faststart',
      '-f',
      'mp4',
      tmp,
    ],
    options,
    `clip ${clip.clipId}: remixing audio`,
    { key: clip.clipId, file: outPath },
  );
}
