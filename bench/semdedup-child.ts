/**
 * One `semdedup` run in its own process, so that its peak RSS is its own (the tests' memory,
 * rank and kill checks and bench/semdedup.ts use it). Reads a JSON job from argv[2] and prints
 * one line `SEMDEDUP_RESULT {...}`. With `killAfter`, the process SIGKILLs itself once that many
 * clusters were done by this run (their records written): a kill at a known point.
 *
 *   node --import tsx bench/semdedup-child.ts '{"features":["a.msgpack"],"out":"o","clusters":10}'
 */
import { semdedup } from '../src/jobs/semdedup.js';

export interface SemdedupChildJob {
  features: string[];
  out: string;
  clusters: number;
  eps?: number;
  engine?: 'onnx' | 'js';
  kmeansSample?: number;
  rank?: number;
  world?: number;
  killAfter?: number;
}

export interface SemdedupChildResult {
  seconds: number;
  /** Peak resident set of this process (getrusage's ru_maxrss), MB. */
  peakRssMB: number;
  rows: number;
  done: number;
  skipped: number;
  removed: number | null;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as SemdedupChildJob;
  const t0 = performance.now();
  const report = await semdedup({
    features: job.features,
    outputDir: job.out,
    clusters: job.clusters,
    eps: job.eps,
    engine: job.engine,
    kmeansSample: job.kmeansSample,
    partition: job.world ? { rank: job.rank ?? 0, world: job.world, from: 'options' } : undefined,
    onWarning: (w) => process.stderr.write(`warning: ${w.message}\n`),
    onProgress: (p) => {
      if (job.killAfter !== undefined && p.unitsDone - p.unitsSkipped >= job.killAfter) process.kill(process.pid, 'SIGKILL');
    },
  });
  const result: SemdedupChildResult = {
    seconds: (performance.now() - t0) / 1000,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    rows: report.rows,
    done: report.run.done,
    skipped: report.run.skipped,
    removed: report.removed,
  };
  process.stdout.write(`SEMDEDUP_RESULT ${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
