import { ClipstreamError } from '../errors.js';
import type { SessionOptions } from '../infer/session.js';
import { type ChannelTables, channelTables, writePlanes } from '../infer/tensors.js';
import { validateInteger, validateNumber, validateOneOf } from '../util/validate.js';
import { nms, unscale, type Detection } from './boxes.js';
import { openModelRunner, readGraphInterface, type GraphInterface, type ModelRunner } from './model-runner.js';
import { decodeScrfd, scrfdLayout } from './scrfd.js';
import type { RawOutput } from './tensors.js';
import { decodeUltraface, orderUltrafaceOutputs } from './ultraface.js';
import { decodeYunet, orderYunetOutputs } from './yunet.js';

export type DetectorFormat = 'scrfd' | 'yunet' | 'ultraface';
export const DETECTOR_FORMATS: readonly DetectorFormat[] = ['scrfd', 'yunet', 'ultraface'];

export interface FaceDetectorOptions extends SessionOptions {
  /** Where the model computes: a worker thread (default, keeps the event loop free) or this thread. */
  thread?: 'worker' | 'main';
  /** Output format; `auto` (default) tells it from the model's outputs. */
  format?: DetectorFormat | 'auto';
  /** Detections below this confidence are dropped (default 0.5). */
  scoreThreshold?: number;
  /** Boxes overlapping a better one by more than this IoU are dropped (default 0.4). */
  nmsThreshold?: number;
  /** Faces whose shorter side is below this many source pixels are dropped (default 0). */
  minFaceSize?: number;
  /**
   * Longest side of the model input for models with a dynamic input size. Default: the model's
   * `face_detector.input_size` metadata, else 640 (insightface's default).
   */
  inputSize?: number;
}

/**
 * Tells the detector family from its outputs: 2 outputs ending in 2 and 4 values = UltraFace;
 * 12 outputs or names `cls_*`/`obj_*` = YuNet; 6, 9, 10 or 15 outputs = SCRFD. Returns null when
 * none fits.
 *
 * @example
 * guessDetectorFormat([{ name: 'scores', dims: [1, 4420, 2] }, { name: 'boxes', dims: [1, 4420, 4] }]) // 'ultraface'
 */
export function guessDetectorFormat(
  outputs: Array<{ name: string; dims: Array<number | string> }>,
  metadata: Record<string, string> = {},
): DetectorFormat | null {
  const declared = metadata['face_detector.format'];
  if (declared && (DETECTOR_FORMATS as readonly string[]).includes(declared)) return declared as DetectorFormat;
  const last = outputs.map((o) => o.dims[o.dims.length - 1]);
  if (outputs.length === 2 && last.includes(2) && last.includes(4)) return 'ultraface';
  if (outputs.length === 12 || outputs.some((o) => /^(cls|obj)_\d+$/.test(o.name))) return 'yunet';
  if (scrfdLayout(outputs.length)) return 'scrfd';
  return null;
}

/** What the model sees: channel order, and value = (pixel − mean) / std. */
const PREPROCESSING: Record<DetectorFormat, { bgr: boolean; mean: number; std: number }> = {
  scrfd: { bgr: false, mean: 127.5, std: 128 },
  yunet: { bgr: true, mean: 0, std: 1 },
  ultraface: { bgr: false, mean: 127, std: 128 },
};

/** A frame handed to the detector: RGB H×W×3, already resized by `scale` from the source frame. */
export interface DetectorFrame {
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Detector-frame pixels per source pixel; detections are divided by it. */
  scale: number;
  /** Source frame size, to clip boxes to. */
  sourceWidth: number;
  sourceHeight: number;
  /** The frame's key (e.g. `clip-0/12`), named by an inference error. */
  key?: string;
}

/**
 * A face detector on an ONNX Runtime session. Frames are placed top-left in the model input
 * (padding right and bottom with the normalised mean, i.e. zero), run in batches, decoded
 * with the format's formulas, filtered (score, NMS, minimum size) and mapped back to source
 * pixels.
 *
 * @example
 * const detector = await loadFaceDetector('models/face_detector_synthetic.onnx');
 * const { width, height, scale } = detector.fit(1920, 1080);
 * const [faces] = await detector.detect([{ rgb, width, height, scale, sourceWidth: 1920, sourceHeight: 1080 }]);
 */
