/**
 * The `semdedup` rows of `npm run bench`:
 *   - scale: N synthetic 2,304-d embeddings written straight into the float16 spill (no feature
 *     shards: 1 M rows of float32 msgpack would be 9.2 GB more disk), 1 % of them planted
 *     near-copies; then, in a process of its own (peak RSS its own), everything after the spill:
 *     k-means (sample, k-means++, Lloyd), assigning and grouping every row, every cluster, the
 *     tables. Clusters: N / 1000. Wall time per phase, peak RSS, clips removed vs planted;
 *   - flat in shards: the whole job from feature shards of 100 clips × 2,304 values, 10 times the
 *     shards vs 1 time, peak RSS of each run in its own process;
 *   - engines: the same run with ONNX Runtime's Gemm and with JavaScript loops, side by side.
 *
 *   npx tsx bench/semdedup.ts [--quick|--smoke] [--rows 100000,300000] [--scale-only] [--trace] [--removed-dir DIR]
 *   alone (--trace: memory per phase and per 50 clusters on stderr and in the figures; --removed-dir: the
 *   removed ids of each scale run written to DIR/removed-N.txt); bench/run.ts calls benchSemdedup()
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openGemm } from '../src/semdedup/gemm.js';
import { resolveSemdedupOptions } from '../src/semdedup/options.js';
import { fitClusters, WORK_DIR, workPath } from '../src/semdedup/prepare.js';
import { encodeHalfRow, SpillWriter } from '../src/semdedup/spill.js';
import { clusterRecords, PreparedClusters, writeTables } from '../src/semdedup/units.js';
import { clusterUnits } from '../src/semdedup/options.js';
import { gaussian, plantedShards } from '../test/helpers/semdedup-data.js';
import type { SemdedupChildResult } from './semdedup-child.js';
import type { BenchRow } from './measure.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const r2 = (x: number) => Math.round(x * 100) / 100;
const DIM = 2304;

/** Writes `rows` unit vectors (topics + noise; every 100th row a near-copy of the row before) as the spill and ids.txt. */
async function writeSyntheticSpill(outDir: string, rows: number, seed: number): Promise<{ planted: number; seconds: number }> {
  const t0 = performance.now();
  await rm(outDir, { recursive: true, force: true });
  await mkdir(join(outDir, WORK_DIR, 'clusters'), { recursive: true });
  const g = gaussian(seed);
  const topics = 1000;
  const pool = 4096;
  // Topic directions and a pool of noise vectors; a row is a topic plus two pooled noises.
  const topic = Float32Array.from({ length: topics * DIM }, () => g());
  const noise = Float32Array.from({ length: pool * DIM }, () => g() * 0.8);
  const w = await SpillWriter.create(join(outDir, WORK_DIR, 'embeddings.f16'), DIM, 1024);
  const ids = await open(join(outDir, WORK_DIR, 'ids.txt'), 'w');
  const v = new Float64Array(DIM);
  const prev = new Float64Array(DIM);
  const half = new Uint16Array(1024 * DIM);
  let fill = 0;
  let planted = 0;
  let lines = '';
  for (let r = 0; r < rows; r++) {
    const copy = r % 100 === 99;
    if (copy) {
      planted++;
      const a = Math.floor(((g() + 10) * 7919) % pool);
      // Relative noise about 0.02: cosine to the row before about 0.9998.
      for (let j = 0; j < DIM; j++) v[j] = prev[j]! + (0.025 / Math.sqrt(DIM)) * noise[a * DIM + j]!;
    } else {
      const t = r % topics;
      const a = (r * 7 + 3) % pool;
      const b = (r * 13 + 5) % pool;
      const sa = g();
      for (let j = 0; j < DIM; j++) v[j] = topic[t * DIM + j]! + sa * noise[a * DIM + j]! + noise[b * DIM + ((j + r) % DIM)]!;
    }
    let s = 0;
    for (let j = 0; j < DIM; j++) s += v[j]! * v[j]!;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < DIM; j++) {
      v[j]! *= inv;
      prev[j] = v[j]!;
    }
    encodeHalfRow(v, half, fill * DIM);
    lines += `${copy ? 'copy' : 'clip'}_${r}\n`;
    if (++fill === 1024) {
      await w.addHalf(half, fill);
      await ids.write(lines);
      fill = 0;
      lines = '';
    }
  }
  if (fill > 0) await w.addHalf(half, fill);
  await ids.write(lines);
  await w.finish();
  await ids.close();
  return { planted, seconds: (performance.now() - t0) / 1000 };
}

