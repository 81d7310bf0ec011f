import { rm, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, isAbsolute, resolve, dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ClipstreamError } from '../errors.js';
import { Extractor, extractFeatures } from '../infer/extractor.js';
import { decodeClips, resolveDecodeOptions, type DecodeOptions } from '../media/decode.js';
import { liveChildProcesses } from '../media/process.js';
import { expandShardUrls, ShardSourceError } from '../shards/shard-source.js';
import { shareOf, WHOLE, type Partition } from '../scale/partition.js';
import { UnitLocks, type LockedPolicy } from '../scale/unit-locks.js';
import type { ModelCache } from '../scale/model-cache.js';
import { readShards, shardBaseName } from '../shards/tar-reader.js';
import {
  completedIndices,
  readIncompleteMarker,
  shardIncompletePath,
  shardJournalPath,
  shardOutputPath,
  writeFeatureShards,
  type ShardSummary,
} from '../sinks/feature-shard.js';
import type { ShardInfo, StreamItem, WarningHandler } from '../types.js';
import { defaultWarningHandler } from '../types.js';
import { removeDeadTemps, writeFileAtomic } from '../util/atomic.js';
import { ensureOutputDir, validateInteger, validateOneOf, validateString, validateBoolean } from '../util/validate.js';
import { parseDevice } from '../infer/session.js';
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
  /** Also warn when `device: 'auto'` finds no CUDA and uses the CPU (default: quiet). */
  verbose?: boolean;
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

/**
 * What became of a shard. `no output`: nothing could be read (unreadable, empty or not a tar)
 * and no file was written. `incomplete`: written, but the tar lacks clips its json lists or
 * its end-of-archive blocks (see ShardSummary.incomplete); a later run skips it while the tar
 * is unchanged (saying so) and redoes it once the tar was replaced.
 */
export interface ShardLog extends ShardSummary {
  status:
    | 'written'
    | 'written (incomplete)'
    | 'no output'
    | 'skipped (output exists)'
    | 'skipped (output exists, incomplete)'
    | 'skipped (locked)'
    | 'missing'
    | 'failed (source)';
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
  // Every option is checked before anything is opened: a bad value never leaves a model loaded.
  const outPath = validateString(options.outPath, 'options.outPath');
  const format = validateOneOf(options.format ?? 'msgpack', 'options.format', ['msgpack', 'json'] as const);
  const batchSize = validateInteger(options.batchSize ?? 8, 'options.batchSize', 1, 1024);
  const numWorkers = validateInteger(options.numWorkers ?? 2, 'options.numWorkers', 1, 256);
  const overwrite = validateBoolean(options.overwrite ?? false, 'options.overwrite');
  const verbose = validateBoolean(options.verbose ?? false, 'options.verbose');
  if (options.intraOpThreads !== undefined) validateInteger(options.intraOpThreads, 'options.intraOpThreads', 1, 1024);
  parseDevice(options.device ?? 'auto', 'options.device');
  const { video: _v, audio: _a, ...decodeOptions } = options as ExtractOptions & { video?: unknown; audio?: unknown };
  resolveDecodeOptions(decodeOptions);
  const partition = options.partition ?? WHOLE;
  const all = expandShardUrls(options.tarPath);
  const urls = shareOf(all, partition);
  if (all.length === 0)
    throw new ClipstreamError('ERR_INVALID_OPTION', `options.tarPath names no shard: ${JSON.stringify(options.tarPath)}`, {
      where: { option: 'options.tarPath' },
    });
  const modelDir = options.modelDir ?? shippedModelsDir();
  const visualPath = resolveModel(modelDir, options.visualModel, DEFAULT_VISUAL_MODEL);
  const audioPath = resolveModel(modelDir, options.audioModel, DEFAULT_AUDIO_MODEL);
  if (!visualPath && !audioPath) throw new ClipstreamError('ERR_BAD_ARGUMENT', 'nothing to extract: both visualModel and audioModel are null');

