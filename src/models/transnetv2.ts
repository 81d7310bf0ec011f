import { validateInteger, validateString } from '../util/validate.js';
import { describeGraph, type ArchitectureDescription, type BuiltModel } from './built.js';
import { GraphBuilder, int, ints } from './onnx-graph.js';
import { foldBatchNorm, importedParams, seededParams, shapeOnlyParams, type ImportedWeights, type ParamSource } from './params.js';

/**
 * TransNetV2 (Souček & Lokoč, 2020), the shot-boundary network, as an ONNX graph built from the
 * state dict of its PyTorch port (`inference-pytorch/transnetv2_pytorch.py`: names such as
 * `SDDCNN.0.DDCNN.1.Conv3D_4.layers.1.weight`, `frame_sim_layer.projection.weight`, `fc1.weight`).
 *
 * The network reads 100 frames of 48x27 RGB at once: L stacks of S dilated (2+1)D conv cells
 * (each a 1x3x3 spatial conv then a 3x1x1 temporal conv at dilations 1, 2, 4, 8, concatenated,
 * batch-normalised), an average pool halving H and W after each stack; a frame-similarity branch
 * (cosine similarity of each frame's pooled features with the 50 frames either side) and a
 * colour-histogram branch (the same on 512-bin RGB histograms of the raw frames); then a dense
 * layer and two heads, one logit per frame each.
 */

/** TransNetV2 architecture knobs (the names of the port's constructor); the published one is `TRANSNETV2_FULL`. */
export interface TransNetV2Config {
  /** `extractor_name` metadata. */
  extractorName: string;
  /** Filters of the first stack (`F`); stack i has F * 2^i per dilation, 4x that after the concat. */
  filters: number;
  /** Stacks (`L`). */
  stacks: number;
  /** Cells per stack (`S`). */
  cells: number;
  /** Width of `fc1` (`D`). */
  dense: number;
  /** Seed for weights when none are imported. */
  seed: number;
}

/** The published TransNetV2: F=16, L=3, S=2, D=1024 (configs/transnetv2.gin). */
export const TRANSNETV2_FULL: TransNetV2Config = { extractorName: 'TransNetV2', filters: 16, stacks: 3, cells: 2, dense: 1024, seed: 0 };

/** Same topology, narrow: for quick seeded builds in tests and examples. */
export const TRANSNETV2_SMALL: TransNetV2Config = { extractorName: 'TransNetV2-small', filters: 4, stacks: 3, cells: 2, dense: 64, seed: 2024 };

/** Frames per window, height and width the network takes (fixed by its dense layer and its lookup window). */
export const TRANSNETV2_FRAMES = 100;
export const TRANSNETV2_HEIGHT = 27;
export const TRANSNETV2_WIDTH = 48;

/** Graph input and outputs. */
export const TRANSNETV2_INPUT = 'frames';
export const TRANSNETV2_OUTPUTS = ['single_frame_logits', 'many_hot_logits', 'single_frame_prob', 'many_hot_prob'] as const;

/** Frames either side each frame is compared with in both similarity branches (lookup window 101). */
const HALF_WINDOW = 50;
const LOOKUP = 2 * HALF_WINDOW + 1;
/** The similarity branches' output width and the projection's width (128 in the published model). */
const SIM_DIM = 128;
/** Batch-norm epsilon of the port (TensorFlow's 1e-3, not PyTorch's 1e-5). */
const BN_EPS = 1e-3;
const DILATIONS = [1, 2, 4, 8] as const;

function validateConfig(c: TransNetV2Config): void {
  validateString(c.extractorName, 'config.extractorName');
  validateInteger(c.filters, 'config.filters', 1, 1024);
  // Three halvings of 27x48 leave 3x6; a fourth would leave 1x3, which the port's 3*6 dense input assumes against.
  validateInteger(c.stacks, 'config.stacks', 1, 3);
  validateInteger(c.cells, 'config.cells', 1, 16);
  validateInteger(c.dense, 'config.dense', 1, 65536);
  validateInteger(c.seed, 'config.seed', 0, 0xffffffff);
}

