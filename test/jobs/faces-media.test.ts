import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticVideo } from '../../scripts/make-face-fixtures.js';
import { croppedFrames } from '../../src/faces/clip-writer.js';
import { trackCrop } from '../../src/faces/crops.js';
import { openFrameStore } from '../../src/faces/lmdb-store.js';
import { assignKeys } from '../../src/media/video-folder.js';
import { stagingPath } from '../../src/faces/staging.js';
import { gapTrajectory, renderFace, SYNTHETIC_VIDEOS } from '../../src/faces/synthetic.js';
import { faces, type FacesOptions } from '../../src/jobs/faces.js';
import { STATE_FILE } from '../../src/faces/record.js';
import { ffmpegPath, ffprobePath } from '../../src/media/ffmpeg-path.js';
import { liveChildProcesses, runTool } from '../../src/media/process.js';
import { runCli } from '../helpers/run-cli.js';
import { rawRgbInputArgs } from '../../src/media/raw-video.js';

const PY = '/usr/bin/python3';
const gap = SYNTHETIC_VIDEOS.find((s) => s.name === 'face_gap')!;
let dir: string;
const base: Partial<FacesOptions> = { detector: 'models/face_detector_synthetic.onnx', device: 'cpu', intraOpThreads: 1, size: 64, audio: 'none' };

/**
 * The face_gap video as displayed (W×H, face upright on gapTrajectory), stored rotated:
 * `vf` turns the displayed frames into the coded ones and `rotate` tells players to turn them back.
 */
async function writeRotated(out: string, width: number, height: number, vf: string, rotate: number): Promise<void> {
  const fps = 25;
  const n = 100;
  const raw = new Uint8Array(n * width * height * 3);
  for (let k = 0; k < n; k++) renderFace(width, height, gapTrajectory(k / fps), raw.subarray(k * width * height * 3, (k + 1) * width * height * 3));
  const r = await runTool(
    ffmpegPath(),
    [
      '-v',
      'error',
      '-y',
      ...rawRgbInputArgs(width, height, fps),
      '-vf',
      vf,
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-crf',
      '16',
      '-pix_fmt',
      'yuv420p',
      `${out}.coded.mp4`,
    ],
    { input: raw },
  );
  expect(r.code).toBe(0);
  // The bundled ffmpeg drops the tag when encoding; a remux keeps it (as a display matrix).
  const m = await runTool(ffmpegPath(), ['-v', 'error', '-y', '-i', `${out}.coded.mp4`, '-c', 'copy', '-metadata:s:v:0', `rotate=${rotate}`, out]);
  expect(m.code).toBe(0);
  await rm(`${out}.coded.mp4`);
  // What players read: the display matrix turns the coded frame by this many degrees counter-clockwise.
  const side = ffprobeJson(out, 'stream_side_data=rotation') as { streams: Array<{ side_data_list?: Array<{ rotation: number }> }> };
  expect(((side.streams[0]!.side_data_list?.[0]?.rotation ?? 0) + 360) % 360).toBe(rotate);
}

function ffprobeJson(path: string, entries: string): Record<string, unknown> {
  return JSON.parse(
    execFileSync(ffprobePath(), ['-v', 'error', '-select_streams', 'v:0', '-show_entries', entries, '-of', 'json', path], { encoding: 'utf8' }),
  ) as Record<string, unknown>;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'faces-media-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('rotated sources (issue 9 item 7)', () => {
  it('detects on the displayed frame, crops the displayed frame around the face, reports the displayed size', async () => {
    const input = join(dir, 'rot');
    await mkdir(input, { recursive: true });
    // Displayed 240×320 (portrait); coded 320×240, turned clockwise so that the matrix turns it back.
    await writeRotated(join(input, 'r090.mp4'), 240, 320, 'transpose=1', 90);
    await writeRotated(join(input, 'r270.mp4'), 240, 320, 'transpose=2', 270);
    await writeRotated(join(input, 'r180.mp4'), 320, 240, 'hflip,vflip', 180);
    const coded = ffprobeJson(join(input, 'r090.mp4'), 'stream=width,height') as { streams: Array<{ width: number; height: number }> };
    expect(coded.streams[0]).toMatchObject({ width: 320, height: 240 });
    const report = await faces({ ...base, inputDir: input, outputDir: join(dir, 'rot-out') });
    expect(report.videos.map((v) => [v.file, v.status])).toEqual([
      ['r090.mp4', 'done'],
      ['r180.mp4', 'done'],
      ['r270.mp4', 'done'],
    ]);
    for (const name of ['r090', 'r180', 'r270']) {
      const rows = report.rows.filter((r) => r.clip_key!.toString().startsWith(name));
      // face_gap: the face is there 0–1.6 s and 2.4–4 s → two clips.
      expect(rows.map((r) => r.clip_key)).toEqual([`${name}_000`, `${name}_001`]);
      const portrait = name !== 'r180';
      expect(rows[0]).toMatchObject({
        original_width: portrait ? 240 : 320,
        original_height: portrait ? 320 : 240,
        original_resolution: portrait ? '240x320' : '320x240',
      });
      for (const r of rows) {
        // The crop is centred on the face where it is displayed (gapTrajectory: x 144–156, y 111–119).
        const cx = Number(r.crop_x) + Number(r.crop_size) / 2;
        const cy = Number(r.crop_y) + Number(r.crop_size) / 2;
        expect(Math.abs(cx - 150)).toBeLessThan(8);
        expect(Math.abs(cy - 115)).toBeLessThan(8);
        // And it holds the face, upright: face colour in the middle, dark eyes above dark mouth.
        const { data } = await sharp(await firstFrame(join(dir, 'rot-out', String(r.file_relative))))
          .raw()
          .toBuffer({ resolveWithObject: true });
        const px = (x: number, y: number) => [...data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
        expect(px(40, 34)[0]).toBeGreaterThan(px(40, 34)[2]! + 40); // cheek: skin colour
        expect(px(32, 3)[2]).toBeGreaterThan(px(32, 3)[0]! + 40); // top edge: blue background
      }
    }
  });
});