export class FaceDetector {
  readonly path: string;
  readonly format: DetectorFormat;
  readonly provider: 'cpu' | 'cuda';
  private readonly runner: ModelRunner;
  private readonly iface: GraphInterface;
  private readonly fixedSize: { width: number; height: number } | null;
  private readonly maxSide: number;
  /** False when the model takes one image at a time (batch dim fixed to 1 or rank-2 outputs). */
  readonly batched: boolean;
  readonly scoreThreshold: number;
  readonly nmsThreshold: number;
  readonly minFaceSize: number;
  /** (pixel − mean) / std per byte value, the model's input normalisation. */
  private readonly tables: ChannelTables;

  constructor(runner: ModelRunner, iface: GraphInterface, format: DetectorFormat, options: FaceDetectorOptions) {
    this.path = runner.path;
    this.runner = runner;
    this.provider = runner.provider;
    this.iface = iface;
    this.format = format;
    this.scoreThreshold = validateNumber(options.scoreThreshold ?? 0.5, 'options.scoreThreshold', 0, 1);
    this.nmsThreshold = validateNumber(options.nmsThreshold ?? 0.4, 'options.nmsThreshold', 0, 1);
    this.minFaceSize = validateNumber(options.minFaceSize ?? 0, 'options.minFaceSize', 0, 100_000);
    const [batch, , h, w] = iface.inputDims;
    this.fixedSize = typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? { width: w, height: h } : null;
    const metaSize = Number(iface.metadata['face_detector.input_size']);
    this.maxSide = validateInteger(options.inputSize ?? (Number.isInteger(metaSize) && metaSize > 0 ? metaSize : 640), 'options.inputSize', 32, 8192);
    this.batched = batch !== 1 && iface.outputs.every((o) => o.dims.length >= 3);
    const { mean, std } = PREPROCESSING[format];
    this.tables = channelTables([mean, mean, mean], [std, std, std]);
  }

  /**
   * Size to resize a source frame to before detection: the longest side fits the model
   * (never enlarged past the model's size), aspect kept.
   */
  fit(sourceWidth: number, sourceHeight: number): { width: number; height: number; scale: number } {
    const scale = this.fixedSize
      ? Math.min(this.fixedSize.width / sourceWidth, this.fixedSize.height / sourceHeight)
      : this.maxSide / Math.max(sourceWidth, sourceHeight);
    const width = Math.max(1, Math.min(this.fixedSize?.width ?? Infinity, Math.round(sourceWidth * scale)));
    const height = Math.max(1, Math.min(this.fixedSize?.height ?? Infinity, Math.round(sourceHeight * scale)));
    return { width, height, scale: width / sourceWidth };
  }

  /** Model input size for a frame of this size: fixed dims, or rounded up to a multiple of 32. */
  private inputSizeFor(frame: DetectorFrame): { width: number; height: number } {
    if (this.fixedSize) return this.fixedSize;
    return { width: Math.ceil(frame.width / 32) * 32, height: Math.ceil(frame.height / 32) * 32 };
  }