/** `Linear(in, out)` on a [batch, T, in] tensor, with the weight kept as PyTorch stores it ([out, in]). */
function linear(g: GraphBuilder, params: ParamSource, x: string, name: string, inF: number, outF: number): string {
  const w = g.addInitializer(`${name}.weight`, [outF, inF], params.get(`${name}.weight`, [outF, inF], { kind: 'kaiming', fanIn: inF }));
  const b = g.addInitializer(`${name}.bias`, [outF], params.get(`${name}.bias`, [outF], { kind: 'uniform', lo: -0.05, hi: 0.05 }));
  const rows = g.addNode('Reshape', [x, shapeConst(g, `${name}.rows`, [-1, inF])], `${name}.in2d`);
  const y = g.addNode('Gemm', [rows, w, b], `${name}.out2d`, { transB: int(1) });
  return g.addNode('Reshape', [y, shapeConst(g, `${name}.back`, [-1, TRANSNETV2_FRAMES, outF])], `${name}.out`);
}

function shapeConst(g: GraphBuilder, name: string, dims: number[]): string {
  return g.addInt64Initializer(`${name}.shape`, [dims.length], dims);
}

/** x / max(||x||_2, 1e-12) along the last axis of a [batch, T, C] tensor (torch.nn.functional.normalize). */
function l2Normalize(g: GraphBuilder, x: string, name: string): string {
  const norm = g.addNode('ReduceL2', [x], `${name}.norm`, { axes: ints([2]), keepdims: int(1) });
  const eps = g.addInitializer(`${name}.eps`, [], new Float32Array([1e-12]));
  const safe = g.addNode('Max', [norm, eps], `${name}.norm_safe`);
  return g.addNode('Div', [x, safe], `${name}.normalized`);
}

/**
 * Each frame's dot product with the frames HALF_WINDOW before to HALF_WINDOW after it, zero past
 * either end: [batch, T, C] (rows already normalised) to [batch, T, LOOKUP]. The T x T similarity
 * matrix is zero-padded by HALF_WINDOW on both sides of its columns; row t of the result is then
 * columns t..t+LOOKUP-1 of padded row t, a diagonal band, read without a gather: flattening the
 * [T, T+2H] rows and appending T zeros makes rows of T+2H+1 when reshaped, which shifts row t left
 * by t, so the band becomes the first LOOKUP columns.
 */
function similarityBand(g: GraphBuilder, x: string, name: string): string {
  const T = TRANSNETV2_FRAMES;
  const xt = g.addNode('Transpose', [x], `${name}.t`, { perm: ints([0, 2, 1]) });
  const sim = g.addNode('MatMul', [x, xt], `${name}.similarities`);
  const padCols = g.addInt64Initializer(`${name}.pad_cols`, [6], [0, 0, HALF_WINDOW, 0, 0, HALF_WINDOW]);
  const padded = g.addNode('Pad', [sim, padCols], `${name}.padded`);
  const flat = g.addNode('Reshape', [padded, shapeConst(g, `${name}.flat`, [0, -1])], `${name}.flat`);
  const padTail = g.addInt64Initializer(`${name}.pad_tail`, [4], [0, 0, 0, T]);
  const longer = g.addNode('Pad', [flat, padTail], `${name}.flat_padded`);
  const skewed = g.addNode('Reshape', [longer, shapeConst(g, `${name}.skew`, [0, T, T + 2 * HALF_WINDOW + 1])], `${name}.skewed`);
  const starts = g.addInt64Initializer(`${name}.band_start`, [1], [0]);
  const ends = g.addInt64Initializer(`${name}.band_end`, [1], [LOOKUP]);
  const axes = g.addInt64Initializer(`${name}.band_axis`, [1], [2]);
  return g.addNode('Slice', [skewed, starts, ends, axes], `${name}.band`);
}

/**
 * One separable conv of a cell (`Conv3DConfigurable`): 1x3x3 spatial conv to 2*filters, then a
 * 3x1x1 temporal conv at `dilation`, into which the slice of the cell's BatchNorm belonging to this
 * branch is folded (the port's temporal conv has no bias; the BN follows the concat).
 */
