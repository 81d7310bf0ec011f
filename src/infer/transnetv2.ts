import ort from 'onnxruntime-node';
import { ClipstreamError } from '../errors.js';
import type { ShotBoundary, ShotDetector, ShotFrame } from '../features/shots.js';
import type { WarningHandler } from '../types.js';
import { loadSession, type Device } from './session.js';

/**
 * TransNetV2 as a streaming shot detector (`ShotDetector`), running the ONNX model that
 * `clipstream models build --arch=transnetv2` writes.
 *
 * Inference is TransNetV2's own `predict_frames`: the video, with its first frame repeated 25 times
 * before it and its last frame repeated after it, is cut into windows of 100 frames at a stride of
 * 50; of each window's predictions the middle 50 (positions 25..74) are kept, so window w predicts
 * frames 50w..50w+49 and sees 25 frames of context either side. Here the windows are formed as the
 * frames arrive: one buffer of 100 frames is the model's input; when it is full the window runs,
 * its last 50 frames move to the front, and the next 50 frames fill it again. Memory is one window
 * (100 x 48 x 27 x 3 bytes), whatever the video's length.
 *
 * Boundaries follow TransNetV2's `predictions_to_scenes`: frames whose single-frame probability is
 * above the threshold are transition frames; a scene ends at the first of a run of them and the next
 * begins at the first frame below the threshold again, which is the boundary reported (`frame`, the
 * first frame of the new shot; `score`, the run's highest probability; `kind`, 'cut'). As there, a run
 * at the very start of the video ends no shot, and a run still open at the end starts none.
 */

/** Frames per window, the stride between windows, and the context frames either side of the kept middle. */
const WINDOW = 100;
const STRIDE = 50;
const CONTEXT = 25;
const WIDTH = 48;
const HEIGHT = 27;
const FRAME_BYTES = WIDTH * HEIGHT * 3;

export interface TransNetV2DetectorOptions {
  /** The ONNX file from `clipstream models build --arch=transnetv2`. */
  model: string;
  /** Single-frame probability above which a frame is a transition frame (default 0.5, TransNetV2's). */
  threshold?: number;
  /** `cpu`, `cuda` (falls back to the CPU with one warning) or `auto` (default). */
  device?: Device | 'cpu' | 'cuda';
  /** Threads ONNX Runtime uses inside one operator (default: all cores). */
  intraOpThreads?: number;
  onWarning?: WarningHandler;
  /** Every frame's probabilities, in frame order, as soon as its window has run (e.g. to keep them beside the shots). */
  onPrediction?: (frame: number, single: number, manyHot: number) => void;
}

/** The detector, plus what it holds (for callers and tests that watch its memory). */
export interface TransNetV2Detector extends ShotDetector {
  /** The execution provider in use. */
  readonly provider: 'cuda' | 'cpu';
  /** Frames held right now (at most 100: one window). */
  readonly heldFrames: number;
  /** Bytes of frame data held (one window, fixed). */
  readonly heldBytes: number;
}

/**
 * Opens a TransNetV2 ONNX model as a shot detector. Frames must be 48x27 RGB24 (what `frameSize`
 * asks for), pushed in order from index 0, each push awaited.
 *
 * @example
 * const detector = await transnetV2Detector({ model: 'models/transnetv2.onnx' });
 * const { shots } = await detectShots('video.mp4', { detector });
 */
