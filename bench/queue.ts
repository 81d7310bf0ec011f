/**
 * Queue overhead: W `clipstream worker --exit_when_drained` on one Redis queue against W plain
 * `clipstream extract` runs splitting the same shards with --rank/--world (same processes, same
 * options, no queue), for W = 1, 2, 4 on this machine. Both sides are timed from spawn to the
 * last process's exit, in wall time and in CPU time (GNU time, ffmpeg included: spawned
 * directly, CLIPSTREAM_SPAWN=direct, so it is counted): on a shared machine the CPU ratio is the
 * steadier figure. The difference is what the queue costs (Redis round trips, per-unit set-up,
 * the pipeline draining between units).
 *
 *   npx tsx bench/queue.ts [--clips=32] [--per-shard=4] [--workers=1,2,4]   (run.ts calls benchQueue)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queueStatus } from '../src/scale/queue.js';
import { startRedis, type RedisServer } from '../test/helpers/redis.js';
import type { BenchRow } from './measure.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'src', 'cli', 'run.ts');

export interface QueueBenchResult {
  units: number;
  runs: Array<{
    workers: number;
    queueSeconds: number;
    localSeconds: number;
    queueUnitsPerSecond: number;
    localUnitsPerSecond: number;
    overhead: number;
    queueCpuSeconds: number | null;
    localCpuSeconds: number | null;
    cpuOverhead: number | null;
  }>;
  rows: BenchRow[];
}

const GNU_TIME = '/usr/bin/time';

/** Starts the CLI under GNU time when present; `exited` gives the exit code and the CPU seconds it used. */
function start(args: string[]): { child: ChildProcess; exited: Promise<{ code: number | null; cpu: number | null }> } {
  const timed = existsSync(GNU_TIME);
  const argv = [process.execPath, '--import', 'tsx', CLI, ...args];
  const child = timed
    ? spawn(GNU_TIME, ['-f', 'BENCH_CPU %U %S', ...argv], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, CLIPSTREAM_SPAWN: 'direct' },
      })
    : spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CLIPSTREAM_SPAWN: 'direct' } });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = new Promise<{ code: number | null; cpu: number | null }>((r) =>
    child.on('close', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(`bench queue: ${args[0]} exited ${code}: ${err}\n`);
      const m = /BENCH_CPU ([\d.]+) ([\d.]+)/.exec(err);
      r({ code, cpu: m ? Number(m[1]) + Number(m[2]) : null });
    }),
  );
  return { child, exited };
}

const sumCpu = (xs: Array<{ cpu: number | null }>) => (xs.every((x) => x.cpu !== null) ? xs.reduce((n, x) => n + x.cpu!, 0) : null);

const r2 = (x: number) => Math.round(x * 100) / 100;

/**
 * Runs the comparison on `shards` (one unit each) with `extractArgs` for every process.
 * Needs redis-server; returns null (with a log line) where it is absent.
 */
