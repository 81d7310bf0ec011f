import { describe, expect, it } from 'vitest';
import { readFile, writeFile, mkdtemp, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FIXTURE_CLIPS, fixtureClipPath } from '../../fixtures/index.js';
import { decodeClip, resolveDecodeOptions, videoFilter } from '../../src/media/decode.js';
import { decodeClips } from '../../src/media/decode-stage.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { liveChildProcesses, runTool } from '../../src/media/process.js';
import { spawnHelperPid } from '../../src/media/spawner.js';
import { linspaceIndices, shortSideScale } from '../../src/media/sampling.js';
import type { Sample, StreamItem } from '../../src/types.js';

const options = resolveDecodeOptions();

/** Frequency of the strongest bin of a DFT over the first second (coarse, 1 Hz bins). */
function dominantFrequency(pcm: Float32Array, rate: number): number {
  const n = rate;
  let best = 0;
  let bestF = 0;
  for (let f = 50; f < 2000; f += 1) {
    let re = 0;
    let im = 0;
    for (let i = 0; i < n; i += 2) {
      const a = (2 * Math.PI * f * i) / rate;
      re += pcm[i]! * Math.cos(a);
      im += pcm[i]! * Math.sin(a);
    }
    const p = re * re + im * im;
    if (p > best) {
      best = p;
      bestF = f;
    }
  }
  return bestF;
}

function ffmpegRaw(file: string, vf: string, frames: number): Buffer {
  return execFileSync(ffmpegPath(), ['-v', 'error', '-i', file, '-vf', vf, '-frames:v', String(frames), '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1'], {
    maxBuffer: 1 << 30,
  });
}

describe('decodeClip on the fixture clips', () => {
  it.each(FIXTURE_CLIPS.map((c) => [c.file, c] as const))('%s', async (_name, clip) => {
    const data = await readFile(fixtureClipPath(clip.file));
    const run = decodeClip(data, options, { key: clip.file });
    if (clip.corrupt) {
      await expect(run).rejects.toMatchObject({ code: 'ERR_DECODE' });
      await expect(run).rejects.toThrow(new RegExp(`^${clip.file}: `));
      return;
    }
    if (clip.tooShort) {
      await expect(run).rejects.toMatchObject({ code: 'ERR_CLIP_TOO_SHORT' });
      await expect(run).rejects.toThrow(`shorter than the minimum 2.5 s`);
      return;
    }
    const out = await run;
    const window = Math.min(clip.duration, 10);
    expect(out.video!.numFrames).toBe(32);
    expect(out.video!.frames.length).toBe(32 * 256 * 256 * 3);
    expect(Math.abs(out.video!.decodedFrames - window * clip.fps)).toBeLessThanOrEqual(1);
    expect(out.fps).toBe(clip.fps);
    expect([out.sourceWidth, out.sourceHeight]).toEqual([clip.width, clip.height]);
    if (!clip.hasAudio) {
      expect(out.audio).toBeNull();
    } else {
      expect(out.audio!.sampleRate).toBe(16000);
      expect(Math.abs(out.audio!.pcm.length - window * 16000)).toBeLessThan(1600);
      expect(Math.abs(dominantFrequency(out.audio!.pcm, 16000) - clip.audio!.frequency)).toBeLessThanOrEqual(2);
    }
  });
});

describe('ACAV100M spatial preprocessing', () => {
  const portrait = FIXTURE_CLIPS.find((c) => c.height > c.width && !c.corrupt && !c.tooShort)!;
  const landscape = FIXTURE_CLIPS.find((c) => c.width > c.height && c.width / c.height > 1.5 && !c.corrupt && !c.tooShort)!;

  it.each([
    ['portrait top-left', portrait, 'top-left' as const],
    ['portrait center', portrait, 'center' as const],
    ['landscape top-left', landscape, 'top-left' as const],
    ['landscape center', landscape, 'center' as const],
  ])('%s: (--resize=fast) first frame equals ffmpeg scale+crop placed by SlowFast rules', async (_n, clip, crop) => {
    const file = fixtureClipPath(clip.file);
    const { width, height } = shortSideScale(clip.width, clip.height, 256);
    const x = crop === 'center' ? Math.ceil((width - 256) / 2) : 0;
    const y = crop === 'center' ? Math.ceil((height - 256) / 2) : 0;
    const expected = ffmpegRaw(file, `scale=${width}:${height}:flags=bilinear,crop=256:256:${x}:${y}`, 1);
    const out = await decodeClip(await readFile(file), resolveDecodeOptions({ crop, resize: 'fast' }));
    expect(Buffer.from(out.video!.frames.subarray(0, 256 * 256 * 3)).equals(expected)).toBe(true);
  });

  it.each([
    [180, 320, 256, 455],
    [320, 180, 455, 256],
    [426, 240, 454, 256],
    [256, 256, 256, 256],
    [640, 480, 341, 256],
  ])('short side scale of %ix%i is %ix%i', (w, h, ew, eh) => {
    expect(shortSideScale(w, h, 256)).toEqual({ width: ew, height: eh });
  });

  it('the ffmpeg filter names both crop modes', () => {
    expect(videoFilter(256, 'top-left')).toContain('crop=256:256:x=0:y=0');
    expect(videoFilter(256, 'center')).toContain("x='ceil((iw-256)/2)'");
  });
});

