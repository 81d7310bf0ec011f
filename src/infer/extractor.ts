import ort from 'onnxruntime-node';
import { ClipstreamError, toClipstreamError } from '../errors.js';
import { vggishExamples } from '../features/vggish.js';
import { readModelInfo, type ModelInfo } from '../models/info.js';
import type { FeatureSet, Sample, StreamItem, Tensor } from '../types.js';
import { isLive, defaultWarningHandler } from '../types.js';
import { batchStage } from './batcher.js';
import { loadSession, openOnDevice, type SessionOptions } from './session.js';
import { meanRows, normalisationTable, writeVideoCTHW } from './tensors.js';
import { WorkerSession } from './worker-session.js';

export interface ExtractorOptions extends SessionOptions {
  /**
   * Run the model in a worker thread (default true). onnxruntime-node computes on the thread
   * that calls `run`, so in the main thread every inference blocks the event loop and with it
   * the ffmpeg pipes: decoding and inference could not overlap.
   */
  worker?: boolean;
}

export type ExtractorKind = 'visual' | 'audio';

/**
 * A loaded feature extractor: an ONNX Runtime session plus what its metadata says about
 * it. Layer names and sizes come from the model's outputs, never from constants, so a
 * user-supplied model with other widths works as is.
 */
export class Extractor {
  readonly kind: ExtractorKind;
  readonly extractorName: string;
  readonly dataset: string;
  readonly layers: string[];
  readonly layerSizes: Record<string, number>;
  readonly provider: 'cpu' | 'cuda';
  readonly info: ModelInfo;
  /** The model runs in exactly one of these: a worker thread (default) or this thread. */
  private session: ort.InferenceSession | null = null;
  private worker: WorkerSession | null = null;
  private readonly inputName: string;
  private readonly lut: Float32Array;
  /**
   * Visual input: `uint8-thwc` models take the decoder's frames as they are (the batch is the
   * clips' bytes concatenated); `float-cthw` ones get them normalised here, through `lut`.
   */
  readonly inputFormat: 'float-cthw' | 'uint8-thwc';
  /** Batch buffers, reused between batches (they go to the worker and come back). */
  private floatBuffer: Float32Array | null = null;
  private byteBuffer: Uint8Array | null = null;

  private constructor(info: ModelInfo, provider: 'cpu' | 'cuda') {
    this.info = info;
    this.provider = provider;
    const kind = info.metadata['clipstream.kind'];
    if (kind !== 'visual' && kind !== 'audio') {
      throw new ClipstreamError(
        'ERR_MODEL',
        `${info.path}: metadata 'clipstream.kind' must be 'visual' or 'audio' but is ${kind === undefined ? 'missing' : `'${kind}'`}`,
        { where: { file: info.path } },
      );
    }
    this.kind = kind;
    this.extractorName = info.metadata.extractor_name ?? 'unknown';
    this.dataset = info.metadata.dataset ?? 'unknown';
    // Names come from the model file itself (readModelInfo), the same graph the session runs.
    const outputNames = info.outputs.map((o) => o.name);
    this.layers = outputNames.filter((n) => /^layer_\d+$/.test(n)).sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
    if (this.layers.length === 0) {
      throw new ClipstreamError('ERR_MODEL', `${info.path}: the model has no outputs named layer_0, layer_1, ... (outputs: ${outputNames.join(', ')})`, {
        where: { file: info.path },
      });
    }
    this.layerSizes = Object.fromEntries(this.layers.map((l) => [l, info.layerSizes[l] ?? NaN]));
    this.inputName = info.inputs[0]!.name;
    this.inputFormat = kind === 'visual' && info.inputs[0]?.type === 'uint8' ? 'uint8-thwc' : 'float-cthw';
    const pre = parsePreprocessing(info);
    this.lut = normalisationTable(pre.mean ?? 0.45, pre.std ?? 0.225);
  }

