/**
 * The `segments` rows of `npm run bench`, side by side in one run on the same generated source
 * (the matting fixture's moving disc, with audio):
 *   - the job (`segments()`, state carried, 5 s segments) in frames/s,
 *   - a bare loop on the same frames: one ffmpeg decode → `session.run` (main-thread ONNX
 *     Runtime, states fed back) → composite → one ffmpeg encode (target: job ≥ 0.9× of it),
 *   - the seed's method: ffmpeg splits with re-encode (`-f segment`), each segment through the
 *     bare loop from zero state, concat demuxer, audio muxed back,
 *   - peak RSS of the job in its own process on a 2-minute vs a 20-second source (target ≤ 1.2).
 *
 *   npx tsx bench/segments.ts [--quick]      alone; `bench/run.ts` calls benchSegments()
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';
import { writeMatteVideo } from '../scripts/make-segments-fixtures.js';
import { segments } from '../src/jobs/segments.js';
import { shippedModelsDir } from '../src/models/models-dir.js';
import { ffmpegPath } from '../src/media/ffmpeg-path.js';
import { runTool } from '../src/media/process.js';
import { composeFrame, RVM_GREEN, toModelInput } from '../src/segments/compose.js';
import { MATTING_MODEL_FILE } from '../src/segments/matting-model.js';
import { MATTE_FIXTURE } from '../fixtures/matte.js';
import { cpuSeconds, type BenchRow } from './measure.js';

const r2 = (x: number) => Math.round(x * 100) / 100;
const ENCODE = ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'veryfast', '-threads', '2', '-crf', '18'];

async function ff(args: string[]): Promise<void> {
  const r = await runTool(ffmpegPath(), ['-hide_banner', '-nostdin', '-v', 'error', '-y', ...args], { timeoutMs: 1_800_000 });
  if (r.code !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${r.stderr}`);
}

/** A `baseSeconds` render of the fixture scene at `width`×`height`, repeated `times` by stream copy. */
async function makeSource(dir: string, width: number, height: number, baseSeconds: number, times: number): Promise<string> {
  const base = join(dir, `base_${width}x${height}_${baseSeconds}.mp4`);
  const frames = baseSeconds * 25;
  await writeMatteVideo({ ...MATTE_FIXTURE, width, height, frames, radius: Math.round(height * 0.18), flashFrames: [Math.round(frames / 2)] }, base, {
    gop: 50,
  });
  const list = join(dir, `list_${times}.txt`);
  await writeFile(list, Array.from({ length: times }, () => `file '${resolve(base)}'\n`).join(''));
  const out = join(dir, `src_${width}x${height}_${baseSeconds * times}s.mp4`);
  await ff(['-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', out]);
  return out;
}

/** decode → session.run → compose → encode, one frame at a time, states carried; returns frames. */
async function bareLoop(session: ort.InferenceSession, input: string, out: string, width: number, height: number): Promise<number> {
  const dec = spawn(ffmpegPath(), ['-v', 'error', '-i', input, '-map', '0:v:0', '-vsync', '0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const enc = spawn(
    ffmpegPath(),
    ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', '25', '-i', 'pipe:0', ...ENCODE, '-an', out],
    { stdio: ['pipe', 'ignore', 'inherit'] },
  );
  const encDone = new Promise<void>((res) => enc.on('close', () => res()));
  const frameBytes = width * height * 3;
  const zero = new ort.Tensor('float32', new Float32Array(1), [1, 1, 1, 1]);
  let states: Record<string, ort.Tensor> = { r1i: zero, r2i: zero, r3i: zero, r4i: zero };
  const ratio = new ort.Tensor('float32', new Float32Array([Math.min(1, 512 / Math.max(width, height))]), [1]);
  let pending: Buffer = Buffer.alloc(0);
  let n = 0;
  for await (const chunk of dec.stdout as AsyncIterable<Buffer>) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= frameBytes) {
      const rgb = new Uint8Array(pending.subarray(0, frameBytes));
      pending = pending.subarray(frameBytes);
      const o = await session.run({
        src: new ort.Tensor('float32', toModelInput(rgb, width, height), [1, 3, height, width]),
        ...states,
        downsample_ratio: ratio,
      });
      states = { r1i: o.r1o!, r2i: o.r2o!, r3i: o.r3o!, r4i: o.r4o! };
      const frame = composeFrame('composite', rgb, o.fgr!.data as Float32Array, o.pha!.data as Float32Array, width, height, RVM_GREEN, 3);
      if (!enc.stdin.write(frame)) await new Promise((res) => enc.stdin.once('drain', res));
      n++;
    }
  }
  enc.stdin.end();
  await encDone;
  return n;
}

