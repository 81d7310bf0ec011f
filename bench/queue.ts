/**
 * Queue overhead: W `clipstream worker --exit_when_drained` on one Redis queue against W plain
 * `clipstream extract` runs splitting the same shards with --rank/--world (same processes, same
 * options, no queue), for W = 1, 2, 4 on this machine. Both sides are timed from spawn to the
 * last process's exit, in wall time and in CPU time (GNU time, ffmpeg included: spawned
 * directly, CLIPSTREAM_SPAWN=direct, so it is counted): on a shared machine the CPU ratio is the
 * steadier figure. The difference is what the queue costs: Redis round trips, and the unit
 * handed over one at a time (a worker feeds its units into one long-lived extract run, holding
 * --prefetch units ahead, so its pipeline does not drain between units; src/scale/lanes.ts).
 *
 *   npx tsx bench/queue.ts [--clips=32] [--per-shard=4] [--workers=1,2,4] [--repeats=3]   (run.ts calls benchQueue)
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
    repeats: number;
    queueSecondsAll: number[];
    localSecondsAll: number[];
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

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Measured {
  seconds: number;
  cpu: number | null;
}

/**
 * Runs the comparison on `shards` (one unit each) with `extractArgs` for every process.
 * Fair by construction: the same total concurrency on both sides (W workers of concurrency 1
 * against W static ranks, every process with the same options), models warm on both (each
 * process opens its models once and keeps them across its units; an untimed warm-up run first
 * fills the page cache), both timed from spawn to the last exit, the order of the two sides
 * alternating between `repeats` rounds, and the median reported (`repeats: 1, warmUp: false`: the
 * quick bench's single round, a check that the queue runs, not a figure to compare).
 * Needs redis-server; returns null (with a log line) where it is absent.
 */
export async function benchQueue(
  shards: string[],
  options: { workers?: number[]; repeats?: number; warmUp?: boolean; extractArgs?: string[]; log?: (s: string) => void } = {},
): Promise<QueueBenchResult | null> {
  const log = options.log ?? (() => {});
  const extractArgs = options.extractArgs ?? ['--device=cpu', '--threads=1', '--num_workers=1'];
  const repeats = Math.max(1, options.repeats ?? 3);
  let redis: RedisServer;
  try {
    redis = await startRedis();
  } catch (err) {
    log(`  queue bench skipped: ${(err as Error).message}`);
    return null;
  }
  const work = await mkdtemp(join(tmpdir(), 'clipstream-bench-queue-'));
  const runs: QueueBenchResult['runs'] = [];
  const list = shards.join('::');
  const check = async (out: string, what: string) => {
    const made = (await readdir(out)).filter((f) => f.endsWith('.msgpack')).length;
    if (made !== shards.length) throw new Error(`bench queue: expected ${shards.length} shards, ${what} made ${made}`);
  };
  // W runs splitting the list statically: the same processes and options, no queue.
  const local = async (w: number, out: string): Promise<Measured> => {
    const t = performance.now();
    const exits = await Promise.all(
      Array.from(
        { length: w },
        (_, rank) => start(['extract', `--tar_path=${list}`, `--out_path=${out}`, '--quiet', ...extractArgs, `--rank=${rank}`, `--world=${w}`]).exited,
      ),
    );
    const seconds = (performance.now() - t) / 1000;
    await check(out, `${w} static rank(s)`);
    return { seconds, cpu: sumCpu(exits) };
  };
  let round = 0;
  const queued = async (w: number, out: string): Promise<Measured> => {
    const queue = `bench-${w}-${round++}`;
    const add = start([
      'queue',
      'add',
      'extract',
      `--tar_path=${list}`,
      `--out_path=${out}`,
      ...extractArgs,
      `--redis=${redis.url}`,
      `--queue=${queue}`,
      '--attempts=1',
    ]);
    if ((await add.exited).code !== 0) throw new Error('bench queue: queue add failed');
    const t = performance.now();
    const exits = await Promise.all(
      Array.from({ length: w }, () => start(['worker', `--redis=${redis.url}`, `--queue=${queue}`, '--quiet', '--exit_when_drained']).exited),
    );
    const seconds = (performance.now() - t) / 1000;
    const s = await queueStatus(redis.url, queue);
    if (s.done !== shards.length)
      throw new Error(`bench queue: ${s.done} of ${shards.length} units done (${s.failed} failed: ${s.failures.map((f) => f.reason).join('; ')})`);
    await check(out, `${w} queue worker(s)`);
    return { seconds, cpu: sumCpu(exits) };
  };
  try {
    // Untimed: fills the page cache with the shards, the models and the code (skipped by the quick bench).
    if (options.warmUp ?? true) await local(1, join(work, 'warm-up'));
    for (const w of options.workers ?? [1, 2, 4]) {
      const q: Measured[] = [];
      const l: Measured[] = [];
      for (let rep = 0; rep < repeats; rep++) {
        // Alternate which side goes first, so a drift in the machine's load hits both alike.
        if (rep % 2 === 0) {
          l.push(await local(w, join(work, `local-${w}-${rep}`)));
          q.push(await queued(w, join(work, `queue-${w}-${rep}`)));
        } else {
          q.push(await queued(w, join(work, `queue-${w}-${rep}`)));
          l.push(await local(w, join(work, `local-${w}-${rep}`)));
        }
      }
      const queueSeconds = median(q.map((m) => m.seconds));
      const localSeconds = median(l.map((m) => m.seconds));
      const queueCpu = q.every((m) => m.cpu !== null) ? median(q.map((m) => m.cpu!)) : null;
      const localCpu = l.every((m) => m.cpu !== null) ? median(l.map((m) => m.cpu!)) : null;
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
        repeats,
        queueSecondsAll: q.map((m) => r2(m.seconds)),
        localSecondsAll: l.map((m) => r2(m.seconds)),
      };
      runs.push(run);
      const cpu = run.cpuOverhead === null ? '' : `; CPU ${run.queueCpuSeconds} s vs ${run.localCpuSeconds} s: overhead ${(run.cpuOverhead * 100).toFixed(1)}%`;
      log(
        `  ${w} worker(s), median of ${repeats}: queue ${run.queueSeconds} s (${run.queueUnitsPerSecond} units/s; ${run.queueSecondsAll.join(', ')}), ` +
          `${w} static rank(s) ${run.localSeconds} s (${run.localUnitsPerSecond} units/s; ${run.localSecondsAll.join(', ')}): wall overhead ${(run.overhead * 100).toFixed(1)}%${cpu}`,
      );
    }
  } finally {
    await redis.stop();
    await rm(work, { recursive: true, force: true });
  }
  const rows: BenchRow[] = runs.map((r) => ({
    item: '8 queue',
    metric: `${(options.workers ?? [1, 2, 4]).join(' vs ')} queue workers: ${shards.length} units, ${r.workers} worker(s), units/s (${r.repeats > 1 ? `median of ${r.repeats}` : 'one round'})`,
    ours: String(r.queueUnitsPerSecond),
    reference: `${r.localUnitsPerSecond} (one local run, same total concurrency: ${r.workers} × extract --rank/--world, no queue)`,
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
  const r = await benchQueue(set.shards, {
    workers: arg('workers', '1,2,4').split(',').map(Number),
    repeats: Number(arg('repeats', '3')),
    log: (s) => process.stderr.write(`${s}\n`),
  });
  if (r)
    for (const row of r.rows)
      console.log(`${row.metric}: ${row.ours} vs ${row.reference}, ratio ${row.ratio}, CPU-time ratio ${row.cpuRatio ?? '-'} (target ${row.target})`);
}
