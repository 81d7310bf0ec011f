import { describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_CLIPS, fixtureClipPath } from '../../fixtures/index.js';
import { decodeArgs, decodeClip, resolveDecodeOptions } from '../../src/media/decode.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { predictFrameCount, toFastStart } from '../../src/media/mp4.js';
import { runTool } from '../../src/media/process.js';
import { linspaceIndices } from '../../src/media/sampling.js';
import { frameHashes } from '../helpers/clip-sources.js';

const FRAME = 256 * 256 * 3;
const good = FIXTURE_CLIPS.filter((c) => !c.corrupt && !c.tooShort);

/** The decode without frame selection: every frame of the window, then the linspace pick in JS. */
async function allFramesPick(data: Buffer, crop: 'top-left' | 'center' = 'top-left'): Promise<{ frames: Buffer; decoded: number }> {
  const o = resolveDecodeOptions({ crop, audio: false, resize: 'fast' });
  const r = await runTool(o.ffmpeg, decodeArgs(o, false), { input: toFastStart(data) });
  const decoded = Math.floor(r.stdout.length / FRAME);
  const frames = Buffer.alloc(32 * FRAME);
  linspaceIndices(decoded, 32).forEach((s, i) => r.stdout.copy(frames, i * FRAME, s * FRAME, (s + 1) * FRAME));
  return { frames, decoded };
}

/** An ffmpeg wrapper that logs each invocation, to count the decodes a clip needed. */
async function countingFfmpeg(): Promise<{ bin: string; runs: () => Promise<number> }> {
  const dir = await mkdtemp(join(tmpdir(), 'clipstream-select-'));
  const bin = join(dir, 'ffmpeg');
  const log = join(dir, 'runs.log');
  await writeFile(bin, `#!/bin/sh\necho run >> '${log}'\nexec '${ffmpegPath()}' "$@"\n`);
  await chmod(bin, 0o755);
  return { bin, runs: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean).length };
}

describe('frame selection inside ffmpeg', () => {
  it.each(good.map((c) => [c.file, c] as const))('%s: the container predicts the frame count of the window', async (_n, clip) => {
    const data = await readFile(fixtureClipPath(clip.file));
    const { decoded } = await allFramesPick(data);
    expect(predictFrameCount(toFastStart(data), 10)).toBe(decoded);
  });

  it.each(good.flatMap((c) => (['top-left', 'center'] as const).map((crop) => [c.file, crop, c] as const)))(
    '%s (%s, fast): one ffmpeg run, same bytes as decoding every frame',
    async (_n, crop, clip) => {
      const data = await readFile(fixtureClipPath(clip.file));
      const ff = await countingFfmpeg();
      const out = await decodeClip(data, resolveDecodeOptions({ crop, ffmpeg: ff.bin, resize: 'fast' }));
      const ref = await allFramesPick(data, crop);
      expect(out.video!.decodedFrames).toBe(ref.decoded);
      expect(Buffer.from(out.video!.frames.buffer, out.video!.frames.byteOffset, out.video!.frames.byteLength).equals(ref.frames)).toBe(true);
      // A clip without sound takes the existing second run without the audio output.
      expect(await ff.runs()).toBe(clip.hasAudio ? 1 : 2);
    },
  );

  it('falls back to decoding every frame when the prediction is wrong (truncated media data)', async () => {
    const clip = good.find((c) => c.faststart && c.hasAudio && c.duration >= 10)!;
    const full = await readFile(fixtureClipPath(clip.file));
    // The index still lists every frame but only about 60% of the media data is there
    // (the file is cut and the last box's size shortened to match, so it still parses).
    const data = Buffer.from(full.subarray(0, Math.floor(full.length * 0.6)));
    let at = 0;
    while (at + 8 <= data.length) {
      const size = data.readUInt32BE(at);
      if (at + size >= data.length) {
        data.writeUInt32BE(data.length - at, at);
        break;
      }
      at += size;
    }
    const predicted = predictFrameCount(data, 10)!;
    const ref = await allFramesPick(data);
    expect(ref.decoded).toBeGreaterThanOrEqual(32);
    expect(ref.decoded).toBeLessThan(predicted);
    const ff = await countingFfmpeg();
    const out = await decodeClip(data, resolveDecodeOptions({ ffmpeg: ff.bin, minDurationSeconds: 0, resize: 'fast' }));
    expect(out.video!.decodedFrames).toBe(ref.decoded);
    expect(Buffer.from(out.video!.frames.buffer, out.video!.frames.byteOffset, out.video!.frames.byteLength).equals(ref.frames)).toBe(true);
    expect(await ff.runs()).toBe(2);
    // The exact resize re-picks from the frames the first run counted: also two runs, and the
    // count of frames really decoded (ffmpeg -vsync 0; the rawvideo path above repeats the last one).
    const ff2 = await countingFfmpeg();
    const exact = await decodeClip(data, resolveDecodeOptions({ ffmpeg: ff2.bin, minDurationSeconds: 0 }));
    const file = join(await mkdtemp(join(tmpdir(), 'clipstream-select-')), 'cut.mp4');
    await writeFile(file, data);
    expect(exact.video!.decodedFrames).toBe((await frameHashes(file)).length);
    expect(await ff2.runs()).toBe(2);
  });

  it('predicts nothing for data that is not mp4', () => {
    expect(predictFrameCount(Buffer.from('not a video at all'), 10)).toBeNull();
  });
});
