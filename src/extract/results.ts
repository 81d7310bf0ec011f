/**
 * What extract says about its shards: the per-shard log (`ShardLog`, the `shard_results` of the
 * run log), how a shard's status maps onto the job runner's outcomes, the log's extract fields,
 * and the progress view of the library's `onProgress`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Extractor } from '../infer/extractor.js';
import type { JobProgress } from '../util/progress.js';
import type { UnitResult } from '../stage/job-run.js';
import type { Partition } from '../util/partition.js';
import { isRemoteShard } from '../shards/shard-source.js';
import { shardBaseName } from '../shards/tar-reader.js';
import type { ShardSummary } from '../sinks/feature-shard.js';
import type { ShardInfo } from '../types.js';

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
    | 'failed (source)'
    | 'failed (transient)';
  /** For 'skipped (locked)': who holds the shard. */
  lockedBy?: string;
}

/**
 * The library's progress events: the job runner's `JobProgress` (what the one progress display
 * shows), with extract's own names for the same counts.
 */
export interface ExtractProgress extends JobProgress {
  shardsTotal: number;
  shardsDone: number;
  clipsDone: number;
  clipsFailed: number;
  clipsSkipped: number;
  /** Clips listed in the shards' json files, when they have one (for an ETA). */
  clipsExpected: number | null;
}

export function extractProgress(p: JobProgress): ExtractProgress {
  return {
    ...p,
    shardsTotal: p.unitsTotal,
    shardsDone: p.unitsDone,
    clipsDone: p.itemsDone,
    clipsFailed: p.itemsFailed,
    clipsSkipped: p.itemsSkipped,
    clipsExpected: p.itemsExpected,
  };
}

export function emptyLog(shard: Pick<ShardInfo, 'url' | 'name'>, output: string, status: ShardLog['status']): ShardLog {
  return { shard: shard.name, url: shard.url, output, written: 0, skipped: [], failed: [], resumed: 0, status };
}

/** A shard's status as the runner's outcome: written is done, skipped is skipped, the rest failed. */
export function outcomeOf(status: ShardLog['status']): UnitResult['outcome'] {
  if (status.startsWith('written')) return 'done';
  if (status.startsWith('skipped')) return 'skipped';
  return 'failed';
}

/** A shard log as the runner's unit result (the shard log's fields ride along). */
export function shardResult(log: ShardLog, error?: string): UnitResult {
  const why = error ?? log.tarError ?? (log.status === 'no output' ? `nothing could be read from ${log.url}` : undefined);
  return { unit: log.url, outcome: outcomeOf(log.status), ...log, ...(outcomeOf(log.status) === 'failed' && why ? { error: why } : {}) };
}

/** The shard log back from a unit result; a unit the runner recorded itself (locked, not run) gets the empty fields. */
export function shardLogOf(r: UnitResult): ShardLog {
  const { unit, outcome: _o, error: _e, ...rest } = r;
  const status = (r.status === 'not run' ? 'missing' : r.status) as ShardLog['status'];
  return { ...emptyLog({ url: unit, name: shardBaseName(unit) }, '', status), ...(rest as Partial<ShardLog>), status };
}

export function describeModel(e: Extractor | null) {
  return e ? { model: e.info.path, extractor_name: e.extractorName, dataset: e.dataset, provider: e.provider } : null;
}

/** The run log's extract fields, as before the job runner: `shards`, `models`, `partition.shards_in_list`, `shard_results`. */
export function extractLogFields(
  results: UnitResult[],
  o: { partition: Partition; shardsInList: number; visual: Extractor | null; audio: Extractor | null },
): Record<string, unknown> {
  const p = o.partition;
  return {
    shards: results.map((r) => r.unit),
    models: { visual: describeModel(o.visual), audio: describeModel(o.audio) },
    partition: { rank: p.rank, world: p.world, from: p.from, units_in_list: o.shardsInList, shards_in_list: o.shardsInList },
    shard_results: results.map((r) => (r.status === 'pending' ? { url: r.unit, status: 'pending' } : shardLogOf(r))),
  };
}

/** Clips the shards' json files list (local shards only), for an ETA; null when any has none. */
export async function countExpectedClips(urls: readonly string[]): Promise<number | null> {
  let total = 0;
  for (const url of urls) {
    if (isRemoteShard(url)) return null;
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