export async function benchQueue(
  shards: string[],
  options: { workers?: number[]; extractArgs?: string[]; log?: (s: string) => void } = {},
): Promise<QueueBenchResult | null> {
  const log = options.log ?? (() => {});
  const extractArgs = options.extractArgs ?? ['--device=cpu', '--threads=1', '--num_workers=1'];
  let redis: RedisServer;
  try {
    redis = await startRedis();
  } catch (err) {
    log(`  queue bench skipped: ${(err as Error).message}`);
    return null;
  }
  const work = await mkdtemp(join(tmpdir(), 'clipstream-bench-queue-'));
  const runs: QueueBenchResult['runs'] = [];
  try {
    for (const w of options.workers ?? [1, 2, 4]) {
      // Reference: W runs splitting the list statically.
      const localOut = join(work, `local-${w}`);
      let t = performance.now();
      const locals = Array.from({ length: w }, (_, rank) =>
        start(['extract', `--tar_path=${shards.join('::')}`, `--out_path=${localOut}`, '--quiet', ...extractArgs, `--rank=${rank}`, `--world=${w}`]),
      );
      const localExits = await Promise.all(locals.map((p) => p.exited));
      const localSeconds = (performance.now() - t) / 1000;

      const queue = `bench-${w}`;
      const queueOut = join(work, `queue-${w}`);
      const add = start([
        'queue',
        'add',
        'extract',
        `--tar_path=${shards.join('::')}`,
        `--out_path=${queueOut}`,
        ...extractArgs,
        `--redis=${redis.url}`,
        `--queue=${queue}`,
        '--attempts=1',
      ]);
      if ((await add.exited).code !== 0) throw new Error('bench queue: queue add failed');
      t = performance.now();
      const workers = Array.from({ length: w }, () => start(['worker', `--redis=${redis.url}`, `--queue=${queue}`, '--quiet', '--exit_when_drained']));
      const queueExits = await Promise.all(workers.map((p) => p.exited));
      const queueSeconds = (performance.now() - t) / 1000;
      const s = await queueStatus(redis.url, queue);
      if (s.done !== shards.length)
        throw new Error(`bench queue: ${s.done} of ${shards.length} units done (${s.failed} failed: ${s.failures.map((f) => f.reason).join('; ')})`);
      const made = [
        (await readdir(localOut)).filter((f) => f.endsWith('.msgpack')).length,
        (await readdir(queueOut)).filter((f) => f.endsWith('.msgpack')).length,
      ];
      if (made[0] !== shards.length || made[1] !== shards.length)
        throw new Error(`bench queue: expected ${shards.length} shards, local made ${made[0]}, queue ${made[1]}`);
      const queueCpu = sumCpu(queueExits);
      const localCpu = sumCpu(localExits);
      const run = {
        workers: w,
        queueSeconds: r2(queueSeconds),
        localSeconds: r2(localSeconds),
        queueUnitsPerSecond: r2(shards.length / queueSeconds),
        localUnitsPerSecond: r2(shards.length / localSeconds),
        overhead: r2(queueSeconds / localSeconds - 1),
        queueCpuSeconds: queueCpu === null ? null : r2(queueCpu),
        localCpuSeconds: localCpu === null ? null : r2(localCpu),
        cpuOverhead: queueCpu === null || localCpu === null ? null : r2(queueCpu / localCpu - 1),
      };
      runs.push(run);
      const cpu = run.cpuOverhead === null ? '' : `; CPU ${run.queueCpuSeconds} s vs ${run.localCpuSeconds} s: overhead ${(run.cpuOverhead * 100).toFixed(1)}%`;
      log(
        `  ${w} worker(s): queue ${run.queueSeconds} s (${run.queueUnitsPerSecond} units/s), ${w} static rank(s) ${run.localSeconds} s (${run.localUnitsPerSecond} units/s): wall overhead ${(run.overhead * 100).toFixed(1)}%${cpu}`,
      );
    }
  } finally {
    await redis.stop();
    await rm(work, { recursive: true, force: true });
  }
  const rows: BenchRow[] = runs.map((r) => ({
    item: '8 queue',
    metric: `${shards.length} units, ${r.workers} worker(s) (units/s)`,
    ours: String(r.queueUnitsPerSecond),
    reference: `${r.localUnitsPerSecond} (${r.workers} × extract --rank/--world, no queue)`,
    ratio: r2(r.localSeconds / r.queueSeconds),
    cpuRatio: r.localCpuSeconds && r.queueCpuSeconds ? r2(r.localCpuSeconds / r.queueCpuSeconds) : null,
    target: '≥ 0.95',
    met: r.localSeconds / r.queueSeconds >= 0.95,
  }));
  return { units: shards.length, runs, rows };
}

// Standalone: npx tsx bench/queue.ts
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const arg = (name: string, def: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
  const { makeClipSet, QUICK_WORKLOAD } = await import('./workload.js');
  const set = await makeClipSet(join(ROOT, '.bench'), QUICK_WORKLOAD, Number(arg('clips', '32')), Number(arg('per-shard', '4')));
  const r = await benchQueue(set.shards, { workers: arg('workers', '1,2,4').split(',').map(Number), log: (s) => process.stderr.write(`${s}\n`) });
  if (r)
    for (const row of r.rows)
      console.log(`${row.metric}: ${row.ours} vs ${row.reference}, ratio ${row.ratio}, CPU-time ratio ${row.cpuRatio ?? '-'} (target ${row.target})`);
}
