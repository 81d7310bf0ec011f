/**
 * The `clips` job: a list of long source videos in, clean clips (and optionally tar shards
 * that `extract` reads) out, with a per-video and a per-clip table.
 *
 *   outDir/clips/{video}_{start_frame}_{end_frame}.mp4   finished clips
 *   outDir/shards/shard-NNNNNN.{tar,json}               with shardSize
 *   outDir/videos.csv  outDir/clips.csv  outDir/span_issues.csv
 *   outDir/downloads/  downloaded sources (kept: a re-run does not fetch them again)
 *   outDir/.work/      FLAC audio and video-only clips in flight
 */
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { removeDeadTemps } from '../util/atomic.js';
import { orderedMap } from '../util/stage.js';
import type { EncoderChoice } from '../clips/encoders.js';
import { VIDEO_COLUMNS, processVideo, type VideoRow } from '../clips/job.js';
import { resolveClipsOptions, unlistedSpans, type ClipsOptions } from '../clips/options.js';
import { CLIP_COLUMNS, writeClipShards, type ClipRecord, type ShardOutput } from '../clips/package.js';
import type { SpanIssue } from '../clips/plan.js';
import { readSources } from '../clips/sources.js';
import { writeCsvAtomic } from '../clips/table.js';
import { shareOf, WHOLE } from '../scale/partition.js';

export type { ClipsOptions } from '../clips/options.js';

export interface ClipsReport {
  videos: VideoRow[];
  clips: ClipRecord[];
  issues: SpanIssue[];
  shards: ShardOutput[];
  encoder: EncoderChoice;
  /** Clips cut in this run; the rest already existed. */
  clipsMade: number;
  videosCsv: string;
  clipsCsv: string;
  seconds: number;
}

/**
 * Runs the whole clips job. Re-running with the same options skips every clip that exists
 * and rewrites only shards whose content changed. A video that fails to download, probe or
 * decode is recorded in `videos.csv` and skipped; `videos.csv` is rewritten after every video.
 *
 * @example
 * const report = await clips({ sources: 'sources.csv', outDir: 'out', clipLenS: 4, shardSize: 100 });
 * // then: clipstream extract --tar_path "out/shards/shard-{000000..000009}.tar" --out_path feats
 */
export async function clips(options: ClipsOptions): Promise<ClipsReport> {
  const started = Date.now();
  const { sourcesPath, outDir, warn, numProcesses, shardSize, spans, ctx } = await resolveClipsOptions(options);
  let sources = await readSources(sourcesPath, (id) =>
    warn(
      new ClipstreamError('ERR_FORMAT', `${sourcesPath}: video ${id} is listed more than once; only the first row is used`, {
        where: { file: sourcesPath, key: id },
      }),
    ),
  );
  if (options.numVideos !== undefined) sources = sources.slice(0, options.numVideos);
  // Against the whole list: a span of a video in another rank's share is not lost.
  const issues: SpanIssue[] = spans ? unlistedSpans(spans, sources, options.numVideos !== undefined) : [];
  sources = shareOf(sources, options.partition ?? WHOLE);

  // What a killed run left half-written goes first; its finished clips stay and are checked.
  for (const d of [outDir, ctx.clipsDir, ctx.workDir, join(outDir, 'shards')]) await removeDeadTemps(d);

  const videosCsv = join(outDir, 'videos.csv');
  const clipsCsv = join(outDir, 'clips.csv');
  // Pending rows are in the table from the start, so a crashed run still shows what was planned.
  const rows: VideoRow[] = sources.map((s) => ({ video_id: s.videoId, downloaded: false, failed: false, error: '', path: '', duration: '', num_clips: 0 }));
  let tableWrite = writeCsvAtomic(videosCsv, VIDEO_COLUMNS, rows);
  const records: ClipRecord[][] = sources.map(() => []);
  for (const issue of issues)
    warn(
      new ClipstreamError('ERR_BAD_ARGUMENT', `video ${issue.videoId}: span ${issue.span} ${issue.action}: ${issue.reason}`, { where: { key: issue.videoId } }),
    );
  let made = 0;
  let done = 0;

  const indexed = sources.map((s, i) => ({ s, i }));
  async function* iter() {
    yield* indexed;
  }
  for await (const { i, result } of orderedMap(iter(), async ({ s, i }) => ({ i, result: await processVideo(s, ctx) }), numProcesses)) {
    rows[i] = result.row;
    records[i] = result.records;
    issues.push(...result.issues);
    made += result.made;
    for (const issue of result.issues) {
      warn(
        new ClipstreamError('ERR_BAD_ARGUMENT', `video ${issue.videoId}: span ${issue.span} ${issue.action}: ${issue.reason}`, {
          where: { key: issue.videoId },
        }),
      );
    }
    if (result.row.failed) warn(new ClipstreamError('ERR_DECODE', result.row.error, { where: { key: result.row.video_id } }));
    options.onVideo?.(result.row, ++done, sources.length);
    tableWrite = tableWrite.then(() => writeCsvAtomic(videosCsv, VIDEO_COLUMNS, rows));
  }
  await tableWrite;
  const allRecords = records.flat();
  await writeCsvAtomic(clipsCsv, CLIP_COLUMNS, allRecords);
  // Always written, so an empty table says "nothing was lost" rather than "not checked".
  await writeCsvAtomic(
    join(outDir, 'span_issues.csv'),
    ['video_id', 'span', 'action', 'reason'],
    issues.map((x) => ({ video_id: x.videoId, span: x.span, action: x.action, reason: x.reason })),
  );
  const shards = shardSize > 0 ? await writeClipShards(allRecords, ctx.clipsDir, join(outDir, 'shards'), shardSize) : [];
  return {
    videos: rows,
    clips: allRecords,
    issues,
    shards,
    encoder: ctx.encoder,
    clipsMade: made,
    videosCsv,
    clipsCsv,
    seconds: (Date.now() - started) / 1000,
  };
}
