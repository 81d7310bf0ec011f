import { mkdir, rm, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, isAbsolute, resolve, dirname, basename } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ClipstreamError } from '../errors.js';
import { Extractor, extractFeatures } from '../infer/extractor.js';
import { decodeClips, type DecodeOptions } from '../media/decode.js';
import { liveChildProcesses } from '../media/process.js';
import { expandShardUrls, shardFileName, ShardSourceError } from '../shards/shard-source.js';
import { shareOf, WHOLE, type Partition } from '../scale/partition.js';
import { UnitLocks, type LockedPolicy } from '../scale/unit-locks.js';
import type { ModelCache } from '../scale/model-cache.js';
import { readShards } from '../shards/tar-reader.js';
import { completedKeys, shardJournalPath, shardOutputPath, writeFeatureShards, type ShardSummary } from '../sinks/feature-shard.js';
import type { ShardInfo, StreamItem, WarningHandler } from '../types.js';
import { defaultWarningHandler } from '../types.js';
import { removeDeadTemps, writeFileAtomic } from '../util/atomic.js';
import { validateInteger, validateOneOf, validateString, validateBoolean } from '../util/validate.js';
import { DEFAULT_AUDIO_MODEL, DEFAULT_VISUAL_MODEL, shippedModelsDir } from './models-dir.js';
import { exists } from '../util/fs.js';

export interface ExtractOptions extends Omit<DecodeOptions, 'video' | 'audio'> {
  /** Tar shard paths or brace patterns, e.g. `data/shard-{000000..000099}.tar`. */
  tarPath: string | string[];
  /** Folder for feature shards and logs. */
  outPath: string;
  format?: 'msgpack' | 'json';
  /** Folder with the models (default: the shipped `models/`). */
  modelDir?: string;
  /** Visual model file (relative to modelDir), or `null` to skip visual features. */
  visualModel?: string | null;
  /** Audio model file (relative to modelDir), or `null` to skip audio features. */
  audioModel?: string | null;
  device?: string;
  /** Largest batch handed to a model; the actual size is set by backpressure. */
  batchSize?: number;
  /** ffmpeg decoders running at once. */
  numWorkers?: number;
  /** ONNX Runtime intra-op threads per model (default: all cores). */
  intraOpThreads?: number;
  /** Recompute shards whose output exists (default: skip them). */
  overwrite?: boolean;
  /** This run's share of the shard list (`--rank/--world`; see src/scale/partition.ts). Default: all. */
  partition?: Partition;
  /** A shard whose lock another live run holds: skip it (default) or wait for it. */
  onLocked?: LockedPolicy;
  /** Open models here and leave them open (a queue worker runs many units with the same models). */
  models?: ModelCache;
  onWarning?: WarningHandler;
  onProgress?: (progress: ExtractProgress) => void;
  /** Called with the size of every batch each model ran, for statistics. */
  onBatch?: (kind: 'visual' | 'audio', size: number) => void;
  signal?: AbortSignal;
}

export interface ExtractProgress {
  shardsTotal: number;
  shardsDone: number;
  clipsDone: number;
  clipsFailed: number;
  clipsSkipped: number;
  /** Clips listed in the shards' json files, when they have one (for an ETA). */
  clipsExpected: number | null;
  elapsedSeconds: number;
}

export interface ShardLog extends ShardSummary {
  status: 'written' | 'skipped (output exists)' | 'skipped (locked)' | 'missing' | 'failed (source)';
  /** For 'skipped (locked)': who holds the shard. */
  lockedBy?: string;
}

export interface ExtractReport {
  logPath: string;
  shards: ShardLog[];
  clipsWritten: number;
  clipsFailed: number;
  clipsSkipped: number;
  seconds: number;
  clipsPerSecond: number;
  visual: { model: string; extractor_name: string; dataset: string; provider: string } | null;
  audio: { model: string; extractor_name: string; dataset: string; provider: string } | null;
}

function resolveModel(dir: string, file: string | null | undefined, fallback: string): string | null {
  if (file === null) return null;
  const f = file ?? fallback;
  return isAbsolute(f) || f.includes('/') ? resolve(f) : join(dir, f);
}

/**
 * The feature extraction job (seed 004, ACAV100M): every tar shard becomes one feature shard
 * `outPath/<shard>.msgpack` with SlowFast-style visual and VGGish-style audio features per
 * clip. Shards whose output exists are skipped; a killed run resumes clip by clip.
 *
 * @example
 * const report = await extract({ tarPath: 'fixtures/shards/shard-{000000..000001}.tar', outPath: 'out' });
 * console.log(report.clipsWritten, report.logPath);
 */
