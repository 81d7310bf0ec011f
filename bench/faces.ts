import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderFace } from '../src/faces/synthetic.js';
import { faces } from '../src/jobs/faces.js';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { runTool } from '../src/media/process.js';
import { rawRgbInputArgs } from '../src/media/raw-video.js';
import { runChildScript, type BenchRow } from './measure.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const WORK = join(ROOT, '.bench', 'faces');

interface ChildRun {
  seconds: number;
  peakRssMB: number;
  frames: number;
  clips: number;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** A face that talks for 8 s, hides for 2 s, and so on: a few clips per minute, none longer than the video. */
const talkingHead = (t: number) => (t % 10 >= 8 ? null : { cx: 150 + 6 * Math.sin(t * Math.PI), cy: 115 + 4 * Math.cos(t * Math.PI) });

/** Writes the video frame by frame through a pipe (never all frames in memory). */
async function makeVideo(path: string, seconds: number): Promise<void> {
  if (
    await stat(path).then(
      () => true,
      () => false,
    )
  )
    return;
  await mkdir(dirname(path), { recursive: true });
  const fps = 25;
  function* frames() {
    for (let k = 0; k < seconds * fps; k++) yield renderFace(320, 240, talkingHead(k / fps));
  }
  const tmp = `${path}.tmp.mp4`;
  const r = await runTool(
    ffmpegPath(),
    ['-v', 'error', '-y', ...rawRgbInputArgs(320, 240, fps), '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '18', '-g', '250', '-pix_fmt', 'yuv420p', tmp],
    { input: frames() },
  );
  if (r.code !== 0) throw new Error(`cannot make ${path}: ${r.stderr.slice(-300)}`);
  await runTool('/bin/mv', [tmp, path]);
}

function runChild(job: { input: string; out: string; thread: 'worker' | 'main' }): Promise<ChildRun> {
  return runChildScript<ChildRun>(fileURLToPath(import.meta.url), job, 'FACES_RESULT ', 'faces', ROOT);
}

async function child(job: { input: string; out: string; thread: 'worker' | 'main' }): Promise<void> {
  await rm(job.out, { recursive: true, force: true });
  let frames = 0;
  const t0 = performance.now();
  const report = await faces({
    inputDir: job.input,
    outputDir: job.out,
    detector: 'models/face_detector_synthetic.onnx',
    device: 'cpu',
    modelThread: job.thread,
    size: 128,
    audio: 'none',
    onBatch: (n) => (frames += n),
    onWarning: () => {},
  });
  const seconds = (performance.now() - t0) / 1000;
  // maxRSS: this process's peak (KiB); ffmpeg children are separate processes.
  process.stdout.write(`FACES_RESULT ${JSON.stringify({ seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, frames, clips: report.rows.length })}\n`);
}

/**
 * Runs the faces bench; returns rows in bench/run.ts's table format.
 *
 * @example
 * rows.push(...(await benchFaces({ quick: true, log: console.log })));
 */
export async function benchFaces(o: { quick: boolean; lengths?: number[]; log: (s: string) => void }): Promise<BenchRow[]> {
  // Quick: seconds of video, once each; full: 1, 2 and 5 minutes; `lengths` (three, in seconds) overrides both.
  const lengths = o.lengths ?? (o.quick ? [4, 8, 16] : [60, 120, 300]);
  const span = (s: number) => (s >= 60 ? `${s / 60} min` : `${s} s`);
  const runs: Record<number, ChildRun> = {};
  for (const s of lengths) {
    const input = join(WORK, `in-${s}`);
    await makeVideo(join(input, `talk_${s}s.mp4`), s);
    runs[s] = await runChild({ input, out: join(WORK, `out-${s}`), thread: 'worker' });
    o.log(
      `   faces on ${s} s: ${r2(runs[s]!.seconds)} s, ${runs[s]!.clips} clips, ${r2(runs[s]!.frames / runs[s]!.seconds)} frames/s, peak RSS ${r2(runs[s]!.peakRssMB)} MB`,
    );
  }
  const [a, b, c] = lengths.map((s) => runs[s]!);
  const ratio = c!.peakRssMB / a!.peakRssMB;
  const main = await runChild({ input: join(WORK, `in-${lengths[0]}`), out: join(WORK, 'out-main'), thread: 'main' });
  o.log(`   faces on ${lengths[0]} s, detector on the main thread: ${r2(main.frames / main.seconds)} frames/s`);
  const worker = a!.frames / a!.seconds;
  const onMain = main.frames / main.seconds;
  return [
    {
      item: 'faces memory',
      metric: `peak RSS on ${lengths.map(span).join(' / ')} (MB)`,
      ours: [a, b, c].map((r) => r2(r!.peakRssMB)).join(' / '),
      reference: `${span(lengths[2]!)} / ${span(lengths[0]!)}`,
      ratio: r2(ratio),
      target: '≤ 1.2',
      met: ratio <= 1.2,
    },
    {
      item: 'faces speed',
      metric: `sampled frames/s, detector on the worker vs the main thread (${lengths[0]} s video)`,
      ours: String(r2(worker)),
      reference: `${r2(onMain)} (main thread)`,
      ratio: r2(worker / onMain),
      target: '(info)',
      met: null,
    },
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--child');
  if (i > 0) await child(JSON.parse(process.argv[i + 1]!) as { input: string; out: string; thread: 'worker' | 'main' });
  else
    for (const row of await benchFaces({ quick: process.argv.includes('--quick'), log: (s) => process.stderr.write(`${s}\n`) }))
      process.stdout.write(`${JSON.stringify(row)}\n`);
}
