import { openExtractModels, resolveExtractOptions, type ExtractOptions } from '../extract/options.js';
export type { ExtractOptions } from '../extract/options.js';
import { shardResume } from '../extract/resume.js';
import { countExpectedClips, describeModel, extractLogFields, extractProgress, shardLogOf, type ShardLog } from '../extract/results.js';
import { featureStage, holdFailedSources, noteMissing, shardWriter, skipUnlisted, tallyClips, warnAudioNotes } from '../extract/stages.js';
import { decodeClips } from '../media/decode-stage.js';
import { checkStages, pipeline } from '../stage/index.js';
import { runJob, selectUnits } from '../run/runner.js';
import type { JobReport } from '../stage/job-run.js';
import { joinEntries } from '../shards/entry-join.js';
import { readTarShards } from '../shards/tar-reader.js';
import { ensureOutputDir, validateString } from '../util/validate.js';
import { readKeepList } from '../util/keep-list.js';

export type { ExtractProgress, ShardLog } from '../extract/results.js';

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
  /** The job runner's report: one result per shard of this run, item counts. */
  run: JobReport;
}

/**
 * The feature extraction job (seed 004, ACAV100M): every tar shard becomes one feature shard
 * `outputDir/<shard>.msgpack` with SlowFast-style visual and VGGish-style audio features per
 * clip. Shards whose output exists are skipped; a killed run resumes clip by clip. The stages:
 * read tar shards -> join ACAV entries -> hold failed sources -> decode -> visual features ->
 * audio features -> count -> write feature shards, run by the job runner (src/run/runner.ts).
 *
 * @example
 * const report = await extract({ tarPath: 'fixtures/shards/shard-{000000..000001}.tar', outputDir: 'out' });
 * console.log(report.clipsWritten, report.logPath);
 */
export async function extract(options: ExtractOptions): Promise<ExtractReport> {
  const started = Date.now();
  const o = resolveExtractOptions(options);
  const { outputDir, format, onWarning, overwrite } = o;
  // A fed run (a queue worker's) learns its shards as they come: no clip count ahead.
  const mine = options.feed ? null : selectUnits({ job: 'extract', units: o.all, unitId: (u) => u, only: options.only }, o.partition);
  await ensureOutputDir(outputDir, 'options.outputDir');
  const keepList = options.keepList === undefined ? undefined : validateString(options.keepList, 'options.keepList');
  const keep = keepList === undefined ? null : await readKeepList(keepList);
  const models = await openExtractModels(o, options.models);
  const { visual, audio } = models;
  const resume = shardResume({ outputDir, format, overwrite, onWarning });
  try {
    const { report } = await runJob(
      {
        job: 'extract',
        units: o.all,
        unitId: (u) => u,
        partition: o.partition,
        only: options.only,
        feed: options.feed,
        onUnitDone: options.onUnitDone,
        logDir: outputDir,
        itemsExpected: mine && (await countExpectedClips(mine)),
        logOptions: { format, batchSize: o.batchSize, parallelDecoders: o.parallelDecoders, device: o.device, overwrite },
        logFields: (results) => extractLogFields(results, { partition: o.partition, shardsInList: o.all.length, visual, audio }),
        locks: { finalPath: resume.finalPath, isDone: resume.isDone, onLocked: options.onLocked },
        resume: resume.resume,
        signal: options.signal,
        onWarning,
        onProgress: options.onProgress && ((p) => options.onProgress!(extractProgress(p))),
      },
      async (run) => {
        const index = new Map(o.all.map((u, i) => [u, i] as const));
        const [source, ...stages] = checkStages(
          [
            readTarShards(run.pending(), { onWarning: noteMissing(run, onWarning), indexOf: (u) => index.get(u) ?? -1 }),
            joinEntries({ onWarning, skipIndices: resume.doneClips }),
            ...(keep ? [skipUnlisted(keep, keepList!)] : []),
            holdFailedSources(run),
            decodeClips({ ...o.decodeOptions, concurrency: o.parallelDecoders, video: visual !== null, audio: audio !== null }),
            ...(visual ? [featureStage(visual, o.batchSize, options.onBatch)] : []),
            ...(audio ? [featureStage(audio, o.batchSize, options.onBatch), warnAudioNotes(onWarning)] : []),
            tallyClips(run),
            shardWriter(run, { outputDir, format, onWarning }),
          ],
          [],
        );
        await pipeline(source, ...stages, { signal: options.signal });
      },
    );
    const shards = report.units.map(shardLogOf);
    const seconds = (Date.now() - started) / 1000;
    return {
      logPath: report.logPath!,
      shards,
      clipsWritten: shards.reduce((n, s) => n + (s.status.startsWith('written') ? s.written - s.resumed : 0), 0),
      clipsFailed: report.items.failed,
      clipsSkipped: report.items.skipped,
      seconds,
      clipsPerSecond: seconds > 0 ? report.items.done / seconds : 0,
      visual: describeModel(visual),
      audio: describeModel(audio),
      run: report,
    };
  } finally {
    await models.close();
  }
}
