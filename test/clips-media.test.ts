/**
 * The clips job on media classes crossed with each other (issue 18): same stem in two
 * containers, timestamps that restart or jump, colour tags and sample aspect ratios. Every
 * written clip is checked with ffprobe: its frames, its audio length, its tags.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clips } from '../src/jobs/clips.js';
import { ffprobePath } from '../src/media/ffmpeg-path.js';
import { parseCsv } from '../src/util/csv.js';
import { makeSource } from './helpers/clip-sources.js';

const run = promisify(execFile);

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
