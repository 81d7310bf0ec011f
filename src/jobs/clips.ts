/**
 * The `clips` job: a list of long source videos in, clean clips (and optionally tar shards
 * that `extract` reads) out, with a per-video and a per-clip table. A composition of the
 * stage files under src/clips/, run by the job runner (src/run/runner.ts) with one unit per
 * source video:
 *
 *   source videos → obtain → probe → plan → cut (one ffmpeg per chunk, audio added) → describe → record
 *
 *   outputDir/clips/{video}_{start_frame}_{end_frame}.mp4   finished clips
 *   outputDir/shards/shard-NNNNNN.{tar,json}               with shardSize, once every video is recorded
 *   outputDir/videos.csv  outputDir/clips.csv  outputDir/span_issues.csv   a view over outputDir/.units/
 *   outputDir/shots.csv   with `split: 'shots'`: every shot of every recorded video (also from .units/)
 *   outputDir/.units/<video_id>.json                        one record per finished video
 *   outputDir/downloads/  downloaded sources (kept: a re-run does not fetch them again)
 *   outputDir/.work/      FLAC audio and video-only clips in flight
 *   outputDir/log_<host>_<pid>_<ms>.json                    the run log
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ClipstreamError } from '../errors.js';
import { cutStage } from '../clips/cut.js';
import { describeStage } from '../clips/describe.js';
import { countReasons } from '../clips/filter.js';
import { filterStage } from '../clips/filter-stage.js';
import type { EncoderChoice } from '../media/encoders.js';
import { SOURCE_FIELDS, videoItems, type VideoRow } from '../clips/item.js';
import { obtainStage } from '../clips/obtain.js';
import { resolveClipsOptions, unlistedSpans, type ClipsOptions, type ResolvedClips } from '../clips/options.js';
import type { ShardOutput } from '../clips/package.js';
import type { ClipRecord } from '../sinks/clip-table.js';
import { planStage } from '../clips/plan-stage.js';
import type { SpanIssue } from '../clips/plan.js';
import { probeStage } from '../clips/probe-stage.js';
import { clipsRecordSink, unitResult } from '../clips/record.js';
import { listClipSources } from '../clips/sources.js';
import { ClipTables, pendingRow, UNITS_DIR, unitRecordPath, type TablesStats } from '../clips/table.js';
import { checkStages, pipeline } from '../stage/index.js';
import { runJob } from '../run/runner.js';
import type { JobReport } from '../stage/job-run.js';
import { readKeepList } from '../util/keep-list.js';

export type { ClipsOptions } from '../clips/options.js';

export interface ClipsReport {
  /** This run's videos (its share, or `only`), in list order. */
  videos: VideoRow[];
  clips: ClipRecord[];
  issues: SpanIssue[];
  /** Written by the run that finishes the last video of the list; [] while videos are still to do. */
  shards: ShardOutput[];
  encoder: EncoderChoice;
  /** Clips cut in this run; the rest already existed. */
  clipsMade: number;
  /** With a filter: how many of this run's clips each reason kept out (`{ 'motion<0.02': 3 }`; a clip failing two rules counts for each). */
  filtered: Record<string, number>;
  videosCsv: string;
  clipsCsv: string;
  /** `split: 'shots'`: the shots table; null for other plans. */
  shotsCsv: string | null;
  seconds: number;
  /** Table work of this run: rebuilds done, rebuilds skipped by the throttle, seconds spent on the tables and shards. */
  tables: TablesStats;
  run: JobReport;
}

const issueWarning = (i: SpanIssue) =>
  new ClipstreamError('ERR_INVALID_OPTION', `video ${i.videoId}: span ${i.span} ${i.action}: ${i.reason}`, { where: { key: i.videoId } });

/**
 * Runs the clips job. Re-running with the same options skips every clip that exists and
 * rewrites only shards whose content changed. A video that fails to download, probe or
 * decode is recorded in `videos.csv` and skipped. Ranks (`partition`) and queue workers
 * (`only`) share `outputDir`: the tables always show every video recorded there.
 *
 * @example
 * const report = await clips({ sources: 'sources.csv', outputDir: 'out', clipLenS: 4, shardSize: 100 });
 * // then: clipstream extract --tar_path "out/shards/shard-{000000..000009}.tar" --out_path feats
 */
export async function clips(options: ClipsOptions): Promise<ClipsReport> {
  const started = Date.now();
  const resolved = await resolveClipsOptions(options);
  try {
    return await clipsWith(options, resolved, started);
  } finally {
    await resolved.ctx.scores?.close?.();
  }
}

