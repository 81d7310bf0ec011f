/** The options of `semdedup`, their defaults and checks. */
import { ClipstreamError } from '../errors.js';
import { expandShardPatterns } from '../shards/brace.js';
import type { JobProgress } from '../util/progress.js';
import type { Partition } from '../util/partition.js';
import { defaultWarningHandler, type WarningHandler } from '../types.js';
import { validateInteger, validateNumber, validateOneOf, validateString } from '../util/validate.js';
import type { GemmEngine } from './gemm.js';
import type { KeepRule } from './cluster.js';

export interface SemdedupOptions {
  /** Feature shards `extract` wrote (`.msgpack` or `.json`): paths or brace patterns, as extract's `tarPath`. */
  features: string | string[];
  /** Folder for semdedup.csv, keep_list.txt, the run log and the work folder `.semdedup/`. */
  outputDir: string;
  /** Which array of the feature set: `layer_4` (default), `layer_3`, ... */
  key?: string;
  /** Which feature set of a record: `visual` (default) or `audio`. */
  featureSet?: 'visual' | 'audio';
  /** k-means clusters: the units of work (default 100; NeMo Curator's default is 1000, for millions of clips). */
  clusters?: number;
  /** An item is removed when its cosine similarity to an item ranked before it in its cluster exceeds 1 − eps (default 0.05). */
  eps?: number;
  /** Which item of near-copies is kept: `hard` (farthest from the centroid, NeMo's default) or `easy` (nearest). */
  keep?: KeepRule;
  /** Seed of the k-means++ start and the samples (default 0): every rank computes the same clusters from it. */
  seed?: number;
  /** Most Lloyd iterations (default 20); they stop earlier when no label changes. */
  maxIter?: number;
  /** Rows the k-means fit runs on, a uniform sample of all (default 50,000; all rows when fewer). */
  kmeansSample?: number;
  /** Rows of that sample held in memory for the k-means++ start (default 20 per cluster, at least 1,000, at most 10,000). */
  initSample?: number;
  /** Matrix products by `onnx` (ONNX Runtime's Gemm, default) or `js` loops. */
  engine?: GemmEngine;
  /** ONNX Runtime threads (default: all cores). */
  intraOpThreads?: number;
  /** Rows read and multiplied at once (default 2048). */
  chunkRows?: number;
  /** Redo everything, even a finished run with the same options. */
  overwrite?: boolean;
  partition?: Partition;
  only?: readonly string[];
  signal?: AbortSignal;
  onWarning?: WarningHandler;
  onProgress?: (p: JobProgress) => void;
}

export interface ResolvedSemdedupOptions {
  shards: string[];
  outputDir: string;
  key: string;
  featureSet: 'visual' | 'audio';
  clusters: number;
  eps: number;
  keep: KeepRule;
  seed: number;
  maxIter: number;
  kmeansSample: number;
  initSample: number;
  engine: GemmEngine;
  intraOpThreads: number | undefined;
  chunkRows: number;
  overwrite: boolean;
  signal: AbortSignal | undefined;
  onWarning: WarningHandler;
}

export function resolveSemdedupOptions(o: SemdedupOptions): ResolvedSemdedupOptions {
  if (o === null || typeof o !== 'object') throw new ClipstreamError('ERR_INVALID_OPTION', 'semdedup: expected an options object');
  const shards = expandShardPatterns(o.features as string | string[]);
  if (shards.length === 0) throw new ClipstreamError('ERR_INVALID_OPTION', 'options.features names no feature shard', { where: { option: 'features' } });
  return {
    shards,
    outputDir: validateString(o.outputDir, 'options.outputDir'),
    key: o.key === undefined ? 'layer_4' : validateString(o.key, 'options.key'),
    featureSet: o.featureSet === undefined ? 'visual' : validateOneOf(o.featureSet, 'options.featureSet', ['visual', 'audio'] as const),
    clusters: o.clusters === undefined ? 100 : validateInteger(o.clusters, 'options.clusters', 1, 1_000_000),
    eps: o.eps === undefined ? 0.05 : validateNumber(o.eps, 'options.eps', 0, 2),
    keep: o.keep === undefined ? 'hard' : validateOneOf(o.keep, 'options.keep', ['hard', 'easy'] as const),
    seed: o.seed === undefined ? 0 : validateInteger(o.seed, 'options.seed', 0, 2 ** 32 - 1),
    maxIter: o.maxIter === undefined ? 20 : validateInteger(o.maxIter, 'options.maxIter', 1, 10_000),
    kmeansSample: o.kmeansSample === undefined ? 50_000 : validateInteger(o.kmeansSample, 'options.kmeansSample', 1),
    initSample:
      o.initSample === undefined ? Math.min(10_000, Math.max(1000, 20 * (o.clusters ?? 100))) : validateInteger(o.initSample, 'options.initSample', 1),
    engine: o.engine === undefined ? 'onnx' : validateOneOf(o.engine, 'options.engine', ['onnx', 'js'] as const),
    intraOpThreads: o.intraOpThreads === undefined ? undefined : validateInteger(o.intraOpThreads, 'options.intraOpThreads', 1, 1024),
    chunkRows: o.chunkRows === undefined ? 2048 : validateInteger(o.chunkRows, 'options.chunkRows', 1, 1 << 20),
    overwrite: o.overwrite ?? false,
    signal: o.signal,
    onWarning: o.onWarning ?? defaultWarningHandler,
  };
}

/** The unit id of cluster `c`: `cluster-000042`. */
export function clusterUnit(c: number): string {
  return `cluster-${String(c).padStart(6, '0')}`;
}

/** Every unit of a run with `clusters` clusters, in order. */
export function clusterUnits(clusters: number): string[] {
  return Array.from({ length: clusters }, (_, c) => clusterUnit(c));
}
