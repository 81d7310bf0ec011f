/**
 * Resume for extract's unit, the shard: what the job runner asks before a shard is read. A shard
 * whose feature shard exists is done (skipped), unless it is marked incomplete and its tar was
 * replaced since; a stale journal beside a finished shard (a run killed between the rename and
 * the journal's removal) is removed. Within a shard, the clips of its journal are not redone
 * (`doneClips`, by position in the tar).
 */
import { rm, stat } from 'node:fs/promises';
import { ClipstreamError } from '../errors.js';
import type { UnitResult } from '../stage/job-run.js';
import { shardBaseName } from '../shards/tar-reader.js';
import {
  completedIndices,
  readIncompleteMarker,
  shardFileProblem,
  shardIncompletePath,
  shardJournalPath,
  shardOutputPath,
  type FeatureShardFormat,
} from '../sinks/feature-shard.js';
import type { ShardInfo, WarningHandler } from '../types.js';
import { exists } from '../util/fs.js';
import { emptyLog, shardResult } from './results.js';

export interface ShardResumeOptions {
  outputDir: string;
  format: FeatureShardFormat;
  /** Redo every shard (its journal removed first). */
  overwrite: boolean;
  onWarning: WarningHandler;
}

/** The runner's `locks` and `resume` for extract's shards. */
export function shardResume(o: ShardResumeOptions) {
  const output = (url: string) => shardOutputPath(o.outputDir, shardBaseName(url), o.format);
  const journal = (url: string) => shardJournalPath(o.outputDir, shardBaseName(url));
  return {
    finalPath: output,
    /** Another run holding the lock finished the shard when its output exists. */
    isDone: async (url: string) => !o.overwrite && (await exists(output(url))),
    /** The shard's result when it needs no work, else null (to read it). */
    resume: async (url: string): Promise<UnitResult | null> => {
      const name = shardBaseName(url);
      const out = output(url);
      if (o.overwrite || !(await exists(out))) {
        if (o.overwrite) await rm(journal(url), { force: true });
        return null;
      }
      const broken = await shardFileProblem(out);
      if (broken) {
        // Never skipped as "output exists": redone (its journal, if any, still saves the clips done).
        o.onWarning(
          new ClipstreamError('ERR_FORMAT', `Shard ${url}: ${out} is not a whole feature shard (${broken}); redoing it`, { where: { shard: url, file: out } }),
        );
        await rm(out, { force: true });
        return null;
      }
      const marker = await readIncompleteMarker(o.outputDir, name);
      if (marker) {
        // An incomplete shard is redone once its tar was replaced; while it is the same tar,
        // redoing it would give the same clips again, so it is skipped, but never silently.
        const st = await stat(url).catch(() => null);
        if (st && (st.size !== marker.tar_size || st.mtimeMs !== marker.tar_mtime_ms)) {
          await rm(journal(url), { force: true });
          return null;
        }
        o.onWarning(
          new ClipstreamError(
            'ERR_TAR',
            `Shard ${url}: ${out} exists but is incomplete (${marker.reason}; see ${shardIncompletePath(o.outputDir, name)}); skipped as the tar is unchanged. Replace the tar or use --overwrite to redo it`,
            { where: { shard: url, file: out } },
          ),
        );
      }
      // A run killed between the final rename and the journal's removal leaves a stale journal.
      await rm(journal(url), { force: true });
      const log = emptyLog({ url, name }, out, marker ? 'skipped (output exists, incomplete)' : 'skipped (output exists)');
      if (marker) log.incomplete = { reason: marker.reason, missing: marker.missing };
      return shardResult(log);
    },
    /** Clips of a shard done before (its journal), by position in the tar; none with overwrite. */
    doneClips: async (shard: ShardInfo) => (o.overwrite ? new Set<number>() : completedIndices(o.outputDir, shard.name)),
  };
}