describe('temporal sampling (linspace over decoded frames)', () => {
  it.each([32, 33, 64, 100, 150, 240, 250, 300, 299, 17, 1])('picks 32 of %i frames evenly, first and last included', (n) => {
    const idx = linspaceIndices(n, 32);
    expect(idx).toHaveLength(32);
    expect(idx[0]).toBe(0);
    expect(idx[31]).toBe(n - 1);
    for (let i = 0; i < 32; i++) {
      // Exact rational linspace, truncated; float32 rounding can only move a value by less than one step.
      const exact = Math.floor((i * (n - 1)) / 31);
      expect(Math.abs(idx[i]! - exact)).toBeLessThanOrEqual(1);
      if (i > 0) expect(idx[i]!).toBeGreaterThanOrEqual(idx[i - 1]!);
    }
  });

  it('uses every frame once when there are exactly 32', () => {
    expect(linspaceIndices(32, 32)).toEqual(Array.from({ length: 32 }, (_, i) => i));
  });

  it('the sampled frames are the decoded frames at those indices (fast mode: byte-equal to ffmpeg)', async () => {
    const clip = FIXTURE_CLIPS.find((c) => !c.corrupt && !c.tooShort && c.fps === 15)!;
    const file = fixtureClipPath(clip.file);
    const out = await decodeClip(await readFile(file), resolveDecodeOptions({ resize: 'fast' }));
    const all = ffmpegRaw(file, videoFilter(256, 'top-left'), 10_000);
    const frameBytes = 256 * 256 * 3;
    const idx = linspaceIndices(out.video!.decodedFrames, 32);
    for (const i of [0, 7, 19, 31]) {
      const ours = Buffer.from(out.video!.frames.subarray(i * frameBytes, (i + 1) * frameBytes));
      expect(ours.equals(all.subarray(idx[i]! * frameBytes, (idx[i]! + 1) * frameBytes))).toBe(true);
    }
  });
});

describe('audio mixing', () => {
  it('mixes stereo to mono as the mean of the channels (VGGish), not ffmpeg -ac 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-audio-'));
    const file = join(dir, 'lr_0.mp4');
    // Left: a 0.5-amplitude tone; right: silence. The mean has amplitude 0.25; -ac 1 would give 0.354.
    execFileSync(ffmpegPath(), [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=s=128x96:r=10:d=4',
      '-f',
      'lavfi',
      '-i',
      'aevalsrc=0.5*sin(2*PI*440*t)|0:s=48000:d=4',
      '-c:v',
      'libx264',
      '-c:a',
      'pcm_s16le',
      '-f',
      'mov',
      file,
    ]);
    const out = await decodeClip(await readFile(file), options);
    const pcm = out.audio!.pcm.subarray(1600, 48000);
    const peak = pcm.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(peak).toBeGreaterThan(0.24);
    expect(peak).toBeLessThan(0.26);
  });
});