function separableConv(
  g: GraphBuilder,
  params: ParamSource,
  x: string,
  name: string,
  inF: number,
  filters: number,
  dilation: number,
  bn: { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array },
  branch: number,
  bnName: string,
): string {
  const sShape = [2 * filters, inF, 1, 3, 3];
  const sw = g.addInitializer(`${name}.layers.0.weight`, sShape, params.get(`${name}.layers.0.weight`, sShape, { kind: 'kaiming', fanIn: inF * 9 }));
  const s = g.addNode('Conv', [x, sw], `${name}.layers.0.out`, { kernel_shape: ints([1, 3, 3]), pads: ints([0, 1, 1, 0, 1, 1]) });
  const tShape = [filters, 2 * filters, 3, 1, 1];
  const tw = params.get(`${name}.layers.1.weight`, tShape, { kind: 'kaiming', fanIn: 2 * filters * 3 });
  const slice = (a: Float32Array) => a.subarray(branch * filters, (branch + 1) * filters);
  const folded = params.materialize
    ? foldBatchNorm(tw, { gamma: slice(bn.gamma), beta: slice(bn.beta), mean: slice(bn.mean), variance: slice(bn.variance) }, BN_EPS)
    : { weight: new Float32Array(0), bias: new Float32Array(0) };
  const doc = `BatchNorm ${bnName} channels ${branch * filters}..${(branch + 1) * filters - 1} folded in`;
  const w = g.addInitializer(`${name}.layers.1.weight`, tShape, folded.weight, doc);
  const b = g.addInitializer(`${name}.layers.1.bias`, [filters], folded.bias, doc);
  return g.addNode('Conv', [s, w, b], `${name}.layers.1.out`, {
    kernel_shape: ints([3, 1, 1]),
    dilations: ints([dilation, 1, 1]),
    pads: ints([dilation, 0, 0, dilation, 0, 0]),
  });
}

/** A `DilatedDCNNV2` cell: four separable convs concatenated, BN (folded), optional ReLU. */
function cell(g: GraphBuilder, params: ParamSource, x: string, name: string, inF: number, filters: number, relu: boolean): string {
  const bnName = `${name}.bn`;
  const c = 4 * filters;
  const bn = {
    gamma: params.get(`${bnName}.weight`, [c], { kind: 'uniform', lo: 0.8, hi: 1.2 }),
    beta: params.get(`${bnName}.bias`, [c], { kind: 'uniform', lo: -0.1, hi: 0.1 }),
    mean: params.get(`${bnName}.running_mean`, [c], { kind: 'normal', mean: 0, std: 0.05 }),
    variance: params.get(`${bnName}.running_var`, [c], { kind: 'uniform', lo: 0.8, hi: 1.2 }),
  };
  const branches = DILATIONS.map((d, i) => separableConv(g, params, x, `${name}.Conv3D_${d}`, inF, filters, d, bn, i, bnName));
  const y = g.addNode('Concat', branches, `${name}.concat`, { axis: int(1) });
  return relu ? g.addNode('Relu', [y], `${name}.relu`) : y;
}

