/**
 * The per-frame model stage on the project's model runner (a worker-thread ONNX Runtime
 * session, CUDA first then CPU with one warning). Two contracts:
 *  - `rvm`: Robust Video Matting's ONNX interface (`src`, `r1i`..`r4i`, `downsample_ratio` →
 *    `fgr`, `pha`, `r1o`..`r4o`); each stream of frames carries its four states.
 *  - `image`: any stateless image-to-image model, one [B,3,H,W] float 0–1 input, one output
 *    [B,1,H,W] (a matte) or [B,3,H,W] (an image).
 *
 * Batching is by backpressure (DESIGN.md, the runner's `BatchQueue`): callers `submit` frames
 * and the model, when free, takes everything queued (up to `batchSize`) as one batch. A
 * recurrent stream can only have one frame in flight (frame t+1 needs frame t's state), so
 * batches of an RVM model are formed across streams — several segments decoded at once in
 * `warmup`/`reset` modes — while a stateless model's stream keeps up to `batchSize` of its
 * own frames in flight.
 */
import { ClipstreamError } from '../errors.js';
import { type GraphInfo, readGraph } from '../infer/graph.js';
import { BatchQueue, type Feeds, ModelRunner, type ModelRunnerOptions } from '../infer/model-runner.js';
import { batchSlice, concatInto } from '../infer/tensors.js';

export type FrameModelKind = 'rvm' | 'image';
export const STATE_NAMES = ['r1', 'r2', 'r3', 'r4'] as const;

export interface Tensor32 {
  data: Float32Array;
  dims: number[];
}

/** A recurrent stream's states after a frame; null is RVM's initial zeros [1,1,1,1]. */
export type RecurrentState = Record<string, Tensor32> | null;

export interface FrameResult {
  /** Alpha [H·W] in 0–1, or null for an image model that outputs an image. */
  pha: Float32Array | null;
  /** Foreground / output image, CHW [3·H·W] in 0–1, or null for a matte-only model. */
  fgr: Float32Array | null;
  state: RecurrentState;
}

type Declared = Pick<GraphInfo, 'inputs' | 'outputs'>;

/** Reads the model kind from its input/output names: RVM's `src`+`r1i`+`pha`, else a one-input image model. */
export function detectKind(d: Declared, path: string): FrameModelKind {
  const ins = new Set(d.inputs.map((i) => i.name));
  const outs = new Set(d.outputs.map((o) => o.name));
  if (ins.has('src') && ins.has('r1i') && outs.has('pha')) return 'rvm';
  if (d.inputs.length === 1 && d.outputs.length >= 1) return 'image';
  throw new ClipstreamError(
    'ERR_MODEL',
    `model ${path}: cannot tell its kind from inputs [${[...ins].join(', ')}] and outputs [${[...outs].join(', ')}]; expected RVM's (src, r1i..r4i, downsample_ratio → fgr, pha, r1o..r4o) or one image input; set --model_kind`,
    { where: { file: path } },
  );
}

interface Queued {
  src: Float32Array;
  state: RecurrentState;
  h: number;
  w: number;
  ratio: number;
}

/** Largest frame, in pixels at the model's resolution, that the model stage accepts. */
export const MAX_MODEL_PIXELS = 3840 * 2160;

export interface OpenModelOptions extends ModelRunnerOptions {
  kind?: 'auto' | FrameModelKind;
  batchSize?: number;
}

/** A frame model on the model runner (worker thread), with the backpressure batch queue in front of it. */
export class FrameModel {
  readonly kind: FrameModelKind;
  readonly provider: 'cuda' | 'cpu';
  readonly path: string;
  readonly batchSize: number;
  /** Declared [H, W] of the image input when fixed, else null. */
  readonly fixedSize: [number, number] | null;
  private readonly runner: ModelRunner;
  private readonly decl: Declared;
  private readonly queue: BatchQueue<Queued, FrameResult>;

  private constructor(kind: FrameModelKind, runner: ModelRunner, batchSize: number) {
    this.path = runner.path;
    this.kind = kind;
    this.runner = runner;
    this.provider = runner.provider;
    const decl = runner.graph;
    this.decl = decl;
    // Frames of one size and ratio share a batch.
    this.queue = new BatchQueue({ batchSize, groupKey: (q) => `${q.h}x${q.w}@${q.ratio}`, run: (batch) => this.runBatch(batch) });
    this.batchSize = this.queue.batchSize;
    const img = kind === 'rvm' ? decl.inputs.find((i) => i.name === 'src')! : decl.inputs[0]!;
    const [h, w] = img.dims.slice(2);
    this.fixedSize = typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? [h, w] : null;
  }

  /**
   * Opens `path` (kind detected unless given).
   *
   * @example const m = await FrameModel.open('models/rvm_synthetic.onnx', { device: 'auto' });
   */
  static async open(path: string, options: OpenModelOptions = {}): Promise<FrameModel> {
    const decl = await readGraph(path);
    const kind = !options.kind || options.kind === 'auto' ? detectKind(decl, path) : options.kind;
    const img = kind === 'rvm' ? decl.inputs.find((i) => i.name === 'src') : decl.inputs[0];
    if (!img)
      throw new ClipstreamError('ERR_MODEL', `model ${path} has no 'src' input, so it is not an RVM model (--model_kind=rvm)`, { where: { file: path } });
    if (img.type !== 'float32') {
      throw new ClipstreamError('ERR_MODEL', `model ${path}: input '${img.name}' is not float32 (use the fp32 export, e.g. rvm_mobilenetv3_fp32.onnx)`, {
        where: { file: path },
      });
    }
    const runner = await ModelRunner.open(path, options, { graph: decl });
    return new FrameModel(kind, runner, options.batchSize ?? 4);
  }

