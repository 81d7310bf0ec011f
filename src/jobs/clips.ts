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
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';
import { defaultWarningHandler, type WarningHandler } from '../types.js';
import { orderedMap } from '../util/stage.js';
import { validateBoolean, validateInteger, validateNumber, validateOneOf, validateString } from '../util/validate.js';
import { ENCODERS, resolveEncoder, type EncoderChoice } from '../clips/encoders.js';
import { VIDEO_COLUMNS, processVideo, type ClipPlanSpec, type VideoContext, type VideoRow } from '../clips/job.js';
import { CLIP_COLUMNS, writeClipShards, type ClipRecord, type ShardOutput } from '../clips/package.js';
import { parseSpanTable, type SpanIssue } from '../clips/plan.js';
import { readSources } from '../clips/sources.js';
import { writeCsvAtomic } from '../clips/table.js';
import { rankDir, shareOf, WHOLE, type Partition } from '../scale/partition.js';

export interface ClipsOptions {
  /** CSV/TSV/JSONL list with `video_id`, `path`, `url` columns, or a folder of videos. */
  sources: string;
  outDir: string;
  /** Span table (Sekai names or explicit columns). Else fixed stride or fixed parts. */
  spans?: string;
  /** Fixed stride (NeMo): clip length, stride (default: the length), minimum tail, limit per video. */
  clipLenS?: number;
  clipStrideS?: number;
  minClipLengthS?: number;
  limitClips?: number;
  /** Seed 002's `--clip-duration`: consecutive parts of this many minutes. */
  partMinutes?: number;
  /** Spans past the end of a video: cut at the end (default) or dropped. */
  pastEnd?: 'clip' | 'drop';
  /** Only the first N sources. */
  numVideos?: number;
  /** This run's share of the sources (`--rank/--world`); with world > 1 outputs go to `outDir/rank-R-of-W/`. */
  partition?: Partition;
  /** Videos worked on at once. Default 1. */
  numProcesses?: number;
  encoder?: string;
  encoderThreads?: number;
  encodeBatchSize?: number;
  numClipsPerChunk?: number;
  useInputBitRate?: boolean;
  crf?: number;
  preset?: string;
  mode?: 'one-pass' | 'per-clip';
  ignoreAudio?: boolean;
  /** Clips per tar shard; 0 or absent: clips folder only. */
  shardSize?: number;
  /** ffmpeg to use (e.g. a system build with NVENC); default FFMPEG_PATH or the bundled one. */
  ffmpegPath?: string;
  ytDlpPath?: string;
  downloadRetries?: number;
  downloadRetryDelayMs?: number;
  maxDownloadBytes?: number;
  onWarning?: WarningHandler;
  /** Called after each video with its row. */
  onVideo?: (row: VideoRow, done: number, total: number) => void;
  signal?: AbortSignal;
}

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