function defineTransNetV2(config: TransNetV2Config, params: ParamSource): GraphBuilder {
  validateConfig(config);
  const T = TRANSNETV2_FRAMES;
  const g = new GraphBuilder('transnetv2', { materialize: params.materialize });
  g.addInput(TRANSNETV2_INPUT, ['batch', T, TRANSNETV2_HEIGHT, TRANSNETV2_WIDTH, 3], 'uint8');

  // uint8 [B, T, H, W, 3] -> float [B, 3, T, H, W] in 0..1.
  const f = g.addNode('Cast', [TRANSNETV2_INPUT], 'input.float', { to: int(1) });
  const scale = g.addInitializer('input.255', [], new Float32Array([255]));
  const unit = g.addNode('Div', [f, scale], 'input.unit');
  let x = g.addNode('Transpose', [unit], 'input.cthw', { perm: ints([0, 4, 1, 2, 3]) });

  // Stacks of cells; each stack's output (after its pool) also feeds the frame-similarity branch.
  const pooled: string[] = [];
  let inF = 3;
  let h = TRANSNETV2_HEIGHT;
  let w = TRANSNETV2_WIDTH;
  let simIn = 0;
  for (let s = 0; s < config.stacks; s++) {
    const filters = config.filters * 2 ** s;
    let shortcut = '';
    for (let c = 0; c < config.cells; c++) {
      x = cell(g, params, x, `SDDCNN.${s}.DDCNN.${c}`, c === 0 ? inF : 4 * filters, filters, c !== config.cells - 1);
      if (c === 0) shortcut = x;
    }
    const r = g.addNode('Relu', [x], `SDDCNN.${s}.relu`);
    const sum = g.addNode('Add', [r, shortcut], `SDDCNN.${s}.residual`);
    x = g.addNode('AveragePool', [sum], `SDDCNN.${s}.pool`, { kernel_shape: ints([1, 2, 2]), strides: ints([1, 2, 2]) });
    pooled.push(x);
    inF = 4 * filters;
    simIn += inF;
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  }

  // Frame similarity: spatial means of every stack, concatenated, projected, normalised, banded.
  const means = pooled.map((p, i) => g.addNode('ReduceMean', [p], `frame_sim_layer.mean${i}`, { axes: ints([3, 4]), keepdims: int(0) }));
  const cat = g.addNode('Concat', means, 'frame_sim_layer.features', { axis: int(1) });
  const perFrame = g.addNode('Transpose', [cat], 'frame_sim_layer.per_frame', { perm: ints([0, 2, 1]) });
  const projected = linear(g, params, perFrame, 'frame_sim_layer.projection', simIn, SIM_DIM);
  const simBand = similarityBand(g, l2Normalize(g, projected, 'frame_sim_layer'), 'frame_sim_layer');
  const frameSim = g.addNode('Relu', [linear(g, params, simBand, 'frame_sim_layer.fc', LOOKUP, SIM_DIM)], 'frame_sim_layer.out');

  // Colour histograms of the raw frames: bin = (R>>5)*64 + (G>>5)*8 + (B>>5), 512 bins per frame.
  // Counted as one-hot(R,G bin: 64) transposed times one-hot(B bin: 8), so no scatter is needed.
  const pixels = TRANSNETV2_HEIGHT * TRANSNETV2_WIDTH;
  const thirtyTwo = g.addInitializer('color_hist_layer.32', [], new Float32Array([32]));
  const bins = g.addNode('Floor', [g.addNode('Div', [f, thirtyTwo], 'color_hist_layer.div')], 'color_hist_layer.bins');
  const perPixel = g.addNode('Reshape', [bins, shapeConst(g, 'color_hist_layer.pixels', [-1, pixels, 3])], 'color_hist_layer.pixels');
  const split = g.addInt64Initializer('color_hist_layer.split', [3], [1, 1, 1]);
  const [rb, gb, bb] = ['r', 'g', 'b'].map((c) => `color_hist_layer.${c}`);
  g.addNode('Split', [perPixel, split], [rb, gb, bb], { axis: int(2) });
  const eight = g.addInitializer('color_hist_layer.8', [], new Float32Array([8]));
  const rg = g.addNode('Add', [g.addNode('Mul', [rb, eight], 'color_hist_layer.r8'), gb], 'color_hist_layer.rg');
  const range = (n: number) => Float32Array.from({ length: n }, (_, i) => i);
  const rgIds = g.addInitializer('color_hist_layer.rg_ids', [64], range(64));
  const bIds = g.addInitializer('color_hist_layer.b_ids', [8], range(8));
  const rgHot = g.addNode('Cast', [g.addNode('Equal', [rg, rgIds], 'color_hist_layer.rg_eq')], 'color_hist_layer.rg_hot', { to: int(1) });
  const bHot = g.addNode('Cast', [g.addNode('Equal', [bb, bIds], 'color_hist_layer.b_eq')], 'color_hist_layer.b_hot', { to: int(1) });
  const rgT = g.addNode('Transpose', [rgHot], 'color_hist_layer.rg_t', { perm: ints([0, 2, 1]) });
  const counts = g.addNode('MatMul', [rgT, bHot], 'color_hist_layer.counts');
  const hist = g.addNode('Reshape', [counts, shapeConst(g, 'color_hist_layer.hist', [-1, T, 512])], 'color_hist_layer.hist');
  const histBand = similarityBand(g, l2Normalize(g, hist, 'color_hist_layer'), 'color_hist_layer');
  const colorHist = g.addNode('Relu', [linear(g, params, histBand, 'color_hist_layer.fc', LOOKUP, SIM_DIM)], 'color_hist_layer.out');

  // Last stack's map per frame in (H, W, C) order, after the two branches: [colour, similarity, map].
  const hwc = g.addNode('Transpose', [x], 'features.thwc', { perm: ints([0, 2, 3, 4, 1]) });
  const mapWidth = h * w * inF;
  const flat = g.addNode('Reshape', [hwc, shapeConst(g, 'features.flat', [0, 0, -1])], 'features.flat');
  const all = g.addNode('Concat', [colorHist, frameSim, flat], 'features.all', { axis: int(2) });
  const hidden = g.addNode('Relu', [linear(g, params, all, 'fc1', 2 * SIM_DIM + mapWidth, config.dense)], 'fc1.relu');
  // Dropout is the identity at inference.
  g.addNode('Identity', [linear(g, params, hidden, 'cls_layer1', config.dense, 1)], TRANSNETV2_OUTPUTS[0]);
  g.addNode('Identity', [linear(g, params, hidden, 'cls_layer2', config.dense, 1)], TRANSNETV2_OUTPUTS[1]);
  g.addNode('Sigmoid', [TRANSNETV2_OUTPUTS[0]], TRANSNETV2_OUTPUTS[2]);
  g.addNode('Sigmoid', [TRANSNETV2_OUTPUTS[1]], TRANSNETV2_OUTPUTS[3]);
  for (const o of TRANSNETV2_OUTPUTS) g.addOutput(o, ['batch', T, 1]);

  g.setMetadata('clipstream.kind', 'shot-detector');
  g.setMetadata('extractor_name', config.extractorName);
  g.setMetadata('dataset', params.dataset);
  g.setMetadata('weights', params.weights);
  g.setMetadata(
    'preprocessing',
    JSON.stringify({ frames: T, height: TRANSNETV2_HEIGHT, width: TRANSNETV2_WIDTH, input: 'uint8-thwc', stride: T / 2, context: T / 4 }),
  );
  g.setMetadata('layers', '[]');
  g.setMetadata('architecture', JSON.stringify({ family: 'transnetv2', ...config }));
  return g;
}

