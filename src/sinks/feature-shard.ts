/**
 * The feature shard sink: one `shard-NNNNNN.msgpack` (or `.json`) per tar shard, records in
 * tar order, each file appearing whole or not at all, and a run killed at any moment
 * resumable to byte-identical output (see ./journal.ts for how).
 */
import { Writable } from 'node:stream';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ClipstreamError, toClipstreamError } from '../errors.js';
import {
  defaultWarningHandler,
  type FeatureRecord,
  type Sample,
  type ShardEnd,
  type ShardIncomplete,
  type ShardInfo,
  type StreamItem,
  type WarningHandler,
} from '../types.js';
import { tempPathFor } from '../util/atomic.js';
import { removeDeadTemps } from '../util/lock.js';
import { asDiskFull, writeAll } from '../util/disk.js';
import { validateInteger, validateOneOf, validateString } from '../util/validate.js';
import { Journal, type JournalEntry } from './journal.js';
import { JsonShardText } from './json-format.js';
import { decodeFeatureRecord, encodeFeatureRecord, msgpackArrayHeader } from './msgpack-numpy.js';

import {
  checkShardName,
  completedIndices,
  incompleteMarkers,
  shardJournalPath,
  shardOutputPath,
  type FeatureShardFormat,
  type IncompleteMarker,
} from './feature-shard-files.js';

// The shard's files (paths, the incomplete marker, what a resume skips, reading a shard back) live in ./feature-shard-files.ts.
export {
  completedIndices,
  completedKeys,
  readFeatureShard,
  readIncompleteMarker,
  shardFileProblem,
  shardIncompletePath,
  shardJournalPath,
  shardOutputPath,
  type FeatureShardFormat,
} from './feature-shard-files.js';

/** A sample that produced no record, and why. */
export interface ShardProblem {
  key: string;
  filename: string;
  /** `stage: message`. */
  reason: string;
  /** The ClipstreamError code, e.g. `ERR_CLIP_TOO_SHORT`. */
  code: string;
  /** Position in the tar. */
  index: number;
}

/** What became of one shard; handed to `onShardDone` and kept on `writer.summaries`. */
export interface ShardSummary {
  shard: string;
  url: string;
  /** The final file, or null when nothing was written (tar missing/unreadable and no sample at all). */
  output: string | null;
  /** Records in the final file. */
  written: number;
  skipped: ShardProblem[];
  failed: ShardProblem[];
  /** Set when the tar was damaged: the file holds the records read before the damage. */
  tarError?: string;
  /**
   * Set when the tar may lack clips (json entries not found, no end-of-archive blocks). The
   * shard's marker file (shardIncompletePath) says so to later runs.
   */
  incomplete?: ShardIncomplete;
  /** Journal entries (of any status) taken over from an earlier, interrupted run. */
  resumed: number;
  /**
   * Clips that failed for a transient reason (a watchdog kill, an outside signal) even after
   * the run's retries: the shard is then not finalised (no output; the journal stays) so the
   * next run redoes only those clips.
   */
  transient?: ShardProblem[];
}

export interface FeatureShardWriterOptions {
  outputDir: string;
  format?: FeatureShardFormat;
  onWarning?: WarningHandler;
  onShardDone?: (summary: ShardSummary) => void;
  /** Journal fsync batching; see Journal. Defaults: every 64 entries or 1000 ms. */
  syncEvery?: number;
  syncMs?: number;
}

const FORMATS = ['msgpack', 'json'] as const;
// Finalising copies records out in blocks of about this size: few syscalls, bounded memory.
const WRITE_BLOCK = 1 << 20;

interface OpenShard {
  info: ShardInfo;
  journal: Journal;
  resumed: number;
  /** First entry per tar index: dedupes a sample written again after a resume. */
  byIndex: Map<number, JournalEntry>;
  /** Transient failures earlier runs journalled, per tar index. */
  transientBefore: Map<number, number>;
}

/**
 * Runs in a row a clip may fail transiently before its failure is taken as permanent: a clip
 * whose decoder stalls every time (a file that sends ffmpeg spinning) must not hold its shard
 * back for ever.
 */
const TRANSIENT_RUNS = 3;

