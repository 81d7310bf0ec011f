/**
 * The shared step of `semdedup`, done once per output folder before any cluster: read the
 * embeddings from the feature shards into the float16 spill, fit k-means, assign every clip,
 * and group the clips by cluster. Whichever run (rank, queue worker) comes first does it under
 * a lock (`.semdedup.prepare.lock`); the others wait for the lock and then read what it wrote.
 * Its last write is `.semdedup/prepared.json` (atomic); a run killed before it leaves no such
 * file, and the next run does the step again from the start. A run with other options or
 * changed shards (size, mtime) also starts again, dropping the clusters done before.
 *
 * `.semdedup/` holds (every file read with bounded, positional reads):
 * - `embeddings.f16`: the spill (./spill.ts), one row per clip in shard order; `ids.txt` the clip ids;
 * - `sample.f16`: the rows k-means is fitted on, when fewer than all;
 * - `init_centroids.npy`, `centroids.npy`: the k-means++ start and the fitted centroids (float64, numpy's format);
 * - `labels.i32`: each row's cluster; `members.i32` and `member_ids.txt`: rows and ids grouped by cluster;
 * - `prepared.json`: row count, dimension, the clusters' sizes and offsets, what was skipped;
 * - `clusters/cluster-NNNNNN.csv`: one record per finished cluster (the units).
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { ClipstreamError } from '../errors.js';
import { readFeatureShard } from '../sinks/feature-shard-files.js';
import type { FeatureRecord, Tensor } from '../types.js';
import { writeFileAtomic } from '../util/atomic.js';
import { waitForLock } from '../util/lock.js';
import type { Gemm } from './gemm.js';
import { assignAll, copySample, kmeansPlusPlus, lloyd, sampleIndices } from './kmeans.js';
import { mulberry32 } from '../util/random.js';
import type { ResolvedSemdedupOptions } from './options.js';
import { decodeHalfRows, SpillReader, SpillWriter } from './spill.js';

export const WORK_DIR = '.semdedup';

export interface Prepared {
  /** What the preparation was made from; a run with another key starts again. */
  key: string;
  rows: number;
  dim: number;
  /** Clusters with rows: min(clusters asked, rows). Units past it are empty. */
  clusters: number;
  /** Rows per cluster. */
  counts: number[];
  /** Per cluster: first row in members.i32, first byte in member_ids.txt. */
  memberStart: number[];
  idStart: number[];
  iterations: number;
  converged: boolean;
  fitRows: number;
  /** Shards and records left out, with why. */
  skipped: { shard: string; reason: string; records: number }[];
}

export function workPath(outputDir: string, name: string): string {
  return join(outputDir, WORK_DIR, name);
}

/** The key of a preparation: the options that change it and each shard's size and mtime. */
export async function preparationKey(o: ResolvedSemdedupOptions): Promise<string> {
  const shards = await Promise.all(
    o.shards.map(async (s) => {
      const st = await stat(s).catch(() => null);
      return [s, st?.size ?? null, st?.mtimeMs ?? null];
    }),
  );
  const { key, featureSet, clusters, seed, maxIter, kmeansSample, initSample, eps, keep } = o;
  return JSON.stringify({ v: 1, key, featureSet, clusters, seed, maxIter, kmeansSample, initSample, eps, keep, shards });
}

/** The preparation of this folder if it is there and was made with `key`, else null. */
export async function readPrepared(outputDir: string, key: string): Promise<Prepared | null> {
  try {
    const p = JSON.parse(await readFile(workPath(outputDir, 'prepared.json'), 'utf8')) as Prepared;
    return p.key === key ? p : null;
  } catch {
    return null;
  }
}

/** Makes sure the folder is prepared for these options (waiting for a run that is preparing it). */
export async function ensurePrepared(o: ResolvedSemdedupOptions, gemm: Gemm, log: (line: string) => void): Promise<Prepared> {
  const key = await preparationKey(o);
  await mkdir(o.outputDir, { recursive: true });
  const lock = await waitForLock(join(o.outputDir, '.semdedup.prepare.lock'), { owner: 'semdedup', pollMs: 200, signal: o.signal });
  try {
    const before = o.overwrite ? null : await readPrepared(o.outputDir, key);
    if (before) return before;
    await rm(join(o.outputDir, WORK_DIR), { recursive: true, force: true });
    await mkdir(join(o.outputDir, WORK_DIR, 'clusters'), { recursive: true });
    const prepared = await prepare(o, key, gemm, log);
    await writeFileAtomic(workPath(o.outputDir, 'prepared.json'), `${JSON.stringify(prepared)}\n`);
    return prepared;
  } finally {
    await lock?.release();
  }
}

