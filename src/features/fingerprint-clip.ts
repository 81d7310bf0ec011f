/**
 * The fingerprint of a finished clip file, for clips that have none stored: ffmpeg decodes it
 * small and gray, and every frame goes through a ClipFingerprinter (see ./fingerprint.ts).
 */
import { ClipstreamError } from '../errors.js';
import { ffmpegPath } from '../media/ffmpeg-path.js';
import { toolOutput } from '../media/process.js';
import { ClipFingerprinter } from './fingerprint.js';

/** Options of fingerprintClip. */
export interface FingerprintClipOptions {
  /** Frames hashed (default 8). */
  frames?: number;
  /** Side of the square ffmpeg scales each frame to (area filter) before the hash averages it to 32×32; default 64. */
  decodeSize?: number;
  /** The ffmpeg binary (default: the one clipstream picks). */
  ffmpegPath?: string;
  /** Kill a decoder that gives no frame for this long (default 30 s). */
  stallTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Decodes a clip at `decodeSize`² gray and returns its fingerprint (N × 16 hex digits). A file
 * ffmpeg cannot decode, or one without a frame, is an ERR_DECODE naming it.
 *
 * @example await fingerprintClip('out/clips/abc_0_50.mp4') // '8f3a01c2d4e5f607...'
 */
export async function fingerprintClip(path: string, options: FingerprintClipOptions = {}): Promise<string> {
  return (await fingerprintClipFrames(path, options)).fingerprint;
}

/** fingerprintClip, with the number of frames decoded. */
export async function fingerprintClipFrames(path: string, options: FingerprintClipOptions = {}): Promise<{ fingerprint: string; frames: number }> {
  const size = options.decodeSize ?? 64;
  if (!Number.isInteger(size) || size < 8 || size > 1024) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `options.decodeSize must be an integer from 8 to 1024, got ${size}`, {
      where: { option: 'options.decodeSize' },
    });
  }
  const fp = new ClipFingerprinter({ frames: options.frames });
  const args = [
    '-nostdin',
    '-v',
    'error',
    '-i',
    path,
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-dn',
    '-vf',
    `scale=${size}:${size}:flags=area,format=gray`,
    '-f',
    'rawvideo',
    '-pix_fmt',
    'gray',
    'pipe:1',
  ];
  let frames = 0;
  for await (const frame of toolOutput(options.ffmpegPath ?? ffmpegPath(), args, {
    chunkBytes: size * size,
    what: `cannot decode ${path} for its fingerprint`,
    where: { file: path },
    stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    signal: options.signal,
  })) {
    fp.pushGray(frame, size, size);
    frames++;
  }
  if (frames === 0) throw new ClipstreamError('ERR_DECODE', `${path}: no video frame to fingerprint`, { where: { file: path } });
  return { fingerprint: fp.finish().fingerprint as string, frames };
}