/** The seed: split with re-encode, each segment from zero state, concat, audio back. */
async function seedMethod(session: ort.InferenceSession, input: string, dir: string, segmentSeconds: number, width: number, height: number): Promise<number> {
  const segDir = join(dir, 'seed_segments');
  const matted = join(dir, 'seed_matted');
  await rm(segDir, { recursive: true, force: true });
  await rm(matted, { recursive: true, force: true });
  await mkdir(segDir, { recursive: true });
  await mkdir(matted, { recursive: true });
  await ff([
    '-i',
    input,
    ...ENCODE,
    '-c:a',
    'aac',
    '-b:a',
    '128k',
    '-f',
    'segment',
    '-segment_time',
    String(segmentSeconds),
    '-reset_timestamps',
    '1',
    join(segDir, 'output_%03d.mp4'),
  ]);
  const names = (await readdir(segDir)).filter((n) => n.endsWith('.mp4')).sort();
  let frames = 0;
  for (const n of names) frames += await bareLoop(session, join(segDir, n), join(matted, n), width, height);
  await writeFile(join(matted, 'file_list.txt'), names.map((n) => `file '${n}'\n`).join(''));
  const combined = join(dir, 'seed_combined.mp4');
  await ff(['-f', 'concat', '-safe', '0', '-i', join(matted, 'file_list.txt'), '-c', 'copy', combined]);
  await ff(['-i', combined, '-i', input, '-map', '0:v', '-map', '1:a', '-c', 'copy', join(dir, 'seed_final.mp4')]);
  return frames;
}

