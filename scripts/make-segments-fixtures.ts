/**
 * Writes the synthetic matting videos (fixtures/matte.ts):
 *   npx tsx scripts/make-segments-fixtures.ts [outDir]   (default: fixtures/segments)
 * Tests call `writeMatteVideo` into a temporary folder for the awkward variants (other
 * containers, sizes, rotation, VFR, late audio) instead of committing them.
 */
import { mkdir, rm } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { runTool } from '../src/media/process.js';
import { beepExpression, MATTE_FIXTURE, renderMatteFrame, type MatteVideoSpec } from '../fixtures/matte.js';
import { rawRgbInputArgs } from '../src/media/raw-video.js';

export interface MatteVideoOptions {
  /** Seconds the audio starts after the video (default 0); null: no audio. */
  audioDelay?: number | null;
  /** Display-matrix rotation written into the mp4 (e.g. 90). */
  rotate?: number;
  /** Frame k shown at these timestamps (seconds) instead of k / fps: a variable frame rate. */
  timestamps?: number[];
  /** GOP length (frames); default 30. */
  gop?: number;
}

/**
 * Renders `spec` and encodes it (libx264 near-lossless, keyframe every `gop` frames, B-frames on)
 * with the beep track; the container follows the file extension (.mp4, .mkv, .ts, ...).
 *
 * @example await writeMatteVideo(MATTE_FIXTURE, '/tmp/matte.mkv', { audioDelay: 0.4 });
 */
export async function writeMatteVideo(spec: MatteVideoSpec, outPath: string, o: MatteVideoOptions = {}): Promise<void> {
  const frameBytes = spec.width * spec.height * 3;
  const raw = new Uint8Array(spec.frames * frameBytes);
  for (let k = 0; k < spec.frames; k++) renderMatteFrame(spec, k, raw.subarray(k * frameBytes, (k + 1) * frameBytes));
  const duration = spec.frames / spec.fps;
  // With explicit timestamps the input rate only sets a fine time base (ms) for setpts and the encoder.
  const args = ['-v', 'error', '-y', ...rawRgbInputArgs(spec.width, spec.height, o.timestamps ? '1000' : String(spec.fps))];
  const audio = o.audioDelay === undefined ? 0 : o.audioDelay;
  // A late audio stream starts `audioDelay` s after the video in the container (not padded with silence).
  if (audio !== null)
    args.push(...(audio > 0 ? ['-itsoffset', String(audio)] : []), '-f', 'lavfi', '-i', `aevalsrc=${beepExpression(spec)}:s=48000:d=${duration}`);
  const filters: string[] = [];
  if (o.timestamps) filters.push(`setpts='(${o.timestamps.map((t, k) => `eq(N\\,${k})*${t.toFixed(6)}`).join('+')})/TB'`);
  args.push('-map', '0:v');
  if (filters.length) args.push('-vf', filters.join(','), '-vsync', '0');
  if (audio !== null) {
    args.push('-map', '1:a', '-c:a', 'aac', '-b:a', '64k');
  }
  const gop = String(o.gop ?? 30);
  args.push(
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    '10',
    '-g',
    gop,
    '-keyint_min',
    gop,
    '-sc_threshold',
    '0',
    '-pix_fmt',
    spec.width % 2 || spec.height % 2 ? 'yuv444p' : 'yuv420p',
    '-threads',
    '1',
    '-fflags',
    '+bitexact',
    '-map_metadata',
    '-1',
  );
  const encoded = o.rotate ? `${outPath}.norot${extname(outPath)}` : outPath;
  args.push(encoded);
  const r = await runTool(ffmpegPath(), args, { input: raw, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`ffmpeg could not write ${outPath}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  if (o.rotate) {
    // The display matrix survives only a stream copy (the encode above drops stream metadata).
    const c = await runTool(ffmpegPath(), ['-v', 'error', '-y', '-i', encoded, '-map', '0', '-c', 'copy', '-metadata:s:v:0', `rotate=${o.rotate}`, outPath], {
      timeoutMs: 60_000,
    });
    await rm(encoded, { force: true });
    if (c.code !== 0) throw new Error(`ffmpeg could not rotate ${outPath}: ${c.stderr.trim()}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outDir = process.argv[2] ?? 'fixtures/segments';
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, `${MATTE_FIXTURE.name}.mp4`);
  await writeMatteVideo(MATTE_FIXTURE, out);
  process.stdout.write(`${out}\n`);
}
