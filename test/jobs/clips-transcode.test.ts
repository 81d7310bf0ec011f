import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remixClip, splitAudio } from '../../src/clips/audio.js';
import { encoderArgs, resolveEncoder } from '../../src/media/encoders.js';
import { fixedStride, planSpans, type PlannedClip } from '../../src/clips/plan.js';
import { probeVideo, type VideoInfo } from '../../src/media/probe.js';
import { transcodeClips, type TranscodeOptions } from '../../src/clips/transcode.js';
import { ffprobePath } from '../../src/media/ffmpeg-path.js';
import { liveChildProcesses } from '../../src/media/process.js';
import type { ClipstreamError } from '../../src/errors.js';
import { frameHashes, makeSource } from '../helpers/clip-sources.js';

const run = promisify(execFile);
let dir: string;
let src: VideoInfo;
let srcHashes: string[];
// crf 0 is lossless in libx264: a correct cut decodes to exactly the source's frames.
const LOSSLESS: TranscodeOptions = { encoder: 'libx264', threads: 1, crf: 0, preset: 'ultrafast' };

async function streams(file: string): Promise<Record<string, string | number>[]> {
  const { stdout } = await run(ffprobePath(), [
    '-v',
    'error',
    '-show_entries',
    'stream=codec_type,codec_name,codec_tag_string,pix_fmt,sample_rate,channels,sample_fmt,bit_rate,duration,nb_frames',
    '-of',
    'json',
    file,
  ]);
  return JSON.parse(stdout).streams;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-tc-'));
  await makeSource(join(dir, 'src.mp4'), { seconds: 20, fps: 10, noise: true });
  src = await probeVideo(join(dir, 'src.mp4'));
  srcHashes = await frameHashes(src.path);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const spans = (list: [number, number][]): PlannedClip[] =>
  planSpans(
    list.map(([start, end]) => ({ videoId: 'src', start, end, unit: 'frame' as const })),
    src,
  ).clips;

describe('frame-accurate cutting', () => {
  it('source is what the test assumes', () => {
    expect(src).toMatchObject({ fps: 10, numFrames: 200, width: 160, height: 120, audioCodec: 'aac' });
    expect(srcHashes).toHaveLength(200);
    expect(new Set(srcHashes).size).toBe(200);
  });

  it.each([
    ['one-pass, one chunk', { mode: 'one-pass' as const }],
    ['one-pass, chunks of 2 run 2 at a time', { mode: 'one-pass' as const, numClipsPerChunk: 2, encodeBatchSize: 2 }],
    ['per-clip', { mode: 'per-clip' as const, encodeBatchSize: 2 }],
  ])('%s: clip [s, e) has e - s frames, the first being source frame s', async (name, opts) => {
    // Starts between keyframes (GOP 37), overlapping spans, a one-frame clip, the last frame.
    const clips = spans([
      [0, 23],
      [41, 79],
      [60, 61],
      [150, 200],
      [37, 38 + 37],
    ]);
    const out = join(dir, name.replace(/\W+/g, '-'));
    await transcodeClips(
      src,
      'src',
      clips.map((clip) => ({ clip, out: join(out, `${clip.stem}.mp4`) })),
      { ...LOSSLESS, ...opts },
    );
    for (const c of clips) {
      const hashes = await frameHashes(join(out, `${c.stem}.mp4`));
      expect(hashes, c.clipId).toEqual(srcHashes.slice(c.startFrame, c.endFrame));
    }
    expect((await readdir(out)).sort()).toEqual(clips.map((c) => `${c.stem}.mp4`).sort());
    // Every mp4 is fast-start: moov before mdat.
    const head = (await readFile(join(out, `${clips[0]!.stem}.mp4`))).toString('latin1');
    expect(head.indexOf('moov')).toBeLessThan(head.indexOf('mdat'));
  });

  it('libx265 output is tagged hvc1', async () => {
    const [clip] = fixedStride('src', src, { clipLenS: 1, clipStrideS: 1, limitClips: 1 }).clips;
    const out = join(dir, 'hevc.mp4');
    await transcodeClips(src, 'src', [{ clip: clip!, out }], { encoder: 'libx265', threads: 1, crf: 30, preset: 'ultrafast' });
    const [v] = await streams(out);
    expect(v).toMatchObject({ codec_name: 'hevc', codec_tag_string: 'hvc1', pix_fmt: 'yuv420p', nb_frames: '10' });
  });

  it('converts a 10-bit source for 8-bit encoders', async () => {
    await makeSource(join(dir, 'ten.mkv'), { seconds: 3, fps: 10, tenBit: true });
    const ten = await probeVideo(join(dir, 'ten.mkv'));
    expect(ten.pixFmt).toBe('yuv420p10le');
    const [clip] = planSpans([{ videoId: 'ten', start: 5, end: 17, unit: 'frame' }], ten).clips;
    await transcodeClips(ten, 'ten', [{ clip: clip!, out: join(dir, 'ten.mp4') }], { encoder: 'libx264', threads: 1, crf: 23, preset: 'ultrafast' });
    expect((await streams(join(dir, 'ten.mp4')))[0]).toMatchObject({ codec_name: 'h264', pix_fmt: 'yuv420p', nb_frames: '12' });
  });
});

describe('audio', () => {
  it('splits once to FLAC 48 kHz stereo 16-bit and remixes a span as AAC 192k', async () => {
    const flac = join(dir, 'a.flac');
    await splitAudio(src.path, flac, 'src');
    expect((await streams(flac))[0]).toMatchObject({ codec_name: 'flac', sample_rate: '48000', channels: 2, sample_fmt: 's16' });
    const [clip] = spans([[50, 90]]);
    const videoOnly = join(dir, 'vo.mp4');
    await transcodeClips(src, 'src', [{ clip: clip!, out: videoOnly }], LOSSLESS);
    const out = join(dir, 'remixed.mp4');
    await remixClip(videoOnly, flac, clip!, out);
    const s = await streams(out);
    const a = s.find((x) => x.codec_type === 'audio')!;
    expect(a).toMatchObject({ codec_name: 'aac', sample_rate: '48000', channels: 2 });
    expect(Math.abs(Number(a.bit_rate) - 192_000)).toBeLessThan(20_000);
    expect(Math.abs(Number(a.duration) - 4)).toBeLessThan(0.05);
    // The video is copied, not re-encoded: still the exact source frames.
    expect(await frameHashes(out)).toEqual(srcHashes.slice(50, 90));
  });
});

describe('encoders', () => {
  it('falls back from NVENC to the CPU encoder of the same codec with one warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: ClipstreamError) => warnings.push(w.message);
    // The bundled ffmpeg has no NVENC; this machine has no GPU.
    expect(await resolveEncoder('hevc_nvenc', { onWarning })).toMatchObject({ encoder: 'libx265', hwaccel: false, requested: 'hevc_nvenc' });
    expect(await resolveEncoder('hevc_nvenc', { onWarning })).toMatchObject({ encoder: 'libx265' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^encoder hevc_nvenc is not available with .*ffmpeg or no GPU answered; encoding on the CPU with libx265 instead$/);
    expect(await resolveEncoder('libx264', { onWarning })).toEqual({ encoder: 'libx264', hwaccel: false, requested: 'libx264' });
    await expect(resolveEncoder('vp9')).rejects.toThrow(
      "Expected one of 'libx264', 'libx265', 'h264_nvenc', 'hevc_nvenc' for options.encoder but received 'vp9' of type string",
    );
  });
});

it.each([
  [{ encoder: 'libx264' as const, threads: 2, crf: 20 }, ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'medium', '-threads', '2', '-crf', '20']],
  [
    { encoder: 'libx264' as const, threads: 1, crf: 20, bitRate: 1_500_000 },
    ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'medium', '-threads', '1', '-b:v', '1500000'],
  ],
  [
    { encoder: 'hevc_nvenc' as const, threads: 1, crf: 28 },
    ['-c:v', 'hevc_nvenc', '-pix_fmt', 'yuv420p', '-rc', 'vbr', '-cq', '28', '-b:v', '0', '-tag:v', 'hvc1'],
  ],
])('encoderArgs %o (use_input_bit_rate sets -b:v)', (settings, want) => {
  expect(encoderArgs(settings)).toEqual(want);
});

