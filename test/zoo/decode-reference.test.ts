/**
 * Decode against an independent reference (scripts/decode_reference.py: PyAV + torch, the
 * SlowFast / VGGish recipe): frames within ±1 level on every pixel, audio the plain mean of
 * all channels.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeClip, resolveDecodeOptions, type DecodeOptions } from '../../src/media/decode.js';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { frameDiff, reference } from '../helpers/decode-reference.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-ref-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ffmpeg(args: string[]): void {
  execFileSync(ffmpegPath(), ['-v', 'error', '-y', ...args]);
}

/** A busy moving picture (testsrc2 has sharp edges and gradients: resize differences show). */
function makeVideo(file: string, size: string, seconds = 4, extra: string[] = []): void {
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=s=${size}:r=25:d=${seconds}`, ...extra, '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file]);
}

describe('frames match the reference recipe (RGB first, torch bilinear, align_corners=False)', () => {
  const cases: Array<[string, string, 'top-left' | 'center']> = [
    ['640x360 downscale', '640x360', 'top-left'],
    ['320x240 upscale', '320x240', 'center'],
    ['270x480 portrait', '270x480', 'center'],
    ['1280x720 downscale x2.8', '1280x720', 'top-left'],
  ];
  it.each(cases)('%s: every pixel within ±1 level', async (name, size, crop) => {
    const file = join(dir, `${name.split(' ')[0]}.mp4`);
    makeVideo(file, size);
    const ref = await reference(file, join(dir, name.split(' ')[0]!), { crop });
    const out = await decodeClip(await readFile(file), resolveDecodeOptions({ crop, audio: false }), { key: name });
    expect(out.video!.decodedFrames).toBe(ref.decoded_frames);
    const d = frameDiff(out.video!.frames, ref.video!);
    expect(d.max).toBeLessThanOrEqual(1);
    expect(d.mean).toBeLessThan(0.5);
  });

  it('a container without an index (mkv: no frame-count prediction) gives the same frames', async () => {
    const file = join(dir, 'noindex.mkv');
    makeVideo(file, '480x272', 3);
    const ref = await reference(file, join(dir, 'noindex'));
    const out = await decodeClip(await readFile(file), resolveDecodeOptions({ audio: false }), { key: 'noindex.mkv' });
    expect(out.video!.decodedFrames).toBe(ref.decoded_frames);
    expect(frameDiff(out.video!.frames, ref.video!).max).toBeLessThanOrEqual(1);
  });

  it('fewer decoded frames than 32 repeat frames as linspace says', async () => {
    const file = join(dir, 'short.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=400x300:r=5:d=3', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file]);
    const ref = await reference(file, join(dir, 'short'));
    const out = await decodeClip(await readFile(file), resolveDecodeOptions({ audio: false }), { key: 'short.mp4' });
    expect(ref.decoded_frames).toBe(15);
    expect(out.video!.decodedFrames).toBe(15);
    expect(frameDiff(out.video!.frames, ref.video!).max).toBeLessThanOrEqual(1);
  });

  it("--resize=fast keeps ffmpeg's scaler (same frames picked, pixels only roughly equal)", async () => {
    const file = join(dir, 'fast.mp4');
    makeVideo(file, '640x360');
    const ref = await reference(file, join(dir, 'fast'));
    const out = await decodeClip(await readFile(file), resolveDecodeOptions({ audio: false, resize: 'fast' }), { key: 'fast.mp4' });
    const d = frameDiff(out.video!.frames, ref.video!);
    expect(d.mean).toBeLessThan(4);
    expect(d.max).toBeGreaterThan(1); // what the exact default fixes
  });
});

describe("colour: BT.601 whatever the file's tag, as the reference (PyAV, torchvision) converts", () => {
  /** A 1280x720 picture encoded with the BT.709 matrix (as HD cameras and encoders do) and tagged so. */
  const make709 = (name: string, range: 'tv' | 'pc' = 'tv') => {
    const file = join(dir, name);
    ffmpeg([
      ...['-f', 'lavfi', '-i', 'testsrc2=s=1280x720:r=25:d=3', '-vf', `scale=out_color_matrix=bt709:out_range=${range}`],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709'],
      ...['-color_range', range, file],
    ]);
    return file;
  };

  it.each([
    ['BT.709 tagged', 'bt709.mp4', 'tv'],
    ['BT.709 tagged, full range', 'bt709pc.mp4', 'pc'],
  ] as const)('%s: every pixel within ±1 level of the reference by default (exact and fast picks)', async (_name, name, range) => {
    const file = make709(name, range);
    const ref = await reference(file, join(dir, name));
    const out = await decodeClip(await readFile(file), resolveDecodeOptions({ audio: false }), { key: name });
    expect(out.video!.decodedFrames).toBe(ref.decoded_frames);
    const d = frameDiff(out.video!.frames, ref.video!);
    expect(d.max).toBeLessThanOrEqual(1);
    expect(d.mean).toBeLessThan(0.5);
    // The fast resize converts with the same matrix: only its scaler differs.
    const fast = await decodeClip(await readFile(file), resolveDecodeOptions({ audio: false, resize: 'fast' }), { key: name });
    expect(frameDiff(fast.video!.frames, ref.video!).mean).toBeLessThan(4);
  });

  it("colorMatrix 'source' converts by the file's own BT.709 matrix (the colorimetric one): far from the reference", async () => {
    const file = make709('source709.mp4');
    const ref = await reference(file, join(dir, 'source709'));
    const out = await decodeClip(await readFile(file), resolveDecodeOptions({ audio: false, colorMatrix: 'source' }), { key: 'source709.mp4' });
    const d = frameDiff(out.video!.frames, ref.video!);
    expect(d.max).toBeGreaterThan(20);
    // The default on the same file: the reference's conversion.
    const bt601 = await decodeClip(await readFile(file), resolveDecodeOptions({ audio: false }), { key: 'default709.mp4' });
    expect(frameDiff(bt601.video!.frames, ref.video!).max).toBeLessThanOrEqual(1);
    expect(() => resolveDecodeOptions({ colorMatrix: 'bt709' as 'source' })).toThrow("Expected one of 'bt601', 'source' for options.colorMatrix");
  });
});

describe('audio: the plain mean of all channels (VGGish / ACAV)', () => {
  const decodeAudio = async (file: string, o: DecodeOptions = {}) =>
    (await decodeClip(await readFile(file), resolveDecodeOptions({ video: false, minDurationSeconds: 0, ...o }), { key: file })).audio!.pcm;
  const peak = (pcm: Float32Array) => pcm.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const compare = (ours: Float32Array, ref: Float32Array, tolerance: number) => {
    expect(Math.abs(ours.length - ref.length)).toBeLessThanOrEqual(16);
    let max = 0;
    for (let i = 0; i < Math.min(ours.length, ref.length); i++) max = Math.max(max, Math.abs(ours[i]! - ref[i]!));
    expect(max).toBeLessThan(tolerance);
  };
  /** Audio-only mkv (pcm_s16le: both decoders see the same samples) at 16 kHz or another rate. */
  const makeAudio = (name: string, exprs: string, layout: string, rate = 16000) => {
    const file = join(dir, name);
    ffmpeg(['-f', 'lavfi', '-i', `aevalsrc=${exprs}:s=${rate}:d=3:c=${layout}`, '-c:a', 'pcm_s16le', file]);
    return file;
  };

  it('a 0.5-amplitude mono tone stays at 0.5 (not 0.354), equal to the reference', async () => {
    const file = makeAudio('mono.mkv', '0.5*sin(2*PI*440*t)', 'mono');
    const pcm = await decodeAudio(file);
    expect(peak(pcm)).toBeGreaterThan(0.49);
    expect(peak(pcm)).toBeLessThan(0.51);
    compare(pcm, (await reference(file, join(dir, 'mono'))).audio!, 1e-4);
  });

  it('stereo with different channels is their mean', async () => {
    const file = makeAudio('stereo.mkv', '0.6*sin(2*PI*440*t)|0.2*sin(2*PI*1000*t)', 'stereo');
    const ref = await reference(file, join(dir, 'stereo'));
    expect(ref.channels).toBe(2);
    compare(await decodeAudio(file), ref.audio!, 1e-4);
  });

  it('5.1 is the mean of all six channels (no downmix matrix)', async () => {
    const file = makeAudio('six.mkv', '0.6*sin(2*PI*300*t)|0.3|0.1*sin(2*PI*900*t)|-0.2|0.4*sin(2*PI*500*t)|0.05', '5.1');
    const ref = await reference(file, join(dir, 'six'));
    expect(ref.channels).toBe(6);
    const pcm = await decodeAudio(file);
    compare(pcm, ref.audio!, 1e-4);
    // The constant channels alone put the mean at (0.3 - 0.2 + 0.05) / 6 = 0.025.
    expect(pcm.reduce((s, v) => s + v, 0) / pcm.length).toBeCloseTo(0.025, 3);
  });

  it("AAC in a fragmented MP4: equal to the reference; the muxer's missing edit list leaves AAC's 1024-sample delay in", async () => {
    const plain = join(dir, 'aac-plain.mp4');
    const frag = join(dir, 'aac-frag.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'sine=f=440:d=4:r=44100', '-c:a', 'aac', plain]);
    ffmpeg(['-i', plain, '-c', 'copy', '-movflags', 'frag_keyframe+empty_moov', '-frag_duration', '1000000', frag]);
    const ours = await decodeAudio(frag);
    compare(ours, (await reference(frag, join(dir, 'aac-frag'))).audio!, 2e-3);
    // 1024 samples at 44.1 kHz are 371.5 at 16 kHz: the encoder delay an edit list would have cut.
    expect(ours.length - (await decodeAudio(plain)).length).toBeGreaterThanOrEqual(371);
    expect(ours.length - (await decodeAudio(plain)).length).toBeLessThanOrEqual(372);
  });

  it('44.1 kHz stereo: resampled per channel then averaged, as the reference', async () => {
    const file = makeAudio('rate.mkv', '0.5*sin(2*PI*440*t)|0.1*sin(2*PI*3000*t)', 'stereo', 44100);
    compare(await decodeAudio(file), (await reference(file, join(dir, 'rate'))).audio!, 2e-3);
  });
});
