import { ffmpegPath } from '../media/ffmpeg-path.js';
import type { JobProgress } from '../util/progress.js';
import type { JobReport } from '../stage/job-run.js';
import { WHOLE } from '../util/partition.js';
import { defaultWarningHandler, type CommonJobOptions, type ModelOptions } from '../types.js';
import { validateBoolean, validateInteger, validateNumber, validateOneOf, validateString } from '../util/validate.js';
import type { EncodeOptions } from './clip-writer.js';
import type { DetectorFormat } from './detector.js';
import type { ImageFormat } from './lmdb-store.js';
import type { LmdbV1Summary } from './lmdb-v1.js';
import type { FaceRow } from './metadata.js';
import type { VideoLog } from './record.js';
import type { ScorerSpec } from '../infer/scorers.js';
import { resolveTrackOptions, type TrackOptions } from './tracker.js';

export interface FacesOptions extends TrackOptions, EncodeOptions, CommonJobOptions<FacesProgress>, ModelOptions {
  inputDir: string;
  /** Folder for clips/, audio/, faces.lmdb/, metadata.csv, metadata.msgpack (the CLI's `--output_dir`). */
  outputDir: string;
  /**
   * Face detector ONNX model (default: the shipped UltraFace RFB-640, `models/ultraface_rfb_640.onnx`, a real
   * published detector; `models/face_detector_synthetic.onnx` is the tests' synthetic one, which only finds the fixture face).
   */
  detector?: string;
  detectorFormat?: DetectorFormat | 'auto';
  scoreThreshold?: number;
  nmsThreshold?: number;
  /** Faces smaller than this (shorter side, source pixels) are ignored. */
  minFaceSize?: number;
  /** Longest model-input side for detectors with a dynamic input size. */
  detectorInputSize?: number;
  /** Run the detector on every k-th frame (default 2). */
  sampleEvery?: number;
  /** Videos decoded for detection at once (default 2). */
  parallelVideos?: number;
  /** Where the detector and scorers compute: a worker thread (default) or the main thread. */
  modelThread?: 'worker' | 'main';
  /** Crop enlargement around the track's box (default 1.4, seed 002). */
  enlarge?: number;
  cropMode?: 'union' | 'mean';
  /** Side of the square face clips (default 512). */
  size?: number;
  makeLmdb?: boolean;
  imageFormat?: ImageFormat;
  jpegQuality?: number;
  /** `embed` (default): audio in the mp4; `separate`: silent mp4 + WAV in audio/; `none`. */
  audio?: 'embed' | 'separate' | 'none';
  scorers?: ScorerSpec[];
  /** Frames per clip used for image statistics and scorers (default 8). */
  scoreFrames?: number;
  /** Write `previews/<clip_key>.webp`, a small animated WebP of each face clip, from the frames it encodes (default false). */
  previews?: boolean;
  /** Redo videos already done (default: resume). */
  overwrite?: boolean;
  /** Only these videos (paths relative to `inputDir`, as `faces-videos.json` names them): what a queue worker runs. */
  only?: readonly string[];
  ffmpeg?: string;
  /** Called with the size of every detector batch, for statistics. */
  onBatch?: (size: number) => void;
}

/** The runner's progress (units: videos, items: clips), with the names faces always had. */
export interface FacesProgress extends JobProgress {
  videosTotal: number;
  videosDone: number;
  videosFailed: number;
  clips: number;
  elapsedSeconds: number;
}

export interface FacesReport {
  videos: VideoLog[];
  rows: FaceRow[];
  seconds: number;
  /**
   * `faces.lmdb` when it holds the clips of every video recorded: written by this run, or
   * already current. Null without makeLmdb, and while the store waits for videos (see `lmdb`).
   */
  lmdbPath: string | null;
  /** What became of `faces.lmdb` in this run (null without makeLmdb). */
  lmdb: FacesLmdb | null;
  /** The execution provider the detector ran on (`cpu` also when CUDA was asked for but could not load). */
  provider: 'cuda' | 'cpu';
  /** The job runner's report: one result per video of this run's share, the run log's path. */
  run: JobReport;
}

