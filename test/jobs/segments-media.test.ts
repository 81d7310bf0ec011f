import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeMatteVideo } from '../../scripts/make-segments-fixtures.js';
import { segments, type SegmentsReport } from '../../src/jobs/segments.js';
import { ffmpegPath, ffprobePath } from '../../src/media/ffmpeg-path.js';
import { runTool } from '../../src/media/process.js';
import { decodeRange } from '../../src/segments/decode-range.js';
import { probeFrameTimeline } from '../../src/media/probe.js';
import { planSegments } from '../../src/segments/plan.js';
import { MATTE_FIXTURE } from '../../fixtures/matte.js';
import { decodeAll, probeCounted } from '../helpers/segments.js';

// Awkward sources, generated here: variable frame rate, odd size, rotation, audio 0.4 s late in .mkv, MPEG-TS.
const spec = { ...MATTE_FIXTURE, frames: 60 };
const vfrTimes = Array.from({ length: 60 }, (_, k) => (k < 30 ? k * 0.04 : 1.2 + (k - 30) * 0.0667));
const NAMES = ['vfr.mp4', 'odd.mp4', 'rot.mp4', 'late.mkv', 'c.ts'] as const;
let dir: string;
// PyAV (Debian's python3-av) is the independent reference for frame times and audio; without it those tests skip.
const hasPyAv = spawnSync('/usr/bin/python3', ['-c', 'import av']).status === 0;
if (!hasPyAv) process.stderr.write('segments-media: /usr/bin/python3 with PyAV (python3-av) not found; the PyAV checks are skipped\n');