async function firstFrame(mp4: string): Promise<Buffer> {
  const r = await runTool(ffmpegPath(), ['-v', 'error', '-i', mp4, '-frames:v', '1', '-f', 'image2pipe', '-c:v', 'png', 'pipe:1']);
  expect(r.code).toBe(0);
  return r.stdout;
}

describe('same-name sources (issue 9 item 8)', () => {
  it('gives same.mp4 and same.mkv their own keys, clips, LMDB entries and one row per clip; keys stay on a rerun', async () => {
    const input = join(dir, 'same');
    await mkdir(input, { recursive: true });
    await writeSyntheticVideo(gap, join(input, 'same.mp4'));
    // Same name, other container, other content (shifted in time: the face is hidden later).
    await writeSyntheticVideo({ ...gap, trajectory: (t) => gap.trajectory(t + 0.2) }, join(input, 'same.mkv'));
    const out = join(dir, 'same-out');
    const report = await faces({ ...base, inputDir: input, outputDir: out, makeLmdb: true });
    expect(report.rows.map((r) => [r.clip_key, r.file_original])).toEqual([
      ['same_000', join(input, 'same.mkv')],
      ['same_001', join(input, 'same.mkv')],
      ['same.mp4_000', join(input, 'same.mp4')],
      ['same.mp4_001', join(input, 'same.mp4')],
    ]);
    // The mkv's first clip ends earlier (its face hides at 1.4 s): two different files.
    expect(Number(report.rows[0]!.num_frames)).toBeLessThan(Number(report.rows[2]!.num_frames));
    for (const r of report.rows) expect((await stat(join(out, String(r.file_relative)))).size).toBeGreaterThan(1000);
    const csv = (await readFile(join(out, 'metadata.csv'), 'utf8')).trim().split('\n');
    expect(csv.length).toBe(1 + 4);
    // One staging store per video (issue 12: never one LMDB environment shared by two runs).
    for (const [key, file] of [
      ['same', 'same.mkv'],
      ['same.mp4', 'same.mp4'],
    ]) {
      const store = await openFrameStore(stagingPath(out, key!));
      expect(JSON.parse(store.get(`${key}_000/meta`)!.toString())).toMatchObject({ file_original: join(input, file!) });
      await store.close();
    }

    // A rerun after a third same-named file appears: the finished ones keep their keys.
    await copyFile(join(input, 'same.mp4'), join(input, 'same.avi'));
    const again = await faces({ ...base, inputDir: input, outputDir: out, makeLmdb: true });
    expect(again.videos.map((v) => [v.file, v.status])).toEqual([
      ['same.mkv', 'skipped (done before)'],
      ['same.mp4', 'skipped (done before)'],
      ['same.avi', 'done'],
    ]);
    expect(again.rows.map((r) => r.clip_key)).toEqual(['same.avi_000', 'same.avi_001', 'same_000', 'same_001', 'same.mp4_000', 'same.mp4_001']);
  });

  it.each([
    [['same.mkv', 'same.mp4'], {}, ['same', 'same.mp4']],
    [['a.mkv', 'a.mp4', 'a.mp4.avi'], {}, ['a', 'a.mp4', 'a.mp4.avi']],
    [['x/y.mp4', 'x__y.mp4'], {}, ['x__y', 'x__y.mp4']],
    // Kept from an earlier run, even when a new file would sort first.
    [['same.avi', 'same.mp4'], { 'same.mp4': 'same' }, ['same.avi', 'same']],
    // Two old sources that shared a stem: the first keeps it.
    [['same.mkv', 'same.mp4'], { 'same.mkv': 'same', 'same.mp4': 'same' }, ['same', 'same.mp4']],
  ])('assignKeys(%j, %j) → %j', (rels, previous, keys) => {
    expect(assignKeys(rels, previous)).toEqual(keys);
  });
});