/** The writable returned by `writeFeatureShards`. */
export class FeatureShardWriter extends Writable {
  /** One summary per finalised shard, in the order they finished. */
  readonly summaries: ShardSummary[] = [];
  /** Resolves with the summaries once every finalised shard is on disk; rejects on error or early destroy. */
  readonly done: Promise<ShardSummary[]>;

  private readonly outputDir: string;
  private readonly format: FeatureShardFormat;
  private readonly onWarning: WarningHandler;
  private readonly onShardDone?: (summary: ShardSummary) => void;
  private readonly syncEvery?: number;
  private readonly syncMs?: number;
  private readonly shards = new Map<string, OpenShard>();
  private readonly finished = new Set<string>();
  private madeDir = false;

  constructor(options: FeatureShardWriterOptions) {
    super({ objectMode: true, highWaterMark: 16 });
    this.outputDir = validateString(options?.outputDir, 'options.outputDir');
    this.format = options.format === undefined ? 'msgpack' : validateOneOf(options.format, 'options.format', FORMATS);
    this.onWarning = options.onWarning ?? defaultWarningHandler;
    this.onShardDone = options.onShardDone;
    this.syncEvery = options.syncEvery === undefined ? undefined : validateInteger(options.syncEvery, 'options.syncEvery', 1);
    this.syncMs = options.syncMs === undefined ? undefined : validateInteger(options.syncMs, 'options.syncMs', 0);
    this.done = new Promise<ShardSummary[]>((resolve, reject) => {
      this.once('finish', () => resolve(this.summaries));
      this.once('error', reject);
      this.once('close', () =>
        reject(new ClipstreamError('ERR_PIPELINE', `feature shard writer for ${this.outputDir} was destroyed before all shards were finalised`)),
      );
    });
    // Whoever awaits `done` still sees the rejection; this only keeps an unawaited one quiet.
    this.done.catch(() => {});
  }