export async function extract(options: ExtractOptions): Promise<ExtractReport> {
  const started = Date.now();
  const onWarning = options.onWarning ?? defaultWarningHandler;
  const outPath = validateString(options.outPath, 'options.outPath');
  const format = validateOneOf(options.format ?? 'msgpack', 'options.format', ['msgpack', 'json'] as const);
  const batchSize = validateInteger(options.batchSize ?? 8, 'options.batchSize', 1, 1024);
  const numWorkers = validateInteger(options.numWorkers ?? 2, 'options.numWorkers', 1, 256);
  const overwrite = validateBoolean(options.overwrite ?? false, 'options.overwrite');
  const partition = options.partition ?? WHOLE;
  const all = expandShardUrls(options.tarPath);
  const urls = shareOf(all, partition);
  if (all.length === 0) throw new ClipstreamError('ERR_BAD_ARGUMENT', `options.tarPath names no shard: ${JSON.stringify(options.tarPath)}`);
  const modelDir = options.modelDir ?? shippedModelsDir();
  const visualPath = resolveModel(modelDir, options.visualModel, DEFAULT_VISUAL_MODEL);
  const audioPath = resolveModel(modelDir, options.audioModel, DEFAULT_AUDIO_MODEL);
  if (!visualPath && !audioPath) throw new ClipstreamError('ERR_BAD_ARGUMENT', 'nothing to extract: both visualModel and audioModel are null');

  await mkdir(outPath, { recursive: true });
  // Temp files of a run killed mid-write (a shard, the log) are junk now.
  await removeDeadTemps(outPath);
  const sessionOptions = { device: options.device ?? 'auto', intraOpThreads: options.intraOpThreads, onWarning };
  const load = (p: string) => (options.models ? options.models.load(p, sessionOptions) : Extractor.load(p, sessionOptions));
  const visual = visualPath ? await load(visualPath) : null;
  const audio = audioPath ? await load(audioPath) : null;
  if (visual && visual.kind !== 'visual') throw new ClipstreamError('ERR_MODEL', `${visualPath}: expected a visual model but its metadata says '${visual.kind}'`, { where: { file: visualPath! } });
  if (audio && audio.kind !== 'audio') throw new ClipstreamError('ERR_MODEL', `${audioPath}: expected an audio model but its metadata says '${audio.kind}'`, { where: { file: audioPath! } });

  const timestamp = new Date(started);
  const logPath = join(outPath, `log_${hostname()}_${process.pid}_${timestamp.getTime()}.json`);
  const shardLogs = new Map<string, ShardLog>();
  const progress: ExtractProgress = {
    shardsTotal: urls.length,
    shardsDone: 0,
    clipsDone: 0,
    clipsFailed: 0,
    clipsSkipped: 0,
    clipsExpected: await countExpectedClips(urls),
    elapsedSeconds: 0,
  };
  const report = () => {
    progress.elapsedSeconds = (Date.now() - started) / 1000;
    options.onProgress?.({ ...progress });
  };
  const writeLog = (done: boolean) =>
    writeFileAtomic(
      logPath,
      JSON.stringify(
        {
          hostname: hostname(),
          pid: process.pid,
          timestamp: timestamp.getTime() / 1000,
          time: timestamp.toISOString(),
          finished: done,
          shards: urls,
          models: { visual: describe(visual), audio: describe(audio) },
          options: { format, batchSize, numWorkers, device: sessionOptions.device, overwrite },
          partition: { rank: partition.rank, world: partition.world, from: partition.from, shards_in_list: all.length },
          shard_results: urls.map((u) => shardLogs.get(u) ?? { url: u, status: 'pending' }),
        },
        null,
        2,
      ) + '\n',
    );

  // One writer per shard, across runs and machines sharing outPath (issue 9 item 15).
  const locks = new UnitLocks({ owner: 'extract', onLocked: options.onLocked, onWarning, signal: options.signal });
  const skipShard = async (shard: ShardInfo) => {
    const out = shardOutputPath(outPath, shard.name, format);
    const lockedBy = await locks.take(shard.url, out, async () => !overwrite && (await exists(out)));
    if (lockedBy) {
      shardLogs.set(shard.url, { ...emptyLog(shard, out, 'skipped (locked)'), lockedBy });
      progress.shardsDone++;
      report();
      return true;
    }
    if (overwrite) {
      await rm(shardJournalPath(outPath, shard.name), { force: true });
      return false;
    }
    if (await exists(out)) {
      // A run killed between the final rename and the journal's removal leaves a stale journal.
      await rm(shardJournalPath(outPath, shard.name), { force: true });
      await locks.release(shard.url);
      shardLogs.set(shard.url, emptyLog(shard, out, 'skipped (output exists)'));
      progress.shardsDone++;
      report();
      return true;
    }
    return false;
  };

  // A shard whose bytes stopped coming (URL down, pipe: command failed) is not final: its ShardEnd
  // is held back, so the writer keeps the journal and a later run resumes the shard.
  const holdFailedSources = new Transform({
    objectMode: true,
    transform(item: StreamItem, _enc, cb) {
      if (item.kind === 'shard-end' && item.error?.cause instanceof ShardSourceError) {
        shardLogs.set(item.shard.url, { ...emptyLog(item.shard, '', 'failed (source)'), tarError: item.error.message });
        progress.shardsDone++;
        report();
        cb();
        return;
      }
      cb(null, item);
    },
  });

  const tally = new Transform({
    objectMode: true,
    transform(item: StreamItem, _enc, cb) {
      if (item.kind === 'sample') {
        if (!item.failure) progress.clipsDone++;
        else if (item.failure.status === 'skipped') progress.clipsSkipped++;
        else progress.clipsFailed++;
        report();
      }
      cb(null, item);
    },
  });

  const writer = writeFeatureShards({
    outDir: outPath,
    format,
    onWarning,
    onShardDone: (summary) => {
      shardLogs.set(summary.url, { ...summary, status: 'written' });
      void locks.release(summary.url);
      progress.shardsDone++;
      report();
      void writeLog(false).catch(() => {});
    },
  });

  const stages = [
    readShards(urls, {
      onWarning: (w) => {
        const url = w.where.shard;
        const missing = w.code === 'ERR_TAR' && (w.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
        if (missing && url !== undefined && urls.includes(url) && !shardLogs.has(url)) {
          shardLogs.set(url, emptyLog({ url, name: basename(shardFileName(url), '.tar'), index: urls.indexOf(url) }, '', 'missing'));
          progress.shardsDone++;
          report();
        }
        onWarning(w);
      },
      skipShard,
      skipKeys: async (shard) => (overwrite ? new Set<string>() : completedKeys(outPath, shard.name)),
    }),
    holdFailedSources,
    decodeClips({ ...options, concurrency: numWorkers, video: visual !== null, audio: audio !== null }),
    ...(visual ? [extractFeatures(visual, { batchSize, onBatch: (n) => options.onBatch?.('visual', n) })] : []),
    ...(audio ? [extractFeatures(audio, { batchSize, onBatch: (n) => options.onBatch?.('audio', n) })] : []),
    tally,
    writer,
  ];
  try {
    await (pipeline as (...s: unknown[]) => Promise<void>)(...stages, options.signal ? { signal: options.signal } : {});
  } finally {
    await locks.releaseAll();
    if (!options.models) {
      await visual?.close();
      await audio?.close();
    }
    if (liveChildProcesses() > 0) onWarning(new ClipstreamError('ERR_PIPELINE', `${liveChildProcesses()} ffmpeg processes still running after the pipeline ended`));
  }
  await writeLog(true);

  const shards = urls.map((u) => shardLogs.get(u) ?? emptyLog({ url: u, name: basename(shardFileName(u), '.tar'), index: urls.indexOf(u) }, '', 'missing'));
  const seconds = (Date.now() - started) / 1000;
  const clipsWritten = shards.reduce((n, s) => n + (s.status === 'written' ? s.written - s.resumed : 0), 0);
  return {
    logPath,
    shards,
    clipsWritten,
    clipsFailed: progress.clipsFailed,
    clipsSkipped: progress.clipsSkipped,
    seconds,
    clipsPerSecond: seconds > 0 ? progress.clipsDone / seconds : 0,
    visual: describe(visual),
    audio: describe(audio),
  };
}

function describe(e: Extractor | null) {
  return e ? { model: e.info.path, extractor_name: e.extractorName, dataset: e.dataset, provider: e.provider } : null;
}

function emptyLog(shard: ShardInfo, output: string, status: ShardLog['status']): ShardLog {
  return { shard: shard.name, url: shard.url, output, written: 0, skipped: [], failed: [], resumed: 0, status };
}

async function countExpectedClips(urls: string[]): Promise<number | null> {
  let total = 0;
  for (const url of urls) {
    try {
      const list = JSON.parse(await readFile(join(dirname(url), `${basename(url, '.tar')}.json`), 'utf8')) as unknown[];
      if (!Array.isArray(list)) return null;
      total += list.length;
    } catch {
      return null;
    }
  }
  return total;
}
