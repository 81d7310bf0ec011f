/**
 * The options of the `clips` job, checked and turned into what the stages share
 * (`VideoContext`) before any video is touched: a bad option is an error at once.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipstreamError, InvalidOptionError } from '../errors.js';
import { ClipFingerprinter } from '../features/fingerprint.js';
import { openPluginScorers, PLUGIN_FRAMES, type ScorerSpec } from '../infer/scorers.js';
import { closeModels } from '../infer/scorers.js';
import { loadTextDetector, textArea, type TextBox } from '../infer/text-detector.js';
import { defaultWarningHandler, type CommonJobOptions, type WarningHandler } from '../types.js';
import { validateBoolean, validateInteger, validateNumber, validateOneOf, validateString } from '../util/validate.js';
import { ENCODERS, resolveEncoder } from '../media/encoders.js';
import { Slots } from '../stage/slots.js';
import type { ClipPlanSpec, VideoContext, VideoRow } from './item.js';
import { parseSpanTable, type SpanIssue, type SpanSpec } from './plan.js';
import type { SourceRow } from './sources.js';
import { TABLES_EVERY_S } from './table.js';
import { SHOT_DETECTORS, type ShotDetectorName } from './shots.js';
import type { JobProgress } from '../util/progress.js';
import { parseScoreList, type ScoreSetup } from '../features/clip-scores.js';
import { SCORES_DIR } from './stored-scores.js';
import { withPreviews } from './previews.js';
import { parseFilter, type FilterRule } from './filter.js';

export interface ClipsOptions extends CommonJobOptions<JobProgress> {
  /** CSV/TSV/JSONL list with `video_id`, `path`, `url` columns, or a folder of videos. */
  sources: string;
  /** Folder for clips/, shards/, videos.csv and clips.csv (the CLI's `--out_dir`). */
  outputDir: string;
  /** Span table (Sekai names or explicit columns). Else fixed stride or fixed parts. */
  spans?: string;
  /** Fixed stride (NeMo): clip length, stride (default: the length), minimum tail, limit per video. */
  clipLenS?: number;
  clipStrideS?: number;
  minClipLengthS?: number;
  limitClips?: number;
  /** Seed 002's `--clip-duration`: consecutive parts of this many minutes. */
  partMinutes?: number;
  /** `'shots'`: cut where the shot changes (docs/clips.md, "Cutting on shots"). */
  split?: 'shots';
  /** Shots: the detector (default 'content', PySceneDetect's ContentDetector; 'adaptive'; 'transnetv2'). */
  shotDetector?: ShotDetectorName;
  /** Shots, transnetv2: the ONNX file `clipstream models build --arch=transnetv2` wrote (required for that detector). */
  shotModel?: string;
  /** Shots: the detector's threshold (content: 27 on its 0-255 scale; adaptive: its ratio, 3.0). */
  shotThreshold?: number;
  /** Shots: least seconds between two cuts (default: 15 frames, PySceneDetect's). */
  minShotS?: number;
  /** Shots: fades to and from black are boundaries (default true). */
  shotFades?: boolean;
  /** Shots: longer shots are cut to this many seconds (see maxLengthMode); default no limit. */
  maxClipLengthS?: number;
  /** Shots: a shot longer than maxClipLengthS makes its first piece only (`truncate`) or consecutive pieces (`stride`, default). */
  maxLengthMode?: 'truncate' | 'stride';
  /** Shots: seconds taken off each end of a shot (default 0). */
  trimS?: number;
  /** Spans past the end of a video: cut at the end (default) or dropped. */
  pastEnd?: 'clip' | 'drop';
  /** Only the first N sources. */
  numVideos?: number;
  /** Only these video ids (a queue worker runs the video it was handed); each must be in the list. */
  only?: readonly string[];
  /** Videos worked on at once. Default 1. */
  parallelVideos?: number;
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
  /** A keep list (`clipstream dedup`'s keep.txt): the shards hold only the clips it names by clip_id or file stem. */
  keepList?: string;
  /** ffmpeg to use (e.g. a system build with NVENC); default FFMPEG_PATH or the bundled one. */
  ffmpegPath?: string;
  ytDlpPath?: string;
  downloadRetries?: number;
  downloadRetryDelayMs?: number;
  maxDownloadBytes?: number;
  /**
   * Least seconds between two rebuilds of the tables that do not complete them (default 30; 0:
   * after every video). The rebuild that completes the list, and the end of a whole-list run,
   * always run; see src/clips/table.ts.
   */
  tablesEveryS?: number;
  /**
   * Per-clip scores, computed by the ffmpeg that cuts the clip (clips.csv columns; see
   * docs/clips.md#scores-and-filters): `true` or `'all'` (default), `false` or `'none'`, or a
   * list of names (`['motion', 'black']` or `'motion,black'`) of SCORE_NAMES.
   */
  scores?: boolean | string | readonly string[];
  /**
   * Plug-in ONNX scorers (`'aes=models/aes.onnx:unit'`, a comma list, or an array of those or of
   * specs): column `{name}_score` after the built-in scores, the model's mean over `scorerFrames`
   * evenly spaced score frames of each clip (docs/clips.md#plug-in-scorers).
   */
  scorers?: string | readonly (string | ScorerSpec)[];
  /** Frames of each clip a plug-in scorer runs on, evenly spaced (default PLUGIN_FRAMES, 3). */
  scorerFrames?: number;
  /**
   * Keep only clips passing every rule (`'motion>=0.02,duration>=2'`, or rules): the others get
   * `kept=false` and a `filter_reason` in clips.csv, and their file goes as `filtered` says.
   */
  filter?: string | readonly FilterRule[];
  /** Clips a filter kept out: `'keep'` (default) writes them to `outputDir/filtered/`; `'skip'` writes none (and cuts none that a rule on the plan alone keeps out). */
  filtered?: 'keep' | 'skip';
  /** Also write `previews/<clip stem>.webp`, a small animated WebP of each clip from the frames the cut decodes for scores, and a `preview` column (default false). */
  previews?: boolean;
  /** Called after each video with its row. */
  onVideo?: (row: VideoRow, done: number, total: number) => void;
}