/** One clip's vector: the array itself when 1-D, else the mean over every axis but the last. */
export function poolTensor(t: Tensor): Float64Array {
  const d = t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1]!;
  const out = new Float64Array(d);
  const n = d === 0 ? 0 : t.data.length / d;
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) out[j]! += t.data[r * d + j]!;
  if (n > 1) for (let j = 0; j < d; j++) out[j]! /= n;
  return out;
}

/** The clip id of a record: its webdataset key, else its file name without the extension. */
export function clipIdOf(r: FeatureRecord): string {
  return r.__key__ ?? basename(r.filename, extname(r.filename));
}

async function prepare(o: ResolvedSemdedupOptions, key: string, gemm: Gemm, log: (line: string) => void): Promise<Prepared> {
  const skipped: Prepared['skipped'] = [];
  const spillPath = workPath(o.outputDir, 'embeddings.f16');
  let writer: SpillWriter | null = null;
  const ids = await open(workPath(o.outputDir, 'ids.txt'), 'w');
  let dim = 0;
  try {
    for (const shard of o.shards) {
      o.signal?.throwIfAborted();
      let records: FeatureRecord[];
      try {
        records = await readFeatureShard(shard);
      } catch (err) {
        const reason = (err as Error).message;
        skipped.push({ shard, reason, records: 0 });
        o.onWarning(new ClipstreamError('ERR_FORMAT', `semdedup: skipped feature shard ${shard}: ${reason}`, { where: { file: shard } }));
        continue;
      }
      const why = new Map<string, number>();
      let lines = '';
      for (const r of records) {
        const set = o.featureSet === 'visual' ? r.visual_features : r.audio_features;
        const t = set?.[0]?.feat_array?.[o.key];
        let problem: string | null = null;
        let v: Float64Array | null = null;
        if (!t) problem = `no ${o.featureSet} ${o.key}`;
        else {
          v = poolTensor(t);
          if (dim === 0) dim = v.length;
          let s = 0;
          for (const x of v) s += x * x;
          if (v.length !== dim) problem = `${o.key} has ${v.length} values, not ${dim} as the first clip's`;
          else if (!(s > 0) || !Number.isFinite(s)) problem = `${o.key} is zero or not finite`;
          else {
            const inv = 1 / Math.sqrt(s);
            for (let j = 0; j < dim; j++) v[j]! *= inv;
          }
        }
        if (problem !== null || v === null) {
          why.set(problem!, (why.get(problem!) ?? 0) + 1);
          continue;
        }
        writer ??= await SpillWriter.create(spillPath, dim);
        await writer.add(v);
        lines += `${clipIdOf(r).replace(/[\r\n]/g, ' ')}\n`;
      }
      if (lines) await ids.write(lines);
      for (const [reason, n] of why) {
        skipped.push({ shard, reason, records: n });
        o.onWarning(new ClipstreamError('ERR_FORMAT', `semdedup: ${shard}: ${n} record(s) left out: ${reason}`, { where: { file: shard } }));
      }
    }
    if (!writer) {
      throw new ClipstreamError('ERR_FORMAT', `semdedup: no embedding found (${o.featureSet} ${o.key}) in ${o.shards.length} feature shard(s)`, {
        where: { file: o.shards[0]! },
      });
    }
    await writer.finish();
    await ids.sync();
  } catch (err) {
    await writer?.abort();
    throw err;
  } finally {
    await ids.close().catch(() => {});
  }
  const fitted = await fitClusters(o, gemm, log, o.shards.length);
  return { key, ...fitted, skipped };
}

/**
 * From a spill and its ids (`embeddings.f16`, `ids.txt` in the work folder): the k-means fit,
 * every row's cluster, and the rows grouped by cluster. The bench starts here with a spill it
 * wrote itself.
 */
