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
}

/** Why a sample produced no record. */
export interface SampleFailure {
  stage: string;
  error: ClipstreamError;
  /** `skipped` for expected conditions (too short), `failed` for broken input. */
  status: 'skipped' | 'failed';
}

/**
 * A webdataset record flowing through the stages. `__key__` is the member name up to
 * the first dot of its basename; `files` maps each remaining extension (`mp4`, `json`, ...)
 * to the member's bytes. Stages add fields and drop the heavy ones they consumed.
 */
export interface Sample {
  kind: 'sample';
  __key__: string;
  __url__: string;
  shard: ShardInfo;
  /** Order of the sample in its tar, from 0. Outputs are written in this order. */
  index: number;
  files: Record<string, Buffer>;
  entry: ClipEntry;
  video?: DecodedVideo;
  /** `null` when the clip has no audio stream. */
  audio?: DecodedAudio | null;
  /** Model inputs prepared from `audio` (e.g. VGGish log-mel examples, N×1×96×64). */
  audioExamples?: Tensor | null;
  visualFeatures?: FeatureSet[];
  audioFeatures?: FeatureSet[];
  /** Set once a stage fails or skips the sample; later stages pass it through untouched. */
  failure?: SampleFailure;
}

/** Marks the end of a shard in the stream, after its last sample. */
export interface ShardEnd {
  kind: 'shard-end';
  shard: ShardInfo;
  /** Samples read from the tar (including skipped ones). */
  samples: number;
  /** Set when the tar was missing, truncated or corrupt: samples before the damage were still emitted. */
  error?: ClipstreamError;
  /**
   * Set when the tar may not hold every clip: clips its json lists were not found (`missing`,
   * json filenames), or it has no end-of-archive blocks (cut at a member boundary, 0 bytes).
   */
  incomplete?: ShardIncomplete;
}

export interface ShardIncomplete {
  reason: string;
  missing: string[];
}

export type StreamItem = Sample | ShardEnd;

export function isSample(item: StreamItem): item is Sample {
  return item.kind === 'sample';
}

/** True for samples that a processing stage should work on (not failed, not a marker). */
export function isLive(item: StreamItem): item is Sample {
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
