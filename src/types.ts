import type { ClipstreamError } from './errors.js';

/** One entry of `shard-NNNNNN.json`, as seed 004 describes: `{filename, id, segment}`. */
export interface ClipEntry {
  filename: string;
  id: string;
  segment: [number, number];
}

/** Where a sample came from; one object is shared by every sample of a shard. */
export interface ShardInfo {
  /** Path of the tar file. */
  url: string;
  /** Basename without extension, e.g. `shard-000000`. */
  name: string;
  /** Position of the shard in the expanded list. */
  index: number;
}

/** Decoded video: `frames` uint8 RGB, layout T×H×W×3. Normalisation happens when a batch is built. */
export interface DecodedVideo {
  frames: Uint8Array;
  numFrames: number;
  height: number;
  width: number;
  /** Frames decoded in the window before temporal sampling (diagnostics). */
  decodedFrames: number;
}

/** Decoded audio: mono float32 PCM in [-1, 1]. */
export interface DecodedAudio {
  pcm: Float32Array;
  sampleRate: number;
}

/** A dense float32 array with its shape; what feature layers and model inputs are. */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

/** One extractor's output for one clip, as in seed 004's `visual_features` / `audio_features`. */
export interface FeatureSet {
  extractor_name: string;
  dataset: string;
  feat_array: Record<string, Tensor>;
}

/** One record of a feature shard. */
export interface FeatureRecord {
  filename: string;
  id: string;
  segment: [number, number];
  visual_features: FeatureSet[];
  audio_features: FeatureSet[];
  /**
   * The webdataset key of the sample (member path up to the first dot of its basename), which
   * tells `cam1/plain_0` from `cam2/plain_0`. Written after the seed-004 fields; absent in
   * shards from before it was added.
   */
  __key__?: string;
  /**
   * Why `audio_features` is empty although the clip has sound: `audio too short: 0.50 s, ...`
   * when its audio is shorter than one example of the audio model. Absent otherwise (a clip
   * without an audio stream has empty `audio_features` and no note).
   */
  audio_note?: string;
}

/**
 * Why an item produced no output: the one failure mark of every job's items (`item.failure`),
 * set by the stage kit (src/stage/) when a stage gives up on the item; later stages pass it on untouched.
 */
export interface ItemFailure {
  /** The stage that gave up on the item. */
  stage: string;
  error: ClipstreamError;
  /** `skipped` for expected conditions (a clip too short), `failed` for broken input. */
  status: 'skipped' | 'failed';
}

/**
 * The item every job's stages pass along, whatever the job: a key, where it came from, its
 * position there, the bytes of its members, and a failure once a stage gave up on it. Stages
 * add fields (`F`) and drop the heavy ones they consumed; a `SourceEnd` follows the last item
 * of each source. For webdataset tars: `__key__` is the member name up to the first dot of its
 * basename, `files` maps each remaining extension (`mp4`, `json`, ...) to the member's bytes.
 */
export interface BaseSample {
  kind: 'sample';
  __key__: string;
  __url__: string;
  /** The source (a tar shard, a video); one object is shared by every item of a source. */
  shard: SourceInfo;
  /** Order of the item in its source, from 0. Outputs are written in this order. */
  index: number;
  files: Record<string, Buffer>;
  /** Set once a stage fails or skips the item; later stages pass it through untouched. */
  failure?: ItemFailure;
}

/** A generic item carrying the fields `F` its stages added. */
export type Item<F extends object = object> = BaseSample & F;

/** The stream of a pipeline: items with the fields `F`, and one end marker per source. */
export type Flow<F extends object = object> = Item<F> | SourceEnd;

/** Where an item came from (generic name of ShardInfo). */
export type SourceInfo = ShardInfo;

/**
 * A tar sample as the reader gives it: the member paths of its fields (`mp4` ->
 * `cam1/plain_0.MP4`, case kept, refused members included), which the entry join needs.
 */
export interface TarFields {
  members: Record<string, string>;
}

/** What extract's stages add: the ACAV entry (src/shards/entry-join.ts), decoded media, features. */
export interface ExtractFields {
  entry: ClipEntry;
  video?: DecodedVideo;
  /** `null` when the clip has no audio stream. */
  audio?: DecodedAudio | null;
  /** Model inputs prepared from `audio` (e.g. VGGish log-mel examples, N×1×96×64). */
  audioExamples?: Tensor | null;
  visualFeatures?: FeatureSet[];
  audioFeatures?: FeatureSet[];
  /** Set by the audio extractor when the clip has sound but too little for one example (FeatureRecord.audio_note). */
  audioNote?: string;
}

