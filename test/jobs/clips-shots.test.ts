import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffmpegPath } from '../../src/media/ffmpeg-path.js';
import { parseCsvLines } from '../../src/util/csv.js';
import { runCli } from '../helpers/run-cli.js';

// Truth: the recipes. `cuts`: three lavfi sources of 2 s at 25 fps joined (hard cuts at frames 50 and
// 100, 150 frames). `fade`: two sources of 2 s, the first fading out over its last 0.6 s and the
// second fading in over its first 0.6 s (one fade around frame 50, 100 frames).
const tmp = mkdtempSync(join(tmpdir(), 'clips-shots-'));
const videos = join(tmp, 'videos');
const log = join(tmp, 'ffmpeg.log');
const wrapper = join(tmp, 'ffmpeg.sh');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const table = (file: string) => parseCsvLines(readFileSync(file, 'utf8'), { file }).map((l) => l.row);
/** The detection decodes the wrapper ffmpeg ran (shotDecodeArgs: rgb24 scaled by fast_bilinear, every frame, to stdout), by source file. */
const detections = () =>
  readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.includes('flags=fast_bilinear+full_chroma_int,format=rgb24 -vsync 0 -f rawvideo -pix_fmt rgb24 pipe:1'))
    .map((l) => /videos\/(\w+)\.mp4/.exec(l)?.[1]);