describe('failures', () => {
  it('a video that cannot be decoded fails naming the video and clips, leaving no files', async () => {
    const bad = join(dir, 'bad');
    await run('mkdir', ['-p', bad]);
    const buf = await readFile(src.path);
    // Keep the header (so the probe works), destroy the media data.
    const broken = Buffer.from(buf);
    broken.fill(0x42, Math.floor(buf.length * 0.1));
    await writeFile(join(bad, 'broken.mp4'), broken);
    const clips = spans([
      [0, 10],
      [100, 120],
    ]);
    const err = await transcodeClips(
      { ...src, path: join(bad, 'broken.mp4') },
      'brk',
      clips.map((clip) => ({ clip, out: join(bad, `${clip.stem}.mp4`) })),
      LOSSLESS,
    ).catch((e: unknown) => e);
    expect(String(err)).toMatch(/video brk \(.*broken\.mp4\): cutting clips src_0_10, src_100_120 failed: /);
    expect(await readdir(bad)).toEqual(['broken.mp4']);
  });

  it('an abort kills ffmpeg and leaves nothing half-written', async () => {
    await makeSource(join(dir, 'long.mp4'), { seconds: 60, fps: 25, size: '320x240' });
    const long = await probeVideo(join(dir, 'long.mp4'));
    const out = join(dir, 'aborted');
    const clips = fixedStride('long', long, { clipLenS: 10, clipStrideS: 10 }).clips;
    const ac = new AbortController();
    const p = transcodeClips(
      long,
      'long',
      clips.map((clip) => ({ clip, out: join(out, `${clip.stem}.mp4`) })),
      { encoder: 'libx264', threads: 1, crf: 23, preset: 'veryslow', signal: ac.signal },
    );
    setTimeout(() => ac.abort(), 400);
    await expect(p).rejects.toThrow('aborted');
    expect(liveChildProcesses()).toBe(0);
    expect(await readdir(out)).toEqual([]);
  });
});