export async function fitClusters(
  o: ResolvedSemdedupOptions,
  gemm: Gemm,
  log: (line: string) => void,
  shardCount: number,
): Promise<Omit<Prepared, 'key' | 'skipped'>> {
  const spill = await SpillReader.open(workPath(o.outputDir, 'embeddings.f16'));
  try {
    const n = spill.rows;
    const dim = spill.dim;
    log(`semdedup: ${n} embeddings of ${dim} values spilled (float16) from ${shardCount} shard(s)`);
    const rand = mulberry32(o.seed);
    // The fit sample: all rows, or a uniform sample copied to a spill of its own.
    let fit = spill;
    if (n > o.kmeansSample) {
      const w = await SpillWriter.create(workPath(o.outputDir, 'sample.f16'), dim);
      await copySample(spill, w, o.kmeansSample, rand);
      await w.finish();
      fit = await SpillReader.open(w.path);
    }
    let fitted: { centers: Float64Array; k: number; iterations: number; converged: boolean };
    const fitRows = fit.rows;
    try {
      fitted = await fitKMeans(fit, o, rand, gemm, log);
    } finally {
      // Closed (and its chunk buffers dropped) before every row is assigned.
      if (fit !== spill) await fit.close();
    }
    const grouped = await groupByCluster(o, spill, fitted.centers, fitted.k, gemm);
    log(`semdedup: ${n} rows assigned and grouped by cluster`);
    return { rows: n, dim, clusters: fitted.k, ...grouped, iterations: fitted.iterations, converged: fitted.converged, fitRows };
  } finally {
    await spill.close();
  }
}

/**
 * k-means on the fit sample: the k-means++ start (init_centroids.npy), then Lloyd (centroids.npy).
 * A function of its own, so that the start and Lloyd's buffers are garbage once it returns.
 */
async function fitKMeans(
  fit: SpillReader,
  o: ResolvedSemdedupOptions,
  rand: () => number,
  gemm: Gemm,
  log: (line: string) => void,
): Promise<{ centers: Float64Array; k: number; iterations: number; converged: boolean }> {
  const dim = fit.dim;
  const init = await plusPlusStart(fit, o, rand, gemm);
  const k = init.length / dim;
  log(`semdedup: k-means++ start, ${k} centroids from ${Math.min(o.initSample, fit.rows)} rows`);
  await writeFileAtomic(workPath(o.outputDir, 'init_centroids.npy'), npyFloat64(init, [k, dim]));
  const fitted = await lloyd(fit, init, k, o.maxIter, gemm, { chunkRows: o.chunkRows, signal: o.signal });
  await writeFileAtomic(workPath(o.outputDir, 'centroids.npy'), npyFloat64(fitted.centers, [k, dim]));
  log(`semdedup: k-means on ${fit.rows} rows, ${k} clusters, ${fitted.iterations} iteration(s)${fitted.converged ? ' (converged)' : ''}`);
  return { centers: fitted.centers, k, iterations: fitted.iterations, converged: fitted.converged };
}

/**
 * The k-means++ start on `o.initSample` rows of the fit sample, held in memory as float32 only
 * while it runs (a function of its own, so that nothing keeps them once it returns).
 */
async function plusPlusStart(fit: SpillReader, o: ResolvedSemdedupOptions, rand: () => number, gemm: Gemm): Promise<Float64Array> {
  const dim = fit.dim;
  const initRows = [...sampleIndices(fit.rows, o.initSample, rand)];
  // Read and decoded a chunk at a time: the float32 rows only, not their float16 copy besides.
  const x = new Float32Array(initRows.length * dim);
  const half = new Uint16Array(Math.min(1024, initRows.length) * dim);
  for (let r0 = 0; r0 < initRows.length; r0 += 1024) {
    const count = Math.min(1024, initRows.length - r0);
    await fit.readHalfRows(initRows.slice(r0, r0 + count), half);
    decodeHalfRows(half, count, dim, x.subarray(r0 * dim, (r0 + count) * dim));
  }
  return kmeansPlusPlus(x, initRows.length, dim, o.clusters, rand, gemm);
}

/**
 * Assigns every row (labels.i32, in row order), then writes the rows and ids grouped by
 * cluster (members.i32, member_ids.txt) through small per-cluster buffers: bounded memory.
 */
