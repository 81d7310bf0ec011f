import sharp from 'sharp';
import { ClipstreamError } from '../errors.js';
import { type ChannelTables, channelTables, writePlanes } from '../infer/tensors.js';
import { openModelRunner, readGraphInterface, type GraphInterface, type ModelRunner, type ModelRunnerOptions } from './model-runner.js';
import { spreadIndices } from './scores.js';

/** Input normalisation of a scorer: ImageNet or CLIP mean/std on [0, 1], plain [0, 1], or raw 0–255. */
export type ScorerNorm = 'imagenet' | 'clip' | 'unit' | 'raw';
const NORMS: Record<ScorerNorm, { mean: number[]; std: number[]; scale: number }> = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1 / 255 },
  clip: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], scale: 1 / 255 },
  unit: { mean: [0, 0, 0], std: [1, 1, 1], scale: 1 / 255 },
  raw: { mean: [0, 0, 0], std: [1, 1, 1], scale: 1 },
};

export interface ScorerSpec {
  /** Column name stem: the column is `{name}_score` (e.g. `hyperiqa`, `clipiqa+`, `clip`). */
  name: string;
  path: string;
  norm: ScorerNorm;
}

/**
 * Parses `name=path[:norm]`, e.g. `hyperiqa=models/hyperiqa.onnx` or `clip=clip_visual.onnx:clip`.
 *
 * @example
 * parseScorerSpec('clip=models/clip_vit_b32_visual.onnx:clip') // { name: 'clip', path: ..., norm: 'clip' }
 */
export function parseScorerSpec(text: string): ScorerSpec {
  const m = /^([A-Za-z0-9_+.-]+)=(.+?)(?::(imagenet|clip|unit|raw))?$/.exec(text);
  if (!m) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `scorer '${text}' is not name=path.onnx[:imagenet|clip|unit|raw] (e.g. hyperiqa=models/hyperiqa.onnx)`, {
      where: { option: 'scorer' },
    });
  }
  return { name: m[1]!, path: m[2]!, norm: (m[3] as ScorerNorm | undefined) ?? 'imagenet' };
}

/**
 * A user-supplied ONNX model that scores face crops. A model with one value per image (an IQA
 * model such as HyperIQA or CLIP-IQA+) scores a clip with the mean over the frames; a model with
 * a vector per image (a CLIP image encoder) scores it with the mean cosine similarity of each
 * frame's embedding to the clip's mean embedding: seed 002's consistency `clip_score`.
 *
 * @example
 * const s = await loadScorer(parseScorerSpec('hyperiqa=hyperiqa.onnx'), { device: 'cpu' });
 * row[s.column] = await s.score(frames, 512);
 */
export class Scorer {
  readonly column: string;
  private readonly inputName: string;
  private readonly size: { width: number; height: number };
  private readonly batched: boolean;

  private readonly outputName: string;
  /** The input normalisation per byte value. */
  private readonly tables: ChannelTables;

  constructor(
    readonly spec: ScorerSpec,
    private readonly runner: ModelRunner,
    iface: GraphInterface,
  ) {
    this.column = `${spec.name}_score`;
    this.inputName = iface.inputName;
    this.outputName = iface.outputs[0]!.name;
    const shape = iface.inputDims;
    const h = shape[2];
    const w = shape[3];
    this.size = typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? { width: w, height: h } : { width: 224, height: 224 };
    this.batched = runner.batched;
    const norm = NORMS[spec.norm];
    this.tables = channelTables(norm.mean, norm.std, norm.scale);
  }

  /** Scores a clip from up to `count` evenly spread frames (RGB, `size`×`size`); `key` names the clip in errors. */
  async score(frames: Uint8Array[], size: number, count = 8, key?: string): Promise<number> {
    const picked = spreadIndices(frames.length, count).map((i) => frames[i]!);
    const outputs: Float32Array[] = [];
    const step = this.batched ? picked.length : 1;
    for (let i = 0; i < picked.length; i += step) outputs.push(...(await this.run(picked.slice(i, i + step), size, key)));
    if (outputs[0]!.length === 1) return outputs.reduce((a, o) => a + o[0]!, 0) / outputs.length;
    const dim = outputs[0]!.length;
    const unit = outputs.map((o) => {
      const n = Math.hypot(...o) || 1;
      return o.map((v) => v / n);
    });
    const mean = new Float32Array(dim);
    for (const u of unit) for (let j = 0; j < dim; j++) mean[j] = mean[j]! + u[j]! / unit.length;
    const mn = Math.hypot(...mean) || 1;
    return unit.reduce((a, u) => a + u.reduce((s, v, j) => s + (v * mean[j]!) / mn, 0), 0) / unit.length;
  }

  private async run(frames: Uint8Array[], size: number, key: string | undefined): Promise<Float32Array[]> {
    const { width, height } = this.size;
    const plane = width * height;
    const data = new Float32Array(frames.length * 3 * plane);
    for (const [b, f] of frames.entries()) {
      const px = await sharp(f, { raw: { width: size, height: size, channels: 3 } })
        .resize(width, height, { fit: 'cover' })
        .raw()
        .toBuffer();
      writePlanes(px, width, height, this.tables, data, b * 3 * plane, { planeSize: plane });
    }
    const { outputs } = await this.runner.run({ [this.inputName]: { data, dims: [frames.length, 3, height, width] } }, [this.outputName], { key });
    const out = outputs[this.outputName]!.data;
    const per = out.length / frames.length;
    return frames.map((_, b) => out.slice(b * per, (b + 1) * per));
  }

  async close(): Promise<void> {
    await this.runner.close();
  }
}

/** Opens a scorer's model (CUDA when asked and available, else CPU), on a worker thread unless `thread: 'main'`. */
export async function loadScorer(spec: ScorerSpec, options: ModelRunnerOptions = {}): Promise<Scorer> {
  const iface = await readGraphInterface(spec.path, `scorer ${spec.name}`);
  return new Scorer(spec, await openModelRunner(spec.path, options, { graph: iface.graph, what: `scorer ${spec.name}` }), iface);
}
