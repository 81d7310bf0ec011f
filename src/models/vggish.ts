import { validateInteger, validateString } from '../util/validate.js';
import { describeGraph, type ArchitectureDescription, type BuiltModel } from './built.js';
import { LAYER_NAMES, writeModelMetadata, type AudioPreprocessing } from './metadata.js';
import { GraphBuilder, int, ints } from './onnx-graph.js';
import { importedParams, seededParams, shapeOnlyParams, type ImportedWeights, type ParamSource } from './params.js';

/** VGGish architecture knobs; the published model is `VGGISH_FULL`. */
export interface VggishConfig {
  /** `extractor_name` metadata (ACAV100M calls the published model `VGGish`). */
  extractorName: string;
  /** Output channels of the four conv blocks. */
  convWidths: [number, number, number, number];
  /** Convs per block; torchvggish has 1, 1, 2, 2. */
  blockDepths: [number, number, number, number];
  /** Widths of the three fully connected layers; the last is the embedding size. */
  fcWidths: [number, number, number];
  /** Seed for weights when none are imported. */
  seed: number;
}

/** torchvggish's `VGG(make_layers())`: 64-128-256-256-512-512 convs, FC 4096-4096-128. */
export const VGGISH_FULL: VggishConfig = {
  extractorName: 'VGGish',
  convWidths: [64, 128, 256, 512],
  blockDepths: [1, 1, 2, 2],
  fcWidths: [4096, 4096, 128],
  seed: 0,
};

/** The shipped small model: same topology, narrow, seeded. */
export const VGGISH_SMALL: VggishConfig = {
  extractorName: 'VGGish-small',
  convWidths: [8, 16, 32, 64],
  blockDepths: [1, 1, 2, 2],
  fcWidths: [128, 128, 128],
  seed: 2024,
};

export const VGGISH_PREPROCESSING: AudioPreprocessing = {
  sample_rate: 16000,
  frontend: 'vggish-logmel',
  example_frames: 96,
  mel_bands: 64,
};

const EXAMPLE_FRAMES = 96;
const MEL_BANDS = 64;

function validateConfig(config: VggishConfig): void {
  validateString(config.extractorName, 'config.extractorName');
  config.convWidths.forEach((w, i) => validateInteger(w, `config.convWidths[${i}]`, 1, 4096));
  config.blockDepths.forEach((d, i) => validateInteger(d, `config.blockDepths[${i}]`, 1, 16));
  config.fcWidths.forEach((w, i) => validateInteger(w, `config.fcWidths[${i}]`, 1, 16384));
  validateInteger(config.seed, 'config.seed', 0, 0xffffffff);
}

function defineVggish(config: VggishConfig, params: ParamSource, pca = false): GraphBuilder {
  validateConfig(config);
  const g = new GraphBuilder('vggish', { materialize: params.materialize });
  g.addInput('examples', ['batch', 1, EXAMPLE_FRAMES, MEL_BANDS]);

  // PyTorch indices count every module of the nn.Sequential (conv, relu, pool), so state-dict names line up.
  let x = 'examples';
  let channels = 1;
  let index = 0;
  let height = EXAMPLE_FRAMES;
  let width = MEL_BANDS;
  for (let block = 0; block < 4; block++) {
    for (let d = 0; d < config.blockDepths[block]; d++) {
      const out = config.convWidths[block];
      const name = `features.${index}`;
      const w = g.addInitializer(
        `${name}.weight`,
        [out, channels, 3, 3],
        params.get(`${name}.weight`, [out, channels, 3, 3], { kind: 'kaiming', fanIn: channels * 9 }),
      );
      const b = g.addInitializer(`${name}.bias`, [out], params.get(`${name}.bias`, [out], { kind: 'uniform', lo: -0.05, hi: 0.05 }));
      x = g.addNode('Conv', [x, w, b], `${name}.out`, { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) });
      x = g.addNode('Relu', [x], `features.${index + 1}.out`);
      channels = out;
      index += 2;
    }
    x = g.addNode('MaxPool', [x], `features.${index}.out`, { kernel_shape: ints([2, 2]), strides: ints([2, 2]) });
    index += 1;
    height = Math.floor(height / 2);
    width = Math.floor(width / 2);
    // ACAV100M taps each block after its pool, averaged over time (height) and mel bands (width).
    g.addNode('ReduceMean', [x], LAYER_NAMES[block], { axes: ints([2, 3]), keepdims: int(0) });
    g.addOutput(LAYER_NAMES[block], ['batch', channels]);
  }

  // torchvggish transposes to (H, W, C) before flattening to match the TensorFlow weights' order.
  x = g.addNode('Transpose', [x], 'features.hwc', { perm: ints([0, 2, 3, 1]) });
  x = g.addNode('Flatten', [x], 'features.flat', { axis: int(1) });
  let inFeatures = height * width * channels;
  for (let i = 0; i < 3; i++) {
    const out = config.fcWidths[i];
    const name = `embeddings.${i * 2}`;
    const w = g.addInitializer(`${name}.weight`, [out, inFeatures], params.get(`${name}.weight`, [out, inFeatures], { kind: 'kaiming', fanIn: inFeatures }));
    const b = g.addInitializer(`${name}.bias`, [out], params.get(`${name}.bias`, [out], { kind: 'uniform', lo: -0.05, hi: 0.05 }));
    x = g.addNode('Gemm', [x, w, b], `${name}.out`, { transB: int(1) });
    x = g.addNode('Relu', [x], i === 2 ? LAYER_NAMES[4] : `embeddings.${i * 2 + 1}.out`);
    inFeatures = out;
  }
  g.addOutput(LAYER_NAMES[4], ['batch', inFeatures]);
  if (pca) addPostprocess(g, params, inFeatures);

  writeModelMetadata(g, {
    kind: 'audio',
    extractorName: config.extractorName,
    params,
    preprocessing: VGGISH_PREPROCESSING,
    layers: LAYER_NAMES,
    architecture: { family: 'vggish', ...config },
  });
  return g;
}

