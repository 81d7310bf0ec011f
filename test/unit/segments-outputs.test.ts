import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { segments, type SegmentsReport } from '../../src/jobs/segments.js';
import { ffmpegPath, ffprobePath } from '../../src/media/ffmpeg-path.js';
import { runTool } from '../../src/media/process.js';
import type { FrameTimeline } from '../../src/media/probe.js';
import { remuxStage, segmentsItem, type SegmentsItem } from '../../src/segments/stages.js';
import { resolveSegmentsOptions } from '../../src/segments/options.js';

// What a segments output keeps of its source: its own name beside a same-named video, the
// sample aspect ratio, the colour tags, the audio codec; and what a failure says.
let dir: string;
let report: SegmentsReport;
const warnings: string[] = [];
/** Per video, the order of events: 'warning' or 'segment' (a segment run). */
const events: Record<string, string[]> = {};
const note = (name: string, what: string) => {
  events[name] = [...(events[name] ?? []), what];
};
const NAMES = ['x.mp4', 'x.mkv', 'sar1615.mp4', 'sar3227.mkv', 'vp9.webm', 'opus.mp4', 'restart.ts'];
const input = (n: string) => join(dir, 'in', n);
const output = (n: string) => join(dir, 'out', n);
const video = (n: string) => report.videos.find((v) => v.input === input(n))!;