/** Peak RSS (MB) of the CLI job in its own process, from /usr/bin/time (kB). */
async function jobRss(input: string, out: string): Promise<{ peakMB: number; seconds: number }> {
  const started = Date.now();
  const args = [
    '-f',
    '%M',
    process.execPath,
    '--import',
    'tsx',
    'src/cli/run.ts',
    'segments',
    `--input=${input}`,
    `--output=${out}`,
    '--segment_seconds=5',
    '--quiet',
    '--device=cpu',
  ];
  return new Promise((res, rej) => {
    const p = spawn('/usr/bin/time', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => {
      const kb = Number(err.trim().split('\n').pop());
      if (code !== 0 || !Number.isFinite(kb)) rej(new Error(`segments child exited ${code}: ${err.slice(-2000)}`));
      else res({ peakMB: kb / 1024, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/**
 * Runs the segments benchmark; `quick` uses 320×240 (20 s / 2 min), full 640×360.
 *
 * @example const { rows } = await benchSegments('quick', console.error);
 */
export async function benchSegments(
  mode: 'full' | 'quick' | 'smoke',
  log: (s: string) => void,
  workDir = '.bench/segments',
): Promise<{ rows: BenchRow[]; figures: Record<string, unknown> }> {
  const [w, h] = mode === 'full' ? [640, 360] : [320, 240];
  const base = mode === 'smoke' ? 2 : 10;
  await mkdir(workDir, { recursive: true });
  log(`segments: making ${w}x${h} sources...`);
  const short = await makeSource(workDir, w, h, base, 2);
  const long = await makeSource(workDir, w, h, base, mode === 'smoke' ? 4 : 12);
  const model = join(shippedModelsDir(), MATTING_MODEL_FILE);

  // Job and bare loop alternate `repeat` times; the fastest run of each counts (other load only slows runs down).
  const repeat = mode === 'smoke' ? 1 : 2;
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  const timed = async <T>(fn: () => Promise<T>) => {
    const c = cpuSeconds();
    const t = Date.now();
    const value = await fn();
    const cpu = cpuSeconds();
    return { value, seconds: (Date.now() - t) / 1000, cpu: c === null || cpu === null ? null : cpu - c };
  };
  const best = <T>(runs: { value: T; seconds: number; cpu: number | null }[]) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const jobRuns = [];
  const bareRuns = [];
  for (let i = 0; i < repeat; i++) {
    log(`segments: job (${i + 1}/${repeat})...`);
    await rm(join(workDir, 'job'), { recursive: true, force: true });
    jobRuns.push(
      await timed(() =>
        segments({ inputs: [short], outputs: [join(workDir, 'job', 'matted.mp4')], model, segmentSeconds: 5, device: 'cpu', onWarning: () => {} }),
      ),
    );
    log(`segments: bare loop (${i + 1}/${repeat})...`);
    bareRuns.push(await timed(() => bareLoop(session, short, join(workDir, 'bare.mp4'), w, h)));
  }
  const jobRun = best(jobRuns);
  const bareRun = best(bareRuns);
  const job = jobRun.value;
  if (job.videos[0]!.status !== 'done') throw new Error(`segments job: ${job.videos[0]!.error}`);
  const frames = job.videos[0]!.frames;
  const jobSeconds = jobRun.seconds;
  const bareFrames = bareRun.value;
  const bareSeconds = bareRun.seconds;

  log('segments: seed method...');
  const seedRun = await timed(() => seedMethod(session, short, workDir, 5, w, h));
  const seedFrames = seedRun.value;
  const seedSeconds = seedRun.seconds;
  await session.release();

  log('segments: peak RSS, short and long source...');
  const rssShort = await jobRss(short, join(workDir, 'rss', 'short.mp4'));
  const rssLong = await jobRss(long, join(workDir, 'rss', 'long.mp4'));

  const fps = frames / jobSeconds;
  const bareFps = bareFrames / bareSeconds;
  const seedFps = seedFrames / seedSeconds;
  const rssRatio = rssLong.peakMB / rssShort.peakMB;
  const figures = {
    size: `${w}x${h}`,
    frames,
    jobSeconds: r2(jobSeconds),
    jobFps: r2(fps),
    bareFrames,
    bareSeconds: r2(bareSeconds),
    bareFps: r2(bareFps),
    seedFrames,
    seedSeconds: r2(seedSeconds),
    seedFps: r2(seedFps),
    peakRssMB: { short: r2(rssShort.peakMB), long: r2(rssLong.peakMB) },
    rssRatio: r2(rssRatio),
    meanBatch: r2(job.meanBatch),
    provider: job.provider,
    cpuSeconds: {
      job: jobRun.cpu === null ? null : r2(jobRun.cpu),
      bare: bareRun.cpu === null ? null : r2(bareRun.cpu),
      seed: seedRun.cpu === null ? null : r2(seedRun.cpu),
    },
    allRunSeconds: { job: jobRuns.map((r) => r2(r.seconds)), bare: bareRuns.map((r) => r2(r.seconds)) },
  };
  const cpuRatio = (a: number | null, b: number | null) => (a && b ? r2(b / a) : null);
  const rows: BenchRow[] = [
    {
      item: '8 segments',
      metric: `job frames/s (${w}x${h}, ${frames} frames, 5 s segments, carry)`,
      ours: String(r2(fps)),
      reference: `${r2(bareFps)} (bare decode → session.run → encode)`,
      ratio: r2(fps / bareFps),
      cpuRatio: cpuRatio(jobRun.cpu, bareRun.cpu),
      target: '≥ 0.9',
      met: fps / bareFps >= 0.9,
    },
    {
      item: '8 segments',
      metric: 'job vs the seed (split with re-encode, per-segment inference, concat)',
      ours: String(r2(fps)),
      reference: `${r2(seedFps)} (seed method)`,
      ratio: r2(fps / seedFps),
      cpuRatio: cpuRatio(jobRun.cpu, seedRun.cpu),
      target: '(info)',
      met: null,
    },
    {
      item: '8 segments',
      metric: `peak RSS ${base * (mode === 'smoke' ? 4 : 12)} s vs ${base * 2} s source (MB)`,
      ours: `${r2(rssLong.peakMB)} / ${r2(rssShort.peakMB)}`,
      reference: 'ratio',
      ratio: r2(rssRatio),
      target: '≤ 1.2',
      met: rssRatio <= 1.2,
    },
  ];
  return { rows, figures };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const mode = process.argv.includes('--smoke') ? 'smoke' : process.argv.includes('--quick') ? 'quick' : 'full';
  const { rows, figures } = await benchSegments(mode, (s) => process.stderr.write(`${s}\n`));
  for (const r of rows)
    process.stdout.write(
      `${r.item} | ${r.metric} | ${r.ours} | ${r.reference} | ${r.ratio} | cpu ${r.cpuRatio ?? ''} | ${r.target} | ${r.met === null ? '' : r.met ? 'yes' : 'NO'}\n`,
    );
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}