/**
 * Builds TransNetV2 as ONNX: input `frames` uint8 [batch, 100, 27, 48, 3] (RGB), outputs
 * `single_frame_logits`, `many_hot_logits` and their sigmoids `single_frame_prob`, `many_hot_prob`,
 * each [batch, 100, 1]. Without `weights` the parameters are seeded from `config.seed` (a seeded
 * model finds no real cuts).
 *
 * @example
 * const model = buildTransNetV2(TRANSNETV2_SMALL);
 * await writeFile('transnetv2_seeded.onnx', model.bytes);
 */
export function buildTransNetV2(config: TransNetV2Config, weights?: ImportedWeights): BuiltModel {
  const g = defineTransNetV2(config, weights ? importedParams(weights) : seededParams(config.seed));
  return { ...describeGraph(g, []), bytes: g.toBuffer() };
}

/**
 * The declared interface and the PyTorch state dict (names, shapes) a TransNetV2 config expects,
 * without allocating weights.
 *
 * @example
 * describeTransNetV2(TRANSNETV2_FULL).stateDictShapes.get('fc1.weight'); // [1024, 4864]
 */
export function describeTransNetV2(config: TransNetV2Config): ArchitectureDescription {
  const params = shapeOnlyParams();
  return { ...describeGraph(defineTransNetV2(config, params), []), stateDictShapes: params.shapes };
}
