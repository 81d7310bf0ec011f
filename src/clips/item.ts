/**
 * What flows through the clips stages: one source video, with the fields each stage adds
 * (its local path, its probe, its plan, its finished clips) and its row in `videos.csv`.
 * A video that failed is marked (`item.failure`, the stage kit's mark), keeps its error in the
 * row, and passes the later stages untouched.
 */
import type { Duplex } from 'node:stream';
import { itemStage, type OnError, type Slots } from '../stage/index.js';
import type { ItemFailure } from '../types.js';
import type { DownloadOptions } from '../media/download.js';
import type { EncoderChoice } from '../media/encoders.js';
import type { ClipRecord } from '../sinks/clip-table.js';
import type { FixedStrideOptions, PlannedClip, SpanIssue, SpanSpec, VideoTiming } from './plan.js';
import type { MediaFacts } from '../media/facts.js';
import type { FrameTimes, VideoInfo } from '../media/probe.js';
import type { SourceRow } from './sources.js';
import type { TranscodeOptions } from './transcode.js';
import type { RecordedShots, ShotsPlan } from './shots.js';
import type { ScoreSetup } from '../features/clip-scores.js';
import type { ClipScores } from './stored-scores.js';
import type { FilterRule, Verdict } from './filter.js';

/** How clips are chosen for each video; exactly one of the four. */
export type ClipPlanSpec =
  | { kind: 'spans'; spans: Map<string, SpanSpec[]>; pastEnd?: 'clip' | 'drop' }
  | { kind: 'stride'; stride: FixedStrideOptions }
  | { kind: 'parts'; minutes: number }
  | ShotsPlan;

/** One row of `videos.csv` (seed 002's metadata, plus the error and duration). */
export interface VideoRow {
  video_id: string;
  downloaded: boolean;
  failed: boolean;
  error: string;
  path: string;
  duration: number | '';
  num_clips: number;
}

export const VIDEO_COLUMNS: readonly (keyof VideoRow)[] = ['video_id', 'downloaded', 'failed', 'error', 'path', 'duration', 'num_clips'];

/** What every stage of a clips run shares: folders, the plan, encoder and download settings. */
export interface VideoContext {
  clipsDir: string;
  downloadsDir: string;
  workDir: string;
  plan: ClipPlanSpec;
  encoder: EncoderChoice;
  transcode: Omit<TranscodeOptions, 'encoder' | 'hwaccel' | 'bitRate' | 'signal'>;
  useInputBitRate: boolean;
  ignoreAudio: boolean;
  download: DownloadOptions;
  ytDlpPath?: string;
  /** Scores computed for every clip (by the ffmpeg that cuts it); absent: none. */
  scores?: ScoreSetup;
  /** Where each clip's scores are kept for re-runs (`outputDir/.scores`). */
  scoresDir?: string;
  /** Clips failing these rules are kept out: their file goes to `filteredDir` (`keep`) or is not written (`skip`). */
  filter?: { rules: readonly FilterRule[]; filtered: 'keep' | 'skip' };
  /** `outputDir/filtered`: the files of clips a filter kept out (with `filtered: 'keep'`). */
  filteredDir?: string;
  /** Videos each stage works on at once (`parallelVideos`); default 1. */
  concurrency?: number;
  /** Shared by the stages of one run: at most this many steps (downloads, probes, cuts) at once in all. */
  slots?: Slots;
  /** A video a stage cannot process: `'skip'` (default) records it failed and goes on; `'throw'` stops the run. */
  onError?: OnError;
  /** The shots an earlier run recorded for a video (`--split=shots`: a finished video is not detected again). */
  recordedShots?: (videoId: string) => Promise<RecordedShots | null>;
  signal?: AbortSignal;
}

export interface VideoItem {
  source: SourceRow;
  row: VideoRow;
  /** obtain: the local file. */
  path?: string;
  /** probe: the source's media facts (colour, geometry, timeline breaks), their VideoInfo view, and the real frames. */
  facts?: MediaFacts;
  info?: VideoInfo;
  frames?: FrameTimes;
  timing?: VideoTiming;
  /** plan (`--split=shots`): the video's shots, detected or read from its earlier record. */
  shots?: RecordedShots;
  /** plan: the clips this video should have. */
  clips?: PlannedClip[];
  /** cut: the probe of every planned clip that is finished and verified, by clip id. */
  done: Map<string, VideoInfo>;
  /** cut, with scores: each finished clip's scores, by clip id. */
  scores: Map<string, ClipScores>;
  /** cut and filter, with a filter: each clip's verdict, by clip id (a clip kept out before it was cut has one and no file). */
  verdicts: Map<string, Verdict>;
  /** Spans clipped or dropped by the plan, and clips that could not be made. */
  issues: SpanIssue[];
  /** Clips cut in this run (the others existed). */
  made: number;
  /** Its failure was one of circumstance (an ffmpeg killed or stalled after the run's retries): the rerun does it again, like any failed video. */
  transient?: true;
  /** describe: the rows of `clips.csv`. */
  records: ClipRecord[];
  /** Set once a stage gave up on the video (its row says `failed` with the error); later stages pass it on untouched. */
  failure?: ItemFailure;
}

/** A fresh item for a source, before any stage. */
export function videoItem(source: SourceRow): VideoItem {
  return {
    source,
    row: { video_id: source.videoId, downloaded: false, failed: false, error: '', path: '', duration: '', num_clips: 0 },
    done: new Map(),
    scores: new Map(),
    verdicts: new Map(),
    issues: [],
    made: 0,
    records: [],
  };
}

/** A clips stage: an object-mode Duplex of VideoItems, for `stream/promises.pipeline`. */
export type VideoStage = Duplex;

/** Fields the items of `videoItems` carry, for `checkStages`. */
export const SOURCE_FIELDS = ['source', 'row'] as const;

/** The source of a clips pipeline: one fresh item per source video, in order. */
export async function* videoItems(sources: AsyncIterable<SourceRow> | Iterable<SourceRow>): AsyncGenerator<VideoItem, void, undefined> {
  for await (const s of sources) yield videoItem(s);
}

/**
 * A stage from a per-video step, written with the stage kit (`itemStage`): failed items pass
 * untouched, and a step that throws fails its video only (`item.failure`; the error goes to the
 * row, named after the video; `ctx.onError: 'throw'` stops the pipeline instead); an abort
 * propagates. Up to `ctx.concurrency` videos are worked on at once (sharing `ctx.slots`), and
 * items come out in the order they came in. Usable with `stream/promises.pipeline` as a transform.
 *
 * @example await pipeline(Readable.from(rows.map(videoItem)), obtainStage(ctx), probeStage(ctx), async function* (s) { for await (const it of s) console.log(it.info) });
 */
export function videoStage(
  step: (item: VideoItem) => Promise<void>,
  ctx: Pick<VideoContext, 'signal' | 'concurrency' | 'slots' | 'onError'>,
  name = 'clips stage',
): VideoStage {
  return itemStage<VideoItem>(
    {
      name,
      concurrency: ctx.concurrency ?? 1,
      slots: ctx.slots,
      onError: ctx.onError,
      signal: ctx.signal,
      keyOf: (item) => item.source.videoId,
      code: 'ERR_DECODE',
      writableHighWaterMark: 1,
      readableHighWaterMark: 1,
      onFailure: (item, { error: e }) => {
        const id = item.source.videoId;
        if (e.transient) item.transient = true;
        item.row.failed = true;
        item.row.error = e.message.startsWith(`video ${id}`) ? e.message : `video ${id}: ${e.message}`;
        item.row.num_clips = 0;
        item.records = [];
      },
    },
    step,
  );
}