describe('ffmpeg watchdog and cleanup', () => {
  it('kills an ffmpeg that hangs and reports it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-hang-'));
    const fake = join(dir, 'ffmpeg');
    await writeFile(fake, '#!/bin/sh\nexec sleep 60\n');
    await chmod(fake, 0o755);
    const started = Date.now();
    const run = decodeClip(Buffer.alloc(1000), resolveDecodeOptions({ ffmpeg: fake, stallTimeoutMs: 300 }), { key: 'hung_0.mp4' });
    await expect(run).rejects.toMatchObject({ code: 'ERR_DECODE_TIMEOUT' });
    await expect(run).rejects.toThrow('hung_0.mp4: ffmpeg produced no output for 300 ms and was killed');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(liveChildProcesses()).toBe(0);
  });

  it('leaves no ffmpeg running when the pipeline is torn down mid-decode', async () => {
    // A stand-in ffmpeg that would live for 20 s unless killed (one process, named so pgrep finds it).
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-slow-'));
    const fake = join(dir, 'ffmpeg');
    await writeFile(fake, '#!/bin/bash\nexec -a fake-ffmpeg sleep 20\n');
    await chmod(fake, 0o755);
    const shard = { url: 'x.tar', name: 'x', index: 0 };
    const items: StreamItem[] = Array.from(
      { length: 8 },
      (_, i): Sample => ({
        kind: 'sample',
        __key__: `k${i}`,
        __url__: 'x.tar',
        shard,
        index: i,
        files: { mp4: Buffer.alloc(100) },
        entry: { filename: `k${i}.mp4`, id: 'k', segment: [i, i + 10] },
      }),
    );
    // ffmpeg runs as a child of the spawn helper (or of this process with CLIPSTREAM_SPAWN=direct).
    const pids = () =>
      execFileSync('sh', ['-c', `pgrep -P ${[process.pid, spawnHelperPid()].filter(Boolean).join(',')} -f '[f]fmpeg' || true`])
        .toString()
        .trim();
    const controller = new AbortController();
    const run = pipeline(
      Readable.from(items),
      decodeClips({ concurrency: 3, ffmpeg: fake }),
      new Writable({
        objectMode: true,
        write(_x, _e, cb) {
          cb();
        },
      }),
      { signal: controller.signal },
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(pids().split('\n').filter(Boolean)).toHaveLength(3);
    const abortedAt = Date.now();
    controller.abort();
    await expect(run).rejects.toThrow();
    // Teardown waits for the children; it is quick only because they are killed.
    expect(Date.now() - abortedAt).toBeLessThan(3000);
    await new Promise((r) => setTimeout(r, 100));
    expect(liveChildProcesses()).toBe(0);
    expect(pids()).toBe('');
  });
});

describe('runTool through the spawn helper', () => {
  const modes = ['helper', 'direct'] as const;
  const withMode = async <T>(mode: (typeof modes)[number], fn: () => Promise<T>): Promise<T> => {
    const before = process.env.CLIPSTREAM_SPAWN;
    if (mode === 'direct') process.env.CLIPSTREAM_SPAWN = 'direct';
    else delete process.env.CLIPSTREAM_SPAWN;
    try {
      return await fn();
    } finally {
      if (before === undefined) delete process.env.CLIPSTREAM_SPAWN;
      else process.env.CLIPSTREAM_SPAWN = before;
    }
  };

  for (const mode of modes) {
    it(`${mode}: keeps every byte of a tool that writes and exits at once, and its exit code`, async () => {
      const r = await withMode(mode, () =>
        runTool('/bin/sh', ['-c', 'printf out; printf err >&2; printf three >&3; cat; exit 3'], { input: Buffer.from('in-'), extraOutputs: 1 }),
      );
      expect(r.code).toBe(3);
      expect(r.stdout.toString()).toBe('outin-');
      expect(r.stderr).toBe('err');
      expect(r.extra[0]!.toString()).toBe('three');
    });

    it(`${mode}: a binary that does not exist rejects with ERR_TOOL`, async () => {
      await expect(withMode(mode, () => runTool('/nonexistent/ffmpeg', ['-version']))).rejects.toMatchObject({ code: 'ERR_TOOL' });
      expect(liveChildProcesses()).toBe(0);
    });
  }

  it('decodes the same bytes with and without the helper', async () => {
    const data = await readFile(fixtureClipPath(FIXTURE_CLIPS[0]!.file));
    const o = resolveDecodeOptions({ numFrames: 4, size: 32 });
    const a = await withMode('helper', () => decodeClip(data, o));
    const b = await withMode('direct', () => decodeClip(data, o));
    expect(spawnHelperPid()).not.toBeNull();
    expect(Buffer.compare(Buffer.from(a.video!.frames), Buffer.from(b.video!.frames))).toBe(0);
    expect(
      Buffer.compare(
        Buffer.from(a.audio!.pcm.buffer, a.audio!.pcm.byteOffset, a.audio!.pcm.byteLength),
        Buffer.from(b.audio!.pcm.buffer, b.audio!.pcm.byteOffset, b.audio!.pcm.byteLength),
      ),
    ).toBe(0);
  });
});