async function groupByCluster(
  o: ResolvedSemdedupOptions,
  spill: SpillReader,
  centers: Float64Array,
  k: number,
  gemm: Gemm,
): Promise<Pick<Prepared, 'counts' | 'memberStart' | 'idStart'>> {
  const labelsPath = workPath(o.outputDir, 'labels.i32');
  const labelsFh = await open(labelsPath, 'w');
  const counts = new Array<number>(k).fill(0);
  const idBytes = new Array<number>(k).fill(0);
  const idLines = lineReader(workPath(o.outputDir, 'ids.txt'));
  try {
    let pos = 0;
    await assignAll(
      spill,
      centers,
      k,
      gemm,
      async (_start, labels) => {
        for (const c of labels) {
          counts[c]!++;
          const { value } = await idLines.next();
          idBytes[c]! += Buffer.byteLength(value as string) + 1;
        }
        const b = Buffer.from(labels.buffer, labels.byteOffset, labels.byteLength);
        await writeAllAt(labelsFh, b, pos);
        pos += b.length;
      },
      { chunkRows: o.chunkRows, signal: o.signal },
    );
    await labelsFh.sync();
  } finally {
    await labelsFh.close();
    await idLines.return(undefined);
  }
  const memberStart: number[] = [];
  const idStart: number[] = [];
  let m = 0;
  let b = 0;
  for (let c = 0; c < k; c++) {
    memberStart.push(m);
    idStart.push(b);
    m += counts[c]!;
    b += idBytes[c]!;
  }
  const members = await open(workPath(o.outputDir, 'members.i32'), 'w');
  const memberIds = await open(workPath(o.outputDir, 'member_ids.txt'), 'w');
  const labelsIn = await open(labelsPath, 'r');
  const ids = lineReader(workPath(o.outputDir, 'ids.txt'));
  try {
    const fillRows = [...memberStart];
    const fillBytes = [...idStart];
    // At most BUF rows a cluster and TOTAL in all are held before they are written: bounded
    // whatever the number of clusters (ids held as strings live long enough to reach V8's old space).
    const BUF = 256;
    const TOTAL = 16_384;
    let held = 0;
    const rowBuf = new Map<number, number[]>();
    const idBuf = new Map<number, string[]>();
    const flush = async (c: number) => {
      const rows = rowBuf.get(c);
      if (!rows || rows.length === 0) return;
      const rb = Buffer.from(Int32Array.from(rows).buffer);
      await writeAllAt(members, rb, fillRows[c]! * 4);
      fillRows[c]! += rows.length;
      const ib = Buffer.from(idBuf.get(c)!.join(''));
      await writeAllAt(memberIds, ib, fillBytes[c]!);
      fillBytes[c]! += ib.length;
      held -= rows.length;
      rowBuf.set(c, []);
      idBuf.set(c, []);
    };
    const chunk = Buffer.alloc(4 * 65536);
    let row = 0;
    for (;;) {
      const { bytesRead } = await labelsIn.read(chunk, 0, chunk.length, row * 4);
      if (bytesRead === 0) break;
      for (let i = 0; i < bytesRead / 4; i++, row++) {
        const c = chunk.readInt32LE(i * 4);
        const { value } = await ids.next();
        if (!rowBuf.has(c)) {
          rowBuf.set(c, []);
          idBuf.set(c, []);
        }
        rowBuf.get(c)!.push(row);
        idBuf.get(c)!.push(`${value as string}\n`);
        held++;
        if (rowBuf.get(c)!.length >= BUF) await flush(c);
        else if (held >= TOTAL) for (const b of rowBuf.keys()) await flush(b);
      }
    }
    for (const c of rowBuf.keys()) await flush(c);
    await members.sync();
    await memberIds.sync();
  } finally {
    await members.close();
    await memberIds.close();
    await labelsIn.close();
    await ids.return(undefined);
  }
  return { counts, memberStart, idStart };
}

function lineReader(path: string): AsyncIterator<string> & { return(v: undefined): Promise<IteratorResult<string>> } {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  return rl[Symbol.asyncIterator]() as AsyncIterator<string> & { return(v: undefined): Promise<IteratorResult<string>> };
}

async function writeAllAt(fh: FileHandle, b: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < b.length) done += (await fh.write(b, done, b.length - done, position + done)).bytesWritten;
}

/** A float64 array in numpy's .npy format (version 1.0). */
export function npyFloat64(data: Float64Array, shape: number[]): Buffer {
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64);
  header += '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

/** Reads an npy written by npyFloat64. */
export async function readNpyFloat64(path: string): Promise<Float64Array> {
  const b = await readFile(path);
  const hl = b.readUInt16LE(8);
  const body = b.subarray(10 + hl);
  return new Float64Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
}