  override _write(item: StreamItem, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.handle(item).then(
      () => cb(),
      (err) => cb(toClipstreamError(err, 'ERR_IO', { shard: item?.shard?.name })),
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.closeUnfinished().then(
      () => cb(),
      (err) => cb(toClipstreamError(err, 'ERR_IO')),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Journals stay on disk: they are what the next run resumes from.
    const closing = [...this.shards.values()].map((s) => s.journal.close().catch(() => {}));
    this.shards.clear();
    Promise.all(closing).then(() => cb(err));
  }

  private async handle(item: StreamItem): Promise<void> {
    if (item?.kind === 'shard-end') return this.finalise(item);
    if (item?.kind !== 'sample') {
      throw new ClipstreamError(
        'ERR_INVALID_OPTION',
        `feature shard writer: expected a Sample or ShardEnd, received ${typeof item === 'object' ? JSON.stringify(Object.keys(item ?? {})) : typeof item}`,
      );
    }
    const shard = await this.shard(item.shard);
    if (shard.byIndex.has(item.index)) return;
    const base = { index: item.index, key: item.__key__, filename: item.entry?.filename ?? item.__key__ };
    let entry: JournalEntry;
    const f = item.failure;
    if (f === undefined) {
      const bytes = encodeFeatureRecord(toRecord(item));
      entry = await shard.journal.append({ ...base, status: 'ok' }, bytes);
    } else {
      const meta = { ...base, status: f.status, stage: f.stage, reason: `${f.stage}: ${f.error.message}`, code: f.error.code };
      const runs = (shard.transientBefore.get(item.index) ?? 0) + 1;
      if (f.error.transient && runs >= TRANSIENT_RUNS) meta.reason += ` (failed so in ${runs} runs: taken as permanent)`;
      entry = await shard.journal.append(f.error.transient && runs < TRANSIENT_RUNS ? { ...meta, transient: true } : meta);
    }
    shard.byIndex.set(entry.index, entry);
  }

  private async shard(info: ShardInfo): Promise<OpenShard> {
    const name = checkShardName(info.name);
    const existing = this.shards.get(name);
    if (existing) return existing;
    if (this.finished.has(name)) {
      throw new ClipstreamError('ERR_PIPELINE', `a sample of shard ${name} arrived after its ShardEnd; a stage reordered the stream`, {
        where: { shard: name },
      });
    }
    if (!this.madeDir) {
      await mkdir(this.outputDir, { recursive: true });
      this.madeDir = true;
    }
    const path = shardJournalPath(this.outputDir, name);
    const journal = await Journal.open(path, {
      syncEvery: this.syncEvery,
      syncMs: this.syncMs,
      onDropped: (problem, bytes, kept) =>
        this.onWarning(
          new ClipstreamError('ERR_IO', `journal ${path}: ${problem}; dropped the last ${bytes} bytes after ${kept} good entries (those clips are redone)`, {
            where: { shard: name, file: path },
          }),
        ),
    });
    if (this.destroyed) {
      // Destroyed while the journal was opening: nobody else will close it.
      await journal.close();
      throw new ClipstreamError('ERR_PIPELINE', `feature shard writer for ${this.outputDir} was destroyed`, { where: { shard: name } });
    }
    const byIndex = new Map<number, JournalEntry>();
    // An earlier run's transient failures are tried again: the new entry is the one that counts.
    const transientBefore = new Map<number, number>();
    for (const e of journal.entries) {
      if (e.transient) transientBefore.set(e.index, (transientBefore.get(e.index) ?? 0) + 1);
      else if (!byIndex.has(e.index)) byIndex.set(e.index, e);
    }
    const s: OpenShard = { info, journal, resumed: byIndex.size, byIndex, transientBefore };
    this.shards.set(name, s);
    return s;
  }

  private async finalise(end: ShardEnd): Promise<void> {
    const name = checkShardName(end.shard.name);
    const tarError = end.error?.message;
    if (this.finished.has(name)) {
      throw new ClipstreamError('ERR_PIPELINE', `shard ${name} ended twice (a second ShardEnd arrived)`, { where: { shard: name } });
    }
    let s = this.shards.get(name);
    // Nothing read (unreadable, empty or missing tar) and no journal: writing an empty file would
    // make later runs skip the shard; it is reported with no output instead.
    if (!s && (end.error || end.incomplete) && end.samples === 0 && (await completedIndices(this.outputDir, name)).size === 0) {
      this.finished.add(name);
      const summary: ShardSummary = { shard: name, url: end.shard.url, output: null, written: 0, skipped: [], failed: [], tarError, resumed: 0 };
      if (end.incomplete) summary.incomplete = end.incomplete;
      this.report(summary);
      return;
    }
    s ??= await this.shard(end.shard);
    const entries = [...s.byIndex.values()].sort((a, b) => a.index - b.index);
    const problems = (status: string): ShardProblem[] =>
      entries.filter((e) => e.status === status).map((e) => ({ key: e.key, filename: e.filename, reason: e.reason ?? '', code: e.code ?? '', index: e.index }));
    const ok = entries.filter((e) => e.status === 'ok');
    const output = shardOutputPath(this.outputDir, name, this.format);
    const transient = problems('failed').filter((p) => s!.byIndex.get(p.index)?.transient);
    if (transient.length > 0) {
      // Not final: a rerun redoes these clips from the journal, which is all that is kept.
      await s.journal.sync();
      await s.journal.close();
      this.shards.delete(name);
      this.finished.add(name);
      const summary: ShardSummary = {
        shard: name,
        url: end.shard.url,
        output: null,
        written: ok.length,
        skipped: problems('skipped'),
        failed: problems('failed'),
        resumed: s.resumed,
        transient,
      };
      if (tarError !== undefined) summary.tarError = tarError;
      this.report(summary);
      return;
    }
    await s.journal.sync();
    await removeDeadTemps(dirname(output), basename(output));
    // The marker goes down before the output appears and goes away only after a complete one
    // replaced it: an output is never seen without the marker it needs.
    const markers = incompleteMarkers(this.outputDir);
    if (end.incomplete) await markers.write(name, await incompleteMarker(end));
    await this.writeFinal(s, ok, output);
    if (!end.incomplete) await markers.remove(name);
    await s.journal.close();
    this.shards.delete(name);
    this.finished.add(name);
    // Only now: until the rename above, the journal is the one copy of the work.
    await rm(s.journal.path, { force: true });
    await syncDir(this.outputDir);
    const summary: ShardSummary = {
      shard: name,
      url: end.shard.url,
      output,
      written: ok.length,
      skipped: problems('skipped'),
      failed: problems('failed'),
      resumed: s.resumed,
    };
    if (tarError !== undefined) summary.tarError = tarError;
    if (end.incomplete) summary.incomplete = end.incomplete;
    this.report(summary);
  }

  private report(summary: ShardSummary): void {
    this.summaries.push(summary);
    this.onShardDone?.(summary);
  }

  /** Streams the records out of the journal into a temp file, fsyncs, renames over `output`. */
  private async writeFinal(s: OpenShard, ok: JournalEntry[], output: string): Promise<void> {
    const tmp = tempPathFor(output);
    // What the file will take, for the message of a full disk (msgpack: the header plus the records as journalled).
    const needed = this.format === 'msgpack' ? msgpackArrayHeader(ok.length).length + ok.reduce((n, e) => n + e.recordLength, 0) : null;
    const fh = await open(tmp, 'w').catch((err: unknown) => {
      throw asDiskFull(err, output, needed);
    });
    try {
      let block: Buffer[] = [];
      let blockBytes = 0;
      const put = async (b: Buffer): Promise<void> => {
        block.push(b);
        blockBytes += b.length;
        if (blockBytes >= WRITE_BLOCK) {
          await writeAll(fh, Buffer.concat(block), output, needed);
          block = [];
          blockBytes = 0;
        }
      };
      if (this.format === 'msgpack') {
        // The journal holds each record already encoded: the shard is a header plus those bytes.
        await put(msgpackArrayHeader(ok.length));
        for (const e of ok) await put(await s.journal.readRecord(e));
      } else {
        const text = new JsonShardText(output, this.onWarning);
        await put(Buffer.from(text.begin()));
        for (const e of ok) {
          const record = decodeFeatureRecord(await s.journal.readRecord(e), `journal ${s.journal.path} key ${e.key}`);
          await put(Buffer.from(text.record(record)));
        }
        await put(Buffer.from(text.end()));
      }
      if (blockBytes > 0) await writeAll(fh, Buffer.concat(block), output, needed);
      await fh.sync();
      await fh.close();
      await rename(tmp, output);
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw asDiskFull(err, output, needed);
    }
  }

  private async closeUnfinished(): Promise<void> {
    for (const [name, s] of this.shards) {
      await s.journal.sync();
      await s.journal.close();
      this.onWarning(
        new ClipstreamError('ERR_PIPELINE', `shard ${name}: the stream ended without its ShardEnd; kept ${s.journal.path} so a later run resumes it`, {
          where: { shard: name, file: s.journal.path },
        }),
      );
    }
    this.shards.clear();
  }
}

function toRecord(sample: Sample): FeatureRecord {
  return {
    filename: sample.entry.filename,
    id: sample.entry.id,
    segment: sample.entry.segment,
    visual_features: sample.visualFeatures ?? [],
    audio_features: sample.audioFeatures ?? [],
    __key__: sample.__key__,
    ...(sample.audioNote === undefined ? {} : { audio_note: sample.audioNote }),
  };
}

async function incompleteMarker(end: ShardEnd): Promise<IncompleteMarker> {
  const st = await stat(end.shard.url).catch(() => null);
  return {
    tar: end.shard.url,
    tar_size: st?.size ?? null,
    tar_mtime_ms: st?.mtimeMs ?? null,
    reason: end.incomplete!.reason,
    missing: end.incomplete!.missing,
  };
}

/** Makes the rename and the journal's removal durable too; best effort where a folder can't be fsynced. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Some platforms/filesystems refuse fsync on a directory; the data itself is synced.
  }
}

/**
 * A Writable (object mode) of StreamItems that writes one feature shard per tar shard.
 * Samples may arrive in any order; each shard's file is written on its ShardEnd, in tar order.
 *
 * @example
 * const writer = writeFeatureShards({ outputDir: 'features', onShardDone: (s) => console.log(s.shard, s.written) });
 * await pipeline(samples, decode, infer, writer);
 * await writer.done;
 */
export function writeFeatureShards(options: FeatureShardWriterOptions): FeatureShardWriter {
  return new FeatureShardWriter(options);
}