/** scripts/frame_times.py: PyAV's decoded frame times and audio start/length. */
async function pyav(path: string): Promise<{ video: number[]; audio_start: number | null; audio_seconds: number | null }> {
  const r = await runTool('/usr/bin/python3', ['scripts/frame_times.py', path], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`frame_times.py ${path}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString('utf8'));
}
let report: SegmentsReport;
const input = (n: string) => join(dir, n);
const output = (n: string) => join(dir, 'out', `${n}.mp4`);
const video = (n: string) => report.videos.find((v) => v.input === input(n))!;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-segments-media-'));
  await writeMatteVideo(spec, input('vfr.mp4'), { timestamps: vfrTimes });
  await writeMatteVideo({ ...spec, width: 333, height: 187 }, input('odd.mp4'));
  await writeMatteVideo(spec, input('rot.mp4'), { rotate: 90 });
  await writeMatteVideo(spec, input('late.mkv'), { audioDelay: 0.4 });
  await writeMatteVideo(spec, input('c.ts'), { gop: 10 });
  report = await segments({ inputs: NAMES.map(input), outputs: NAMES.map(output), segmentSeconds: 1, onWarning: () => {} });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('segments on awkward inputs', () => {
  it.each(['vfr.mp4', 'odd.mp4', 'rot.mp4', 'late.mkv'])('%s: as many frames out as ffprobe decodes from the source', async (n) => {
    expect(video(n).status, video(n).error).toBe('done');
    const [src, out] = await Promise.all([probeCounted(input(n)), probeCounted(output(n))]);
    expect(Number(out.video.nb_read_frames)).toBe(Number(src.video.nb_read_frames));
    expect(video(n).frames).toBe(Number(src.video.nb_read_frames));
  });

  it.skipIf(!hasPyAv)('VFR: boundaries sit at the first decoded frame at or after each second, and each range decodes exactly', async () => {
    // Independent reference: the frames PyAV decodes and their times.
    const times = (await pyav(input('vfr.mp4'))).video;
    expect(times).toHaveLength(Number((await probeCounted(input('vfr.mp4'))).video.nb_read_frames));
    const expected = [0, 1, 2, 3].map((k) => times.findIndex((x) => x - times[0]! >= k - 5e-7));
    const t = await probeFrameTimeline(input('vfr.mp4'));
    const segs = planSegments(t, 1);
    expect(segs.map((s) => s.startFrame)).toEqual(expected);
    // The frame spacing really changes (40 ms, then 66.7 ms): fps arithmetic would put the second boundary elsewhere.
    const avgFps = (times.length - 1) / (times.at(-1)! - times[0]!);
    expect(expected[2]).not.toBe(Math.round(2 * avgFps));
    const all = await decodeAll(input('vfr.mp4'), t.width, t.height);
    for (const s of segs) {
      let i = s.startFrame;
      for await (const f of decodeRange(input('vfr.mp4'), t, s, s.keyframe)) expect(Buffer.compare(f, all[i++]!)).toBe(0);
      expect(i).toBe(s.endFrame);
    }
  });

  it('odd sizes are padded by one edge pixel to 4:2:0; rotated sources come out upright', async () => {
    const odd = await probeCounted(output('odd.mp4'));
    expect([odd.video.width, odd.video.height]).toEqual([334, 188]);
    const rot = await probeCounted(output('rot.mp4'));
    expect([rot.video.width, rot.video.height]).toEqual([120, 160]);
  });

  it.skipIf(!hasPyAv)('audio that starts 0.4 s after the video keeps its offset and its length', async () => {
    const [src, out] = await Promise.all([pyav(input('late.mkv')), pyav(output('late.mkv'))]);
    const offset = (p: typeof src) => p.audio_start! - p.video[0]!;
    expect(offset(src)).toBeGreaterThan(0.35);
    expect(offset(out)).toBeCloseTo(offset(src), 3);
    expect(out.audio_seconds!).toBeCloseTo(src.audio_seconds!, 3);
    expect(out.video).toHaveLength(src.video.length);
  });

  it('the decode-based timeline equals the packet listing: one VFR stream in .mkv and, remuxed, in MPEG-TS', async () => {
    // .mkv, not .mp4: an mp4 edit list hides a frame that a remux to MPEG-TS shows again.
    const mkv = join(dir, 'vfr-gop10.mkv');
    const ts = join(dir, 'vfr-gop10.ts');
    await writeMatteVideo(spec, mkv, { timestamps: vfrTimes, gop: 10, audioDelay: null });
    const r = await runTool(ffmpegPath(), ['-v', 'error', '-y', '-i', mkv, '-map', '0:v', '-c', 'copy', '-f', 'mpegts', ts], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const [mkvT, mpegts] = await Promise.all([probeFrameTimeline(mkv), probeFrameTimeline(ts)]);
    expect(mkvT.method).toBe('packets');
    expect(mpegts.pts).toHaveLength(60);
    expect(mkvT.pts).toHaveLength(60);
    expect(mpegts.keyframes).toEqual([0, 10, 20, 30, 40, 50]);
    expect(mkvT.keyframes).toEqual([0, 10, 20, 30, 40, 50]);
    // MPEG-TS keeps 90 kHz ticks: the same frame times, shifted by the muxer's start offset.
    mkvT.pts.forEach((x, i) => expect(Math.abs(mpegts.pts[i]! - mpegts.pts[0]! - (x - mkvT.pts[0]!))).toBeLessThan(2e-5));
    expect([mpegts.width, mpegts.height]).toEqual([mkvT.width, mkvT.height]);
  });

  it('MPEG-TS (the bundled ffprobe segfaults on it): frame-accurate segments from the decode-based timeline, every frame out', async () => {
    const v = video('c.ts');
    expect(v.status, v.error).toBe('done');
    const crashes = (await runTool(ffprobePath(), ['-v', 'error', '-show_entries', 'packet=pts_time', input('c.ts')], { timeoutMs: 60_000 })).signal !== null;
    const t = await probeFrameTimeline(input('c.ts'));
    expect(t.method).toBe(crashes ? 'decode' : 'packets');
    // Independent reference: every frame ffmpeg decodes from the start, without a seek.
    const all = await decodeAll(input('c.ts'), t.width, t.height);
    expect(all).toHaveLength(60);
    expect(t.pts).toHaveLength(60);
    if (hasPyAv) {
      const times = (await pyav(input('c.ts'))).video;
      expect(times).toHaveLength(60);
      times.forEach((x, i) => expect(Math.abs(x - t.pts[i]!)).toBeLessThan(1e-5));
    }
    const segs = planSegments(t, 1);
    expect(segs.map((s) => s.startFrame)).toEqual([0, 25, 50]);
    // Keyframes as encoded (-g 10, no scene cuts), so the later segments' decodes really seek.
    expect(t.keyframes).toEqual([0, 10, 20, 30, 40, 50]);
    expect(segs.map((s) => s.keyframe)).toEqual([0, 20, 50]);
    for (const s of segs) {
      let i = s.startFrame;
      for await (const f of decodeRange(input('c.ts'), t, s, s.keyframe)) expect(Buffer.compare(f, all[i++]!)).toBe(0);
      expect(i).toBe(s.endFrame);
    }
    const out = await probeCounted(output('c.ts'));
    expect(Number(out.video.nb_read_frames)).toBe(60);
    expect(v.frames).toBe(60);
    expect(out.audio).not.toBeNull();
  });
});