async function clipsWith(options: ClipsOptions, resolved: ResolvedClips, started: number): Promise<ClipsReport> {
  const { sourcesPath, outputDir, onWarning, shardSize, spans, ctx, tablesEveryS } = resolved;
  const sources = await listClipSources(sourcesPath, options.numVideos, onWarning);
  const keep = options.keepList === undefined ? null : await readKeepList(options.keepList);
  // Against the whole list: a span of a video in another rank's share is not lost.
  const listIssues = spans ? unlistedSpans(spans, sources, options.numVideos !== undefined) : [];
  for (const issue of listIssues) onWarning(issueWarning(issue));
  const tables = new ClipTables(
    outputDir,
    sources.map((s) => s.videoId),
    listIssues,
    options.signal,
    {
      everyS: tablesEveryS,
      wholeList: options.only === undefined && (options.partition?.world ?? 1) === 1,
      shards: { clipsDir: ctx.clipsDir, shardsDir: join(outputDir, 'shards'), shardSize, ...(keep ? { keep } : {}) },
      onWarning,
      shotsTable: ctx.plan.kind === 'shots',
    },
  );
  // A finished video's shots are read from its record, not detected again.
  ctx.recordedShots = async (videoId) => (await tables.records.read(videoId))?.shots ?? null;
  await mkdir(join(outputDir, UNITS_DIR), { recursive: true });
  let made = 0;
  let done = 0;

  const { report: run } = await runJob(
    {
      job: 'clips',
      units: sources,
      unitId: (s) => s.videoId,
      partition: options.partition,
      only: options.only,
      logDir: outputDir,
      // What a killed run left half-written goes first; its finished clips stay and are checked.
      tempDirs: [ctx.clipsDir, ctx.filteredDir!, ctx.workDir, join(outputDir, 'shards'), join(outputDir, UNITS_DIR), ...(ctx.scoresDir ? [ctx.scoresDir] : [])],
      logOptions: { sources: sourcesPath, numVideos: options.numVideos, shardSize, encoder: ctx.encoder.encoder, plan: ctx.plan.kind },
      // One run per video at a time, across ranks, workers and machines; a finished video is done again (its clips checked, not cut).
      locks: { finalPath: (s) => unitRecordPath(outputDir, s.videoId), isDone: async () => false },
      signal: options.signal,
      onWarning,
      onProgress: options.onProgress,
    },
    async (job) => {
      // The tables exist from the start, so a crashed run still shows what was planned (written only if missing or for another list).
      await tables.update('start');
      const stages = checkStages(
        [
          obtainStage(ctx),
          probeStage(ctx),
          planStage(ctx),
          cutStage(ctx),
          filterStage(ctx),
          describeStage(ctx),
          clipsRecordSink({
            tables,
            onRecorded: (item, record) => {
              made += item.made;
              for (const issue of item.issues) onWarning(issueWarning(issue));
              if (item.failure) onWarning(new ClipstreamError(item.failure.error.code, item.row.error, { where: { key: item.row.video_id } }));
              job.item('done', record.clips.length);
              job.item('failed', record.issues.filter((i) => i.action === 'failed').length);
              job.unitDone(unitResult(item, record));
              options.onVideo?.(record.row, ++done, job.units.length);
            },
          }),
        ],
        SOURCE_FIELDS,
      );
      await pipeline(Readable.from(videoItems(job.pending()), { highWaterMark: 1 }), ...stages, { signal: options.signal });
    },
  );
  const { shards } = await tables.update('end');
  // Only this run's records: the report does not read the whole folder.
  const ids = new Set(run.units.map((u) => u.unit));
  const records = await tables.readSome(ids);
  const mine = tables.videoIds.filter((id) => ids.has(id));
  const clipRows = [...records.values()].flatMap((r) => r.clips);
  return {
    videos: mine.map((id) => records.get(id)?.row ?? pendingRow(id)),
    clips: clipRows,
    issues: [...listIssues, ...[...records.values()].flatMap((r) => r.issues)],
    shards,
    encoder: ctx.encoder,
    clipsMade: made,
    filtered: countReasons(clipRows),
    videosCsv: tables.videosCsv,
    clipsCsv: tables.clipsCsv,
    shotsCsv: ctx.plan.kind === 'shots' ? tables.shotsCsv : null,
    seconds: (Date.now() - started) / 1000,
    tables: { ...tables.stats },
    run,
  };
}