  /** Throws a clear error when frames of this size cannot go through the model. */
  checkFits(width: number, height: number, ratio: number, file: string): void {
    const where = { file };
    if (this.fixedSize && (this.fixedSize[0] !== height || this.fixedSize[1] !== width)) {
      throw new ClipstreamError(
        'ERR_MODEL',
        `${file}: frames are ${width}x${height} but model ${this.path} takes only ${this.fixedSize[1]}x${this.fixedSize[0]}`,
        { where },
      );
    }
    const mw = Math.round(width * (this.kind === 'rvm' ? ratio : 1));
    const mh = Math.round(height * (this.kind === 'rvm' ? ratio : 1));
    if (mw < 1 || mh < 1)
      throw new ClipstreamError('ERR_INVALID_OPTION', `${file}: --downsample_ratio=${ratio} makes its ${width}x${height} frames smaller than one pixel`, {
        where: { ...where, option: 'downsample_ratio' },
      });
    if (mw * mh > MAX_MODEL_PIXELS) {
      const hint =
        this.kind === 'rvm'
          ? `; pass --downsample_ratio=${Math.min(1, 512 / Math.max(width, height)).toFixed(3)} (RVM recommends 256-512 px inside the model)`
          : '';
      throw new ClipstreamError(
        'ERR_MODEL',
        `${file}: a ${width}x${height} frame is ${mw}x${mh} inside model ${this.path}, more than the ${MAX_MODEL_PIXELS} pixels it is allowed${hint}`,
        { where },
      );
    }
  }

  /** Sizes of the batches run, for statistics. */
  get batchSizes(): number[] {
    return this.queue.batchSizes;
  }

  /** Queues one frame (CHW float 0–1) of a stream; resolves with its outputs and the stream's new state. */
  submit(src: Float32Array, state: RecurrentState, h: number, w: number, ratio: number): Promise<FrameResult> {
    return this.queue.submit({ src, state, h, w, ratio });
  }

  private async runBatch(batch: Queued[]): Promise<FrameResult[]> {
    const B = batch.length;
    const { h, w } = batch[0]!;
    const src = new Float32Array(B * 3 * h * w);
    concatInto(
      src,
      batch.map((b) => b.src),
    );
    const imageName = this.kind === 'rvm' ? 'src' : this.decl.inputs[0]!.name;
    const feeds: Feeds = { [imageName]: { data: src, dims: [B, 3, h, w] } };
    let outputs: string[];
    if (this.kind === 'rvm') {
      for (const s of STATE_NAMES) feeds[`${s}i`] = stackStates(batch.map((b) => b.state?.[s] ?? null));
      feeds.downsample_ratio = { data: new Float32Array([batch[0]!.ratio]), dims: [1] };
      outputs = ['fgr', 'pha', ...STATE_NAMES.map((s) => `${s}o`)];
    } else {
      outputs = [this.decl.outputs[0]!.name];
    }
    const { outputs: out } = await this.runner.run(feeds, outputs, { batch: `a batch of ${B} frame(s) of ${w}x${h}` });
    if (this.kind === 'rvm') {
      return batch.map((_, i) => ({
        pha: slice(out.pha!, i, B),
        fgr: slice(out.fgr!, i, B),
        state: Object.fromEntries(STATE_NAMES.map((s) => [s, sliceTensor(out[`${s}o`]!, i, B)])),
      }));
    }
    const o = out[outputs[0]!]!;
    const channels = o.dims[1];
    if (o.dims.length !== 4 || o.dims[2] !== h || o.dims[3] !== w || (channels !== 1 && channels !== 3)) {
      throw new ClipstreamError(
        'ERR_MODEL',
        `model ${this.path}: output ${outputs[0]} has shape [${o.dims.join(', ')}]; an image model must give [B, 1 or 3, ${h}, ${w}]`,
        { where: { file: this.path } },
      );
    }
    return batch.map((_, i) => (channels === 1 ? { pha: slice(o, i, B), fgr: null, state: null } : { pha: null, fgr: slice(o, i, B), state: null }));
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}

// A batch of one is already this frame's own array (it came back from the worker): no copy.
const slice = (t: Tensor32, i: number, B: number): Float32Array => batchSlice(t.data, i, B);

function sliceTensor(t: Tensor32, i: number, B: number): Tensor32 {
  // A state the model did not expand to the batch (still [1, ...]) is shared by every stream.
  if (B === 1) return t;
  if (t.dims[0] !== B) return { data: t.data.slice(), dims: [...t.dims] };
  return { data: slice(t, i, B), dims: [1, ...t.dims.slice(1)] };
}

/** Stacks per-stream states on the batch axis; initial (null) states become zeros of the others' shape. */
export function stackStates(states: (Tensor32 | null)[]): Tensor32 {
  const shaped = states.find((s) => s !== null && s.data.length > 1) ?? states.find((s) => s !== null) ?? null;
  if (!shaped) return { data: new Float32Array(1), dims: [1, 1, 1, 1] };
  // One stream: its own state goes as it is (the worker hands the buffer back in the next result).
  if (states.length === 1) return shaped;
  const per = shaped.data.length;
  const out = new Float32Array(per * states.length);
  states.forEach((s, i) => {
    if (s && s.data.length === per) out.set(s.data, i * per);
    else if (s && s.data.length === 1) out.fill(s.data[0]!, i * per, (i + 1) * per);
  });
  return { data: out, dims: [states.length, ...shaped.dims.slice(1)] };
}