/** A tar sample as the reader emits it, before the entry join. */
export interface TarSample extends BaseSample, TarFields {}

/** A sample of the extract job: a tar sample joined to its ACAV entry (`shard-NNNNNN.json`). */
export interface Sample extends BaseSample, ExtractFields, Partial<TarFields> {}

/** Marks the end of a source in the stream, after its last item. */
export interface SourceEnd {
  kind: 'shard-end';
  shard: SourceInfo;
  /** Items read from the source (including skipped ones). */
  samples: number;
  /** Set when the tar was missing, truncated or corrupt: samples before the damage were still emitted. */
  error?: ClipstreamError;
  /**
   * Set when the tar may not hold every clip: clips its json lists were not found (`missing`,
   * json filenames), or it has no end-of-archive blocks (cut at a member boundary, 0 bytes).
   */
  incomplete?: ShardIncomplete;
}

/** The end marker of a tar shard. */
export type ShardEnd = SourceEnd;

export interface ShardIncomplete {
  reason: string;
  missing: string[];
}

export type StreamItem = Sample | ShardEnd;
export type TarItem = TarSample | ShardEnd;

export function isSample<T extends { kind: string }>(item: T): item is Extract<T, { kind: 'sample' }> {
  return item.kind === 'sample';
}

/** True for items that a processing stage should work on (not failed, not a marker). */
export function isLive<T extends { kind: string; failure?: unknown }>(item: T): item is Extract<T, { kind: 'sample' }> {
  return item.kind === 'sample' && item.failure === undefined;
}

/**
 * Receives problems that do not stop the work (a missing tar, a skipped member).
 * Every stage takes one as `options.onWarning`; the default prints to stderr.
 */
export type WarningHandler = (warning: import('./errors.js').ClipstreamError) => void;

export const defaultWarningHandler: WarningHandler = (w) => {
  process.stderr.write(`clipstream: warning: ${w.message}\n`);
};

/**
 * What a stage does with an item it cannot process, as webdataset's `handler=`: `'skip'` marks
 * the item failed and passes it on (the default), `'throw'` stops the pipeline, and a function
 * decides per error (return 'throw' to stop, anything else to skip). See src/run/on-error.ts.
 */
export type ErrorDecision = 'skip' | 'throw';
export type OnError = ErrorDecision | ((error: ClipstreamError, key: string) => ErrorDecision | undefined);

/** This run's share of a job's units: rank `rank` of `world` (see src/scale/partition.ts). */
export interface Partition {
  rank: number;
  world: number;
  /** Where rank and world came from, for the run log: `options`, `SLURM_ARRAY_TASK_ID`, ... */
  from: string;
}

/**
 * The options every job takes, with one name and one meaning each (`P`: what the job's
 * `onProgress` hears). Each job's options extend this; the CLI spells `outputDir` as the seeds
 * did (`--out_path` for extract, `--out_dir` for clips, `--output_dir` for faces and segments).
 */
export interface CommonJobOptions<P> {
  /** The folder the job writes its outputs, records and run log into. */
  outputDir?: string;
  /** This run's share of the units (`--rank/--world`); every rank writes into the same `outputDir`. Default: all. */
  partition?: Partition;
  /** Only these units (by unit id): what a queue worker runs for the unit it was handed. */
  only?: readonly string[];
  /** Stops the run: work in flight is abandoned, what is finished stays recorded. */
  signal?: AbortSignal;
  /** Problems that do not stop the work; the default prints them to stderr. */
  onWarning?: WarningHandler;
  /** A unit or item that cannot be processed: 'skip' (default: recorded as failed, the run goes on), 'throw', or a function. */
  onError?: OnError;
  /** Progress of the run (units and items), e.g. for a ProgressDisplay. */
  onProgress?: (progress: P) => void;
}

/** The options of every job that runs a model (ONNX Runtime). */
export interface ModelOptions {
  /** `auto` (default: CUDA when its provider loads, else the CPU), `cpu`, `cuda` or `cuda:N`. */
  device?: string;
  /** ONNX Runtime intra-op threads per model (default: all cores). */
  intraOpThreads?: number;
  /** Largest batch handed to a model. */
  batchSize?: number;
}