/** torchvggish's `Postprocessor` parameter names (nn.Parameters of `VGGish.pproc`). */
export const VGGISH_PCA_MATRIX = 'pproc.pca_matrix';
export const VGGISH_PCA_MEANS = 'pproc.pca_means';
/** vggish_params.QUANTIZE_MIN_VAL / QUANTIZE_MAX_VAL. */
const QUANTIZE_MIN = -2;
const QUANTIZE_MAX = 2;

/**
 * The published postprocess (torchvggish `Postprocessor.postprocess`, AudioSet's released
 * embeddings): E (x - mu), clipped to [-2, 2], quantised to 0..255 with round-half-even,
 * as float32 output `postprocessed`. Not one of the ACAV100M layers.
 */
function addPostprocess(g: GraphBuilder, params: ParamSource, dim: number): void {
  const matrix = g.addInitializer(VGGISH_PCA_MATRIX, [dim, dim], params.get(VGGISH_PCA_MATRIX, [dim, dim], { kind: 'normal', mean: 0, std: 0.1 }));
  // torchvggish stores the means as a [dim, 1] column; as a [1, dim] row it broadcasts over the batch.
  const means = g.addInitializer(
    VGGISH_PCA_MEANS,
    [1, dim],
    params.get(VGGISH_PCA_MEANS, [dim, 1], { kind: 'normal', mean: 0, std: 0.1 }),
    'torchvggish [dim, 1] column stored as a row',
  );
  const lo = g.addInitializer('pproc.quantize_min', [], new Float32Array([QUANTIZE_MIN]));
  const hi = g.addInitializer('pproc.quantize_max', [], new Float32Array([QUANTIZE_MAX]));
  const scale = g.addInitializer('pproc.quantize_scale', [], new Float32Array([255 / (QUANTIZE_MAX - QUANTIZE_MIN)]));
  let x = g.addNode('Sub', [LAYER_NAMES[4], means], 'pproc.centered');
  x = g.addNode('Gemm', [x, matrix], 'pproc.pca', { transB: int(1) });
  x = g.addNode('Clip', [x, lo, hi], 'pproc.clipped');
  x = g.addNode('Sub', [x, lo], 'pproc.shifted');
  x = g.addNode('Mul', [x, scale], 'pproc.scaled');
  g.addNode('Round', [x], 'postprocessed');
  g.addOutput('postprocessed', ['batch', dim]);
}

/** Switches of `buildVggish` that add outputs without touching the ACAV100M layers. */
export interface VggishBuildOptions {
  /**
   * Add the published PCA postprocess as output `postprocessed`. With imported weights it is
   * on when they hold `pproc.pca_matrix` and `pproc.pca_means` (and off otherwise); seeded models leave it off unless asked.
   */
  postprocess?: boolean;
}

/**
 * Builds a VGGish ONNX model: input `examples` [N, 1, 96, 64] log-mel examples, outputs
 * `layer_0..layer_3` (conv blocks after pooling, mean over H and W) and `layer_4` (embedding
 * after ReLU), one row per example. Averaging a clip's examples happens outside the model.
 * Without `weights` the parameters are seeded from `config.seed`. With the PCA parameters
 * (`pproc.pca_matrix`, `pproc.pca_means`) in the weights it also outputs `postprocessed`.
 *
 * @example
 * const model = buildVggish(VGGISH_SMALL);
 * await writeFile('vggish_small.onnx', model.bytes);
 */
export function buildVggish(config: VggishConfig, weights?: ImportedWeights, options: VggishBuildOptions = {}): BuiltModel {
  const pca = options.postprocess ?? (weights ? weights.params.has(VGGISH_PCA_MATRIX) && weights.params.has(VGGISH_PCA_MEANS) : false);
  const g = defineVggish(config, weights ? importedParams(weights) : seededParams(config.seed), pca);
  return { ...describeGraph(g, LAYER_NAMES), bytes: g.toBuffer() };
}

/**
 * The declared inputs, outputs, layer sizes and expected state dict of a VGGish config, without allocating weights
 * (the full model has 72M parameters).
 *
 * @example
 * describeVggish(VGGISH_FULL).layerSizes; // { layer_0: 64, ..., layer_4: 128 }
 */
export function describeVggish(config: VggishConfig): ArchitectureDescription {
  const params = shapeOnlyParams();
  return { ...describeGraph(defineVggish(config, params), LAYER_NAMES), stateDictShapes: params.shapes };
}
