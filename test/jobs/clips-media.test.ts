/**
 * The clips job on media classes crossed with each other (issue 18): same stem in two
 * containers, timestamps that restart or jump, colour tags and sample aspect ratios. Every
 * written clip is checked with ffprobe: its frames, its audio length, its tags.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clips } from '../../src/jobs/clips.js';
import { ffprobePath } from '../../src/media/ffmpeg-path.js';
import { parseCsv } from '../../src/util/csv.js';
import { frameHashes, makeSource } from '../helpers/clip-sources.js';

const run = promisify(execFile);

/** The 2018 static ffmpeg of @ffmpeg-installer, when it is installed: the last fallback, which tags nothing by itself. */
const bundled = (() => {
  try {
    return (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return null;
  }
})();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clips-media-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Video frames (counted by decoding) and audio seconds (from its decoded samples) of a clip. */
async function clipFacts(file: string): Promise<{ frames: number; audioS: number | null; videoS: number }> {
  const { stdout } = await run(ffprobePath(), [
    '-v',
    'error',
    '-count_frames',
    '-show_entries',
    'stream=codec_type,nb_read_frames,duration,sample_rate:format=duration',
    '-of',
    'json',
    file,
  ]);
  const streams = (JSON.parse(stdout) as { streams: Record<string, string>[] }).streams;
  const v = streams.find((s) => s.codec_type === 'video')!;
  const a = streams.find((s) => s.codec_type === 'audio');
  return { frames: Number(v.nb_read_frames), videoS: Number(v.duration), audioS: a ? Number(a.duration) : null };
}

const quiet = { onWarning: () => {}, crf: 0, preset: 'ultrafast', tablesEveryS: 0 };

describe('same stem in two containers', () => {
  it('dup.mp4 and dup.mkv are two videos, each in videos.csv with its own clips', async () => {
    const src = join(dir, 'stems');
    await mkdir(src);
    await makeSource(join(src, 'dup.mp4'), { seconds: 3, fps: 10, audioHz: 440 });
    await makeSource(join(src, 'dup.mkv'), { seconds: 2, fps: 10, audioHz: 880, size: '128x96' });
    await makeSource(join(src, 'other.mp4'), { seconds: 1, fps: 10 });
    const warnings: string[] = [];
    const out = join(dir, 'stems-out');
    await clips({ ...quiet, sources: src, outputDir: out, clipLenS: 1, onWarning: (w) => warnings.push(w.message) });
    const videos = parseCsv(await readFile(join(out, 'videos.csv'), 'utf8'));
    expect(videos.map((v) => [v.video_id, v.failed, v.num_clips, v.duration])).toEqual([
      ['dup.mkv', 'false', '2', '2'],
      ['dup.mp4', 'false', '3', '3'],
      ['other', 'false', '1', '1'],
    ]);
    expect(warnings).toEqual([]);
    const rows = parseCsv(await readFile(join(out, 'clips.csv'), 'utf8'));
    expect(rows.map((r) => [r.clip_id, r.filename, r.width])).toEqual([
      ['dup.mkv_0_10', 'dup-mkv_0_10.mp4', '128'],
      ['dup.mkv_10_20', 'dup-mkv_10_20.mp4', '128'],
      ['dup.mp4_0_10', 'dup-mp4_0_10.mp4', '160'],
      ['dup.mp4_10_20', 'dup-mp4_10_20.mp4', '160'],
      ['dup.mp4_20_30', 'dup-mp4_20_30.mp4', '160'],
      ['other_0_10', 'other_0_10.mp4', '160'],
    ]);
    for (const r of rows) expect((await clipFacts(join(out, 'clips', r.filename!))).frames).toBe(10);
  });
});

const TAGS = 'stream=color_space,color_primaries,color_transfer,color_range,sample_aspect_ratio,display_aspect_ratio';

/** The colour tags and aspect of the first video stream, as ffprobe reports them. */
async function looks(file: string): Promise<Record<string, string>> {
  const { stdout } = await run(ffprobePath(), ['-v', 'error', '-select_streams', 'v:0', '-show_entries', TAGS, '-of', 'json', file]);
  const s = (JSON.parse(stdout) as { streams: Record<string, string>[] }).streams[0]!;
  const pick = (k: string) => (s[k] === undefined || s[k] === 'unknown' ? '' : s[k]);
  return {
    color_space: pick('color_space'),
    color_primaries: pick('color_primaries'),
    color_transfer: pick('color_transfer'),
    color_range: pick('color_range'),
    sample_aspect_ratio: s.sample_aspect_ratio ?? '1:1',
    display_aspect_ratio: s.display_aspect_ratio ?? '',
  };
}

describe('colour tags and sample aspect ratio', () => {
  const src = () => join(dir, 'looks');
  const ffmpeg = process.env.FFMPEG_PATH ?? 'ffmpeg';
  const make = (name: string, size: string, args: string[]) =>
    run(ffmpeg, [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      `testsrc=size=${size}:rate=10:duration=1`,
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=44100:duration=1',
      '-c:a',
      'aac',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '7',
      ...args,
      join(src(), name),
    ]);
  beforeAll(async () => {
    await mkdir(src(), { recursive: true });
    await make('bt709.mp4', '160x120', ['-pix_fmt', 'yuv420p', '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709']);
    await make('pq.mkv', '160x120', ['-pix_fmt', 'yuv420p10le', '-colorspace', 'bt2020nc', '-color_primaries', 'bt2020', '-color_trc', 'smpte2084']);
    await make('full.mp4', '160x120', ['-pix_fmt', 'yuv420p', '-color_range', 'pc']);
    await make('sar.mp4', '720x576', ['-pix_fmt', 'yuv420p', '-vf', 'setsar=16/15']);
    await make('plain.mp4', '160x120', ['-pix_fmt', 'yuv420p']);
    // RGB (matrix 'gbr', full range): clips are converted to YUV, so only primaries and transfer can be kept.
    await make('rgb.mkv', '160x120', ['-c:v', 'ffv1', '-pix_fmt', 'bgr0', '-color_primaries', 'bt709', '-color_trc', 'bt709']);
  });

  // libx264 one pass (from frame 0 and by seeking), per clip, libx265, and the bundled ffmpeg
  // where it is installed; every clip also goes through the audio remux (the video stream copied).
  const routes: [string, Record<string, unknown>][] = [
    ['libx264 one pass', { encoder: 'libx264', numClipsPerChunk: 1 }],
    ['libx264 per clip', { encoder: 'libx264', mode: 'per-clip' }],
    ['libx265', { encoder: 'libx265' }],
    ['libx264 without audio', { encoder: 'libx264', ignoreAudio: true }],
    ...(bundled ? [['bundled ffmpeg', { encoder: 'libx264', ffmpegPath: bundled }] as [string, Record<string, unknown>]] : []),
  ];
  it.each(routes)('%s: every clip carries its source colour tags and aspect', async (name, extra) => {
    const out = join(dir, `looks-${name.replace(/ /g, '-')}`);
    const report = await clips({ ...quiet, sources: src(), outputDir: out, clipLenS: 0.5, ...extra });
    expect(report.videos.map((v) => [v.video_id, v.failed, v.num_clips])).toEqual(['bt709', 'full', 'plain', 'pq', 'rgb', 'sar'].map((id) => [id, false, 2]));
    for (const c of report.clips) {
      const source = await looks(c.source);
      const clip = await looks(join(out, 'clips', c.filename));
      if (source.color_range === '' && extra.encoder === 'libx265') source.color_range = 'tv'; // x265 always writes a range (it did before too)
      if (c.video_id === 'rgb') {
        expect([source.color_space, source.color_range]).toEqual(['gbr', 'pc']);
        // The clip's matrix and range are the conversion's (as before this fix), not the source's.
        Object.assign(source, {
          color_space: clip.color_space === 'gbr' ? 'not gbr' : clip.color_space,
          color_range: clip.color_range === 'pc' ? 'not pc' : clip.color_range,
        });
      }
      expect({ clip: c.clip_id, ...clip }).toEqual({ clip: c.clip_id, ...source });
      const facts = await clipFacts(join(out, 'clips', c.filename));
      expect([facts.frames, facts.audioS]).toEqual([5, extra.ignoreAudio ? null : expect.closeTo(0.5, 1)]);
    }
    if (extra.encoder === 'libx264') {
      // Full range kept as full range: a lossless clip decodes to the source's own pixels.
      const src0 = await frameHashes(join(src(), 'full.mp4'));
      expect(await frameHashes(join(out, 'clips', 'full_5_10.mp4'))).toEqual(src0.slice(5, 10));
    }
  });
});

/** Mean volume (dB) of a file's audio through a band-pass at `hz`: which of two tones a clip holds. */
async function toneDb(file: string, hz: number): Promise<number> {
  const { stderr } = await run(process.env.FFMPEG_PATH ?? 'ffmpeg', [
    '-hide_banner',
    '-nostdin',
    '-i',
    file,
    '-vn',
    '-af',
    `bandpass=f=${hz}:w=100,volumedetect`,
    '-f',
    'null',
    '-',
  ]);
  return Number(/mean_volume: (-?[\d.]+) dB/.exec(stderr)?.[1] ?? -100);
}

describe('timestamps that restart or jump', () => {
  const src = () => join(dir, 'timeline');
  const ffmpeg = process.env.FFMPEG_PATH ?? 'ffmpeg';
  const part = (out: string, hz: number, extra: string[] = []) =>
    run(ffmpeg, [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=160x120:rate=25:duration=2',
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=${hz}:sample_rate=44100:duration=2`,
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '25',
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      '-ac',
      '2',
      ...extra,
      out,
    ]);
  beforeAll(async () => {
    await mkdir(src(), { recursive: true });
    // Two MPEG-TS joined with cat, as recorders and HLS downloads make: the second restarts at 1.4 s.
    await part(join(dir, 'p1.ts'), 440);
    await part(join(dir, 'p2.ts'), 880);
    const { stdout: a } = await run('cat', [join(dir, 'p1.ts'), join(dir, 'p2.ts')], { encoding: 'buffer', maxBuffer: 1 << 26 });
    await writeFile(join(src(), 'reset.ts'), a);
    // 2 s of 440 Hz, nothing for 30 s, 2 s of 880 Hz: one Matroska file with a 30 s hole in both streams.
    await run(ffmpeg, [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'testsrc=size=160x120:rate=25:duration=34',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:sample_rate=44100:duration=2',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=880:sample_rate=44100:duration=2',
      '-filter_complex',
      "[0:v]select='not(between(t,2,31.99))'[v];[2:a]adelay=32s:all=1[late];[1:a][late]concat=n=2:v=0:a=1,aselect='not(between(t,2,31.99))'[a]",
      '-map',
      '[v]',
      '-map',
      '[a]',
      '-vsync',
      'passthrough',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '25',
      '-pix_fmt',
      'yuv420p',
      '-c:a',
      'aac',
      '-ac',
      '2',
      join(src(), 'gap.mkv'),
    ]);
  });

  const routes: [string, Record<string, unknown>][] = [
    ['one pass', {}],
    ['per clip', { mode: 'per-clip' }],
    ...(bundled ? [['bundled ffmpeg', { ffmpegPath: bundled }] as [string, Record<string, unknown>]] : []),
  ];
  it.each(routes)(
    '%s: every clip has as much audio as video, each from its own part; videos.csv has the content duration; a clip across a break is split and reported',
    async (name, extra) => {
      const out = join(dir, `timeline-${name.replace(/ /g, '-')}`);
      await writeFile(join(src(), 'list.csv'), 'path\ngap.mkv\nreset.ts\n');
      const report = await clips({ ...quiet, sources: join(src(), 'list.csv'), outputDir: out, clipLenS: 1.5, ...extra });
      const videos = parseCsv(await readFile(join(out, 'videos.csv'), 'utf8'));
      expect(videos.map((v) => [v.video_id, v.failed, v.duration])).toEqual([
        ['gap', 'false', '4'],
        ['reset', 'false', '4'],
      ]);
      const rows = parseCsv(await readFile(join(out, 'clips.csv'), 'utf8'));
      // 1.5 s clips over 4 s of content: the one across the break (1.5-3 s) is split at it (frame 50).
      const want = (id: string) => [`${id}_0_38`, `${id}_38_50`, `${id}_50_75`, `${id}_75_100`];
      expect(rows.map((r) => r.clip_id)).toEqual([...want('gap'), ...want('reset')]);
      expect(rows.map((r) => [r.start_s, r.end_s]).slice(0, 4)).toEqual([
        ['0', '1.52'],
        ['1.52', '2'],
        ['2', '3'],
        ['3', '4'],
      ]);
      for (const r of rows) {
        const file = join(out, 'clips', r.filename!);
        const f = await clipFacts(file);
        const seconds = Number(r.end_s) - Number(r.start_s);
        expect({ clip: r.clip_id, frames: f.frames, audio: Math.abs(f.audioS! - seconds) < 0.03 }).toEqual({
          clip: r.clip_id,
          frames: Number(r.num_frames),
          audio: true,
        });
        expect(Math.abs(f.frames * 0.04 - seconds)).toBeLessThan(1e-6);
        // The first part's tone is 440 Hz, the second's 880 Hz: each clip's audio is from its own part.
        const second = Number(r.start_frame) >= 50;
        const [lo, hi] = [await toneDb(file, 440), await toneDb(file, 880)];
        expect({ clip: r.clip_id, louder: lo > hi ? 440 : 880 }).toEqual({ clip: r.clip_id, louder: second ? 880 : 440 });
      }
      const issues = parseCsv(await readFile(join(out, 'span_issues.csv'), 'utf8'));
      expect(issues.map((i) => [i.video_id, i.span, i.action])).toEqual([
        ['gap', '1.5-3 s', 'split'],
        ['reset', '1.5-3 s', 'split'],
      ]);
      expect(issues[0]!.reason).toMatch(/gap/);
      expect(issues[1]!.reason).toMatch(/restart/);
      expect(report.issues).toHaveLength(2);
      if (name === 'one pass') {
        // A rerun finds every clip (each epoch's audio is not needed again) and writes the same tables.
        const again = await clips({ ...quiet, sources: join(src(), 'list.csv'), outputDir: out, clipLenS: 1.5, ...extra });
        expect([again.clipsMade, again.clips.length]).toEqual([0, 8]);
        expect(parseCsv(await readFile(join(out, 'clips.csv'), 'utf8'))).toEqual(rows);
      }
    },
  );
});
