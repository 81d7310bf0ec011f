/**
 * Writes the synthetic face videos (src/faces/synthetic.ts: SYNTHETIC_VIDEOS) as mp4 with a tone:
 *   npx tsx scripts/make-face-fixtures.ts <outDir>
 * Tests call `writeSyntheticVideo` into a temporary folder instead of committing the files.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { runTool } from '../src/media/process.js';
import { renderFace, SYNTHETIC_VIDEOS, type SyntheticVideoSpec } from '../src/faces/synthetic.js';

/**
 * Renders `spec` frame by frame (frame k shows the face at t = k / fps) and encodes it with
 * libx264 (near-lossless, so detections are not at the mercy of compression) and an AAC tone.
 *
 * @example
 * await writeSyntheticVideo(SYNTHETIC_VIDEOS[0], '/tmp/face_move.mp4');
 */
export async function writeSyntheticVideo(spec: SyntheticVideoSpec, outPath: string): Promise<void> {
  const frames = Math.round(spec.duration * spec.fps);
  const frameBytes = spec.width * spec.height * 3;
  const raw = new Uint8Array(frames * frameBytes);
  for (let k = 0; k < frames; k++) {
    renderFace(spec.width, spec.height, spec.trajectory(k / spec.fps), raw.subarray(k * frameBytes, (k + 1) * frameBytes));
  }
  const args = ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${spec.width}x${spec.height}`, '-r', String(spec.fps), '-i', 'pipe:0'];
  if (spec.tone !== null) args.push('-f', 'lavfi', '-i', `sine=frequency=${spec.tone}:sample_rate=48000:duration=${spec.duration}`);
  args.push('-map', '0:v');
  if (spec.tone !== null) args.push('-map', '1:a', '-c:a', 'aac', '-b:a', '48k');
  args.push(
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    '16',
    '-pix_fmt',
    'yuv420p',
    '-threads',
    '1',
    '-fflags',
    '+bitexact',
    '-map_metadata',
    '-1',
    outPath,
  );
  const r = await runTool(ffmpegPath(), args, { input: raw, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`ffmpeg could not write ${outPath}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outDir = process.argv[2] ?? 'fixtures/faces';
  await mkdir(outDir, { recursive: true });
  for (const spec of SYNTHETIC_VIDEOS) {
    const out = join(outDir, `${spec.name}.mp4`);
    await writeSyntheticVideo(spec, out);
    process.stdout.write(`${out}\n`);
  }
}