  await ensureOutputDir(outPath, 'options.outPath');
  // Temp files of a run killed mid-write (a shard, the log) are junk now.
  await removeDeadTemps(outPath);
  const sessionOptions = { device: options.device ?? 'auto', intraOpThreads: options.intraOpThreads, onWarning, verbose };
  let visual: Extractor | null = null;
  let audio: Extractor | null = null;
  const load = (p: string) => (options.models ? options.models.load(p, sessionOptions) : Extractor.load(p, sessionOptions));
  try {
    visual = visualPath ? await load(visualPath) : null;
    audio = audioPath ? await load(audioPath) : null;
    if (visual && visual.kind !== 'visual')
      throw new ClipstreamError('ERR_MODEL', `${visualPath}: expected a visual model but its metadata says '${visual.kind}'`, { where: { file: visualPath! } });
    if (audio && audio.kind !== 'audio')
      throw new ClipstreamError('ERR_MODEL', `${audioPath}: expected an audio model but its metadata says '${audio.kind}'`, { where: { file: audioPath! } });
    return await run({
      options: { ...options, ...decodeOptions },
      started,
      onWarning,
      outPath,
      format,
      batchSize,
      numWorkers,
      overwrite,
      urls,
      all,
      partition,
      visual,
      audio,
      device: sessionOptions.device,
    });
  } finally {
    // Every path out, errors included: an open session would keep the process alive (a model
    // cache owns its models and closes them itself).
    if (!options.models) {
      await visual?.close();
      await audio?.close();
    }
  }
}

interface RunContext {
  options: ExtractOptions;
  started: number;
  onWarning: WarningHandler;
  outPath: string;
  format: 'msgpack' | 'json';
  batchSize: number;
  numWorkers: number;
  overwrite: boolean;
  urls: string[];
  all: string[];
  partition: Partition;
  visual: Extractor | null;
  audio: Extractor | null;
  device: string;
}

async function run(c: RunContext): Promise<ExtractReport> {
  const { options, started, onWarning, outPath, format, batchSize, numWorkers, overwrite, urls, all, partition, visual, audio } = c;
  const sessionOptions = { device: c.device };
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
  // Log writes run one after another: a progress write still renaming must not land after the final one.
  let logChain: Promise<void> = Promise.resolve();
  const writeLog = (done: boolean) => (logChain = logChain.catch(() => {}).then(() => writeLogNow(done)));
  const writeLogNow = (done: boolean) =>
    writeFileAtomic(
      logPath,
      `${JSON.stringify(
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
      )}\n`,
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
      const marker = await readIncompleteMarker(outPath, shard.name);
      if (marker) {
        // An incomplete shard is redone once its tar was replaced; while it is the same tar,
        // redoing it would give the same clips again, so it is skipped, but never silently.
        const st = await stat(shard.url).catch(() => null);
        if (st && (st.size !== marker.tar_size || st.mtimeMs !== marker.tar_mtime_ms)) {
          await rm(shardJournalPath(outPath, shard.name), { force: true });
          return false;
        }
        onWarning(
          new ClipstreamError(
            'ERR_TAR',
            `Shard ${shard.url}: ${out} exists but is incomplete (${marker.reason}; see ${shardIncompletePath(outPath, shard.name)}); skipped as the tar is unchanged. Replace the tar or use --overwrite to redo it`,
            { where: { shard: shard.url, file: out } },
          ),
        );
      }
      // A run killed between the final rename and the journal's removal leaves a stale journal.
      await rm(shardJournalPath(outPath, shard.name), { force: true });
      await locks.release(shard.url);
      const log = emptyLog(shard, out, marker ? 'skipped (output exists, incomplete)' : 'skipped (output exists)');
      if (marker) log.incomplete = { reason: marker.reason, missing: marker.missing };
      shardLogs.set(shard.url, log);
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
      const status = summary.output === null ? 'no output' : summary.incomplete ? 'written (incomplete)' : 'written';
      shardLogs.set(summary.url, { ...summary, status });
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
          shardLogs.set(url, emptyLog({ url, name: shardBaseName(url), index: urls.indexOf(url) }, '', 'missing'));
          progress.shardsDone++;
          report();
        }
        onWarning(w);
      },
      skipShard,
      // By position in the tar: a key that appears twice is two samples.
      skipIndices: async (shard) => (overwrite ? new Set<number>() : completedIndices(outPath, shard.name)),
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
    if (liveChildProcesses() > 0)
      onWarning(new ClipstreamError('ERR_PIPELINE', `${liveChildProcesses()} ffmpeg processes still running after the pipeline ended`));
  }
  await writeLog(true);

  const shards = urls.map((u) => shardLogs.get(u) ?? emptyLog({ url: u, name: shardBaseName(u), index: urls.indexOf(u) }, '', 'missing'));
  const seconds = (Date.now() - started) / 1000;
  const clipsWritten = shards.reduce((n, s) => n + (s.status.startsWith('written') ? s.written - s.resumed : 0), 0);
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
      const list = JSON.parse(await readFile(join(dirname(url), `${shardBaseName(url)}.json`), 'utf8')) as unknown[];
      if (!Array.isArray(list)) return null;
      total += list.length;
    } catch {
      return null;
    }
  }
  return total;
}
