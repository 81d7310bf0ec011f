/**
 * Shot detection for the library and the clips job: the detector factory (content, adaptive,
 * transnetv2), `detectShots(path)`, and `shotsStage`, a stage-kit stage for pipelines of items with
 * a `path`.
 */
import { InvalidOptionError } from '../errors.js';
import { runShotDetector, type RunShotDetectorOptions, type ShotsResult } from '../features/shot-runner.js';
import { adaptiveDetector, contentDetector, withFades, type ContentWeights, type ShotDetector } from '../features/shots.js';
import { itemStage } from '../stage/index.js';
import { transnetV2Detector } from '../infer/transnetv2.js';
import type { WarningHandler } from '../types.js';
import type { ShotClipOptions } from './plan.js';

export type ShotDetectorName = 'content' | 'adaptive' | 'transnetv2';
export const SHOT_DETECTORS: readonly ShotDetectorName[] = ['content', 'adaptive', 'transnetv2'];

export interface ShotDetectorOptions {
  /** content: the score threshold (default 27); adaptive: the adaptive ratio (default 3.0); transnetv2: the probability (its own default). */
  threshold?: number;
  /** Minimum shot length in seconds (default: 15 frames, PySceneDetect's). */
  minShotS?: number;
  /** Fades to and from black as boundaries of their own (default true). */
  fades?: boolean;
  /** transnetv2: the ONNX file `clipstream models build --arch=transnetv2` wrote (required). */
  model?: string;
  /** transnetv2: where ONNX Runtime computes (default auto: CUDA when it loads, else the CPU with one warning). */
  device?: 'auto' | 'cpu' | 'cuda';
  onWarning?: WarningHandler;
  /** content and adaptive: the score's component weights (default hue 1, sat 1, lum 1, edges 0). */
  weights?: Partial<ContentWeights>;
  signal?: AbortSignal;
}

/**
 * A fresh detector by name (one per video: detectors keep state).
 *
 * @example const d = await createShotDetector('content', { threshold: 30 });
 */
export async function createShotDetector(kind: ShotDetectorName, options: ShotDetectorOptions = {}): Promise<ShotDetector> {
  const min = options.minShotS === undefined ? {} : { minShotS: options.minShotS };
  const weights = options.weights === undefined ? {} : { weights: options.weights };
  let detector: ShotDetector;
  if (kind === 'content') detector = contentDetector({ ...min, ...weights, ...(options.threshold === undefined ? {} : { threshold: options.threshold }) });
  else if (kind === 'adaptive')
    detector = adaptiveDetector({ ...min, ...weights, ...(options.threshold === undefined ? {} : { adaptiveThreshold: options.threshold }) });
  else if (kind === 'transnetv2') {
    // TransNetV2 finds its own transitions; minShotS does not apply (its predictions_to_scenes rule does).
    if (!options.model)
      throw new InvalidOptionError(
        'shot detector transnetv2 needs its ONNX file (shotModel / --shot_model), built by `clipstream models build --arch=transnetv2`',
        'shotModel',
      );
    detector = await transnetV2Detector({
      model: options.model,
      ...(options.threshold === undefined ? {} : { threshold: options.threshold }),
      ...(options.device === undefined ? {} : { device: options.device }),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    });
  } else throw new InvalidOptionError(`shot detector must be one of ${SHOT_DETECTORS.join(', ')}, got ${String(kind)}`, 'shotDetector');
  return options.fades === false ? detector : withFades(detector, min);
}

export interface DetectShotsOptions extends ShotDetectorOptions, Omit<RunShotDetectorOptions, 'signal'> {
  /** A detector by name (default 'content'), or one of your own. */
  detector?: ShotDetectorName | ShotDetector;
}

/**
 * The shots of a video, in one streaming decode at the detector's small frame size.
 * Shots are frames [start_frame, end_frame) (end exclusive, as clips.csv).
 *
 * @example
 * const { shots } = await detectShots('fixtures/sources/a.mp4');
 * shots.map((s) => [s.start_frame, s.end_frame, s.kind]); // [[0, 48, 'start'], [48, 125, 'cut']]
 */
export async function detectShots(path: string, options: DetectShotsOptions = {}): Promise<ShotsResult> {
  const d = options.detector ?? 'content';
  const detector = typeof d === 'string' ? await createShotDetector(d, options) : d;
  return runShotDetector(path, detector, options);
}

/** An item of shotsStage: a `path`; `shots` is added. */
export interface ShotItem {
  key?: string;
  path: string;
  shots?: ShotsResult;
}

/**
 * A stage (stage kit) that detects the shots of each item's `path` into `item.shots`; a video that
 * cannot be decoded fails its item only.
 *
 * @example await pipeline(Readable.from([{ key: 'a', path: 'a.mp4' }]), shotsStage({ detector: 'content' }), sink);
 */
export function shotsStage(options: Omit<DetectShotsOptions, 'facts' | 'times'> & { concurrency?: number } = {}) {
  return itemStage<ShotItem>(
    { name: 'shots', needs: ['path'], adds: ['shots'], concurrency: options.concurrency ?? 1, signal: options.signal, code: 'ERR_DECODE' },
    async (item, { signal }) => {
      if (typeof options.detector === 'object') throw new InvalidOptionError('shotsStage needs a detector name (a detector keeps state per video)', 'detector');
      item.shots = await detectShots(item.path, { ...options, signal });
    },
  );
}

/** One row of `shots.csv`: a shot of a video, frames [start_frame, end_frame) (end exclusive, as clips.csv). */
export interface ShotRow {
  video_id: string;
  shot: number;
  start_frame: number;
  end_frame: number;
  start_s: number;
  end_s: number;
  /** The score of the boundary that starts the shot (content: its content_val; fade: the darkest frame's mean); 0 for the first shot. */
  score: number;
  /** What starts the shot: 'cut' or 'fade'; 'start' for a video's first shot. */
  kind: 'start' | 'cut' | 'fade';
}

export const SHOT_COLUMNS: readonly (keyof ShotRow)[] = ['video_id', 'shot', 'start_frame', 'end_frame', 'start_s', 'end_s', 'score', 'kind'];

/** The clips plan `--split=shots`: how shots are found, and how shots become clips (plan.ts's planShots). */
export interface ShotsPlan extends ShotClipOptions {
  kind: 'shots';
  detector: ShotDetectorName;
  /** transnetv2: its ONNX file. */
  model?: string;
  threshold?: number;
  minShotS?: number;
  fades: boolean;
}

/** What a video's detected shots depend on: a record made with other settings is detected again. */
export function shotsKey(plan: ShotsPlan): string {
  return JSON.stringify([plan.detector, plan.threshold ?? null, plan.minShotS ?? null, plan.fades, ...(plan.model ? [plan.model] : [])]);
}

/** The shots of a video a unit record keeps, with the settings they were found with. */
export interface RecordedShots {
  key: string;
  rows: ShotRow[];
}
