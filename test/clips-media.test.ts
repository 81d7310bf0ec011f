/**
 * The clips job on media classes crossed with each other (issue 18): same stem in two
 * containers, timestamps that restart or jump, colour tags and sample aspect ratios. Every
 * written clip is checked with ffprobe: its frames, its audio length, its tags.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clips } from '../src/jobs/clips.js';
import { ffprobePath } from '../src/media/ffmpeg-path.js';
import { parseCsv } from '../src/util/csv.js';
import { frameHashes, makeSource } from './helpers/clip-sources.js';

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
    await clips({ ...quiet, sources: src, outDir: out, clipLenS: 1, onWarning: (w) => warnings.push(w.message) });
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
  });

  // libx264 one pass (from frame 0 and by seeking), per clip, libx265, and the bundled ffmpeg
  // where it is installed; every clip also goes through the audio remux (the video stream copied).
  const routes: [string, Record<string, unknown>][] = [
    ['libx264 one pass', { encoder: 'libx264', numClipsPerChunk: 1 }],
    ['libx264 per clip', { encoder: 'libx264', mode: 'per-clip' }],
    ['libx265', { encoder: 'libx265' }],
    ...(bundled ? [['bundled ffmpeg', { encoder: 'libx264', ffmpegPath: bundled }] as [string, Record<string, unknown>]] : []),
  ];
  it.each(routes)('%s: every clip carries its source colour tags and aspect', async (name, extra) => {
    const out = join(dir, `looks-${name.replace(/ /g, '-')}`);
    const report = await clips({ ...quiet, sources: src(), outDir: out, clipLenS: 0.5, ...extra });
    expect(report.videos.map((v) => [v.video_id, v.failed, v.num_clips])).toEqual(['bt709', 'full', 'plain', 'pq', 'sar'].map((id) => [id, false, 2]));
    for (const c of report.clips) {
      const source = await looks(c.source);
      const clip = await looks(join(out, 'clips', c.filename));
      if (source.color_range === '' && extra.encoder === 'libx265') source.color_range = 'tv'; // x265 always writes a range (it did before too)
      expect({ clip: c.clip_id, ...clip }).toEqual({ clip: c.clip_id, ...source });
      const facts = await clipFacts(join(out, 'clips', c.filename));
      expect([facts.frames, facts.audioS]).toEqual([5, expect.closeTo(0.5, 1)]);
    }
    if (extra.encoder === 'libx264') {
      // Full range kept as full range: a lossless clip decodes to the source's own pixels.
      const src0 = await frameHashes(join(src(), 'full.mp4'));
      expect(await frameHashes(join(out, 'clips', 'full_5_10.mp4'))).toEqual(src0.slice(5, 10));
    }
  });
});