function planOf(o: ClipsOptions, spans: Map<string, SpanSpec[]> | null): ClipPlanSpec {
  const given = [spans !== null, o.clipLenS !== undefined, o.partMinutes !== undefined, o.split !== undefined].filter(Boolean).length;
  if (given !== 1) {
    throw new ClipstreamError(
      'ERR_INVALID_OPTION',
      `Expected exactly one of options.spans, options.clipLenS, options.partMinutes or options.split but received ${given}`,
      {
        where: { option: 'options.spans' },
      },
    );
  }
  if (o.split !== undefined) {
    validateOneOf(o.split, 'options.split', ['shots'] as const);
    if (o.shotDetector === 'transnetv2' && o.shotModel === undefined)
      throw new InvalidOptionError(
        'options.shotModel: the transnetv2 shot detector needs its ONNX file, built by `clipstream models build --arch=transnetv2`',
        'shotModel',
      );
    const maxLen = o.maxClipLengthS === undefined ? undefined : validateNumber(o.maxClipLengthS, 'options.maxClipLengthS', Number.MIN_VALUE);
    return {
      kind: 'shots',
      detector: validateOneOf(o.shotDetector ?? 'content', 'options.shotDetector', SHOT_DETECTORS),
      ...(o.shotModel === undefined ? {} : { model: validateString(o.shotModel, 'options.shotModel') }),
      ...(o.shotThreshold === undefined ? {} : { threshold: validateNumber(o.shotThreshold, 'options.shotThreshold', 0) }),
      ...(o.minShotS === undefined ? {} : { minShotS: validateNumber(o.minShotS, 'options.minShotS', 0) }),
      fades: validateBoolean(o.shotFades ?? true, 'options.shotFades'),
      minClipLengthS: validateNumber(o.minClipLengthS ?? 0, 'options.minClipLengthS', 0),
      ...(maxLen === undefined ? {} : { maxClipLengthS: maxLen }),
      maxLengthMode: validateOneOf(o.maxLengthMode ?? 'stride', 'options.maxLengthMode', ['truncate', 'stride'] as const),
      trimS: validateNumber(o.trimS ?? 0, 'options.trimS', 0),
    };
  }
  if (spans) return { kind: 'spans', spans, pastEnd: o.pastEnd === undefined ? 'clip' : o.pastEnd };
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

export interface ResolvedClips {
  sourcesPath: string;
  outputDir: string;
  onWarning: WarningHandler;
  parallelVideos: number;
  shardSize: number;
  /** The span table, when the plan is spans. */
  spans: Map<string, SpanSpec[]> | null;
  ctx: VideoContext;
  tablesEveryS: number;
}

/** Checks every option (reading the span table, resolving the encoder) and builds the stages' context. */
export async function resolveClipsOptions(options: ClipsOptions): Promise<ResolvedClips> {
  const sourcesPath = validateString(options?.sources, 'options.sources');
  const given = validateString(options.outputDir, 'options.outputDir');
  const onWarning = options.onWarning ?? defaultWarningHandler;
  const parallelVideos = validateInteger(options.parallelVideos ?? 1, 'options.parallelVideos', 1, 256);
  const shardSize = validateInteger(options.shardSize ?? 0, 'options.shardSize', 0);
  const tablesEveryS = validateNumber(options.tablesEveryS ?? TABLES_EVERY_S, 'options.tablesEveryS', 0);
  const ignoreAudio = validateBoolean(options.ignoreAudio ?? false, 'options.ignoreAudio');
  const useInputBitRate = validateBoolean(options.useInputBitRate ?? false, 'options.useInputBitRate');
  const mode = validateOneOf(options.mode ?? 'one-pass', 'options.mode', ['one-pass', 'per-clip'] as const);
  validateOneOf(options.encoder ?? 'libx264', 'options.encoder', ENCODERS);
  // Checked whatever the plan: a typo is an error even where the option does not apply.
  if (options.pastEnd !== undefined) validateOneOf(options.pastEnd, 'options.pastEnd', ['clip', 'drop'] as const);
  if (options.numVideos !== undefined) validateInteger(options.numVideos, 'options.numVideos', 0);
  const outStat = await stat(given).catch(() => null);
  if (outStat && !outStat.isDirectory()) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `options.outputDir '${given}' exists and is not a folder`, {
      where: { option: 'options.outputDir', file: given },
    });
  }
  const outputDir = given;
  let spans: Map<string, SpanSpec[]> | null = null;
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
  const transcode = {
    threads: validateInteger(options.encoderThreads ?? 1, 'options.encoderThreads', 1, 64),
    crf: validateNumber(options.crf ?? 23, 'options.crf', 0, 51),
    preset: options.preset,
    mode,
    numClipsPerChunk: options.numClipsPerChunk === undefined ? undefined : validateInteger(options.numClipsPerChunk, 'options.numClipsPerChunk', 1, 1024),
    encodeBatchSize: validateInteger(options.encodeBatchSize ?? 1, 'options.encodeBatchSize', 1, 256),
    ffmpegPath: options.ffmpegPath,
  };
  const download = {
    retries: validateInteger(options.downloadRetries ?? 3, 'options.downloadRetries', 0),
    retryDelayMs: validateNumber(options.downloadRetryDelayMs ?? 1000, 'options.downloadRetryDelayMs', 0),
    maxBytes: options.maxDownloadBytes === undefined ? undefined : validateInteger(options.maxDownloadBytes, 'options.maxDownloadBytes', 1),
  };
  const names = parseScoreList(options.scores, 'options.scores');
  // Every scored clip also gets its perceptual fingerprint (src/features/fingerprint.ts), which
  // `clipstream dedup` reads from clips.csv instead of decoding the clip again.
  // Plug-in ONNX scorers (src/infer/scorers.ts): their columns come after the built-in ones.
  const plug = await openPluginScorers(
    options.scorers,
    validateInteger(options.scorerFrames ?? PLUGIN_FRAMES, 'options.scorerFrames', 1, 1000),
    'options.scorers',
  );
  const scores: ScoreSetup | undefined =
    names.length > 0 || plug.columns.length > 0
      ? { names, columns: [...names, 'fingerprint', ...plug.columns], plugins: [() => new ClipFingerprinter(), ...plug.plugins] }
      : undefined;
  // text_area: PP-OCRv4 on a few frames of each finished clip at 640 px (score-file.ts, textAreaOfFile).
  const detector =
    scores && names.includes('text_area') ? await loadTextDetector({ onWarning: (m) => onWarning(new ClipstreamError('ERR_MODEL', m)) }) : undefined;
  if (scores && detector) scores.textFile = { detector, area: (boxes, w, h) => textArea(boxes as TextBox[], w, h) };
  if (scores) scores.close = () => closeModels(detector, plug.scorers);
  // --previews: one more per-clip scorer on the same frames (src/clips/previews.ts); scores off, it is the only one.
  const scored = validateBoolean(options.previews ?? false, 'options.previews') ? withPreviews(scores, outputDir) : scores;
  const filtered = validateOneOf(options.filtered ?? 'keep', 'options.filtered', ['keep', 'skip'] as const);
  const rules =
    options.filter === undefined
      ? []
      : parseFilter(typeof options.filter === 'string' ? options.filter : options.filter, scores?.columns ?? [], 'options.filter');
  // text_area is computed only with a text detector: a rule on it without one could never pass.
  if (rules.some((r) => r.column === 'text_area') && !scores?.text && !scores?.textFile)
    throw new ClipstreamError('ERR_INVALID_OPTION', 'options.filter: text_area needs the text detector, which this run does not have', {
      where: { option: 'options.filter' },
    });
  const encoder = await resolveEncoder(options.encoder ?? 'libx264', { ffmpegPath: options.ffmpegPath, onWarning });
  const ctx: VideoContext = {
    clipsDir: join(outputDir, 'clips'),
    downloadsDir: join(outputDir, 'downloads'),
    workDir: join(outputDir, '.work'),
    plan,
    encoder,
    transcode,
    useInputBitRate,
    ignoreAudio,
    download,
    ytDlpPath: options.ytDlpPath,
    ...(scored ? { scores: scored, scoresDir: join(outputDir, SCORES_DIR) } : {}),
    ...(rules.length > 0 ? { filter: { rules, filtered } } : {}),
    filteredDir: join(outputDir, 'filtered'),
    concurrency: parallelVideos,
    slots: new Slots(parallelVideos),
    onError: options.onError,
    signal: options.signal,
  };
  return { sourcesPath, outputDir, onWarning, parallelVideos, shardSize, spans, ctx, tablesEveryS };
}

/**
 * Spans whose `video_id` is not among the sources would be lost without a word: one
 * `dropped` issue each. `cut` says the list was shortened (`numVideos`).
 *
 * @example unlistedSpans(spans, sources, false) // [{ videoId: 'ghost', span: 'frames 0-10', action: 'dropped', reason: 'video_id ghost is not among the sources' }]
 */
export function unlistedSpans(spans: Map<string, SpanSpec[]>, sources: readonly SourceRow[], cut: boolean): SpanIssue[] {
  const ids = new Set(sources.map((s) => s.videoId));
  const issues: SpanIssue[] = [];
  for (const [id, list] of spans) {
    if (ids.has(id)) continue;
    for (const sp of list) {
      issues.push({
        videoId: id,
        span: sp.unit === 'frame' ? `frames ${sp.start}-${sp.end}` : `${sp.start}-${sp.end} s`,
        action: 'dropped',
        reason: `video_id ${id} is not among the sources${cut ? ` (the list was cut to its first ${sources.length})` : ''}`,
      });
    }
  }
  return issues;
}
