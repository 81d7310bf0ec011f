/**
 * Long source videos for the clips tests, made at test time with the bundled ffmpeg
 * (small and low-fps, so the suite stays fast on two cores), plus frame hashes of
 * decoded video: a lossless clip of frames [s, e) must hash like source frames s..e-1.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';

const run = promisify(execFile);

export interface SourceSpec {
  seconds: number;
  fps?: number;
  size?: string;
  /** Sine frequency of a stereo 44.1 kHz audio track; none when absent. */
  audioHz?: number;
  /** White noise instead of a sine: an encoder cannot undershoot its bit rate on it. */
  noise?: boolean;
  /** ffv1 in mkv keeps 10-bit 4:2:0, which 8-bit encoders cannot take as is. */
  tenBit?: boolean;
  gop?: number;
}

export async function makeSource(out: string, spec: SourceSpec): Promise<void> {
  const fps = spec.fps ?? 10;
  const args = ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${spec.size ?? '160x120'}:rate=${fps}:duration=${spec.seconds}`];
  if (spec.noise) args.push('-f', 'lavfi', '-i', `anoisesrc=color=white:sample_rate=44100:amplitude=0.5:duration=${spec.seconds}`);
  else if (spec.audioHz) args.push('-f', 'lavfi', '-i', `sine=frequency=${spec.audioHz}:sample_rate=44100:duration=${spec.seconds}`);
  args.push('-map', '0:v');
  if (spec.audioHz || spec.noise) args.push('-map', '1:a', '-c:a', 'aac', '-ac', '2', '-b:a', '64k');
  if (spec.tenBit) args.push('-c:v', 'ffv1', '-pix_fmt', 'yuv420p10le');
  // An odd GOP puts clip starts between keyframes: a cutter that snaps to keyframes fails.
  else args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(spec.gop ?? 37), '-pix_fmt', 'yuv420p');
  args.push(out);
  await run(ffmpegPath(), args);
}

/** MD5 of every decoded video frame (as yuv420p), in order. */
export async function frameHashes(file: string): Promise<string[]> {
  const { stdout } = await run(ffmpegPath(), ['-v', 'error', '-i', file, '-map', '0:v:0', '-vsync', '0', '-pix_fmt', 'yuv420p', '-f', 'framemd5', '-'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').pop()!.trim());
}