beforeAll(() => {
  mkdirSync(videos);
  const src = (s: string) => ['-f', 'lavfi', '-i', `${s}=size=320x180:rate=25:duration=2`];
  const enc = ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p'];
  execFileSync(ffmpegPath(), [
    '-v',
    'error',
    ...src('testsrc2'),
    ...src('smptebars'),
    ...src('rgbtestsrc'),
    '-filter_complex',
    '[0][1][2]concat=n=3:v=1:a=0',
    ...enc,
    join(videos, 'cuts.mp4'),
  ]);
  execFileSync(ffmpegPath(), [
    '-v',
    'error',
    ...src('smptebars'),
    ...src('testsrc2'),
    '-filter_complex',
    '[0]fade=t=out:st=1.4:d=0.6[a];[1]fade=t=in:st=0:d=0.6[b];[a][b]concat=n=2:v=1:a=0',
    ...enc,
    join(videos, 'fade.mp4'),
  ]);
  writeFileSync(wrapper, `#!/bin/sh\necho "$@" >> '${log}'\nexec '${ffmpegPath()}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  writeFileSync(log, '');
}, 60_000);

describe('clips --split=shots', () => {
  it('cuts on the shots, writes shots.csv, and a rerun (rank 0, then all) detects only what is not recorded', () => {
    const out = join(tmp, 'out');
    const args = ['clips', `--sources=${videos}`, `--out_dir=${out}`, '--split=shots', `--ffmpeg_path=${wrapper}`, '--quiet', '--tables_every_s=0'];
    // Rank 0 of 2 takes one of the two videos.
    const first = runCli([...args, '--rank=0', '--world=2']);
    expect(first.code, first.stderr).toBe(0);
    const firstDetected = detections();
    expect(firstDetected.length).toBe(1);
    writeFileSync(log, '');
    const all = runCli(args);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stderr).toContain(join(out, 'shots.csv'));
    // Only the other video was detected: the first one's shots came from its record.
    expect(detections()).toEqual(['cuts', 'fade'].filter((v) => v !== firstDetected[0]));

    const shots = table(join(out, 'shots.csv'));
    expect(Object.keys(shots[0]!)).toEqual(['video_id', 'shot', 'start_frame', 'end_frame', 'start_s', 'end_s', 'score', 'kind']);
    const cuts = shots.filter((s) => s.video_id === 'cuts').map((s) => [s.start_frame, s.end_frame, s.kind]);
    expect(cuts).toEqual([
      ['0', '50', 'start'],
      ['50', '100', 'cut'],
      ['100', '150', 'cut'],
    ]);
    const fade = shots.filter((s) => s.video_id === 'fade');
    expect(fade.length).toBe(2);
    expect(fade[1]!.kind).toBe('fade');
    const at = Number(fade[1]!.start_frame);
    expect(at >= 35 && at < 65).toBe(true); // inside the fade out (from frame 35) and in (to frame 65)
    expect(fade[1]!.start_s).toBe(String(at / 25));

    // The clips are the shots, cut by the existing frame-accurate cutter.
    const clips = table(join(out, 'clips.csv'));
    expect(clips.map((c) => [c.video_id, c.start_frame, c.end_frame, c.num_frames])).toEqual([
      ['cuts', '0', '50', '50'],
      ['cuts', '50', '100', '50'],
      ['cuts', '100', '150', '50'],
      ['fade', '0', String(at), String(at)],
      ['fade', String(at), '100', String(100 - at)],
    ]);
    const frames = execFileSync('/usr/bin/ffprobe', [
      '-v',
      'error',
      '-count_frames',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=nb_read_frames',
      '-of',
      'csv=p=0',
      join(out, 'clips', 'cuts_50_100.mp4'),
    ]).toString();
    expect(Number(frames)).toBe(50);
  }, 180_000);

  it('plans clips from shots: trim, min length, max length by stride or truncate', () => {
    const out = join(tmp, 'out2');
    const r = runCli([
      'clips',
      `--sources=${videos}`,
      `--out_dir=${out}`,
      '--split=shots',
      '--no_shot_fades',
      '--trim_s=0.2',
      '--max_clip_length_s=0.8',
      '--max_length_mode=truncate',
      '--min_clip_length_s=1',
      '--quiet',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const clips = table(join(out, 'clips.csv')).filter((c) => c.video_id === 'cuts');
    // Each 2 s shot loses 0.2 s (5 frames) at each end: 1.6 s left (>= 1 s), truncated to 0.8 s (20 frames).
    expect(clips.map((c) => [c.start_frame, c.end_frame])).toEqual([
      ['5', '25'],
      ['55', '75'],
      ['105', '125'],
    ]);
    const stride = join(tmp, 'out3');
    const s = runCli([
      'clips',
      `--sources=${videos}`,
      `--out_dir=${stride}`,
      '--split=shots',
      '--trim_s=0.2',
      '--max_clip_length_s=0.72',
      '--min_clip_length_s=0.3',
      '--quiet',
    ]);
    expect(s.code, s.stderr).toBe(0);
    // 1.6 s (frames 5-45) in pieces of 0.72 s (18 frames): 5-23, 23-41, and 41-45 (0.16 s, shorter than 0.3 s: not made).
    expect(
      table(join(stride, 'clips.csv'))
        .filter((c) => c.video_id === 'cuts' && Number(c.start_frame) < 50)
        .map((c) => [c.start_frame, c.end_frame]),
    ).toEqual([
      ['5', '23'],
      ['23', '41'],
    ]);
  }, 180_000);

  it('refuses what cannot work, naming the flag', () => {
    const r = runCli(['clips', `--sources=${videos}`, `--out_dir=${join(tmp, 'bad')}`, '--split=shots', '--shot_detector=magic']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--shot_detector/);
    const both = runCli(['clips', `--sources=${videos}`, `--out_dir=${join(tmp, 'bad')}`, '--split=shots', '--clip_len_s=2']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/--split/);
    // transnetv2 without its model is refused before any video is touched, naming the flag and the command.
    const t = runCli(['clips', `--sources=${videos}`, `--out_dir=${join(tmp, 'tn')}`, '--split=shots', '--shot_detector=transnetv2', '--quiet']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--shot_model/);
    expect(t.stderr).toMatch(/models build --arch=transnetv2/);
    expect(existsSync(join(tmp, 'tn', 'videos.csv'))).toBe(false);
  }, 120_000);

  it('transnetv2: a model built by `models build` cuts through the same job (seeded weights: the shots are whatever it predicts)', () => {
    const model = join(tmp, 'transnetv2_small.onnx');
    const built = runCli(['models', 'build', '--arch=transnetv2', '--width=small', '--seed=3', `--out=${model}`]);
    expect(built.code, built.stderr).toBe(0);
    const out = join(tmp, 'tn2');
    const r = runCli(['clips', `--sources=${videos}`, `--out_dir=${out}`, '--split=shots', '--shot_detector=transnetv2', `--shot_model=${model}`, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const videosRows = table(join(out, 'videos.csv'));
    expect(videosRows.map((v) => v.failed)).toEqual(['false', 'false']);
    // Every video's shots tile its frames: the first starts at 0, each starts where the one before ended.
    const shots = table(join(out, 'shots.csv'));
    for (const id of new Set(shots.map((s) => s.video_id))) {
      const mine = shots.filter((s) => s.video_id === id);
      expect(mine[0]!.start_frame).toBe('0');
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.start_frame).toBe(mine[i - 1]!.end_frame);
    }
    expect(new Set(shots.map((s) => s.video_id)).size).toBe(2);
  }, 180_000);
});