describe('bad entries and crashing tools (issue 9 items 10, 19)', () => {
  let input: string;
  beforeAll(async () => {
    input = join(dir, 'bad');
    await mkdir(input, { recursive: true });
    await writeSyntheticVideo(gap, join(input, 'good.mp4'));
    // MPEG-TS: the bundled ffprobe crashes on it (SIGSEGV).
    const ts = await runTool(ffmpegPath(), ['-v', 'error', '-y', '-i', join(input, 'good.mp4'), '-c', 'copy', '-f', 'mpegts', join(input, 'stream.ts')]);
    expect(ts.code).toBe(0);
    expect(spawnSync('mkfifo', [join(input, 'pipe.mp4')]).status).toBe(0);
  });

  it('skips a FIFO with a message instead of stalling, and finishes a real .ts whatever ffprobe does', async () => {
    const warnings: string[] = [];
    const report = await faces({ ...base, inputDir: input, outputDir: join(dir, 'bad-out'), onWarning: (w) => warnings.push(w.message) });
    expect(warnings).toContain(`${join(input, 'pipe.mp4')}: not a regular file (a FIFO); skipped`);
    expect(report.videos.map((v) => v.file)).toEqual(['good.mp4', 'stream.ts']);
    expect(report.videos[0]).toMatchObject({ status: 'done', clips: ['good_000', 'good_001'] });
    // Either the probe works on TS (a fallback route) and the clips are made, or the video is failed, named.
    const ts = report.videos[1]!;
    if (ts.status === 'failed') expect(ts.error).toContain(join(input, 'stream.ts'));
    else expect(ts).toMatchObject({ status: 'done', clips: ['stream_000', 'stream_001'] });
    const state = JSON.parse(await readFile(join(dir, 'bad-out', STATE_FILE), 'utf8')) as { videos: Record<string, unknown> };
    expect(Object.keys(state.videos).sort()).toEqual(['good.mp4', 'stream.ts']);
    expect(liveChildProcesses()).toBe(0);
  }, 30_000);

  it('fails only the item whose ffprobe is killed by a signal; the CLI records both videos', async () => {
    // Crash like the bundled ffprobe on TS, for every file named *.ts; the real tools otherwise. Both
    // ffprobe and ffmpeg crash, so the probe's fallback through ffmpeg cannot rescue the item either.
    const crashing = async (name: string, real: string) => {
      const path = join(dir, name);
      await writeFile(path, `#!/bin/sh\nfor a in "$@"; do case "$a" in *.ts) kill -SEGV $$;; esac; done\nexec '${real}' "$@"\n`);
      await chmod(path, 0o755);
      return path;
    };
    const env = { FFPROBE_PATH: await crashing('ffprobe-segv.sh', ffprobePath()), FFMPEG_PATH: await crashing('ffmpeg-segv.sh', ffmpegPath()) };
    await rm(join(input, 'pipe.mp4'));
    const out = join(dir, 'segv-out');
    const r = runCli(['faces', `--input_dir=${input}`, `--output_dir=${out}`, '--detector=synthetic', '--device=cpu', '--threads=1', '--size=64', '--quiet'], {
      env,
    });
    expect(r.stderr).toContain('SIGSEGV');
    expect(r.stderr).toContain(join(input, 'stream.ts'));
    expect(r.stderr).toContain('1 video(s) processed, 0 done before, 1 failed; 2 face clip(s)');
    expect(r.code).toBe(0);
    const state = JSON.parse(await readFile(join(out, STATE_FILE), 'utf8')) as { videos: Record<string, { status: string; error?: string }> };
    expect(state.videos['good.mp4']!.status).toBe('done');
    expect(state.videos['stream.ts']).toMatchObject({ status: 'failed' });
    expect(state.videos['stream.ts']!.error).toContain(join(input, 'stream.ts'));
    expect((await readFile(join(out, 'metadata.csv'), 'utf8')).trim().split('\n').length).toBe(3);
  }, 60_000);
});

