import { ClipstreamError } from '../errors.js';
import { mulberry32 } from '../util/random.js';

/** One parameter tensor as a PyTorch state dict holds it (row-major, same shape). */
export interface ParamTensor {
  shape: number[];
  data: Float32Array;
}

/** A state dict keyed by PyTorch parameter names (`features.0.weight`, `s1.pathway0_stem.bn.running_var`). */
export type StateDict = Map<string, ParamTensor>;

/** Published weights to build a model from, with where they came from (goes into the model's metadata). */
export interface ImportedWeights {
  params: StateDict;
  /** sha256 of the weights file, recorded as `imported:<sha256>`. */
  sha256: string;
  /** Training data of the weights, e.g. `kinetics-400`, `YouTube-8M`. */
  dataset: string;
}

/** How a seeded parameter is drawn; imported weights ignore it. */
export type Init =
  | { kind: 'kaiming'; fanIn: number; gain?: number }
  | { kind: 'uniform'; lo: number; hi: number }
  | { kind: 'normal'; mean: number; std: number };

/** Where a builder gets each parameter from, by PyTorch name. */
export interface ParamSource {
  /** `seeded:<seed>` or `imported:<sha256>`, the `weights` metadata value. */
  readonly weights: string;
  /** The `dataset` metadata value. */
  readonly dataset: string;
  /** False for a shape-only source: builders then declare the graph without materialising weights. */
  readonly materialize: boolean;
  get(name: string, shape: number[], init: Init): Float32Array;
}

export const SEEDED_DATASET = 'none (seeded weights)';

/** 32-bit FNV-1a, to give every parameter its own stream independent of build order. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Makes each output unit's filter sum to zero. Inputs after a ReLU are all positive, so a
 * filter with a negative sum would leave its channel at zero everywhere (a dead feature)
 * while the seeded BN stats cannot know the real channel mean; centred filters keep
 * every channel's pre-activation around zero and so about half of it alive.
 */
function centerRows(data: Float32Array, rows: number): void {
  const len = data.length / rows;
  if (len < 2) return;
  const scale = Math.sqrt(len / (len - 1));
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = r * len; i < (r + 1) * len; i++) sum += data[i];
    const mean = sum / len;
    for (let i = r * len; i < (r + 1) * len; i++) data[i] = (data[i] - mean) * scale;
  }
}

function fill(shape: number[], init: Init, rand: () => number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (init.kind === 'uniform') {
    for (let i = 0; i < n; i++) out[i] = init.lo + (init.hi - init.lo) * rand();
    return out;
  }
  const [mean, std] = init.kind === 'normal' ? [init.mean, init.std] : [0, (init.gain ?? 1) * Math.sqrt(2 / init.fanIn)];
  for (let i = 0; i < n; i += 2) {
    // Box-Muller; 1 - rand() keeps the log argument in (0, 1].
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const theta = 2 * Math.PI * rand();
    out[i] = mean + std * r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(theta);
  }
  if (init.kind === 'kaiming') centerRows(out, shape[0]);
  return out;
}

/**
 * Deterministic weights: each parameter is drawn from its own PRNG seeded by `seed` and its
 * name, so the same seed gives byte-identical models and adding a layer leaves others unchanged.
 *
 * @example
 * const src = seededParams(7);
 * src.get('features.0.weight', [8, 1, 3, 3], { kind: 'kaiming', fanIn: 9 });
 */
export function seededParams(seed: number): ParamSource {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `Expected a 32-bit unsigned integer seed but received ${seed}`);
  }
  return {
    weights: `seeded:${seed}`,
    dataset: SEEDED_DATASET,
    materialize: true,
    get: (name, shape, init) => fill(shape, init, mulberry32((fnv1a(name) ^ seed) >>> 0)),
  };
}

/**
 * Weights looked up by PyTorch name; a missing name or a shape mismatch is an ERR_MODEL
 * naming the parameter, so a wrong checkpoint fails loudly instead of building garbage.
 *
 * @example
 * const src = importedParams({ params: stateDict, sha256, dataset: 'YouTube-8M' });
 */
export function importedParams(weights: ImportedWeights): ParamSource {
  return {
    weights: `imported:${weights.sha256}`,
    dataset: weights.dataset,
    materialize: true,
    get: (name, shape) => {
      const t = weights.params.get(name);
      if (!t) throw new ClipstreamError('ERR_MODEL', `Weights lack parameter ${name} [${shape.join(', ')}]`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new ClipstreamError('ERR_MODEL', `Parameter ${name} has shape [${t.shape.join(', ')}] but the architecture needs [${shape.join(', ')}]`);
      }
      const n = shape.reduce((a, b) => a * b, 1);
      if (t.data.length !== n) {
        throw new ClipstreamError('ERR_MODEL', `Parameter ${name} holds ${t.data.length} values, expected ${n}`);
      }
      return t.data;
    },
  };
}

/**
 * Declares shapes only, recording every requested parameter: used to read a full-size
 * architecture's outputs, and the state dict it expects, without allocating its weights.
 *
 * @example
 * const src = shapeOnlyParams();
 * src.get('features.0.weight', [64, 1, 3, 3], { kind: 'kaiming', fanIn: 9 });
 * src.shapes.get('features.0.weight'); // [64, 1, 3, 3]
 */
export function shapeOnlyParams(): ParamSource & { shapes: Map<string, number[]> } {
  const shapes = new Map<string, number[]>();
  return {
    weights: 'none',
    dataset: 'none',
    materialize: false,
    shapes,
    get: (name, shape) => {
      shapes.set(name, [...shape]);
      return new Float32Array(0);
    },
  };
}

/** PyTorch BatchNorm default epsilon; SlowFast uses it for every BN. */
export const BN_EPS = 1e-5;

/**
 * Folds an inference-mode BatchNorm into the preceding bias-free conv:
 * w' = w * gamma / sqrt(var + eps) per output channel, b' = beta - mean * gamma / sqrt(var + eps).
 *
 * @example
 * const { weight, bias } = foldBatchNorm(w, { gamma, beta, mean, variance });
 */
export function foldBatchNorm(
  weight: Float32Array,
  bn: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array },
  eps = BN_EPS,
): { weight: Float32Array; bias: Float32Array } {
  const channels = bn.gamma.length;
  const perChannel = weight.length / channels;
  const w = new Float32Array(weight.length);
  const b = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const scale = bn.gamma[c] / Math.sqrt(bn.variance[c] + eps);
    b[c] = bn.beta[c] - bn.mean[c] * scale;
    const off = c * perChannel;
    for (let i = 0; i < perChannel; i++) w[off + i] = weight[off + i] * scale;
  }
  return { weight: w, bias: b };
}