  /** Detects faces in each frame; returns one list per frame, best first, in source pixels. */
  async detect(frames: DetectorFrame[]): Promise<Detection[][]> {
    const results: Detection[][] = new Array(frames.length);
    // Frames of one size go through the model together; a one-image model gets them one by one.
    const groups = new Map<string, number[]>();
    frames.forEach((f, i) => {
      const s = this.inputSizeFor(f);
      const key = this.batched ? `${s.width}x${s.height}` : `${i}`;
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    for (const indices of groups.values()) {
      const size = this.inputSizeFor(frames[indices[0]!]!);
      const outputs = await this.run(
        indices.map((i) => frames[i]!),
        size,
      );
      indices.forEach((frameIndex, b) => {
        results[frameIndex] = this.postprocess(outputs, b, size, frames[frameIndex]!);
      });
    }
    return results;
  }

  private async run(frames: DetectorFrame[], size: { width: number; height: number }): Promise<RawOutput[]> {
    const plane = size.width * size.height;
    const data = new Float32Array(frames.length * 3 * plane); // zeros = the mean: neutral padding
    frames.forEach((f, b) => {
      if (f.width > size.width || f.height > size.height) {
        throw new ClipstreamError(
          'ERR_INFERENCE',
          `frame ${f.width}×${f.height} is larger than the detector input ${size.width}×${size.height}; resize it with detector.fit()`,
          { where: { file: this.path, ...(f.key === undefined ? {} : { key: f.key }) } },
        );
      }
      // Top-left in the model input, channel planes in the format's order.
      writePlanes(f.rgb, f.width, f.height, this.tables, data, b * 3 * plane, { planeSize: plane, rowStride: size.width, bgr: PREPROCESSING[this.format].bgr });
    });
    const names = this.iface.outputs.map((o) => o.name);
    const { outputs: result } = await this.runner.run({ [this.iface.inputName]: { data, dims: [frames.length, 3, size.height, size.width] } }, names, {
      key: frames[0]!.key,
      batch: `a batch of ${frames.length}`,
    });
    return this.iface.outputs.map(({ name }) => {
      const t = result[name]!;
      return { name, dims: t.dims, data: t.data };
    });
  }

  private postprocess(outputs: RawOutput[], b: number, size: { width: number; height: number }, frame: DetectorFrame): Detection[] {
    let raw: Detection[];
    switch (this.format) {
      case 'scrfd':
        raw = decodeScrfd(outputs, b, size.width, size.height, this.scoreThreshold);
        break;
      case 'yunet':
        raw = decodeYunet(orderYunetOutputs(outputs), b, size.width, size.height, this.scoreThreshold);
        break;
      case 'ultraface':
        raw = decodeUltraface(orderUltrafaceOutputs(outputs), b, size.width, size.height, this.scoreThreshold);
        break;
    }
    return nms(raw, this.nmsThreshold)
      .map((d) => clip(unscale(d, frame.scale), frame.sourceWidth, frame.sourceHeight))
      .filter((d) => Math.min(d.x2 - d.x1, d.y2 - d.y1) >= Math.max(this.minFaceSize, 1e-6));
  }

  async close(): Promise<void> {
    await this.runner.close();
  }
}

function clip(d: Detection, w: number, h: number): Detection {
  return { ...d, x1: Math.max(0, d.x1), y1: Math.max(0, d.y1), x2: Math.min(w, d.x2), y2: Math.min(h, d.y2) };
}

/**
 * Opens a face detector and works out its format (or checks the one given).
 *
 * @example
 * const det = await loadFaceDetector('scrfd_10g_bnkps.onnx', { scoreThreshold: 0.5, device: 'cuda' });
 */
export async function loadFaceDetector(path: string, options: FaceDetectorOptions = {}): Promise<FaceDetector> {
  const requested = validateOneOf(options.format ?? 'auto', 'options.format', ['auto', ...DETECTOR_FORMATS] as const);
  const iface = await readGraphInterface(path, 'face detector');
  const guessed = guessDetectorFormat(iface.outputs, iface.metadata);
  const format = requested === 'auto' ? guessed : requested;
  if (!format) {
    throw new ClipstreamError(
      'ERR_MODEL',
      `Cannot tell the format of face detector ${path} from its ${iface.outputs.length} outputs (${iface.outputs.map((o) => o.name).join(', ')}); ` +
        `set the format (scrfd, yunet or ultraface) with --detector_format`,
      { where: { file: path } },
    );
  }
  const runner = await openModelRunner(path, options, { graph: iface.graph, what: 'face detector' });
  try {
    return new FaceDetector(runner, iface, format, options);
  } catch (err) {
    // The runner's worker thread would keep the process alive after the error is reported.
    await runner.close();
    throw err;
  }
}