export async function transnetV2Detector(options: TransNetV2DetectorOptions): Promise<TransNetV2Detector> {
  const threshold = options.threshold ?? 0.5;
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold < 1)) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `transnetv2: threshold must be a probability in [0, 1), got ${String(threshold)}`, {
      where: { option: 'threshold' },
    });
  }
  const { session, provider } = await loadSession(options.model, {
    device: options.device ?? 'auto',
    ...(options.intraOpThreads === undefined ? {} : { intraOpThreads: options.intraOpThreads }),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
  });
  if (!session.inputNames.includes('frames') || !session.outputNames.includes('single_frame_prob')) {
    await session.release();
    throw new ClipstreamError(
      'ERR_MODEL',
      `${options.model}: not a TransNetV2 model (inputs ${session.inputNames.join(', ')}; outputs ${session.outputNames.join(', ')}); ` +
        'expected input frames and output single_frame_prob, as `clipstream models build --arch=transnetv2` writes',
      { where: { file: options.model } },
    );
  }
  const hasManyHot = session.outputNames.includes('many_hot_prob');
  const fetches = hasManyHot ? ['single_frame_prob', 'many_hot_prob'] : ['single_frame_prob'];

  const buffer = new Uint8Array(WINDOW * FRAME_BYTES);
  const input = new ort.Tensor('uint8', buffer, [1, WINDOW, HEIGHT, WIDTH, 3]);
  let filled = 0; // window positions holding frames
  let window = 0; // index of the window in the buffer: it predicts frames STRIDE*window ..
  let pushed = 0;
  let running = false;
  let finished = false;
  const boundaries: ShotBoundary[] = [];
  // predictions_to_scenes state: the previous frame's side of the threshold, the current run's start and peak.
  let above = false;
  let runStart = -1;
  let runPeak = 0;

  const fill = (from: number, to: number, sourcePosition: number): void => {
    const src = buffer.subarray(sourcePosition * FRAME_BYTES, (sourcePosition + 1) * FRAME_BYTES);
    for (let p = from; p < to; p++) buffer.set(src, p * FRAME_BYTES);
  };

  const classify = (frame: number, p: number): void => {
    const over = p > threshold;
    if (over && !above) {
      runStart = frame;
      runPeak = p;
    } else if (over) {
      runPeak = Math.max(runPeak, p);
    } else if (above && runStart !== 0) {
      boundaries.push({ frame, score: runPeak, kind: 'cut' });
    }
    above = over;
  };

  /** Runs the buffered window; predictions for frames before `limit` are kept. Then slides by STRIDE. */
  const runWindow = async (limit: number): Promise<void> => {
    running = true;
    try {
      const out = await session.run({ frames: input }, fetches);
      const single = out.single_frame_prob!.data as Float32Array;
      const many = hasManyHot ? (out.many_hot_prob!.data as Float32Array) : null;
      for (let k = 0; k < STRIDE; k++) {
        const frame = STRIDE * window + k;
        if (frame >= limit) break;
        const p = single[CONTEXT + k]!;
        options.onPrediction?.(frame, p, many ? many[CONTEXT + k]! : Number.NaN);
        classify(frame, p);
      }
    } finally {
      running = false;
    }
    buffer.copyWithin(0, STRIDE * FRAME_BYTES, WINDOW * FRAME_BYTES);
    filled = WINDOW - STRIDE;
    window++;
  };

  return {
    name: 'transnetv2',
    provider,
    get heldFrames() {
      return filled;
    },
    heldBytes: buffer.byteLength,
    frameSize: () => ({ width: WIDTH, height: HEIGHT }),
    async push(f: ShotFrame): Promise<void> {
      if (running) throw new ClipstreamError('ERR_INVALID_OPTION', 'transnetv2: push() called before the previous push() resolved');
      if (finished) throw new ClipstreamError('ERR_INVALID_OPTION', 'transnetv2: push() after finish()');
      if (f.width !== WIDTH || f.height !== HEIGHT || f.rgb.length !== FRAME_BYTES) {
        throw new ClipstreamError(
          'ERR_INVALID_OPTION',
          `transnetv2: frame ${f.index} is ${f.width}x${f.height} (${f.rgb.length} bytes); the network takes ${WIDTH}x${HEIGHT} RGB24 (${FRAME_BYTES} bytes)`,
        );
      }
      if (f.index !== pushed)
        throw new ClipstreamError('ERR_INVALID_OPTION', `transnetv2: expected frame ${pushed}, got frame ${f.index} (frames must come in order)`);
      buffer.set(f.rgb, filled * FRAME_BYTES);
      if (pushed === 0) {
        // The first frame stands in for the CONTEXT frames before the video.
        buffer.copyWithin(CONTEXT * FRAME_BYTES, 0, FRAME_BYTES);
        fill(0, CONTEXT, CONTEXT);
        filled = CONTEXT;
      }
      filled++;
      pushed++;
      if (filled === WINDOW) await runWindow(Number.POSITIVE_INFINITY);
    },
    async finish(): Promise<ShotBoundary[]> {
      if (finished) return boundaries;
      finished = true;
      try {
        // The last frame stands in for the frames after the video; windows run until every frame has a prediction.
        while (pushed > 0 && STRIDE * window < pushed) {
          fill(filled, WINDOW, filled - 1);
          filled = WINDOW;
          await runWindow(pushed);
        }
      } finally {
        filled = 0;
        await session.release();
      }
      return boundaries;
    },
  };
}
