/**
 * One `extract` run in its own process, so that its peak RSS is its own. Reads a JSON job from
 * argv[2], samples RSS every `sampleMs`, and prints one JSON line (prefixed `BENCH_RESULT `).
 *
 *   node --import tsx bench/child.ts '{"shards":[...],"out":".bench/out/x","batchSize":2}'
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { spawnHelperPid } from '../src/media/spawner.js';
import { extract } from '../src/jobs/extract.js';
import { cpuSeconds } from './measure.js';

export interface ChildJob {
  shards: string[];
  out: string;
  batchSize?: number;
  numWorkers?: number;
  intraOpThreads?: number;
  threads?: number;
  sampleMs?: number;
}

export interface ChildResult {
  seconds: number;
  /** CPU seconds of the run, this process and its ffmpeg children. */
  cpuSeconds: number | null;
  clips: number;
  failed: number;
  clipsPerSecond: number;
  peakRssMB: number;
  /** [seconds since start, RSS MB, clips done, V8 heapUsed MB, external MB (Buffers, ORT tensors' JS side)] */
  rss: Array<[number, number, number, number, number]>;
  /** Seconds from the start of extract to the first clip done (model loads, worker start, pipeline fill). */
  firstClipSeconds: number | null;
  /** [clips done, seconds since start], one per clip. */
  progress: Array<[number, number]>;
  batches: { visual: number[]; audio: number[] };
  warnings: string[];
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as ChildJob;
  await rm(job.out, { recursive: true, force: true });
  const c0 = cpuSeconds();
  const t0 = performance.now();
  const rss: ChildResult['rss'] = [];
  const progress: ChildResult['progress'] = [];
  const batches = { visual: [] as number[], audio: [] as number[] };
  const warnings: string[] = [];
  let done = 0;
  let peak = 0;
  // The spawn helper that starts ffmpeg is part of extract's footprint: its RSS is added.
  const helperRss = () => {
    const pid = spawnHelperPid();
    if (pid === null) return 0;
    try {
      return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
    } catch {
      return 0;
    }
  };
  const sample = () => {
    const m = process.memoryUsage();
    m.rss += helperRss();
    if (m.rss > peak) peak = m.rss;
    rss.push([(performance.now() - t0) / 1000, m.rss / 2 ** 20, done, m.heapUsed / 2 ** 20, m.external / 2 ** 20]);
  };
  const timer = setInterval(sample, job.sampleMs ?? 250);
  const report = await extract({
    tarPath: job.shards,
    outputDir: job.out,
    batchSize: job.batchSize,
    numWorkers: job.numWorkers,
    intraOpThreads: job.intraOpThreads,
    threads: job.threads,
    device: 'cpu',
    overwrite: true,
    onWarning: (w) => warnings.push(w.message),
    onBatch: (kind, n) => batches[kind].push(n),
    onProgress: (p) => {
      const d = p.clipsDone + p.clipsFailed + p.clipsSkipped;
      if (d > done) {
        done = d;
        progress.push([d, (performance.now() - t0) / 1000]);
      }
    },
  });
  clearInterval(timer);
  sample();
  const seconds = (performance.now() - t0) / 1000;
  const c1 = cpuSeconds();
  const result: ChildResult = {
    seconds,
    cpuSeconds: c0 === null || c1 === null ? null : c1 - c0,
    clips: report.clipsWritten,
    failed: report.clipsFailed + report.clipsSkipped,
    clipsPerSecond: report.clipsWritten / seconds,
    peakRssMB: peak / 2 ** 20,
    firstClipSeconds: progress[0]?.[1] ?? null,
    rss,
    progress,
    batches,
    warnings: warnings.slice(0, 10),
  };
  await rm(job.out, { recursive: true, force: true });
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
