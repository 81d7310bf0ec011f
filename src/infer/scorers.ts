/**
 * Plug-in ONNX scorers: a user's model (an aesthetic or IQA model, a CLIP image encoder) that
 * scores images, as `faces --scorer` and `clips --scorer` / `score --scorer` take them
 * (`name=path.onnx[:imagenet|clip|unit|raw]`, column `{name}_score`).
 *
 * The contract (docs/faces.md, docs/clips.md "Plug-in scorers"):
 * - one input, float32 NCHW `[batch, 3, H, W]`, RGB; H and W from the graph when they are fixed
 *   numbers, else 224 × 224; images are resized to cover H × W (sharp, centre crop);
 * - pixel values normalised by `norm`: `imagenet` (default) or `clip` mean/std on [0, 1], `unit`
 *   ([0, 1]) or `raw` (0–255);
 * - the first output gives one value per image (any shape with `batch` values), the score, averaged
 *   over the images; or a vector per image (an embedding), and the score is the mean cosine
 *   similarity of each image's vector to the images' mean vector (consistency);
 * - a batch dimension that is a fixed number (not symbolic) runs one image at a time.
 */
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { ClipstreamError } from '../errors.js';
import { type ClipFrame, type FrameScorer, roundScore, spacedFrames } from '../features/clip-scores.js';
import { type GraphInterface, readGraphInterface } from './graph.js';
import { type ModelRunner, type ModelRunnerOptions, openModelRunner } from './model-runner.js';
import { type ChannelTables, channelTables, writePlanes } from './tensors.js';

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
 * Parses `name=path[:norm]`, e.g. `hyperiqa=models/hyperiqa.onnx` or `clip=clip_visual.onnx:clip`;
 * `option` names the option in the error.
 *
 * @example
 * parseScorerSpec('clip=models/clip_vit_b32_visual.onnx:clip') // { name: 'clip', path: ..., norm: 'clip' }
 */
export function parseScorerSpec(text: string, option = 'scorer'): ScorerSpec {
  const m = /^([A-Za-z0-9_+.-]+)=(.+?)(?::(imagenet|clip|unit|raw))?$/.exec(text);
  if (!m) {
    throw new ClipstreamError(
      'ERR_INVALID_OPTION',
      `${option}: scorer '${text}' is not name=path.onnx[:imagenet|clip|unit|raw] (e.g. hyperiqa=models/hyperiqa.onnx)`,
      {
        where: { option },
      },
    );
  }
  return { name: m[1]!, path: m[2]!, norm: (m[3] as ScorerNorm | undefined) ?? 'imagenet' };
}

/**
 * Scorer specs from an option: `name=path[:norm]` strings (an array, or one string with a comma
 * list) or specs. Two with the same name are an error naming the option.
 *
 * @example parseScorerList('a=a.onnx,b=b.onnx:unit', 'options.scorers').map((s) => s.name) // ['a', 'b']
 */
export function parseScorerList(value: string | readonly (string | ScorerSpec)[] | undefined, option: string): ScorerSpec[] {
  if (value === undefined) return [];
  const items: (string | ScorerSpec)[] =
    typeof value === 'string' ? value.split(',') : value.flatMap((v): (string | ScorerSpec)[] => (typeof v === 'string' ? v.split(',') : [v]));
  const specs = items
    .filter((v) => typeof v !== 'string' || v.trim() !== '')
    .map((v): ScorerSpec => (typeof v === 'string' ? parseScorerSpec(v.trim(), option) : { ...v, norm: v.norm ?? 'imagenet' }));
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.name)) throw new ClipstreamError('ERR_INVALID_OPTION', `${option}: two scorers are named ${s.name}`, { where: { option } });
    seen.add(s.name);
  }
  return specs;
}

/** `count` evenly spread indices among `total` (first and last included); all of them when `total <= count`. */
export function spreadIndices(total: number, count: number): number[] {
  if (total <= count) return Array.from({ length: total }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.round((i * (total - 1)) / (count - 1)));
}

