/**
 * A feature shard's files: where its output, journal and incomplete marker go, what an
 * interrupted run left done (for resume), and reading a finished shard back.
 */
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import type { FeatureRecord, ShardIncomplete } from '../types.js';
import { journalIndices, journalKeys } from './journal.js';
import { readJsonShard } from './json-format.js';
import { asFeatureRecord, reviveMsgpackNumpy, unpackr } from './msgpack-numpy.js';
import { jsonRecords, UnitRecords } from './unit-records.js';

export type FeatureShardFormat = 'msgpack' | 'json';

/**
 * Where the final file of a shard goes.
 *
 * @example shardOutputPath('out', 'shard-000000', 'msgpack') // 'out/shard-000000.msgpack'
 */
export function shardOutputPath(outputDir: string, shardName: string, format: FeatureShardFormat = 'msgpack'): string {
  return join(outputDir, `${checkShardName(shardName)}.${format}`);
}

/** Where the resume journal of a shard lives while the shard is in progress. */
export function shardJournalPath(outputDir: string, shardName: string): string {
  return join(outputDir, `.${checkShardName(shardName)}.journal`);
}

/**
 * Beside the output of a shard whose tar was incomplete: what was missing, and the tar's size
 * and mtime, so that a later run can tell whether the tar was replaced since.
 */
export function shardIncompletePath(outputDir: string, shardName: string): string {
  return incompleteMarkers(outputDir).path(shardName);
}

export interface IncompleteMarker extends ShardIncomplete {
  tar: string;
  tar_size: number | null;
  tar_mtime_ms: number | null;
}

/**
 * The incomplete markers of an output folder as the record store (./unit-records.ts) keeps
 * them: one per shard (the unit), `<shard>.incomplete.json` beside its output, written atomically.
 */
export function incompleteMarkers(outputDir: string): UnitRecords<IncompleteMarker> {
  return new UnitRecords(outputDir, jsonRecords<IncompleteMarker>({ suffix: '.incomplete.json', indent: 2 }), { fileStem: checkShardName });
}

/** The marker of an incomplete shard, or null when there is none (or it is unreadable). */
export async function readIncompleteMarker(outputDir: string, shardName: string): Promise<IncompleteMarker | null> {
  try {
    return await incompleteMarkers(outputDir).read(shardName);
  } catch {
    return null;
  }
}

export function checkShardName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.includes('/') || name.includes('\\') || name === '.' || name === '..') {
    throw new ClipstreamError('ERR_INVALID_OPTION', `shard name ${JSON.stringify(name)} cannot name a file in the output folder`);
  }
  return name;
}

/**
 * Keys of the samples an earlier, interrupted run already journalled for this shard (done,
 * skipped or failed), so a reader can leave them out. Skipped and failed samples count as
 * done: a resume does not retry them (delete the journal to retry everything).
 *
 * @example const done = await completedKeys('features', 'shard-000000'); // Set { 'abc_10', ... }
 */
export async function completedKeys(outputDir: string, shardName: string): Promise<Set<string>> {
  return journalKeys(shardJournalPath(outputDir, shardName));
}

/**
 * Tar positions of the samples an earlier run journalled for this shard: what a resume skips
 * (by position, so a key that appears twice in a tar is two samples).
 */
export async function completedIndices(outputDir: string, shardName: string): Promise<Set<number>> {
  return journalIndices(shardJournalPath(outputDir, shardName));
}

/**
 * Why the finished shard file at `path` is not one (a truncated or otherwise broken file), or
 * null when it parses as a list. Whatever left it (a disk that filled up under an older
 * version, a copy cut short), a resume must redo such a shard, not skip it.
 */
export async function shardFileProblem(path: string): Promise<string | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    return `cannot read it (${(err as Error).message})`;
  }
  try {
    const value: unknown = extname(path) === '.json' ? JSON.parse(bytes.toString('utf8')) : unpackr.unpack(bytes);
    return Array.isArray(value) ? null : 'not a list of records';
  } catch (err) {
    return `it does not parse (${(err as Error).message})`;
  }
}

/**
 * Reads a feature shard back, msgpack or JSON by extension.
 *
 * @example const records = await readFeatureShard('features/shard-000000.msgpack'); records[0].visual_features[0].feat_array.layer_0.shape
 */
export async function readFeatureShard(path: string): Promise<FeatureRecord[]> {
  const ext = extname(path);
  if (ext === '.json') return readJsonShard(path);
  if (ext !== '.msgpack') {
    throw new ClipstreamError('ERR_FORMAT', `${path} is not a feature shard: expected a .msgpack or .json file name`, { where: { file: path } });
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ClipstreamError('ERR_IO', `${path}: cannot read feature shard (${(err as Error).message})`, { cause: err, where: { file: path } });
  }
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch (err) {
    throw new ClipstreamError('ERR_FORMAT', `${path} is not a feature shard: not valid msgpack (${(err as Error).message})`, {
      cause: err,
      where: { file: path },
    });
  }
  value = reviveMsgpackNumpy(value, path);
  if (!Array.isArray(value)) {
    throw new ClipstreamError(
      'ERR_FORMAT',
      `${path} is not a feature shard: expected a msgpack list of records, found ${value === null ? 'nil' : typeof value}`,
      {
        where: { file: path },
      },
    );
  }
  return value.map((r, i) => asFeatureRecord(r, `${path} record ${i}`));
}
