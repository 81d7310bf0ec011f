import { ClipstreamError } from '../errors.js';
import { SAMPLES_PER_EXAMPLE, VGGISH_SAMPLE_RATE, vggishExamples } from '../features/vggish.js';
import { readModelInfo, type ModelInfo } from '../models/info.js';
import { failItem, type OnError } from '../stage/on-error.js';
import type { FeatureSet, Sample, StreamItem, Tensor } from '../types.js';
import { isLive } from '../types.js';
import { batchStage, ModelRunner, type Feed } from './model-runner.js';
import type { SessionOptions } from './session.js';
import { BatchBuffers, concatInto, meanRows, normalisationTable, writeVideoCTHW } from './tensors.js';

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
 * A loaded feature extractor: a model runner plus what its metadata says about it. Layer
 * names and sizes come from the model's outputs, never from constants, so a user-supplied
 * model with other widths works as is.
 */
export class Extractor {
  readonly kind: ExtractorKind;
  readonly extractorName: string;
  readonly dataset: string;
  readonly layers: string[];
  readonly layerSizes: Record<string, number>;
  readonly provider: 'cpu' | 'cuda';
  readonly info: ModelInfo;
  private readonly runner: ModelRunner;
  private readonly inputName: string;
  private readonly lut: Float32Array;
  /**
   * Visual input: `uint8-thwc` models take the decoder's frames as they are (the batch is the
   * clips' bytes concatenated); `float-cthw` ones get them normalised here, through `lut`.
   */
  readonly inputFormat: 'float-cthw' | 'uint8-thwc';
  /** Batch buffers, reused between batches (they go to the worker and come back). */
  private readonly buffers = new BatchBuffers();

  private constructor(info: ModelInfo, runner: ModelRunner) {
    this.info = info;
    this.runner = runner;
    this.provider = runner.provider;
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
    // No arena by default: batch shapes vary (backpressure, a short last batch) and the arena keeps
    // what every shape took; without it extract's RSS is lower and flat, and its CPU per clip the
    // same within the noise (bench/RESULTS.md, "Models and memory").
    const memoryArena = options.memoryArena ?? false;
    // The model is opened once, in the worker (or here), with the CUDA-then-CPU fallback; a worker
    // that cannot start leaves the model in this thread, still correct, only without the overlap.
    const runner = await ModelRunner.open(
      path,
      { ...options, memoryArena, thread: (options.worker ?? true) ? 'worker' : 'main', mainThreadFallback: true },
      {
        graph: { path, inputs: info.inputs, outputs: info.outputs, metadata: info.metadata },
      },
    );
    try {
      return new Extractor(info, runner);
    } catch (err) {
      await runner.close();
      throw err;
    }
  }

  /**
   * Computes features for a batch of samples in place; a failing batch is retried clip by clip.
   * A clip that still fails is handled per `onError` (default `'skip'`: marked failed, passed on).
   */
  async runBatch(batch: Sample[], onError: OnError = 'skip'): Promise<void> {
    const work = this.kind === 'visual' ? batch.filter((s) => this.checkVideo(s, onError)) : batch.filter((s) => this.prepareAudio(s));
    if (work.length === 0) return;
    try {
      await this.runTensors(work);
    } catch (err) {
      if (work.length === 1) {
        const s = work[0]!;
        s.failure = failItem(onError, `infer:${this.kind}`, err, { key: s.__key__, code: 'ERR_INFERENCE', where: { shard: s.__url__, file: this.info.path } });
        return;
      }
      // One bad clip must not fail its neighbours: isolate it.
      for (const s of work) await this.runBatch([s], onError);
    }
  }

