/**
 * Extract's stages around the shared ones (readTarShards, joinEntries, decodeClips,
 * extractFeatures, the feature-shard writer), each with its contract, and the small transforms
 * that tell the job runner what became of shards and clips.
 */
import { ClipstreamError } from '../errors.js';
import { extractFeatures, type Extractor } from '../infer/extractor.js';
import { declareStage, generatorStage, itemStage } from '../stage/index.js';
import type { JobRun } from '../stage/job-run.js';
import { ShardSourceError } from '../shards/shard-source.js';
import { shardBaseName } from '../shards/tar-reader.js';
import { writeFeatureShards, type FeatureShardFormat } from '../sinks/feature-shard.js';
import type { Sample, StreamItem, WarningHandler } from '../types.js';
import { emptyLog, shardResult } from './results.js';

/** Buffers of the small pass-through stages: as many items as a Transform holds (16). */
const PASS_THROUGH = { writableHighWaterMark: 16, readableHighWaterMark: 16 };

/** A model's stage: visual models need the decoded video, audio models the decoded audio. */
export function featureStage(model: Extractor, batchSize: number, onBatch?: (kind: 'visual' | 'audio', size: number) => void) {
  const kind = model.kind;
  return declareStage(extractFeatures(model, { batchSize, onBatch: (n) => onBatch?.(kind, n) }), {
    name: `${kind} features`,
    needs: [kind === 'visual' ? 'video' : 'audio'],
    adds: [kind === 'visual' ? 'visualFeatures' : 'audioFeatures'],
  });
}

/**
 * Wraps the reader's warnings: a shard that does not exist is recorded as `missing` (a failed
 * unit), then the warning goes on.
 */
export function noteMissing(run: JobRun<string>, onWarning: WarningHandler): WarningHandler {
  return (w) => {
    const url = w.where.shard;
    const missing = w.code === 'ERR_TAR' && (w.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    if (missing && url !== undefined && run.hasUnit(url) && !run.resultOf(url)) {
      run.unitDone(shardResult(emptyLog({ url, name: shardBaseName(url) }, '', 'missing'), w.message));
    }
    onWarning(w);
  };
}

/**
 * A shard whose bytes stopped coming (URL down, pipe: command failed) is not final: its ShardEnd
 * is held back, so the writer keeps the journal (and the shard's lock is kept till the run ends)
 * and a later run resumes the shard.
 */
export function holdFailedSources(run: JobRun<string>) {
  return declareStage(
    generatorStage<StreamItem, StreamItem>(async function* (items) {
      for await (const item of items) {
        if (item.kind === 'shard-end' && item.error?.cause instanceof ShardSourceError) {
          const log = { ...emptyLog(item.shard, '', 'failed (source)'), tarError: item.error.message };
          run.unitDone(shardResult(log), { keepLock: true });
          continue;
        }
        yield item;
      }
    }, PASS_THROUGH),
    { name: 'hold failed sources' },
  );
}

/**
 * One warning per clip whose sound was too short for one audio example (its record carries the
 * same `audio_note`), so that it is not silently taken for a clip without audio.
 */
export function warnAudioNotes(onWarning: WarningHandler) {
  return itemStage<StreamItem>({ name: 'warn about short audio', accepts: (item) => item.kind === 'sample', ...PASS_THROUGH }, async (item) => {
    const s = item as Sample;
    if (!s.audioNote) return;
    const name = s.entry?.filename ?? s.__key__;
    onWarning(new ClipstreamError('ERR_CLIP_TOO_SHORT', `${name}: ${s.audioNote}; no audio features`, { where: { shard: s.__url__, key: s.__key__ } }));
  });
}

/**
 * Skips (does not fail) every clip the keep list names neither by its tar key nor by its file
 * name's stem: it is counted and listed as skipped in its shard's log, and never decoded.
 */
export function skipUnlisted(keep: ReadonlySet<string>, keepListPath: string) {
  return itemStage<StreamItem>(
    { name: 'keep list', accepts: (item) => item.kind === 'sample', code: 'ERR_NOT_KEPT', statusOf: () => 'skipped', ...PASS_THROUGH },
    async (item) => {
      const s = item as Sample;
      const file = s.entry?.filename ?? '';
      const stem = file.includes('.') ? file.slice(0, file.lastIndexOf('.')) : file;
      if (keep.has(s.__key__) || keep.has(stem)) return;
      throw new ClipstreamError('ERR_NOT_KEPT', `${file || s.__key__}: not in the keep list ${keepListPath}`, { where: { shard: s.__url__, key: s.__key__ } });
    },
  );
}

/** Counts every clip once, as done, skipped or failed, for the progress and the report. */
export function tallyClips(run: JobRun<string>) {
  return declareStage(
    generatorStage<StreamItem, StreamItem>(async function* (items) {
      for await (const item of items) {
        if (item.kind === 'sample') run.item(!item.failure ? 'done' : item.failure.status === 'skipped' ? 'skipped' : 'failed');
        yield item;
      }
    }, PASS_THROUGH),
    { name: 'count clips' },
  );
}

/** The feature-shard writer, each finished shard reported to the runner. */
export function shardWriter(run: JobRun<string>, o: { outputDir: string; format: FeatureShardFormat; onWarning: WarningHandler }) {
  const writer = writeFeatureShards({
    outputDir: o.outputDir,
    format: o.format,
    onWarning: o.onWarning,
    onShardDone: (summary) => {
      if (summary.transient) {
        const error = `${summary.transient.length} clip(s) failed for a transient reason (${summary.transient[0]!.reason}); run again to retry them`;
        run.unitDone(shardResult({ ...summary, status: 'failed (transient)' }, error));
        return;
      }
      const status = summary.output === null ? 'no output' : summary.incomplete ? 'written (incomplete)' : 'written';
      run.unitDone(shardResult({ ...summary, status }));
    },
  });
  return declareStage(writer, { name: 'write feature shards', needs: ['entry'] });
}