describe('--make_lmdb on a rerun over output made without it (issue 9 item 24)', () => {
  it('processes the videos done before again so that faces.lmdb holds their clips, and says so', async () => {
    const input = join(dir, 'lmdb-in');
    await mkdir(input, { recursive: true });
    await writeSyntheticVideo(gap, join(input, 'talk.mp4'));
    const out = join(dir, 'lmdb-out');
    await faces({ ...base, inputDir: input, outputDir: out });
    // And what a run killed mid-write left behind (issue 9 item 12): removed by the next run.
    const dead = spawnSync('/bin/true').pid!;
    const junk = join(out, 'clips', `.talk_000.mp4.tmp-${dead}-0badc0de`);
    await writeFile(junk, 'half a clip');
    const warnings: string[] = [];
    const report = await faces({ ...base, inputDir: input, outputDir: out, makeLmdb: true, onWarning: (w) => warnings.push(w.message) });
    expect(warnings).toEqual([
      'faces.lmdb: 1 video(s) done before have clips missing from the store (made without --make_lmdb?); processing them again: talk.mp4',
    ]);
    expect(report.videos.map((v) => v.status)).toEqual(['done']);
    expect(report.rows.map((r) => [r.clip_key, r.lmdb_file])).toEqual([
      ['talk_000', 'faces.lmdb'],
      ['talk_001', 'faces.lmdb'],
    ]);
    const keys = execFileSync(
      PY,
      [
        '-c',
        'import lmdb,sys\nenv=lmdb.open(sys.argv[1],readonly=True,lock=False)\nprint(sum(1 for k,_ in env.begin().cursor() if k.endswith(b"/meta")))',
        join(out, 'faces.lmdb'),
      ],
      { encoding: 'utf8' },
    );
    expect(Number(keys)).toBe(2);
    await expect(stat(junk)).rejects.toThrow('ENOENT');
    // A third run has everything: nothing is redone.
    const third = await faces({ ...base, inputDir: input, outputDir: out, makeLmdb: true, onWarning: (w) => warnings.push(w.message) });
    expect(third.videos.map((v) => v.status)).toEqual(['skipped (done before)']);
    expect(warnings.length).toBe(1);
  });
});

describe('cutting a face clip by seeking (issue 10 item 9)', () => {
  it('gives exactly the frames decoding from frame 0 gives, late in a video with B-frames and long GOPs', async () => {
    const src = join(dir, 'gop.mp4');
    const n = 250;
    const raw = new Uint8Array(n * 320 * 240 * 3);
    for (let k = 0; k < n; k++) renderFace(320, 240, { cx: 60 + k * 0.8, cy: 120 }, raw.subarray(k * 320 * 240 * 3, (k + 1) * 320 * 240 * 3));
    const enc = await runTool(
      ffmpegPath(),
      ['-v', 'error', '-y', ...rawRgbInputArgs(320, 240, '25'), '-c:v', 'libx264', '-bf', '3', '-g', '120', '-crf', '20', '-pix_fmt', 'yuv420p', src],
      { input: raw },
    );
    expect(enc.code).toBe(0);
    const crop = trackCrop([{ x1: 150, y1: 90, x2: 200, y2: 150 }], 320, 240, { enlarge: 1.4 });
    const first = 173;
    const count = 30;
    const got: Buffer[] = [];
    for await (const f of croppedFrames(ffmpegPath(), src, { startTime: first / 25, count, fps: 25, crop, size: 64 })) got.push(Buffer.from(f));
    // Reference: decode from frame 0 and pick the frames by number.
    const { x, y, width, height } = crop.inner;
    const ref = await runTool(ffmpegPath(), [
      '-v',
      'error',
      '-i',
      src,
      '-vf',
      `select='between(n\\,${first}\\,${first + count - 1})',format=rgb24,crop=${width}:${height}:${x}:${y}`,
      '-vsync',
      '0',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      'pipe:1',
    ]);
    const bytes = width * height * 3;
    expect(ref.stdout.length).toBe(count * bytes);
    expect(got.length).toBe(count);
    for (let i = 0; i < count; i++) {
      const inner = ref.stdout.subarray(i * bytes, (i + 1) * bytes);
      const square = await sharp(inner, { raw: { width, height, channels: 3 } })
        .resize(64, 64, { kernel: 'lanczos3', fit: 'fill' })
        .raw()
        .toBuffer();
      expect(Buffer.compare(got[i]!, square)).toBe(0);
    }
    // Past the end of the video: an error naming the file, not a short clip.
    const late = async () => {
      for await (const _ of croppedFrames(ffmpegPath(), src, { startTime: 240 / 25, count: 20, fps: 25, crop, size: 64 }));
    };
    await expect(late()).rejects.toThrow(`${src}: a face clip from 9.600 s should have 20 frames but ffmpeg decoded 10`);
  });
});
