/** Runs scripts/decode_reference.py (PyAV + torch, the SlowFast / VGGish recipe) for the decode tests. */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO } from './run-cli.js';

export interface Reference {
  decoded_frames: number;
  picks: number[] | null;
  channels: number;
  audio_samples?: number;
  video: Float32Array | null;
  audio: Float32Array | null;
}

/** Runs the Python reference on a file; `/usr/bin/python3` has PyAV, torch and numpy. */
export async function reference(file: string, out: string, o: { crop?: string; window?: number } = {}): Promise<Reference> {
  const args = [join(REPO, 'scripts/decode_reference.py'), file, out, '--crop', o.crop ?? 'top-left', '--window', String(o.window ?? 10)];
  const summary = JSON.parse(execFileSync('/usr/bin/python3', args, { encoding: 'utf8' })) as Reference;
  const f32 = async (p: string) => {
    try {
      const b = await readFile(p);
      return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    } catch {
      return null;
    }
  };
  return { ...summary, video: await f32(`${out}.video.f32`), audio: await f32(`${out}.audio.f32`) };
}

/** Largest and mean |ours - reference| over all pixels. */
export function frameDiff(ours: Uint8Array, ref: Float32Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i]! - ref[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { max, mean: sum / ref.length };
}