  /**
   * @example
   * const visual = await Extractor.load('models/slowfast_small.onnx', { device: 'auto' });
   */
  static async load(path: string, options: ExtractorOptions = {}): Promise<Extractor> {
    const info = await readModelInfo(path);
    if (options.worker ?? true) {
      try {
        // The model is opened once, in the worker, with the same CUDA-then-CPU fallback.
        const opened = await openOnDevice(path, options, (o) => WorkerSession.open(path, o));
        const extractor = new Extractor(info, opened.provider);
        extractor.worker = opened.value;
        return extractor;
      } catch (err) {
        // Still correct in the main thread, only without the overlap.
        (options.onWarning ?? defaultWarningHandler)(
          new ClipstreamError('ERR_MODEL', `${path}: cannot run the model in a worker thread (${(err as Error).message}); running it in the main thread`, {
            cause: err,
            where: { file: path },
          }),
        );
      }
    }
    const { session, provider } = await loadSession(path, options);
    const extractor = new Extractor(info, provider);
    extractor.session = session;
    return extractor;
  }

  /** Computes features for a batch of samples in place; a failing batch is retried clip by clip. */
  async runBatch(batch: Sample[]): Promise<void> {
    const work = this.kind === 'visual' ? batch.filter((s) => this.checkVideo(s)) : batch.filter((s) => this.prepareAudio(s));
    if (work.length === 0) return;
    try {
      await this.runTensors(work);
    } catch (err) {
      if (work.length === 1) {
        const s = work[0]!;
        s.failure = {
          stage: `infer:${this.kind}`,
          status: 'failed',
          error: toClipstreamError(err, 'ERR_INFERENCE', { shard: s.__url__, key: s.__key__, file: this.info.path }),
        };
        return;
      }
      // One bad clip must not fail its neighbours: isolate it.
      for (const s of work) await this.runBatch([s]);
    }
  }

  private checkVideo(s: Sample): boolean {
    const v = s.video;
    const dims = this.info.inputs[0]?.dims ?? [];
    // [B, T, H, W, 3] for uint8 models, [B, 3, T, H, W] for float ones.
    const want = (this.inputFormat === 'uint8-thwc' ? dims.slice(1, 4) : dims.slice(2)).map((d) => (typeof d === 'number' ? d : null));
    const got = v ? [v.numFrames, v.height, v.width] : null;
    if (!got || want.some((d, i) => d !== null && d !== got[i])) {
      s.failure = {
        stage: 'infer:visual',
        status: 'failed',
        error: new ClipstreamError(
          'ERR_MODEL',
          `${s.__key__}: decoded video is ${got ? got.join('×') : 'missing'} (frames×height×width) but ${this.info.path} expects ${want.map((d) => d ?? '?').join('×')}`,
          { where: { key: s.__key__, file: this.info.path } },
        ),
      };
      return false;
    }
    return true;
  }

  private prepareAudio(s: Sample): boolean {
    if (s.audioExamples === undefined) {
      s.audioExamples = s.audio ? vggishExamples(s.audio.pcm, s.audio.sampleRate) : null;
      delete s.audio;
    }
    if (!s.audioExamples || s.audioExamples.shape[0] === 0) {
      // No audio stream, or less than one example of sound: no audio features, not an error.
      s.audioFeatures = [];
      s.audioExamples = null;
      return false;
    }
    return true;
  }