/** A short test pattern with a beep track; `extra` are ffmpeg output options (codecs, tags, SAR). */
async function make(name: string, seconds: number, size: string, extra: string[], audio: string[] | null = ['-c:a', 'aac']): Promise<void> {
  const args = ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=s=${size}:r=25:d=${seconds}`];
  if (audio) args.push('-f', 'lavfi', '-i', `sine=f=440:d=${seconds}:r=48000`, '-map', '0:v', '-map', '1:a', ...audio);
  args.push(...extra, '-fflags', '+bitexact', '-map_metadata', '-1', input(name));
  const r = await runTool(ffmpegPath(), args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`cannot make ${name}: ${r.stderr}`);
}

const H264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-g', '25'];

interface Probed {
  codec_type: string;
  codec_name: string;
  sample_aspect_ratio?: string;
  display_aspect_ratio?: string;
  color_space?: string;
  color_primaries?: string;
  color_transfer?: string;
  color_range?: string;
  nb_read_frames?: string;
  duration?: string;
}
async function probe(path: string): Promise<{ video: Probed; audio: Probed | undefined }> {
  const r = await runTool(
    ffprobePath(),
    [
      '-v',
      'error',
      '-count_frames',
      '-show_entries',
      'stream=codec_type,codec_name,sample_aspect_ratio,display_aspect_ratio,color_space,color_primaries,color_transfer,color_range,nb_read_frames,duration',
      '-of',
      'json',
      path,
    ],
    { timeoutMs: 60_000 },
  );
  if (r.code !== 0) throw new Error(`ffprobe ${path}: ${r.stderr}`);
  const s = (JSON.parse(r.stdout.toString('utf8')) as { streams: Probed[] }).streams;
  return { video: s.find((x) => x.codec_type === 'video')!, audio: s.find((x) => x.codec_type === 'audio') };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clipstream-segments-outputs-'));
  await mkdir(join(dir, 'in'));
  // Same stem, two containers, different lengths (60 and 65 frames).
  await make('x.mp4', 2.4, '160x120', H264);
  await make('x.mkv', 2.6, '160x120', H264);
  // PAL 4:3 (180×144 stored, SAR 16:15 → 192×144), BT.709 tagged; and 16:9 anamorphic (162×108, SAR 32:27 → 192×108), BT.2020 PQ with FLAC.
  await make('sar1615.mp4', 2, '180x144', [...H264, '-vf', 'setsar=16/15', '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709'], null);
  await make(
    'sar3227.mkv',
    2,
    '162x108',
    [...H264, '-vf', 'setsar=32/27', '-colorspace', 'bt2020nc', '-color_primaries', 'bt2020', '-color_trc', 'smpte2084', '-color_range', 'tv'],
    ['-c:a', 'flac'],
  );
  // The usual YouTube download (VP9 + Opus in WebM), and Opus in mp4.
  await make('vp9.webm', 2, '160x120', ['-c:v', 'libvpx-vp9', '-b:v', '300k', '-deadline', 'realtime', '-cpu-used', '8', '-g', '25'], ['-c:a', 'libopus']);
  await make('opus.mp4', 2, '160x120', H264, ['-c:a', 'libopus']);
  // Two MPEG-TS recordings joined with cat: the second restarts the timestamps.
  await make('part1.ts', 2, '160x120', H264);
  await make('part2.ts', 2, '160x120', H264);
  const r = await runTool(
    'sh',
    ['-c', `cat "${input('part1.ts')}" "${input('part2.ts')}" > "${input('restart.ts')}" && rm "${input('part1.ts')}" "${input('part2.ts')}"`],
    {
      timeoutMs: 10_000,
    },
  );
  if (r.code !== 0) throw new Error(r.stderr);
  report = await segments({
    inputDir: join(dir, 'in'),
    outputDir: join(dir, 'out'),
    segmentSeconds: 1,
    onWarning: (w) => {
      warnings.push(w.message);
      for (const n of NAMES) if (w.message.includes(input(n))) note(n, 'warning');
    },
    onSegment: (p) => {
      if (p.status === 'done') note(basename(p.video), 'segment');
    },
  });
}, 600_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('segments outputs keep what the source means', () => {
  it('x.mp4 and x.mkv in one folder: each has its own output with its own frames', async () => {
    expect(video('x.mp4').status, video('x.mp4').error).toBe('done');
    expect(video('x.mkv').status, video('x.mkv').error).toBe('done');
    expect(video('x.mp4').output).toBe(output('x.mp4'));
    expect(video('x.mkv').output).toBe(output('x.mkv.mp4'));
    expect(Number((await probe(output('x.mp4'))).video.nb_read_frames)).toBe(60);
    expect(Number((await probe(output('x.mkv.mp4'))).video.nb_read_frames)).toBe(65);
    expect(new Set(report.run.units.map((u) => u.unit)).size).toBe(report.videos.length);
  });

  it.each([
    ['sar1615.mp4', 'sar1615.mp4', '16:15', '4:3'],
    ['sar3227.mkv', 'sar3227.mp4', '32:27', '16:9'],
  ])('%s: the output carries the sample aspect ratio (displays as the source does)', async (src, out, sar, dar) => {
    expect(video(src).status, video(src).error).toBe('done');
    const [a, b] = await Promise.all([probe(input(src)), probe(output(out))]);
    expect([a.video.sample_aspect_ratio, a.video.display_aspect_ratio]).toEqual([sar, dar]);
    expect([b.video.sample_aspect_ratio, b.video.display_aspect_ratio]).toEqual([sar, dar]);
  });

  it.each([
    ['sar1615.mp4', 'sar1615.mp4'],
    ['sar3227.mkv', 'sar3227.mp4'],
  ])('%s: the output carries the colour tags (matrix, primaries, transfer, range)', async (src, out) => {
    const [a, b] = await Promise.all([probe(input(src)), probe(output(out))]);
    const tags = (p: Probed) => [p.color_space, p.color_primaries, p.color_transfer, p.color_range];
    expect(tags(a.video)).not.toContain(undefined);
    expect(tags(b.video)).toEqual(tags(a.video));
  });

  it('an untagged source gives an untagged output, as before', async () => {
    const b = await probe(output('x.mp4'));
    expect([b.video.color_space, b.video.color_primaries, b.video.color_transfer]).toEqual([undefined, undefined, undefined]);
    expect(b.video.sample_aspect_ratio ?? '1:1').toBe('1:1');
  });

  it.each([
    ['vp9.webm', 'vp9.mp4'],
    ['opus.mp4', 'opus.mp4'],
  ])('%s: Opus audio is kept as it is', async (src, out) => {
    expect(video(src).status, video(src).error).toBe('done');
    const [a, b] = await Promise.all([probe(input(src)), probe(output(out))]);
    expect(b.audio?.codec_name).toBe('opus');
    expect(Number(b.audio!.duration)).toBeCloseTo(Number(a.audio!.duration ?? 2), 1);
  });

  it('FLAC in mkv: kept lossless (FLAC where this ffmpeg puts it in mp4, else ALAC, said once before any segment runs)', async () => {
    const v = video('sar3227.mkv');
    expect(v.status, v.error).toBe('done');
    const b = await probe(output('sar3227.mp4'));
    expect(['flac', 'alac']).toContain(b.audio?.codec_name);
    if (b.audio?.codec_name === 'alac') {
      const note = warnings.filter((w) => w.includes(input('sar3227.mkv')) && /flac/i.test(w));
      expect(note).toHaveLength(1);
      expect(note[0]).toMatch(/ALAC/);
      expect(events['sar3227.mkv']).toEqual(['warning', 'segment', 'segment']);
    }
  });

  it('a .ts whose timestamps restart is a permanent failure naming the file and the reason, not "rerun to retry"', () => {
    const v = video('restart.ts');
    expect(v.status).toBe('failed');
    expect(v.error).toContain(input('restart.ts'));
    expect(v.error).toMatch(/timestamps restart/);
    expect(v.error).not.toMatch(/rerun/);
    expect(v.segmentsRun).toBe(0);
  });
});

describe('a failure after inference keeps the counts', () => {
  it('a remux failure reports the segments that ran, not 0', async () => {
    const o = resolveSegmentsOptions({ inputs: [input('x.mp4')], outputs: [join(dir, 'fail', 'x.mp4')], audio: 'none' }, 'unused.onnx');
    const item: SegmentsItem = segmentsItem(input('x.mp4'), join(dir, 'fail', 'x.mp4'));
    Object.assign(item.report, { segments: 3, segmentsRun: 2, segmentsReused: 1, frames: 60 });
    item.segmentsDone = true;
    // A joined file that is not there: the remux fails.
    item.joined = join(dir, 'fail', 'missing.mp4');
    item.timeline = { formatStart: 0, videoStart: 0, audioStart: null, info: { path: input('x.mp4'), audioCodec: null } } as unknown as FrameTimeline;
    await mkdir(join(dir, 'fail'), { recursive: true });
    await writeFile(join(dir, 'fail', 'placeholder'), '');
    const model = { path: 'unused.onnx', kind: 'image' } as never;
    const stage = remuxStage({ model, options: o, onError: 'skip' });
    const out: SegmentsItem[] = [];
    await pipeline(Readable.from([item]), stage, async (items: AsyncIterable<SegmentsItem>) => {
      for await (const it of items) out.push(it);
    });
    const r = out[0]!.report;
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/missing\.mp4/);
    expect([r.segments, r.segmentsRun, r.segmentsReused, r.frames]).toEqual([3, 2, 1, 60]);
    // The one failure mark: the stage that gave up, its error the report's.
    expect([out[0]!.failure?.stage, out[0]!.failure?.error.message]).toEqual(['remux', r.error]);
  });
});