interface ScaleResult {
  rows: number;
  clusters: number;
  iterations: number;
  fitSeconds: number;
  clusterSeconds: number;
  tableSeconds: number;
  removed: number;
  peakRssMB: number;
  engine: string;
  /** With `trace`: memory (MB) at each phase's end, the highest RSS seen during it, and per 50 clusters. */
  trace?: MemoryMark[];
  /** The largest cluster's rows. */
  largestCluster: number;
}

interface MemoryMark {
  at: string;
  seconds: number;
  rss: number;
  /** Highest RSS sampled (every 100 ms) since the mark before. */
  peakSince: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Marks memory at phase boundaries, sampling RSS every 100 ms in between (and printing each mark to stderr). */
function memoryTracer(t0: number) {
  const marks: MemoryMark[] = [];
  const mb = (x: number) => Math.round(x / 104857.6) / 10; // MiB, as peakRssMB (ru_maxrss / 1024)
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 100);
  timer.unref();
  return {
    marks,
    mark(at: string) {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.rss);
      const e: MemoryMark = {
        at,
        seconds: r2((performance.now() - t0) / 1000),
        rss: mb(m.rss),
        peakSince: mb(peak),
        heapUsed: mb(m.heapUsed),
        external: mb(m.external),
        arrayBuffers: mb(m.arrayBuffers),
      };
      marks.push(e);
      process.stderr.write(`memory ${JSON.stringify(e)}\n`);
      peak = 0;
    },
    stop: () => clearInterval(timer),
  };
}

/** In the child: everything after the spill, from the spill in `outDir`. */
async function runFromSpill(job: {
  out: string;
  clusters: number;
  engine: 'onnx' | 'js';
  maxIter: number;
  kmeansSample: number;
  trace?: boolean;
  /** Writes the removed clip ids here, sorted, one a line (to compare two versions' results). */
  removedTo?: string;
}): Promise<ScaleResult> {
  const o = resolveSemdedupOptions({
    features: 'synthetic',
    outputDir: job.out,
    clusters: job.clusters,
    engine: job.engine,
    maxIter: job.maxIter,
    kmeansSample: job.kmeansSample,
  });
  const gemm = await openGemm(o.engine);
  const t0 = performance.now();
  const tracer = job.trace ? memoryTracer(t0) : null;
  tracer?.mark('start');
  const fitted = await fitClusters(
    o,
    gemm,
    (l) => {
      process.stderr.write(`${l}\n`);
      tracer?.mark(l.replace(/^semdedup: /, ''));
    },
    0,
  );
  const t1 = performance.now();
  const prepared = { key: 'bench', skipped: [], ...fitted };
  await writeFile(workPath(job.out, 'prepared.json'), JSON.stringify(prepared));
  const units = clusterUnits(o.clusters);
  const store = clusterRecords(job.out);
  const clusters = await PreparedClusters.open(job.out, prepared);
  for (let c = 0; c < units.length; c++) {
    await store.write(units[c]!, await clusters.run(c, { eps: o.eps, keep: o.keep, gemm }));
    if ((c + 1) % 50 === 0 || c + 1 === units.length) tracer?.mark(`${c + 1} clusters`);
  }
  await clusters.close();
  const t2 = performance.now();
  const t = await writeTables(job.out, units, store);
  const t3 = performance.now();
  tracer?.mark('tables');
  tracer?.stop();
  // The job's peak, taken before the checks below read the whole table (1 M lines at 1 M rows).
  const peakRssMB = process.resourceUsage().maxRSS / 1024;
  await gemm.close();
  if (job.removedTo) {
    const removed: string[] = [];
    for (const line of (await readFile(join(job.out, 'semdedup.csv'), 'utf8')).split('\n').slice(1)) {
      const f = line.split(',');
      if (f[2] === 'false') removed.push(`${f[0]} ${f[4]}`);
    }
    await writeFile(job.removedTo, `${removed.sort().join('\n')}\n`);
    // And the k-means results, byte for byte: a change that keeps the removed set but moves a centroid shows here.
    const hashes: string[] = [];
    for (const f of ['init_centroids.npy', 'centroids.npy', 'labels.i32', 'members.i32'])
      hashes.push(
        `${createHash('sha256')
          .update(await readFile(workPath(job.out, f)))
          .digest('hex')}  ${f}`,
      );
    await writeFile(`${job.removedTo}.hashes`, `${hashes.join('\n')}\n`);
  }
  return {
    rows: fitted.rows,
    clusters: fitted.clusters,
    iterations: fitted.iterations,
    fitSeconds: (t1 - t0) / 1000,
    clusterSeconds: (t2 - t1) / 1000,
    tableSeconds: (t3 - t2) / 1000,
    removed: t.rows - t.kept,
    peakRssMB,
    engine: gemm.engine,
    largestCluster: Math.max(...fitted.counts),
    ...(tracer ? { trace: tracer.marks } : {}),
  };
}