/** An RGB24 image, packed row after row. */
export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/**
 * A user-supplied ONNX model that scores images. A model with one value per image (an IQA
 * model such as HyperIQA or CLIP-IQA+) scores a clip with the mean over the images; a model with
 * a vector per image (a CLIP image encoder) scores it with the mean cosine similarity of each
 * image's embedding to the mean embedding: seed 002's consistency `clip_score`.
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
    const picked = spreadIndices(frames.length, count).map((i) => ({ rgb: frames[i]!, width: size, height: size }));
    return this.scoreImages(picked, key);
  }

  /** The score of a set of images (any sizes): the mean of the values, or the consistency of the vectors. */
  async scoreImages(images: readonly RgbImage[], key?: string): Promise<number> {
    if (images.length === 0) throw new ClipstreamError('ERR_INFERENCE', `scorer ${this.spec.name}: no image to score${key ? ` (${key})` : ''}`);
    const outputs: Float32Array[] = [];
    const step = this.batched ? images.length : 1;
    for (let i = 0; i < images.length; i += step) outputs.push(...(await this.run(images.slice(i, i + step), key)));
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

  private async run(images: readonly RgbImage[], key: string | undefined): Promise<Float32Array[]> {
    const { width, height } = this.size;
    const plane = width * height;
    const data = new Float32Array(images.length * 3 * plane);
    for (const [b, f] of images.entries()) {
      const px = await sharp(f.rgb, { raw: { width: f.width, height: f.height, channels: 3 } })
        .resize(width, height, { fit: 'cover' })
        .raw()
        .toBuffer();
      writePlanes(px, width, height, this.tables, data, b * 3 * plane, { planeSize: plane });
    }
    const { outputs } = await this.runner.run({ [this.inputName]: { data, dims: [images.length, 3, height, width] } }, [this.outputName], { key });
    const out = outputs[this.outputName]!.data;
    const per = out.length / images.length;
    if (!(per >= 1 && Number.isInteger(per)))
      throw new ClipstreamError(
        'ERR_INFERENCE',
        `scorer ${this.spec.name} (${this.spec.path}): output ${this.outputName} has ${out.length} value(s) for ${images.length} image(s); expected one value or one vector per image`,
        { where: { file: this.spec.path } },
      );
    return images.map((_, b) => out.slice(b * per, (b + 1) * per));
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

/** Frames per clip a plug-in scorer runs on in `clips` and `score`, evenly spaced among the score frames. */
export const PLUGIN_FRAMES = 3;

/**
 * A plug-in scorer as a per-clip `FrameScorer` of the clips job and `clipstream score`: it keeps
 * `frames` evenly spaced frames (`spacedFrames`) of the small score frames of a clip of
 * `numFrames` frames (copies, a few small frames) and runs the model on them in `finish`; the
 * column is `{name}_score`, '' when none of the chosen frames arrived.
 *
 * @example clipScorers({ names: [], columns: ['aes_score'], plugins: [(c) => new ModelFrameScorer(scorer, c.numFrames)] }, 50)
 */
export class ModelFrameScorer implements FrameScorer {
  readonly columns: readonly string[];
  readonly #pick: Set<number>;
  readonly #kept: RgbImage[] = [];

  constructor(
    readonly scorer: Scorer,
    numFrames: number,
    frames = PLUGIN_FRAMES,
    readonly key?: string,
  ) {
    this.columns = [scorer.column];
    this.#pick = new Set(spacedFrames(numFrames, frames));
  }

  push(f: ClipFrame): void {
    if (this.#pick.has(f.index)) this.#kept.push({ rgb: Uint8Array.from(f.rgb), width: f.width, height: f.height });
  }

  async finish(): Promise<Record<string, number | string>> {
    if (this.#kept.length === 0) return { [this.scorer.column]: '' };
    return { [this.scorer.column]: roundScore(await this.scorer.scoreImages(this.#kept, this.key)) };
  }
}

/**
 * Opens the plug-in scorers of a `clips` or `score` run (in this thread: a few small images per
 * clip) and gives the `ScoreSetup` pieces: a maker of one `ModelFrameScorer` per clip, and the
 * columns in order. A missing file or a file that is not an ONNX graph with one input is an error
 * naming `option` and the file.
 *
 * @example const p = await openPluginScorers('aes=aes.onnx:unit', 3, 'options.scorers'); // p.columns: ['aes_score']
 */
export async function openPluginScorers(
  value: string | readonly (string | ScorerSpec)[] | undefined,
  frames: number,
  option: string,
): Promise<{ scorers: Scorer[]; columns: string[]; plugins: ((clip: { numFrames: number }) => FrameScorer)[] }> {
  const scorers: Scorer[] = [];
  for (const spec of parseScorerList(value, option)) {
    if (!(await isFile(spec.path)))
      throw new ClipstreamError('ERR_INVALID_OPTION', `${option}: scorer ${spec.name}: ${spec.path} is not a file`, { where: { option, file: spec.path } });
    try {
      scorers.push(await loadScorer(spec, { thread: 'main' }));
    } catch (err) {
      throw new ClipstreamError('ERR_INVALID_OPTION', `${option}: scorer ${spec.name}: ${(err as Error).message}`, {
        cause: err,
        where: { option, file: spec.path },
      });
    }
  }
  return {
    scorers,
    columns: scorers.map((s) => s.column),
    plugins: scorers.map((s) => (clip: { numFrames: number }) => new ModelFrameScorer(s, clip.numFrames, frames)),
  };
}

/** Closes a run's models (a text detector, plug-in scorers) once, whichever are there. */
export async function closeModels(detector: { close?: () => Promise<void> } | undefined, scorers: readonly Scorer[]): Promise<void> {
  await detector?.close?.();
  for (const s of scorers) await s.close();
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null))?.isFile() ?? false;
}