function planOf(o: ClipsOptions, spans: Map<string, import('../clips/plan.js').SpanSpec[]> | null): ClipPlanSpec {
  const given = [spans !== null, o.clipLenS !== undefined, o.partMinutes !== undefined].filter(Boolean).length;
  if (given !== 1) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `Expected exactly one of options.spans, options.clipLenS or options.partMinutes but received ${given}`, { where: { option: 'options.spans' } });
  }
  if (spans) return { kind: 'spans', spans, pastEnd: o.pastEnd === undefined ? 'clip' : validateOneOf(o.pastEnd, 'options.pastEnd', ['clip', 'drop'] as const) };
  if (o.partMinutes !== undefined) return { kind: 'parts', minutes: validateNumber(o.partMinutes, 'options.partMinutes', Number.MIN_VALUE) };
  const len = validateNumber(o.clipLenS, 'options.clipLenS', Number.MIN_VALUE);
  return {
    kind: 'stride',
    stride: {
      clipLenS: len,
      clipStrideS: o.clipStrideS === undefined ? len : validateNumber(o.clipStrideS, 'options.clipStrideS', Number.MIN_VALUE),
      minClipLengthS: validateNumber(o.minClipLengthS ?? 0, 'options.minClipLengthS', 0),
      limitClips: validateInteger(o.limitClips ?? 0, 'options.limitClips', 0),
    },
  };
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
  const sourcesPath = validateString(options?.sources, 'options.sources');
  const outDir = rankDir(validateString(options.outDir, 'options.outDir'), options.partition ?? WHOLE);
  const warn = options.onWarning ?? defaultWarningHandler;
  const numProcesses = validateInteger(options.numProcesses ?? 1, 'options.numProcesses', 1, 256);
  const shardSize = validateInteger(options.shardSize ?? 0, 'options.shardSize', 0);
  const ignoreAudio = validateBoolean(options.ignoreAudio ?? false, 'options.ignoreAudio');
  const useInputBitRate = validateBoolean(options.useInputBitRate ?? false, 'options.useInputBitRate');
  const mode = validateOneOf(options.mode ?? 'one-pass', 'options.mode', ['one-pass', 'per-clip'] as const);
  validateOneOf(options.encoder ?? 'libx264', 'options.encoder', ENCODERS);
  let spans: Map<string, import('../clips/plan.js').SpanSpec[]> | null = null;
  if (options.spans !== undefined) {
    const file = validateString(options.spans, 'options.spans');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ClipstreamError('ERR_IO', `Cannot read span table ${file}: ${(err as Error).message}`, { cause: err, where: { file } });
    }
    spans = parseSpanTable(text, file);
  }
  const plan = planOf(options, spans);

  let sources = await readSources(sourcesPath, (id) =>
    warn(new ClipstreamError('ERR_FORMAT', `${sourcesPath}: video ${id} is listed more than once; only the first row is used`, { where: { file: sourcesPath, key: id } })));
  if (options.numVideos !== undefined) sources = sources.slice(0, validateInteger(options.numVideos, 'options.numVideos', 0));
  sources = shareOf(sources, options.partition ?? WHOLE);

  const encoder = await resolveEncoder(options.encoder ?? 'libx264', { ffmpegPath: options.ffmpegPath, onWarning: warn });
  const ctx: VideoContext = {
    clipsDir: join(outDir, 'clips'),
    downloadsDir: join(outDir, 'downloads'),
    workDir: join(outDir, '.work'),
    plan,
    encoder,
    transcode: {
      threads: validateInteger(options.encoderThreads ?? 1, 'options.encoderThreads', 1, 64),
      crf: validateNumber(options.crf ?? 23, 'options.crf', 0, 51),
      preset: options.preset,
      mode,
      numClipsPerChunk: validateInteger(options.numClipsPerChunk ?? 32, 'options.numClipsPerChunk', 1, 1024),
      encodeBatchSize: validateInteger(options.encodeBatchSize ?? 1, 'options.encodeBatchSize', 1, 256),
      ffmpegPath: options.ffmpegPath,
    },
    useInputBitRate,
    ignoreAudio,
    download: {
      retries: validateInteger(options.downloadRetries ?? 3, 'options.downloadRetries', 0),
      retryDelayMs: validateNumber(options.downloadRetryDelayMs ?? 1000, 'options.downloadRetryDelayMs', 0),
      maxBytes: options.maxDownloadBytes === undefined ? undefined : validateInteger(options.maxDownloadBytes, 'options.maxDownloadBytes', 1),
    },
    ytDlpPath: options.ytDlpPath,
    signal: options.signal,
  };

  const videosCsv = join(outDir, 'videos.csv');
  const clipsCsv = join(outDir, 'clips.csv');
  // Pending rows are in the table from the start, so a crashed run still shows what was planned.
  const rows: VideoRow[] = sources.map((s) => ({ video_id: s.videoId, downloaded: false, failed: false, error: '', path: '', duration: '', num_clips: 0 }));
  let tableWrite = writeCsvAtomic(videosCsv, VIDEO_COLUMNS, rows);
  const records: ClipRecord[][] = sources.map(() => []);
  const issues: SpanIssue[] = [];
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
      warn(new ClipstreamError('ERR_BAD_ARGUMENT', `video ${issue.videoId}: span ${issue.span} ${issue.action}: ${issue.reason}`, { where: { key: issue.videoId } }));
    }
    if (result.row.failed) warn(new ClipstreamError('ERR_DECODE', result.row.error, { where: { key: result.row.video_id } }));
    options.onVideo?.(result.row, ++done, sources.length);
    tableWrite = tableWrite.then(() => writeCsvAtomic(videosCsv, VIDEO_COLUMNS, rows));
  }
  await tableWrite;
  const allRecords = records.flat();
  await writeCsvAtomic(clipsCsv, CLIP_COLUMNS, allRecords);
  if (issues.length > 0) {
    await writeCsvAtomic(join(outDir, 'span_issues.csv'), ['video_id', 'span', 'action', 'reason'], issues.map((x) => ({ video_id: x.videoId, span: x.span, action: x.action, reason: x.reason })));
  }
  const shards = shardSize > 0 ? await writeClipShards(allRecords, ctx.clipsDir, join(outDir, 'shards'), shardSize) : [];
  return { videos: rows, clips: allRecords, issues, shards, encoder, clipsMade: made, videosCsv, clipsCsv, seconds: (Date.now() - started) / 1000 };
}