function child<T>(args: string[], marker: string): Promise<T> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: resolve(HERE, '..'), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(`${marker} `));
      if (code !== 0 || !line) rej(new Error(`bench child ${args.join(' ')} exited ${code}`));
      else res(JSON.parse(line.slice(marker.length + 1)) as T);
    });
  });
}

const scaleChild = (job: Parameters<typeof runFromSpill>[0]) => child<ScaleResult>([join(HERE, 'semdedup.ts'), '--child', JSON.stringify(job)], 'SCALE_RESULT');
const jobChild = (job: object) => child<SemdedupChildResult>([join(HERE, 'semdedup-child.ts'), JSON.stringify(job)], 'SEMDEDUP_RESULT');

export async function benchSemdedup(
  mode: 'full' | 'quick' | 'smoke',
  log: (s: string) => void,
  workDir = '.bench/semdedup',
  sizes?: number[],
  scaleOnly = false,
  extra: { trace?: boolean; removedDir?: string } = {},
): Promise<{ rows: BenchRow[]; figures: Record<string, unknown> }> {
  const rows: BenchRow[] = [];
  const figures: Record<string, unknown> = { loadAverageAtStart: loadavg().map(r2) };
  const scale = sizes ?? (mode === 'full' ? [100_000, 300_000] : mode === 'quick' ? [20_000] : [3000]);
  const scaleRuns: Record<string, unknown>[] = [];
  for (const n of scale) {
    const out = join(workDir, `scale-${n}`);
    log(`semdedup: writing ${n} × ${DIM} float16 rows...`);
    const spill = await writeSyntheticSpill(out, n, 1);
    const clusters = Math.max(2, Math.round(n / 1000));
    log(`semdedup: k-means (${clusters} clusters), assignment, clusters, tables on ${n} rows...`);
    const removedTo = extra.removedDir ? resolve(extra.removedDir, `removed-${n}.txt`) : undefined;
    const r = await scaleChild({ out, clusters, engine: 'onnx', maxIter: 20, kmeansSample: 50_000, trace: extra.trace, removedTo });
    scaleRuns.push({ ...r, planted: spill.planted, spillSeconds: r2(spill.seconds), spillGB: r2((n * DIM * 2) / 1e9), load: loadavg().map(r2) });
    await rm(out, { recursive: true, force: true });
    rows.push({
      item: 'semdedup scale',
      metric: `${n} × ${DIM}, ${clusters} clusters: s for k-means + assign / clusters / tables; peak RSS MB`,
      ours: `${r2(r.fitSeconds)} / ${r2(r.clusterSeconds)} / ${r2(r.tableSeconds)}; ${r2(r.peakRssMB)} MB`,
      reference: `spill ${r2((n * DIM * 2) / 1e9)} GB on disk; ${r.removed} removed, ${spill.planted} planted`,
      ratio: null,
      target: '(info)',
      met: null,
    });
  }
  figures.scale = scaleRuns;
  if (scaleOnly) return { rows, figures };

  // Flat in the number of shards: the whole job from shards of 100 clips.
  const [fewShards, manyShards] = mode === 'full' ? [20, 200] : mode === 'quick' ? [5, 50] : [2, 20];
  const runs: SemdedupChildResult[] = [];
  for (const shards of [fewShards, manyShards]) {
    const dir = join(workDir, `shards-${shards}`);
    await rm(dir, { recursive: true, force: true });
    log(`semdedup: ${shards} feature shards of 100 clips × ${DIM}...`);
    const set = await plantedShards(dir, { originals: shards * 99, copies: shards, dim: DIM, shards, seed: shards });
    runs.push(await jobChild({ features: set.shards, out: join(dir, 'out'), clusters: 10 }));
    await rm(dir, { recursive: true, force: true });
  }
  const rssRatio = runs[1]!.peakRssMB / runs[0]!.peakRssMB;
  figures.shards = { fewShards, manyShards, runs };
  rows.push({
    item: 'semdedup memory',
    metric: `peak RSS, ${manyShards} vs ${fewShards} shards of 100 clips × ${DIM} (MB)`,
    ours: `${r2(runs[1]!.peakRssMB)} / ${r2(runs[0]!.peakRssMB)}`,
    reference: 'ratio',
    ratio: r2(rssRatio),
    target: '≤ 1.2',
    met: rssRatio <= 1.2,
  });

  // Engines side by side on one spill.
  const n = mode === 'full' ? 5000 : mode === 'quick' ? 2000 : 500;
  const out = join(workDir, 'engines');
  await writeSyntheticSpill(out, n, 2);
  const onnx = await scaleChild({ out, clusters: 5, engine: 'onnx', maxIter: 10, kmeansSample: 50_000 });
  const js = await scaleChild({ out, clusters: 5, engine: 'js', maxIter: 10, kmeansSample: 50_000 });
  await rm(out, { recursive: true, force: true });
  const tOnnx = onnx.fitSeconds + onnx.clusterSeconds;
  const tJs = js.fitSeconds + js.clusterSeconds;
  figures.engines = { rows: n, onnx, js };
  rows.push({
    item: 'semdedup engine',
    metric: `s for k-means + clusters, ${n} × ${DIM}, 5 clusters: ONNX Runtime Gemm vs JS loops`,
    ours: String(r2(tOnnx)),
    reference: `${r2(tJs)} (JS loops)`,
    ratio: r2(tOnnx / tJs),
    target: '< 1 (keep the faster)',
    met: tOnnx < tJs,
  });
  figures.loadAverageAtEnd = loadavg().map(r2);
  return { rows, figures };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--child');
  if (i > 0) {
    const r = await runFromSpill(JSON.parse(process.argv[i + 1]!));
    process.stdout.write(`SCALE_RESULT ${JSON.stringify(r)}\n`);
  } else {
    const mode = process.argv.includes('--smoke') ? 'smoke' : process.argv.includes('--quick') ? 'quick' : 'full';
    const s = process.argv.indexOf('--rows');
    const sizes = s > 0 ? process.argv[s + 1]!.split(',').map(Number) : undefined;
    const { rows, figures } = await benchSemdedup(
      mode,
      (l) => process.stderr.write(`${l}\n`),
      join(resolve(HERE, '..'), '.bench', 'semdedup'),
      sizes,
      process.argv.includes('--scale-only'),
      {
        trace: process.argv.includes('--trace'),
        removedDir: process.argv.includes('--removed-dir') ? process.argv[process.argv.indexOf('--removed-dir') + 1] : undefined,
      },
    );
    for (const r of rows)
      process.stdout.write(
        `${r.item} | ${r.metric} | ${r.ours} | ${r.reference} | ${r.ratio ?? ''} | ${r.target} | ${r.met === null ? '' : r.met ? 'yes' : 'NO'}\n`,
      );
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  }
}
