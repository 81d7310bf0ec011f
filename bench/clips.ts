import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clips as clipsJob } from '../src/jobs/clips.js';
import { cpuSeconds, runChildScript, type BenchRow } from './measure.js';
import { fixedStride } from '../src/clips/plan.js';
import { probeVideo } from '../src/media/probe.js';
import { transcodeClips, type TranscodeOptions } from '../src/clips/transcode.js';
import { makeSource } from '../test/helpers/clip-sources.js';
import { ClipTables, TABLES_EVERY_S, UNITS_DIR, unitRecordPath, type UnitRecord } from '../src/clips/table.js';

function arg(name: string, def: number | string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : String(def);
}

async function compareModes(): Promise<void> {
  const seconds = Number(arg('seconds', 60));
  const size = arg('size', '960x540');
  const fps = Number(arg('fps', 25));
  const nClips = Number(arg('clips', 30));
  const repeat = Number(arg('repeat', 3));
  const len = Number(arg('len', 2));
  const gop = Number(arg('gop', 250));
  const preset = arg('preset', 'ultrafast');
  const threads = Number(arg('threads', 2));

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

  const dir = await mkdtemp(join(tmpdir(), 'clips-bench-'));
  try {
    const src = join(dir, 'src.mp4');
    await makeSource(src, { seconds, fps, size, gop });
    const info = await probeVideo(src);
    const stride = seconds / nClips;
    const clips = fixedStride('src', info, { clipLenS: Math.min(len, stride), clipStrideS: stride }).clips;
    const frames = clips.reduce((n, c) => n + c.endFrame - c.startFrame, 0);
    const base: TranscodeOptions = { encoder: 'libx264', threads, crf: 23, preset };
    const variants: [string, TranscodeOptions][] = [
      ['one-pass (1 ffmpeg, all clips)', { ...base, mode: 'one-pass', numClipsPerChunk: 1000 }],
      ['per-clip (1 ffmpeg per clip, 1 at a time)', { ...base, mode: 'per-clip', encodeBatchSize: 1 }],
      ['per-clip (1 ffmpeg per clip, 2 at a time)', { ...base, mode: 'per-clip', encodeBatchSize: 2 }],
    ];
    console.log(
      `source ${seconds} s ${size} @ ${fps} fps (${info.numFrames} frames); ${clips.length} clips of ${Math.min(len, stride)} s, ${frames} frames; libx264 ${preset}, source GOP ${gop}, ${threads} thread(s) per encoder; median of ${repeat}`,
    );
    const results: number[] = [];
    for (const [name, opts] of variants) {
      const times: number[] = [];
      for (let r = 0; r < repeat; r++) {
        const out = join(dir, `out-${r}-${results.length}`);
        const t = performance.now();
        await transcodeClips(
          info,
          'src',
          clips.map((clip) => ({ clip, out: join(out, `${clip.stem}.mp4`) })),
          opts,
        );
        times.push((performance.now() - t) / 1000);
        await rm(out, { recursive: true, force: true });
      }
      const m = median(times);
      results.push(m);
      console.log(`${name.padEnd(44)} ${m.toFixed(2)} s  (${(frames / m).toFixed(0)} clip frames/s)`);
    }
    console.log(
      `per-clip / one-pass time ratio: ${(results[1]! / results[0]!).toFixed(2)}x sequential, ${(results[2]! / results[0]!).toFixed(2)}x with 2 per-clip processes`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const WORK = join(ROOT, '.bench', 'clips');
const r2 = (x: number) => Math.round(x * 100) / 100;

interface JobRun {
  seconds: number;
  /** CPU seconds of the job process and its ffmpeg children (null off Linux): less affected by other load than wall time. */
  cpu: number | null;
  clips: number;
  peakRssMB: number;
}

/** One clips job in this process (the bench's child): prints its time, clips and peak RSS. */
async function jobChild(job: { sources: string; out: string; limit: number }): Promise<void> {
  await rm(job.out, { recursive: true, force: true });
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const report = await clipsJob({
    sources: job.sources,
    outputDir: job.out,
    clipLenS: 1,
    clipStrideS: 18,
    limitClips: job.limit,
    preset: 'ultrafast',
    onWarning: () => {},
  });
  const seconds = (performance.now() - t0) / 1000;
  const c1 = cpuSeconds();
  const cpu = c0 === null || c1 === null ? null : c1 - c0;
  // maxRSS: this process's peak (KiB); the ffmpeg children are separate processes.
  process.stdout.write(`CLIPS_RESULT ${JSON.stringify({ seconds, cpu, clips: report.clips.length, peakRssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
}

function runJobChild(job: { sources: string; out: string; limit: number }): Promise<JobRun> {
  return runChildScript<JobRun>(fileURLToPath(import.meta.url), job, 'CLIPS_RESULT ', 'clips', ROOT);
}

async function source(minutes: number): Promise<string> {
  const file = join(WORK, `src-${minutes}min.mp4`);
  if (!(await stat(file).catch(() => null))) {
    await mkdir(WORK, { recursive: true });
    await makeSource(file, { seconds: minutes * 60, fps: 10, size: '320x180', gop: 250, audioHz: 440 });
  }
  const list = join(WORK, `sources-${minutes}min.csv`);
  await writeFile(list, `video_id,path\nsrc${minutes},${file}\n`);
  return list;
}

/**
 * The clips job on 100 clips from a 30-minute source and the same 10 clips from a 3-minute
 * one, side by side; rows in bench/run.ts's table format.
 *
 * @example rows.push(...(await benchClipsJob({ log: console.log })));
 */
export async function benchClipsJob(o: { log: (s: string) => void; quick?: boolean; smoke?: boolean }): Promise<BenchRow[]> {
  // Full: 100 clips from a 30-min source vs 10 from a 3-min one; quick: 10 from the 3-min one vs 3 from
  // 1 min; smoke: 3 from a 2-min one vs 2 from 1 min.
  const [[longMin, longClips], [shortMin, shortClips]] = o.smoke
    ? [
        [2, 3],
        [1, 2],
      ]
    : o.quick
      ? [
          [3, 10],
          [1, 3],
        ]
      : [
          [30, 100],
          [3, 10],
        ];
  const t0 = performance.now();
  const [long, short] = [await source(longMin), await source(shortMin)];
  o.log(`   sources ready in ${r2((performance.now() - t0) / 1000)} s (${longMin} and ${shortMin} min, 320x180 @ 10 fps, with audio)`);
  const a = await runJobChild({ sources: long, out: join(WORK, `out-${longMin}`), limit: longClips });
  o.log(`   clips, ${longMin}-min source: ${a.clips} clips in ${r2(a.seconds)} s (CPU ${a.cpu === null ? '?' : r2(a.cpu)} s), peak RSS ${r2(a.peakRssMB)} MB`);
  const b = await runJobChild({ sources: short, out: join(WORK, `out-${shortMin}`), limit: shortClips });
  o.log(`   clips, ${shortMin}-min source: ${b.clips} clips in ${r2(b.seconds)} s (CPU ${b.cpu === null ? '?' : r2(b.cpu)} s), peak RSS ${r2(b.peakRssMB)} MB`);
  const perLong = a.seconds / a.clips;
  const perShort = b.seconds / b.clips;
  const ratio = perLong / perShort;
  return [
    {
      item: 'clips cost per clip',
      metric: `s/clip: ${a.clips} clips from a ${longMin}-min source vs ${b.clips} from a ${shortMin}-min one (1 s clips every 18 s)`,
      ours: String(r2(perLong)),
      reference: `${r2(perShort)} (${shortMin} min)`,
      ratio: r2(ratio),
      cpuRatio: a.cpu === null || b.cpu === null ? null : r2(a.cpu / a.clips / (b.cpu / b.clips)),
      target: '≤ 1.5',
      met: ratio <= 1.5,
    },
    {
      item: 'clips memory',
      metric: `peak RSS of the job process, ${longMin}-min vs ${shortMin}-min source (MB)`,
      ours: String(r2(a.peakRssMB)),
      reference: `${r2(b.peakRssMB)} (${shortMin} min)`,
      ratio: r2(a.peakRssMB / b.peakRssMB),
      target: '(info)',
      met: null,
    },
  ];
}

/**
 * The clips tables' work per video with `videos` records of 10 clips each already in the folder
 * (src/clips/table.ts): what each video costs now (a throttled update: readdir of `.units/`, the
 * lock, the stamp) against what it cost when every step rebuilt (a rebuild: every record read,
 * the tables written). A per-video run (a queue unit) used to rebuild at its start (cold), after
 * its video and at its end; a plain run once per video (cached). Synthetic records, no ffmpeg.
 *
 * @example rows.push(...(await benchClipTables({ videos: 10_000, log: console.log })));
 */
export async function benchClipTables(o: { videos: number; log: (s: string) => void }): Promise<BenchRow[]> {
  const n = o.videos;
  const dir = join(WORK, `tables-${n}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, UNITS_DIR), { recursive: true });
  const ids = Array.from({ length: n }, (_, i) => `vid${String(i).padStart(6, '0')}`);
  const record = (id: string): UnitRecord => ({
    video_id: id,
    row: { video_id: id, downloaded: true, failed: false, error: '', path: `${id}.mp4`, duration: 40, num_clips: 10 },
    clips: Array.from({ length: 10 }, (_, k) => ({
      clip_id: `${id}_${k * 100}_${k * 100 + 100}`,
      filename: `${dir}/clips/${id}_${k * 100}_${k * 100 + 100}.mp4`,
      video_id: id,
      source: `${id}.mp4`,
      start_frame: k * 100,
      end_frame: k * 100 + 100,
      num_frames: 100,
      start_s: k * 4,
      end_s: k * 4 + 4,
      fps: 25,
      width: 640,
      height: 360,
      size_bytes: 123456,
      video_codec: 'h264',
      audio_codec: 'aac',
      bit_rate: 800000,
    })),
    issues: [],
  });
  const measured = 30;
  for (const id of ids.slice(0, n - measured)) await writeFile(unitRecordPath(dir, id), JSON.stringify(record(id)));
  const sec = (t: number) => (performance.now() - t) / 1000;
  // Before: a rebuild per step.
  let t = performance.now();
  const warm = new ClipTables(dir, ids);
  await warm.rebuild();
  const cold = sec(t);
  t = performance.now();
  await warm.rebuild();
  const cached = sec(t);
  // Now: the first run's start writes the tables; then each video its own run (start, record, video, end, its report).
  await new ClipTables(dir, ids).update('start');
  const runs = 19;
  t = performance.now();
  for (const id of ids.slice(n - measured, n - measured + runs)) {
    const q = new ClipTables(dir, ids);
    await q.update('start');
    await q.records.write(id, record(id));
    await q.update('video');
    await q.update('end');
    await q.readSome([id]);
  }
  const perRun = sec(t) / runs;
  // A plain run's videos: one ClipTables, the record and a throttled update each.
  const plain = new ClipTables(dir, ids);
  const plainIds = ids.slice(n - measured + runs, n - 1);
  t = performance.now();
  for (const id of plainIds) {
    await plain.records.write(id, record(id));
    await plain.update('video');
  }
  const perVideo = sec(t) / plainIds.length;
  if (plain.stats.rebuilds !== 0) throw new Error('bench: a throttled plain run rebuilt');
  t = performance.now();
  const last = new ClipTables(dir, ids);
  await last.update('start');
  await last.records.write(ids[n - 1]!, record(ids[n - 1]!));
  const final = await last.update('video');
  await last.update('end');
  const completing = sec(t);
  if (!final.rebuilt || !final.complete) throw new Error('bench: the completing run did not rebuild');
  o.log(
    `   tables, ${n} videos: a rebuild ${r2(cold)} s cold, ${r2(cached)} s cached; a per-video run now ${r2(perRun * 1000)} ms of table work (record write included), a plain run's video ${r2(perVideo * 1000)} ms, the completing run ${r2(completing)} s`,
  );
  await rm(dir, { recursive: true, force: true });
  const before = cold + 2 * cached;
  return [
    {
      item: 'clips tables',
      metric: `s of table work per video, per-video runs (queue), ${n} videos recorded (10 clips each)`,
      ours: String(Math.round(perRun * 10000) / 10000),
      reference: `${r2(before)} (rebuild at start, after the video, at the end)`,
      ratio: Math.round((perRun / before) * 10000) / 10000,
      target: '≤ 0.05',
      met: perRun / before <= 0.05,
    },
    {
      item: 'clips tables',
      metric: `s of table work per video, plain run, ${n} videos recorded (plus one cached rebuild per ${TABLES_EVERY_S} s)`,
      ours: String(Math.round(perVideo * 10000) / 10000),
      reference: `${r2(cached)} (a cached rebuild per video)`,
      ratio: Math.round((perVideo / cached) * 10000) / 10000,
      target: '(info)',
      met: null,
    },
    {
      item: 'clips tables',
      metric: `s for the run completing the list (one rebuild), ${n} videos`,
      ours: String(r2(completing)),
      reference: `${r2(cold)} (one cold rebuild)`,
      ratio: r2(completing / cold),
      target: '(info)',
      met: null,
    },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--child');
  if (i > 0) await jobChild(JSON.parse(process.argv[i + 1]!) as { sources: string; out: string; limit: number });
  else if (process.argv.includes('--tables'))
    for (const row of await benchClipTables({ videos: Number(arg('videos', 10_000)), log: (s) => process.stderr.write(`${s}\n`) }))
      process.stdout.write(`${JSON.stringify(row)}\n`);
  else if (process.argv.includes('--job'))
    for (const row of await benchClipsJob({ log: (s) => process.stderr.write(`${s}\n`) })) process.stdout.write(`${JSON.stringify(row)}\n`);
  else await compareModes();
}