/**
 * `faces.lmdb` after a run. It is written only when every video of the list has a final record
 * (done with its clips in its staging store, or failed), by the run that records the last one,
 * and only when its stores differ from those of the last export. A run that ends while videos
 * are still unrecorded (a queue worker's single video, one rank of several) leaves it as it
 * was: any faces.lmdb already there is an older export, without those videos' clips.
 */
export interface FacesLmdb {
  path: string;
  /**
   * `written`: exported by this run. `current`: it already held exactly the stores of every
   * recorded video and was left untouched. `waiting`: not written, because `waitingFor` videos
   * have no final record yet; the run that records the last of them writes it.
   */
  state: 'written' | 'current' | 'waiting';
  /** Videos of the list (paths relative to `inputDir`) the store waits for; [] unless `waiting`. */
  waitingFor: string[];
  /** What the store holds (entries, pages, bytes) when written or current; null while waiting. */
  summary: LmdbV1Summary | null;
}

/** Every option of `faces` checked (the message names the option) and with its default. */
export function resolveFacesOptions(options: FacesOptions) {
  const v = (name: string) => `options.${name}`;
  const inputDir = validateString(options.inputDir, v('inputDir'));
  const partition = options.partition ?? WHOLE;
  const outputDir = validateString(options.outputDir, v('outputDir'));
  const sampleEvery = validateInteger(options.sampleEvery ?? 2, v('sampleEvery'), 1, 10_000);
  const batchSize = validateInteger(options.batchSize ?? 8, v('batchSize'), 1, 1024);
  const parallelVideos = validateInteger(options.parallelVideos ?? 2, v('parallelVideos'), 1, 64);
  const size = validateInteger(options.size ?? 512, v('size'), 16, 4096);
  const enlarge = validateNumber(options.enlarge ?? 1.4, v('enlarge'), 0.1, 10);
  const cropMode = validateOneOf(options.cropMode ?? 'union', v('cropMode'), ['union', 'mean'] as const);
  const makeLmdb = validateBoolean(options.makeLmdb ?? false, v('makeLmdb'));
  const imageFormat = validateOneOf(options.imageFormat ?? 'jpeg', v('imageFormat'), ['jpeg', 'png'] as const);
  const jpegQuality = validateInteger(options.jpegQuality ?? 95, v('jpegQuality'), 1, 100);
  const audio = validateOneOf(options.audio ?? 'embed', v('audio'), ['embed', 'separate', 'none'] as const);
  const scoreFrames = validateInteger(options.scoreFrames ?? 8, v('scoreFrames'), 1, 1000);
  const overwrite = validateBoolean(options.overwrite ?? false, v('overwrite'));
  const previews = validateBoolean(options.previews ?? false, v('previews'));
  const modelThread = validateOneOf(options.modelThread ?? 'worker', v('modelThread'), ['worker', 'main'] as const);
  validateInteger(options.crf ?? 18, v('crf'), 0, 51);
  validateOneOf(options.preset ?? 'veryfast', v('preset'), [
    'ultrafast',
    'superfast',
    'veryfast',
    'faster',
    'fast',
    'medium',
    'slow',
    'slower',
    'veryslow',
    'placebo',
  ] as const);
  // The detector checks these too, but only once its model is open: a bad value is refused before anything starts.
  validateNumber(options.scoreThreshold ?? 0.5, v('scoreThreshold'), 0, 1);
  validateNumber(options.nmsThreshold ?? 0.4, v('nmsThreshold'), 0, 1);
  validateNumber(options.minFaceSize ?? 0, v('minFaceSize'), 0, 100_000);
  if (options.detectorInputSize !== undefined) validateInteger(options.detectorInputSize, v('detectorInputSize'), 32, 8192);
  const track = resolveTrackOptions(options);
  const ffmpeg = options.ffmpeg ?? ffmpegPath();
  const onWarning = options.onWarning ?? defaultWarningHandler;
  return {
    ...options,
    inputDir,
    outputDir,
    sampleEvery,
    batchSize,
    parallelVideos,
    size,
    enlarge,
    cropMode,
    makeLmdb,
    imageFormat,
    jpegQuality,
    audio,
    scoreFrames,
    previews,
    overwrite,
    modelThread,
    track,
    ffmpeg,
    onWarning,
    partition,
  };
}
