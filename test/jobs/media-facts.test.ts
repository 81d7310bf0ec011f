import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipstreamError } from '../../src/errors.js';
import {
  factsFromFfmpegText,
  type MediaFacts,
  outputTagArgs,
  parseSar,
  probeMedia,
  rgbToYuvFilter,
  setsarFilter,
  squarePixelsFilter,
} from '../../src/media/facts.js';
import { ffmpegPath, ffprobePath } from '../../src/media/ffmpeg-path.js';
import { frameTimelineOf, probeVideo } from '../../src/media/probe.js';

// Every file here is made by its recipe below; each expectation is read off that recipe, and a
// few are checked against PyAV (Debian's /usr/bin/python3) where that is cheap.
let dir: string;
const file = (n: string) => join(dir, n);
const hasPyAv = spawnSync('/usr/bin/python3', ['-c', 'import av']).status === 0;
if (!hasPyAv) process.stderr.write('media-facts: /usr/bin/python3 with PyAV not found; the PyAV cross-checks are skipped\n');

const ff = (...args: string[]) => execFileSync(ffmpegPath(), ['-hide_banner', '-nostdin', '-v', 'error', '-y', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
/** Tiny test pattern; `g` frames a GOP, no scene-cut keyframes, so the keyframes are known. */
const src = (d: number, size = '64x48', pattern = 'testsrc2') => ['-f', 'lavfi', '-i', `${pattern}=s=${size}:r=25:d=${d}`];
const x264 = (g = 10) => ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(g), '-keyint_min', String(g), '-sc_threshold', '0', '-pix_fmt', 'yuv420p'];
const sine = (d: number, rate = 44100) => ['-f', 'lavfi', '-i', `sine=f=440:d=${d}:sample_rate=${rate}`];

async function pyav(path: string): Promise<{ video: number[]; audio_start: number | null; audio_seconds: number | null }> {
  const r = spawnSync('/usr/bin/python3', ['scripts/frame_times.py', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`frame_times.py ${path}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Facts through both routes: ffprobe, and ffmpeg alone (ffprobe replaced by one that segfaults). */
const facts = new Map<string, MediaFacts>();
const viaFfmpeg = new Map<string, MediaFacts>();
const cheap = new Map<string, MediaFacts>();
const NAMES = [
  'plain.mp4',
  'frag.mp4',
  'frag1s.mp4',
  'flac.mkv',
  'opus.webm',
  'reset.ts',
  'gap.mp4',
  'vfr.mp4',
  'sar1615.mp4',
  'sar3227.mp4',
  'rot90.mp4',
  'rot270.mp4',
  'bt709.mp4',
  'pq.mp4',
  'full.mp4',
  'short-audio.mp4',
  'live.mkv',
] as const;
let crashing: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-media-facts-'));
  crashing = file('crashing-ffprobe.sh');
  await writeFile(crashing, '#!/bin/sh\nkill -SEGV $$\n');
  await chmod(crashing, 0o755);
  ff(...src(2), ...sine(2), ...x264(), '-c:a', 'aac', file('plain.mp4'));
  // Fragmented: ffmpeg's default keeps an mfra index at the end; 1 s fragments with skip_trailer have no index at all (as DASH segments joined).
  ff(...src(3), ...sine(3), ...x264(25), '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov', file('frag.mp4'));
  ff(...src(3), ...x264(25), '-movflags', 'frag_keyframe+empty_moov+default_base_moof+skip_trailer', '-frag_duration', '1000000', file('frag1s.mp4'));
  ff(...src(2), ...sine(2), ...x264(), '-c:a', 'flac', file('flac.mkv'));
  ff(
    ...src(2),
    ...sine(2, 48000),
    '-c:v',
    'libvpx-vp9',
    '-deadline',
    'realtime',
    '-cpu-used',
    '8',
    '-g',
    '10',
    '-c:a',
    'libopus',
    '-ac',
    '2',
    file('opus.webm'),
  );
  // Two recordings joined byte by byte: both start at MPEG-TS's 1.4 s, so the timestamps restart.
  ff(...src(2), ...sine(2), ...x264(), '-c:a', 'aac', file('a.ts'));
  ff(...src(2, '64x48', 'testsrc'), ...sine(2), ...x264(), '-c:a', 'aac', file('b.ts'));
  execFileSync('sh', ['-c', `cat "${file('a.ts')}" "${file('b.ts')}" > "${file('reset.ts')}"`]);
  // 25 frames at 0..0.96 s, then 25 frames 30 s later (31..31.96 s).
  ff(...src(2), '-vf', 'setpts=if(gte(N\\,25)\\,PTS+30/TB\\,PTS)', '-vsync', 'passthrough', ...x264(), file('gap.mp4'));
  // 25 frames at 25 fps, then 25 at 12.5 fps.
  ff(...src(2), '-vf', 'setpts=(if(lt(N\\,25)\\,N*0.04\\,1+(N-25)*0.08))/TB', '-vsync', 'passthrough', ...x264(), file('vfr.mp4'));
  ff(...src(0.4, '720x576'), '-vf', 'setsar=16/15', ...x264(), file('sar1615.mp4'));
  ff(...src(0.4, '720x480'), '-vf', 'setsar=32/27', ...x264(), file('sar3227.mp4'));
  // A white 16×12 block in the top-left corner of a black frame, then a rotate tag (the mov muxer writes it as a display matrix).
  ff('-f', 'lavfi', '-i', 'color=black:s=64x48:r=25:d=1', '-vf', 'drawbox=x=0:y=0:w=16:h=12:color=white:t=fill', ...x264(), file('corner.mp4'));
  ff('-i', file('corner.mp4'), '-c', 'copy', '-metadata:s:v:0', 'rotate=90', file('rot90.mp4'));
  ff('-i', file('corner.mp4'), '-c', 'copy', '-metadata:s:v:0', 'rotate=270', file('rot270.mp4'));
  ff(...src(1), ...x264(), '-color_primaries', 'bt709', '-color_trc', 'bt709', '-colorspace', 'bt709', '-color_range', 'tv', file('bt709.mp4'));
  ff(...src(1), ...x264(), '-color_primaries', 'bt2020', '-color_trc', 'smpte2084', '-colorspace', 'bt2020nc', '-color_range', 'tv', file('pq.mp4'));
  ff(...src(1), ...x264(), '-color_range', 'pc', file('full.mp4'));
  ff(...src(2), ...sine(0.5), ...x264(), '-c:a', 'aac', file('short-audio.mp4'));
  // Matroska written to a pipe, as a live recording: no Cues, clusters of unknown size.
  execFileSync('sh', ['-c', `"${ffmpegPath()}" -v error ${[...src(2), ...x264()].join(' ')} -f matroska pipe:1 > "${file('live.mkv')}"`]);
  await Promise.all(
    NAMES.map(async (n) => {
      facts.set(n, await probeMedia(file(n), { timeline: true }));
      cheap.set(n, await probeMedia(file(n)));
      viaFfmpeg.set(n, await probeMedia(file(n), { timeline: true, ffprobe: crashing }));
    }),
  );
}, 240_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const f = (n: (typeof NAMES)[number]) => facts.get(n)!;

describe('container facts', () => {
  it.each([
    ['plain.mp4', 'mov,mp4', false, true],
    ['frag.mp4', 'mov,mp4', true, true],
    ['frag1s.mp4', 'mov,mp4', true, false],
    ['flac.mkv', 'matroska', false, true],
    ['opus.webm', 'matroska,webm', false, true],
    ['reset.ts', 'mpegts', false, false],
    ['live.mkv', 'matroska', false, false],
  ] as const)('%s: format %s, fragmented %s, indexed %s', (n, format, fragmented, indexed) => {
    for (const m of [f(n), cheap.get(n)!, viaFfmpeg.get(n)!]) {
      expect(m.container.format).toContain(format);
      expect(m.container.fragmented).toBe(fragmented);
      expect(m.container.indexed).toBe(indexed);
    }
  });

  it.each(['frag.mp4', 'frag1s.mp4'] as const)('%s: 3 s and 75 frames by every source, the count not taken from the empty index', async (n) => {
    const c = cheap.get(n)!;
    expect(c.video.frameCountSource).toBe('estimate');
    expect(c.video.frameCount).toBe(75);
    // Within one frame: with audio, ffmpeg's fragmenter stretches the first frame by 23 ms (PyAV sees it too).
    expect(c.container.durations.videoStream).toBeCloseTo(3, 1);
    expect(c.container.durations.lastPacket).toBeCloseTo(c.container.durations.videoStream!, 3);
    expect(c.container.durationsDisagree).toBe(false);
    expect(f(n).timeline!.pts).toHaveLength(75);
    expect(f(n).video).toMatchObject({ frameCount: 75, frameCountSource: 'timeline' });
    expect(f(n).timeline!.durationS).toBeCloseTo(3, 1);
    if (hasPyAv) {
      const ref = (await pyav(file(n))).video;
      expect(ref).toHaveLength(75);
      ref.forEach((t, i) => expect(f(n).timeline!.pts[i]).toBeCloseTo(t, 5));
    }
    // A regular mp4 gives its count from the index.
    expect(cheap.get('plain.mp4')!.video).toMatchObject({ frameCount: 50, frameCountSource: 'index' });
  });

  it('a live-written Matroska file without any duration in its headers gets its length from its last packet', async () => {
    for (const m of [cheap.get('live.mkv')!, f('live.mkv')]) {
      expect(m.container.durations).toEqual({ format: null, videoStream: null, lastPacket: 2 });
      expect(m.video.durationS).toBe(2);
      expect(m.video.frameCount).toBe(50);
    }
    expect(await probeVideo(file('live.mkv'))).toMatchObject({ durationS: 2, numFrames: 50 });
  });

  it('the duration sources of joined recordings disagree; those of a plain file agree', () => {
    expect(f('reset.ts').container.durationsDisagree).toBe(true);
    expect(f('plain.mp4').container.durationsDisagree).toBe(false);
    expect(f('plain.mp4').container.durations).toEqual({ format: 2, videoStream: 2, lastPacket: 2 });
  });
});

describe('frame timeline', () => {
  it('keyframes every 10 frames, CFR, no gap, no reset', () => {
    const t = f('plain.mp4').timeline!;
    expect(t.keyframes).toEqual([0, 10, 20, 30, 40]);
    expect(t.pts).toHaveLength(50);
    expect(t.pts[49]).toBeCloseTo(1.96, 6);
    expect({ vfr: t.vfr, gaps: t.gaps, resets: t.resets }).toEqual({ vfr: false, gaps: [], resets: [] });
    expect(t.frameIntervalS).toBeCloseTo(0.04, 6);
    // Matroska lists dts for some packets only: B-frames there must not read as a reset.
    expect(f('flac.mkv').timeline).toMatchObject({ resets: [], gaps: [], vfr: false });
    expect(f('flac.mkv').timeline!.pts).toHaveLength(50);
  });

  it('MPEG-TS joined with cat: one reset at frame 50, 4 s of content in 100 frames', async () => {
    for (const m of [f('reset.ts'), viaFfmpeg.get('reset.ts')!]) {
      const t = m.timeline!;
      expect(t.pts).toHaveLength(100);
      expect(t.resets).toHaveLength(1);
      expect(t.resets[0]!.index).toBe(50);
      expect(t.resets[0]!.fromS).toBeCloseTo(t.pts[49]!, 9);
      expect(t.resets[0]!.toS).toBeLessThan(t.resets[0]!.fromS - 1.5);
      expect(t.durationS).toBeCloseTo(4, 6);
      expect(t.keyframes).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    }
    // The view that has always been one ascending list stays one.
    const view = frameTimelineOf(f('reset.ts'));
    expect(Array.from(view.pts)).toEqual(Array.from(view.pts).sort((a, b) => a - b));
    if (hasPyAv) {
      // PyAV decodes in file order: the same times, the same backwards step.
      const ref = (await pyav(file('reset.ts'))).video;
      expect(ref).toHaveLength(100);
      ref.forEach((t, i) => expect(f('reset.ts').timeline!.pts[i]).toBeCloseTo(t, 5));
    }
  });

  it('a 30 s timestamp gap is found where the recipe put it', async () => {
    for (const m of [f('gap.mp4'), viaFfmpeg.get('gap.mp4')!]) {
      const t = m.timeline!;
      expect(t.gaps).toHaveLength(1);
      expect(t.gaps[0]!.index).toBe(25);
      expect(t.gaps[0]!.fromS).toBeCloseTo(0.96, 6);
      expect(t.gaps[0]!.toS).toBeCloseTo(31, 6);
      expect(t.resets).toEqual([]);
      expect(t.vfr).toBe(false);
      expect(t.durationS).toBeCloseTo(32, 6);
    }
    if (hasPyAv) {
      const ref = (await pyav(file('gap.mp4'))).video;
      expect(ref).toHaveLength(50);
      ref.forEach((t, i) => expect(f('gap.mp4').timeline!.pts[i]).toBeCloseTo(t, 5));
    }
  });

  it('VFR: 25 fps then 12.5 fps is VFR, without a gap', () => {
    for (const m of [f('vfr.mp4'), viaFfmpeg.get('vfr.mp4')!]) {
      expect(m.timeline).toMatchObject({ vfr: true, gaps: [], resets: [] });
      expect(m.timeline!.pts[49]).toBeCloseTo(1 + 24 * 0.08, 6);
    }
  });

  it('the timeline is asked for only: the cheap probe lists no packet', () => {
    expect(cheap.get('plain.mp4')!.timeline).toBeNull();
  });
});

describe('geometry', () => {
  it('SAR 16:15 at 720×576 displays 768×576, 4:3; SAR 32:27 at 720×480 displays 16:9', async () => {
    for (const m of [f('sar1615.mp4'), viaFfmpeg.get('sar1615.mp4')!]) {
      expect(m.geometry).toMatchObject({
        codedWidth: 720,
        codedHeight: 576,
        sar: { num: 16, den: 15 },
        rotation: 0,
        displayWidth: 768,
        displayHeight: 576,
        dar: { num: 4, den: 3 },
      });
      expect(m.geometry.displayAspect).toBeCloseTo(4 / 3, 12);
    }
    for (const m of [f('sar3227.mp4'), viaFfmpeg.get('sar3227.mp4')!]) {
      expect(m.geometry).toMatchObject({ sar: { num: 32, den: 27 }, displayWidth: 853, displayHeight: 480, dar: { num: 16, den: 9 } });
      expect(m.geometry.displayAspect).toBeCloseTo(16 / 9, 12);
    }
    expect(f('plain.mp4').geometry).toMatchObject({ sar: { num: 1, den: 1 }, displayWidth: 64, displayHeight: 48, dar: { num: 4, den: 3 } });
    expect(parseSar('0:1')).toEqual({ num: 1, den: 1 });
    expect(parseSar('N/A')).toEqual({ num: 1, den: 1 });
    expect(parseSar('64:60')).toEqual({ num: 16, den: 15 });
    if (hasPyAv) {
      const r = spawnSync('/usr/bin/python3', ['-c', 'import av,sys; print(av.open(sys.argv[1]).streams.video[0].sample_aspect_ratio)', file('sar3227.mp4')], {
        encoding: 'utf8',
      });
      expect(r.stdout.trim()).toBe('32/27');
    }
  });

  it.each([
    ['rot90.mp4', 270],
    ['rot270.mp4', 90],
  ] as const)('%s: clockwise rotation %i, as ffmpeg turns the picture when it decodes', (n, rotation) => {
    for (const m of [f(n), viaFfmpeg.get(n)!, cheap.get(n)!]) {
      expect(m.geometry).toMatchObject({ codedWidth: 64, codedHeight: 48, rotation, displayWidth: 48, displayHeight: 64, dar: { num: 3, den: 4 } });
    }
    // Where the top-left white block lands after autorotation says which way it turned.
    const px = execFileSync(ffmpegPath(), ['-v', 'error', '-i', file(n), '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1']);
    expect(px.length).toBe(48 * 64);
    const at = (x: number, y: number) => px[y * 48 + x]!;
    const corner = { tl: at(2, 2), tr: at(45, 2), bl: at(2, 61), br: at(45, 61) };
    // Clockwise 90: top-left goes to top-right; clockwise 270: to bottom-left.
    const bright = Object.entries(corner)
      .filter(([, v]) => v > 200)
      .map(([k]) => k);
    expect(bright).toEqual([rotation === 90 ? 'tr' : 'bl']);
  });
});

describe('colour', () => {
  it.each([
    ['bt709.mp4', { matrix: 'bt709', primaries: 'bt709', transfer: 'bt709', range: 'tv', tagged: true }],
    ['pq.mp4', { matrix: 'bt2020nc', primaries: 'bt2020', transfer: 'smpte2084', range: 'tv', tagged: true }],
    ['full.mp4', { matrix: null, primaries: null, transfer: null, range: 'pc', tagged: true }],
    ['plain.mp4', { matrix: null, primaries: null, transfer: null, range: null, tagged: false }],
  ] as const)('%s', (n, colour) => {
    expect(f(n).colour).toEqual(colour);
    expect(viaFfmpeg.get(n)!.colour).toEqual(colour);
  });

  it('outputTagArgs carries only the tags the source has', () => {
    expect(outputTagArgs(f('plain.mp4'))).toEqual([]);
    // libvpx tags limited range on its own: alone, that is every decoder's default, and outputs stay as they were.
    expect(f('opus.webm').colour).toMatchObject({ range: 'tv', matrix: null });
    expect(outputTagArgs(f('opus.webm'))).toEqual([]);
    expect(rgbToYuvFilter(f('opus.webm'))).toBeNull();
    expect(rgbToYuvFilter(f('full.mp4'))).toBe('scale=out_range=pc');
    expect(outputTagArgs(f('full.mp4'))).toEqual(['-color_range', 'pc']);
    expect(outputTagArgs(f('pq.mp4'))).toEqual(['-color_primaries', 'bt2020', '-color_trc', 'smpte2084', '-colorspace', 'bt2020nc', '-color_range', 'tv']);
  });
});

describe('audio streams', () => {
  it('codec, channels, layout, rate; none; Opus and FLAC', () => {
    expect(f('plain.mp4').audio).toMatchObject([{ index: 1, codec: 'aac', channels: 1, layout: 'mono', sampleRate: 44100, startS: 0 }]);
    expect(f('flac.mkv').audio).toMatchObject([{ codec: 'flac', channels: 1, layout: 'mono', sampleRate: 44100 }]);
    expect(f('opus.webm').audio).toMatchObject([{ codec: 'opus', channels: 2, layout: 'stereo', sampleRate: 48000 }]);
    expect(f('sar1615.mp4').audio).toEqual([]);
    for (const n of ['plain.mp4', 'flac.mkv', 'opus.webm', 'sar1615.mp4'] as const) {
      expect(viaFfmpeg.get(n)!.audio.map(({ codec, channels, layout, sampleRate }) => ({ codec, channels, layout, sampleRate }))).toEqual(
        f(n).audio.map(({ codec, channels, layout, sampleRate }) => ({ codec, channels, layout, sampleRate })),
      );
    }
    // Matroska keeps a stream's length in a DURATION tag.
    expect(f('flac.mkv').audio[0]!.durationS).toBeCloseTo(2, 1);
  });

  it("the ffmpeg route reads the first audio stream's start and length from a decode pass", async () => {
    for (const n of ['plain.mp4', 'short-audio.mp4', 'flac.mkv', 'opus.webm'] as const) {
      const [a, b] = [f(n).audio[0]!, viaFfmpeg.get(n)!.audio[0]!];
      // ffprobe's start counts Opus's pre-skip (-7 ms); decoded samples start at 0.
      expect(Math.abs(b.startS! - a.startS!)).toBeLessThan(0.01);
      expect(Math.abs(b.durationS! - a.durationS!)).toBeLessThan(0.03);
    }
    // Joined recordings: the samples add up to both halves (ffprobe's stream duration is the timestamp span).
    const joined = viaFfmpeg.get('reset.ts')!.audio[0]!;
    expect(joined.durationS).toBeGreaterThan(3.8);
    if (hasPyAv) expect(joined.durationS).toBeCloseTo((await pyav(file('reset.ts'))).audio_seconds!, 3);
  });

  it('audio shorter than the video: 0.5 s of audio under 2 s of video', async () => {
    const m = f('short-audio.mp4');
    expect(m.video.durationS).toBeCloseTo(2, 6);
    expect(m.audio[0]!.durationS).toBeGreaterThan(0.45);
    expect(m.audio[0]!.durationS).toBeLessThan(0.6);
    if (hasPyAv) {
      const ref = await pyav(file('short-audio.mp4'));
      expect(m.audio[0]!.durationS).toBeCloseTo(ref.audio_seconds!, 1);
      expect(m.audio[0]!.startS).toBeCloseTo(ref.audio_start!, 3);
    }
  });
});

describe('the ffmpeg route (ffprobe dies) gives the same facts', () => {
  it.each(NAMES)('%s', (n) => {
    const a = f(n);
    const b = viaFfmpeg.get(n)!;
    expect(b.method).toBe('ffmpeg');
    expect(a.method).toBe('ffprobe');
    expect(b.geometry).toEqual(a.geometry);
    expect(b.colour).toEqual(a.colour);
    expect({ fragmented: b.container.fragmented, indexed: b.container.indexed }).toEqual({ fragmented: a.container.fragmented, indexed: a.container.indexed });
    expect(b.video.codec).toBe(a.video.codec);
    expect(b.audio.map((s) => s.codec)).toEqual(a.audio.map((s) => s.codec));
    const [ta, tb] = [a.timeline!, b.timeline!];
    expect(tb.method).toBe('decode');
    expect(tb.pts).toHaveLength(ta.pts.length);
    ta.pts.forEach((t, i) => expect(tb.pts[i]).toBeCloseTo(t, 5));
    expect({ k: tb.keyframes, r: tb.resets.length, g: tb.gaps.length, v: tb.vfr }).toEqual({
      k: ta.keyframes,
      r: ta.resets.length,
      g: ta.gaps.length,
      v: ta.vfr,
    });
  });

  it('the probeVideo view keeps its answer and its error on either route', async () => {
    const info = await probeVideo(file('plain.mp4'));
    expect(info).toMatchObject({ width: 64, height: 48, fps: 25, numFrames: 50, durationS: 2, videoCodec: 'h264', audioCodec: 'aac' });
    await expect(probeVideo(file('plain.mp4'), { ffprobe: crashing })).resolves.toMatchObject({
      width: 64,
      height: 48,
      fps: 25,
      numFrames: 50,
      audioCodec: 'aac',
    });
  });
});

describe('ffmpeg -i text (the fallback parser)', () => {
  it('skips cover art, reads one-name colour, range alone, SAR, rotation, layouts with parentheses and channel counts', () => {
    const text = [
      "Input #0, matroska,webm, from 'x.mkv':",
      '  Duration: 00:00:02.50, start: 0.000000, bitrate: 300 kb/s',
      '  Stream #0:0: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 32x32 [SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)',
      '  Stream #0:1(eng): Video: h264 (High), yuv420p(tv, bt709, progressive), 720x480 [SAR 32:27 DAR 16:9], 29.97 fps, 29.97 tbr, 1k tbn (default)',
      '    Side data:',
      '      displaymatrix: rotation of -90.00 degrees',
      '  Stream #0:2(eng): Audio: ac3, 48000 Hz, 5.1(side), fltp, 384 kb/s',
      '  Stream #0:3: Audio: pcm_s24le, 96000 Hz, 3 channels, s32 (24 bit), 6912 kb/s',
    ].join('\n');
    const m = factsFromFfmpegText(text, 'x.mkv');
    expect(m.video).toMatchObject({ index: 1, codec: 'h264', pixFmt: 'yuv420p', rate: '30000/1001', durationS: 2.5 });
    expect(m.colour).toEqual({ matrix: 'bt709', primaries: 'bt709', transfer: 'bt709', range: 'tv', tagged: true });
    expect(m.geometry).toMatchObject({
      codedWidth: 720,
      codedHeight: 480,
      sar: { num: 32, den: 27 },
      rotation: 90,
      displayWidth: 480,
      displayHeight: 853,
      dar: { num: 9, den: 16 },
    });
    expect(m.audio).toEqual([
      { index: 2, codec: 'ac3', channels: 6, layout: '5.1(side)', sampleRate: 48000, startS: null, durationS: null },
      { index: 3, codec: 'pcm_s24le', channels: 3, layout: null, sampleRate: 96000, startS: null, durationS: null },
    ]);
    expect(m.container.format).toBe('matroska,webm');
    const full = factsFromFfmpegText(text.replace('yuv420p(tv, bt709, progressive)', 'yuv420p(pc)'), 'x.mkv');
    expect(full.colour).toEqual({ matrix: null, primaries: null, transfer: null, range: 'pc', tagged: true });
  });
});

describe('bad input', () => {
  it('a file without video, and junk, fail with ERR_PROBE naming the file', async () => {
    ff(...sine(1), file('audio-only.m4a'));
    await writeFile(file('junk.mp4'), Buffer.alloc(4096, 7));
    for (const n of ['audio-only.m4a', 'junk.mp4']) {
      for (const options of [{}, { timeline: true }, { ffprobe: crashing }]) {
        const err = await probeMedia(file(n), options).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ClipstreamError);
        expect((err as ClipstreamError).code).toBe('ERR_PROBE');
        expect((err as ClipstreamError).message).toContain(file(n));
      }
    }
    expect(((await probeMedia(file('audio-only.m4a')).catch((e: Error) => e)) as Error).message).toMatch(/no video stream/);
  });
});

describe('encoders keep colour and aspect (outputTagArgs, setsarFilter) through libx264', () => {
  /** Colour and SAR as the H.264 bitstream's VUI says them (an Annex B stream has nothing else), and as the mp4 says them. */
  const tagsOf = async (mp4: string) => {
    const h264 = `${mp4}.h264`;
    ff('-i', mp4, '-map', '0:v:0', '-c', 'copy', '-bsf:v', 'h264_mp4toannexb', '-f', 'h264', h264);
    const inMp4 = await probeMedia(mp4);
    const args = ['-v', 'error', '-show_entries', 'stream=color_space,color_primaries,color_transfer,color_range,sample_aspect_ratio', '-of', 'json', h264];
    const v = (JSON.parse(execFileSync(ffprobePath(), args).toString()) as { streams: Record<string, string>[] }).streams[0]!;
    const tag = (x: string | undefined) => (x === undefined || x === 'unknown' ? null : x);
    const colour = { matrix: tag(v.color_space), primaries: tag(v.color_primaries), transfer: tag(v.color_transfer), range: tag(v.color_range) };
    return {
      mp4: { colour: inMp4.colour, sar: inMp4.geometry.sar, dar: inMp4.geometry.dar },
      vui: { colour: { ...colour, tagged: Object.values(colour).some((x) => x !== null) }, sar: parseSar(v.sample_aspect_ratio) },
    };
  };

  // Frames that lost their tags (raw frames through a pipe, as segments writes them): only the helpers can put them back.
  const reencode = (n: string, out: string, helpers: boolean, ffmpeg = ffmpegPath()) => {
    const m = f(n as (typeof NAMES)[number]);
    const raw = execFileSync(ffmpegPath(), ['-v', 'error', '-i', file(n), '-f', 'rawvideo', '-pix_fmt', 'yuv420p', 'pipe:1'], { maxBuffer: 1 << 30 });
    const vf = helpers ? setsarFilter(m) : null;
    const args = [
      '-hide_banner',
      '-nostdin',
      '-v',
      'error',
      '-y',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'yuv420p',
      '-s',
      `${m.geometry.codedWidth}x${m.geometry.codedHeight}`,
    ];
    args.push(
      '-r',
      '25',
      '-i',
      'pipe:0',
      ...(vf ? ['-vf', vf] : []),
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      ...(helpers ? outputTagArgs(m) : []),
      file(out),
    );
    execFileSync(ffmpeg, args, { input: raw, stdio: ['pipe', 'pipe', 'pipe'] });
  };

  it.each(['bt709.mp4', 'pq.mp4', 'sar1615.mp4'] as const)('%s keeps its tags and aspect, in the mp4 and in the VUI', async (n) => {
    reencode(n, `${n}.kept.mp4`, true);
    reencode(n, `${n}.lost.mp4`, false);
    const src = f(n);
    const kept = await tagsOf(file(`${n}.kept.mp4`));
    expect(kept.mp4).toEqual({ colour: src.colour, sar: src.geometry.sar, dar: src.geometry.dar });
    expect(kept.vui).toEqual({ colour: src.colour, sar: src.geometry.sar });
    // Without the helpers the same encode loses what the source means: the test can fail.
    const lost = await tagsOf(file(`${n}.lost.mp4`));
    expect(lost.mp4.colour.tagged && lost.mp4.sar.num !== lost.mp4.sar.den).toBe(false);
    expect(lost.mp4).not.toEqual(kept.mp4);
  });

  it('an untagged square-pixel source adds nothing: the encode is byte-identical to one without the helpers', async () => {
    expect(setsarFilter(f('plain.mp4'))).toBeNull();
    expect(squarePixelsFilter(f('plain.mp4'))).toBeNull();
    reencode('plain.mp4', 'plain.kept.mp4', true);
    reencode('plain.mp4', 'plain.lost.mp4', false);
    const [a, b] = [file('plain.kept.mp4'), file('plain.lost.mp4')].map((p) => execFileSync('md5sum', [p]).toString().split(' ')[0]);
    expect(a).toBe(b);
  });

  it('RGB frames re-encoded with rgbToYuvFilter and the tags decode to the same pixels; tagged alone, they do not', () => {
    const m = f('bt709.mp4');
    expect(rgbToYuvFilter(m)).toBe('scale=out_color_matrix=bt709:out_range=tv');
    expect(rgbToYuvFilter(f('plain.mp4'))).toBeNull();
    const rgb = (p: string) => execFileSync(ffmpegPath(), ['-v', 'error', '-i', p, '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 28 });
    const ref = rgb(file('bt709.mp4'));
    const meanDiff = (vf: string | null) => {
      const out = file(`bt709.rgb-${vf ? 'converted' : 'tagged-only'}.mp4`);
      const args = ['-hide_banner', '-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', '64x48', '-r', '25', '-i', 'pipe:0'];
      args.push(...(vf ? ['-vf', vf] : []), '-c:v', 'libx264', '-qp', '0', '-pix_fmt', 'yuv444p', ...outputTagArgs(m), out);
      execFileSync(ffmpegPath(), args, { input: ref });
      const back = rgb(out);
      let sum = 0;
      for (let i = 0; i < ref.length; i++) sum += Math.abs(ref[i]! - back[i]!);
      return sum / ref.length;
    };
    // 4:4:4 at qp 0, so only the matrix can make a difference.
    const [converted, taggedOnly] = [meanDiff(rgbToYuvFilter(m)), meanDiff(null)];
    console.log(`RGB round trip through a BT.709-tagged encode: mean |diff| ${converted.toFixed(2)} with rgbToYuvFilter, ${taggedOnly.toFixed(2)} tagged only`);
    expect(converted).toBeLessThan(1);
    expect(taggedOnly).toBeGreaterThan(3);
  });

  it('setsar after autorotation is the inverse SAR; square pixels at the display size', () => {
    const m = f('sar1615.mp4');
    expect(squarePixelsFilter(m)).toBe('scale=768:576,setsar=1');
    const turned = { geometry: { ...m.geometry, rotation: 90 as const, displayWidth: 576, displayHeight: 768 } };
    expect(setsarFilter(turned)).toBe('setsar=15/16');
    expect(setsarFilter(turned, { autorotate: false })).toBe('setsar=16/15');
    expect(squarePixelsFilter(turned)).toBe('scale=576:768,setsar=1');
  });

  // The 2018 static build drops the tags on any re-encode (Debian's 5.1 keeps them from decoded frames); with the helpers both keep them.
  const bundled = (() => {
    try {
      const p = (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
      return existsSync(p) ? p : null;
    } catch {
      return null;
    }
  })();
  it.skipIf(!bundled)('the same through the bundled 2018 ffmpeg', async () => {
    reencode('bt709.mp4', 'bt709.bundled.mp4', true, bundled!);
    reencode('sar1615.mp4', 'sar1615.bundled.mp4', true, bundled!);
    expect((await tagsOf(file('bt709.bundled.mp4'))).vui.colour).toEqual(f('bt709.mp4').colour);
    expect((await tagsOf(file('sar1615.bundled.mp4'))).vui.sar).toEqual({ num: 16, den: 15 });
  });
});