  private async runTensors(work: Sample[]): Promise<void> {
    let data: Float32Array | Uint8Array;
    let dims: number[];
    const rows: number[] = [];
    if (this.kind === 'visual') {
      const v0 = work[0]!.video!;
      const per = 3 * v0.numFrames * v0.height * v0.width;
      const need = per * work.length;
      // Reused between batches: allocating ~25 MB per clip per batch is what makes GC pause.
      if (this.inputFormat === 'uint8-thwc') {
        const buf = this.takeBytes(need);
        work.forEach((s, i) => buf.set(s.video!.frames.subarray(0, per), i * per));
        data = buf;
        dims = [work.length, v0.numFrames, v0.height, v0.width, 3];
      } else {
        const buf = this.takeFloats(need);
        work.forEach((s, i) => writeVideoCTHW(s.video!, this.lut, buf, i * per));
        data = buf;
        dims = [work.length, 3, v0.numFrames, v0.height, v0.width];
      }
      for (let i = 0; i < work.length; i++) rows.push(1);
    } else {
      const first = work[0]!.audioExamples!;
      const exampleSize = first.shape.slice(1).reduce((a, b) => a * b, 1);
      const total = work.reduce((n, s) => n + s.audioExamples!.shape[0]!, 0);
      const buf = this.takeFloats(total * exampleSize);
      let at = 0;
      for (const s of work) {
        buf.set(s.audioExamples!.data, at);
        at += s.audioExamples!.data.length;
        rows.push(s.audioExamples!.shape[0]!);
      }
      data = buf;
      dims = [total, ...first.shape.slice(1)];
    }
    let outputs: Record<string, { data: unknown; dims: readonly number[] }>;
    if (this.worker) {
      const r = await this.worker.run(this.inputName, data, dims, this.layers);
      // The batch buffer went to the worker and came back: keep reusing it.
      this.giveBack(r.input);
      if (r.error !== undefined || !r.outputs)
        throw new ClipstreamError('ERR_INFERENCE', r.error ?? 'inference worker returned no outputs', { where: { file: this.info.path } });
      outputs = r.outputs;
    } else {
      const tensor = data instanceof Uint8Array ? new ort.Tensor('uint8', data, dims) : new ort.Tensor('float32', data, dims);
      outputs = await this.session!.run({ [this.inputName]: tensor }, this.layers);
      this.giveBack(data);
    }
    const perSample: Record<string, Tensor>[] = work.map(() => ({}));
    for (const layer of this.layers) {
      const out = outputs[layer]!;
      const columns = out.dims[out.dims.length - 1]!;
      const data = out.data as Float32Array;
      let row = 0;
      work.forEach((_, i) => {
        // Visual rows are one per clip; audio rows are one per example, averaged per clip as ACAV100M does.
        perSample[i]![layer] = meanRows(data, columns, row, row + rows[i]!);
        row += rows[i]!;
      });
    }
    work.forEach((s, i) => {
      const set: FeatureSet = { extractor_name: this.extractorName, dataset: this.dataset, feat_array: perSample[i]! };
      if (this.kind === 'visual') {
        s.visualFeatures = [...(s.visualFeatures ?? []), set];
        delete s.video;
      } else {
        s.audioFeatures = [...(s.audioFeatures ?? []), set];
        delete s.audioExamples;
      }
    });
  }

  /** A batch buffer of exactly `n` floats, a view of the reused one (grown when too small). */
  private takeFloats(n: number): Float32Array {
    let buf = this.floatBuffer;
    this.floatBuffer = null;
    if (!buf || buf.length < n) buf = new Float32Array(n);
    return buf.subarray(0, n);
  }

  private takeBytes(n: number): Uint8Array {
    let buf = this.byteBuffer;
    this.byteBuffer = null;
    if (!buf || buf.length < n) buf = new Uint8Array(n);
    return buf.subarray(0, n);
  }

  /** Keeps a batch buffer that came back for the next batch (a detached one is dropped). */
  private giveBack(input: Float32Array | Uint8Array): void {
    if (input.buffer.byteLength === 0) return;
    if (input instanceof Uint8Array) this.byteBuffer = new Uint8Array(input.buffer);
    else this.floatBuffer = new Float32Array(input.buffer);
  }

  async close(): Promise<void> {
    if (this.worker) {
      const w = this.worker;
      this.worker = null;
      await w.close();
      return;
    }
    const session = this.session;
    this.session = null;
    await session?.release();
  }
}

function parsePreprocessing(info: ModelInfo): { mean?: number; std?: number } {
  const raw = info.metadata.preprocessing;
  if (!raw) return {};
  try {
    return JSON.parse(raw) as { mean?: number; std?: number };
  } catch {
    throw new ClipstreamError('ERR_MODEL', `${info.path}: metadata 'preprocessing' is not valid JSON`, { where: { file: info.path } });
  }
}

export interface FeatureStageOptions {
  batchSize?: number;
  queueSize?: number;
  onBatch?: (size: number) => void;
}

/**
 * Stage: runs `extractor` on live samples in batches set by backpressure (see batchStage).
 *
 * @example
 * await pipeline(readShards(urls), decodeClips(), extractFeatures(visual, { batchSize: 8 }), writer);
 */
export function extractFeatures(extractor: Extractor, options: FeatureStageOptions = {}) {
  return batchStage({
    batchSize: options.batchSize ?? 8,
    queueSize: options.queueSize,
    onBatch: options.onBatch,
    accept: (item: StreamItem): item is Sample => isLive(item),
    run: (batch) => extractor.runBatch(batch),
  });
}