  private checkVideo(s: Sample, onError: OnError): boolean {
    const v = s.video;
    const dims = this.info.inputs[0]?.dims ?? [];
    // [B, T, H, W, 3] for uint8 models, [B, 3, T, H, W] for float ones.
    const want = (this.inputFormat === 'uint8-thwc' ? dims.slice(1, 4) : dims.slice(2)).map((d) => (typeof d === 'number' ? d : null));
    const got = v ? [v.numFrames, v.height, v.width] : null;
    if (!got || want.some((d, i) => d !== null && d !== got[i])) {
      const err = new ClipstreamError(
        'ERR_MODEL',
        `${s.__key__}: decoded video is ${got ? got.join('×') : 'missing'} (frames×height×width) but ${this.info.path} expects ${want.map((d) => d ?? '?').join('×')}`,
        { where: { key: s.__key__, file: this.info.path } },
      );
      s.failure = failItem(onError, 'infer:visual', err, { key: s.__key__, code: 'ERR_MODEL' });
      return false;
    }
    return true;
  }

  private prepareAudio(s: Sample): boolean {
    if (s.audioExamples === undefined) {
      s.audioExamples = s.audio ? vggishExamples(s.audio.pcm, s.audio.sampleRate) : null;
      if (s.audio && s.audioExamples?.shape[0] === 0) {
        // Sound, but less than one example: said on the record, so it is not taken for a clip without audio.
        const seconds = s.audio.pcm.length / s.audio.sampleRate;
        s.audioNote = `audio too short: ${seconds.toFixed(2)} s, less than one ${(SAMPLES_PER_EXAMPLE / VGGISH_SAMPLE_RATE).toFixed(3)} s VGGish example`;
      }
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
    let input: Feed;
    const rows: number[] = [];
    if (this.kind === 'visual') {
      const v0 = work[0]!.video!;
      const per = 3 * v0.numFrames * v0.height * v0.width;
      const need = per * work.length;
      if (this.inputFormat === 'uint8-thwc') {
        const buf = this.buffers.bytesOf(need);
        concatInto(
          buf,
          work.map((s) => s.video!.frames.subarray(0, per)),
        );
        input = { data: buf, dims: [work.length, v0.numFrames, v0.height, v0.width, 3] };
      } else {
        const buf = this.buffers.floatsOf(need);
        work.forEach((s, i) => writeVideoCTHW(s.video!, this.lut, buf, i * per));
        input = { data: buf, dims: [work.length, 3, v0.numFrames, v0.height, v0.width] };
      }
      for (let i = 0; i < work.length; i++) rows.push(1);
    } else {
      const first = work[0]!.audioExamples!;
      const total = work.reduce((n, s) => n + s.audioExamples!.shape[0]!, 0);
      const buf = this.buffers.floatsOf(total * first.shape.slice(1).reduce((a, b) => a * b, 1));
      concatInto(
        buf,
        work.map((s) => s.audioExamples!.data),
      );
      for (const s of work) rows.push(s.audioExamples!.shape[0]!);
      input = { data: buf, dims: [total, ...first.shape.slice(1)] };
    }
    const { outputs, feeds } = await this.runner.run({ [this.inputName]: input }, this.layers, {
      key: work[0]!.__key__,
      batch: `a batch of ${work.length} clip(s)`,
    });
    // The batch buffer went to the worker and came back: keep reusing it.
    this.buffers.keep(feeds[this.inputName]!.data);
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

  close(): Promise<void> {
    return this.runner.close();
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
  /** What a clip the model cannot process does: `'skip'` (default: marked failed, passed on), `'throw'`, or a function deciding. */
  onError?: OnError;
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
    // The audio model's batches take a few ms: a full next one waits on the worker thread while
    // one runs, instead of the worker idling through the hand-off (bench/RESULTS.md, "Two audio
    // batches in flight"). A visual batch takes ~1 s: one at a time, and no more frames held.
    inFlight: extractor.kind === 'audio' ? 2 : 1,
    queueSize: options.queueSize,
    onBatch: options.onBatch,
    accept: (item: StreamItem): item is Sample => isLive(item),
    run: (batch) => extractor.runBatch(batch, options.onError),
  });
}
