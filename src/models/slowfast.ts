import { validateInteger, validateString } from '../util/validate.js';
import { describeGraph, type ArchitectureDescription, type BuiltModel } from './built.js';
import { convBn, convOut } from './conv-bn.js';
import { LAYER_NAMES, writeModelMetadata, type VisualPreprocessing } from './metadata.js';
import { GraphBuilder, int, ints } from './onnx-graph.js';
import { importedParams, seededParams, shapeOnlyParams, type ImportedWeights, type ParamSource } from './params.js';
import { ClipstreamError } from '../errors.js';

type Four = [number, number, number, number];
type Five = [number, number, number, number, number];

/** SlowFast (ResNet bottleneck) architecture knobs; the published one is `SLOWFAST_FULL`. */
export interface SlowFastConfig {
  /** `extractor_name` metadata (`SLOWFAST_8x8_R50` for the published architecture). */
  extractorName: string;
  /** RESNET.WIDTH_PER_GROUP: slow stem width; stage widths are 4x, 8x, 16x, 32x it. */
  widthPerGroup: number;
  /** Bottleneck blocks in res2..res5 (R50: 3, 4, 6, 3). */
  blocks: Four;
  /** SLOWFAST.ALPHA: frame-rate ratio of fast to slow. */
  alpha: number;
  /** SLOWFAST.BETA_INV: slow channels / fast channels. */
  betaInv: number;
  /** SLOWFAST.FUSION_CONV_CHANNEL_RATIO. */
  fusionChannelRatio: number;
  /** SLOWFAST.FUSION_KERNEL_SZ (temporal). */
  fusionKernel: number;
  /** Temporal kernels of stem, res2..res5, slow pathway. */
  slowTemporalKernels: Five;
  /** Temporal kernels of stem, res2..res5, fast pathway. */
  fastTemporalKernels: Five;
  /** Spatial strides of res2..res5. */
  spatialStrides: Four;
  /** Frames of the fast pathway (DATA.NUM_FRAMES). */
  numFrames: number;
  /** Input height and width. */
  inputSize: number;
  /** Spatial size of the head's average pool: TRAIN_CROP_SIZE // 32 = 7 for 224 training crops. */
  headPoolSize: number;
  /** Classes of `head.projection`; 0 builds no `logits` output. */
  numClasses: number;
  /** Seed for weights when none are imported. */
  seed: number;
}

/** SLOWFAST_8x8_R50 (configs/Kinetics/SLOWFAST_8x8_R50.yaml) fed 256x256 test crops. */
export const SLOWFAST_FULL: SlowFastConfig = {
  extractorName: 'SLOWFAST_8x8_R50',
  widthPerGroup: 64,
  blocks: [3, 4, 6, 3],
  alpha: 4,
  betaInv: 8,
  fusionChannelRatio: 2,
  fusionKernel: 7,
  slowTemporalKernels: [1, 1, 1, 3, 3],
  fastTemporalKernels: [5, 3, 3, 3, 3],
  spatialStrides: [1, 2, 2, 2],
  numFrames: 32,
  inputSize: 256,
  headPoolSize: 7,
  numClasses: 400,
  seed: 0,
};

/** The shipped small model: same topology and taps, width 8 and one block per stage, seeded. */
export const SLOWFAST_SMALL: SlowFastConfig = {
  ...SLOWFAST_FULL,
  extractorName: 'SLOWFAST_8x8_R50-small',
  widthPerGroup: 8,
  blocks: [1, 1, 1, 1],
  numClasses: 0,
  seed: 2024,
};

export const SLOWFAST_PREPROCESSING: VisualPreprocessing = {
  frames: 32,
  size: 256,
  crop: 'top-left',
  mean: 0.45,
  std: 0.225,
  window_s: 10,
};

/**
 * What the model takes as input:
 * - `float-cthw`: `frames` float32 [B, 3, T, H, W], RGB already normalised as (x/255 − mean)/std
 *   (SlowFast's own input; what the PyTorch parity tests feed);
 * - `uint8-thwc`: `frames_u8` uint8 [B, T, H, W, 3], the decoder's frames as they are; the graph
 *   transposes, casts and normalises them itself (4× less data to hand over, no JS loop).
 */
export type SlowFastInputFormat = 'float-cthw' | 'uint8-thwc';

/** The input format of models built without saying one. */
export const DEFAULT_SLOWFAST_INPUT: SlowFastInputFormat = 'float-cthw';

/** Extra build switches that do not change the architecture. */
export interface SlowFastBuildOptions {
  /** Input layout and type (default `DEFAULT_SLOWFAST_INPUT`). */
  inputFormat?: SlowFastInputFormat;
  /** Also output each tap's raw pathway tensors (`tap_k_slow`, `tap_k_fast`) so tests can recompute the pooling. */
  debugTaps?: boolean;
}

/**
 * Frame indices of the slow pathway, as SlowFast's `pack_pathway_output`:
 * `torch.linspace(0, T - 1, T // alpha).long()`. Mirrors torch's float32 linspace
 * (forward steps for the first half, backward from the end for the rest) before truncating.
 *
 * @example
 * slowPathwayIndices(32, 4); // [0, 4, 8, 13, 17, 22, 26, 31]
 */
export function slowPathwayIndices(numFrames: number, alpha: number): number[] {
  const steps = Math.floor(numFrames / alpha);
  const end = numFrames - 1;
  if (steps === 1) return [0];
  const step = Math.fround(end / (steps - 1));
  const half = Math.floor(steps / 2);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const v = i < half ? Math.fround(step * i) : Math.fround(end - Math.fround(step * (steps - i - 1)));
    out.push(Math.trunc(v));
  }
  return out;
}

function validateConfig(c: SlowFastConfig): void {
  validateString(c.extractorName, 'config.extractorName');
  validateInteger(c.betaInv, 'config.betaInv', 1, 1024);
  // The fast stem gets widthPerGroup // betaInv channels, which must not be zero.
  validateInteger(c.widthPerGroup, 'config.widthPerGroup', c.betaInv, 1024);
  c.blocks.forEach((b, i) => validateInteger(b, `config.blocks[${i}]`, 1, 64));
  validateInteger(c.alpha, 'config.alpha', 1, 64);

  validateInteger(c.fusionChannelRatio, 'config.fusionChannelRatio', 1, 64);
  validateInteger(c.fusionKernel, 'config.fusionKernel', 1, 63);
  validateInteger(c.numFrames, 'config.numFrames', c.alpha, 1024);
  validateInteger(c.inputSize, 'config.inputSize', 32, 4096);
  validateInteger(c.headPoolSize, 'config.headPoolSize', 1, 64);
  validateInteger(c.numClasses, 'config.numClasses', 0, 100000);
  validateInteger(c.seed, 'config.seed', 0, 0xffffffff);
}

interface Pathways {
  x: [string, string];
  channels: [number, number];
  /** Frames per pathway; no stage strides in time. */
  frames: [number, number];
  size: number;
}

function defineSlowFast(c: SlowFastConfig, params: ParamSource, options: SlowFastBuildOptions): GraphBuilder {
  validateConfig(c);
  const g = new GraphBuilder('slowfast', { materialize: params.materialize });
  const w = c.widthPerGroup;
  const fastOf = (ch: number): number => Math.floor(ch / c.betaInv);
  const inputFormat = options.inputFormat ?? DEFAULT_SLOWFAST_INPUT;
  if (inputFormat !== 'float-cthw' && inputFormat !== 'uint8-thwc')
    throw new ClipstreamError('ERR_INVALID_OPTION', `inputFormat must be 'float-cthw' or 'uint8-thwc', not '${String(inputFormat)}'`, {
      where: { option: 'inputFormat' },
    });
  const pre = SLOWFAST_PREPROCESSING;
  if (inputFormat === 'uint8-thwc') {
    g.addInput('frames_u8', ['batch', c.numFrames, c.inputSize, c.inputSize, 3], 'uint8');
    // Transpose the bytes (a quarter of the float traffic), then (x/255 − mean)/std as x·a + b.
    const cthw = g.addNode('Transpose', ['frames_u8'], 'preprocess.cthw', { perm: ints([0, 4, 1, 2, 3]) });
    const f = g.addNode('Cast', [cthw], 'preprocess.float', { to: int(1) });
    const a = g.addInitializer('preprocess.scale', [], Float32Array.of(1 / (255 * pre.std)), `1 / (255 * std), std = ${pre.std}`);
    const b = g.addInitializer('preprocess.shift', [], Float32Array.of(-pre.mean / pre.std), `-mean / std, mean = ${pre.mean}`);
    g.addNode('Add', [g.addNode('Mul', [f, a], 'preprocess.scaled'), b], 'frames');
  } else {
    g.addInput('frames', ['batch', 3, c.numFrames, c.inputSize, c.inputSize]);
  }

  const slowIdx = slowPathwayIndices(c.numFrames, c.alpha);
  const idx = g.addInt64Initializer('slow_pathway_indices', [slowIdx.length], slowIdx);
  const slowIn = g.addNode('Gather', ['frames', idx], 'slow_frames', { axis: int(2) });

  // s1: stems with 1x2x2 stride conv then a 1x3x3/1x2x2 max pool.
  const stemOut: string[] = [];
  let size = convOut(c.inputSize, 7, 2, 3);
  for (const p of [0, 1]) {
    const tk = (p === 0 ? c.slowTemporalKernels : c.fastTemporalKernels)[0];
    const m = `s1.pathway${p}_stem`;
    const y = convBn(g, params, p === 0 ? slowIn : 'frames', {
      conv: `${m}.conv`,
      bn: `${m}.bn`,
      inChannels: 3,
      outChannels: p === 0 ? w : fastOf(w),
      kernel: [tk, 7, 7],
      stride: [1, 2, 2],
      padding: [Math.floor(tk / 2), 3, 3],
      relu: true,
    });
    stemOut.push(
      g.addNode('MaxPool', [y], `${m}.pool_layer.out`, {
        kernel_shape: ints([1, 3, 3]),
        strides: ints([1, 2, 2]),
        pads: ints([0, 1, 1, 0, 1, 1]),
      }),
    );
  }
  size = convOut(size, 3, 2, 1);
  let state: Pathways = {
    x: [stemOut[0], stemOut[1]],
    channels: [w, fastOf(w)],
    frames: [slowIdx.length, c.numFrames],
    size,
  };

  state = fuse(g, params, c, 's1_fuse', state);
  tap(g, c, 0, state, options);
  const stageOut = [4 * w, 8 * w, 16 * w, 32 * w];
  const stageInner = [w, 2 * w, 4 * w, 8 * w];
  for (let s = 0; s < 4; s++) {
    state = resStage(g, params, c, s, state, stageOut[s], stageInner[s]);
    // SlowFast's pathway pools after s2 are MaxPool3d([1, 1, 1]) for the slowfast arch: identities, left out.
    if (s < 3) state = fuse(g, params, c, `s${s + 2}_fuse`, state);
    tap(g, c, s + 1, state, options);
  }

  if (c.numClasses > 0) {
    // The head's projection is linear, so projecting the mean equals the mean of SlowFast's per-position logits.
    const dim = state.channels[0] + state.channels[1];
    const pw = g.addInitializer(
      'head.projection.weight',
      [c.numClasses, dim],
      params.get('head.projection.weight', [c.numClasses, dim], { kind: 'normal', mean: 0, std: 0.01 }),
    );
    const pb = g.addInitializer(
      'head.projection.bias',
      [c.numClasses],
      params.get('head.projection.bias', [c.numClasses], { kind: 'normal', mean: 0, std: 0.01 }),
    );
    g.addNode('Gemm', [LAYER_NAMES[4], pw, pb], 'logits', { transB: int(1) });
    g.addOutput('logits', ['batch', c.numClasses]);
  }

  writeModelMetadata(g, {
    kind: 'visual',
    extractorName: c.extractorName,
    params,
    preprocessing: { ...SLOWFAST_PREPROCESSING, frames: c.numFrames, size: c.inputSize, ...(inputFormat === 'uint8-thwc' ? { input: inputFormat } : {}) },
    layers: LAYER_NAMES,
    architecture: { family: 'slowfast', ...c },
  });
  return g;
}

/** FuseFastToSlow: Tx1x1 conv with temporal stride alpha on fast, BN, ReLU, concatenated onto slow. */
function fuse(g: GraphBuilder, params: ParamSource, c: SlowFastConfig, m: string, st: Pathways): Pathways {
  const fastC = st.channels[1];
  const outC = fastC * c.fusionChannelRatio;
  const f = convBn(g, params, st.x[1], {
    conv: `${m}.conv_f2s`,
    bn: `${m}.bn`,
    inChannels: fastC,
    outChannels: outC,
    kernel: [c.fusionKernel, 1, 1],
    stride: [c.alpha, 1, 1],
    padding: [Math.floor(c.fusionKernel / 2), 0, 0],
    relu: true,
  });
  const fusedFrames = convOut(st.frames[1], c.fusionKernel, c.alpha, Math.floor(c.fusionKernel / 2));
  if (fusedFrames !== st.frames[0]) {
    throw new ClipstreamError('ERR_MODEL', `${m}: fast pathway fuses to ${fusedFrames} frames but the slow pathway has ${st.frames[0]}`);
  }
  const slow = g.addNode('Concat', [st.x[0], f], `${m}.out`, { axis: int(1) });
  return { ...st, x: [slow, st.x[1]], channels: [st.channels[0] + outC, fastC] };
}

/** One ResStage: `blocks[s]` bottleneck blocks per pathway, the first one strided and projected. */
function resStage(g: GraphBuilder, params: ParamSource, c: SlowFastConfig, s: number, st: Pathways, slowOut: number, slowInner: number): Pathways {
  const stage = `s${s + 2}`;
  const stride = c.spatialStrides[s];
  const x: [string, string] = [st.x[0], st.x[1]];
  const channels: [number, number] = [st.channels[0], st.channels[1]];
  for (const p of [0, 1] as const) {
    const dimOut = p === 0 ? slowOut : Math.floor(slowOut / c.betaInv);
    const inner = p === 0 ? slowInner : Math.floor(slowInner / c.betaInv);
    const tk = (p === 0 ? c.slowTemporalKernels : c.fastTemporalKernels)[s + 1];
    for (let i = 0; i < c.blocks[s]; i++) {
      const m = `${stage}.pathway${p}_res${i}`;
      const st1 = i === 0 ? stride : 1;
      const cin = channels[p];
      let shortcut = x[p];
      if (cin !== dimOut || st1 !== 1) {
        shortcut = convBn(g, params, x[p], {
          conv: `${m}.branch1`,
          bn: `${m}.branch1_bn`,
          inChannels: cin,
          outChannels: dimOut,
          kernel: [1, 1, 1],
          stride: [1, st1, st1],
          padding: [0, 0, 0],
          relu: false,
        });
      }
      let y = convBn(g, params, x[p], {
        conv: `${m}.branch2.a`,
        bn: `${m}.branch2.a_bn`,
        inChannels: cin,
        outChannels: inner,
        kernel: [tk, 1, 1],
        stride: [1, 1, 1],
        padding: [Math.floor(tk / 2), 0, 0],
        relu: true,
      });
      y = convBn(g, params, y, {
        conv: `${m}.branch2.b`,
        bn: `${m}.branch2.b_bn`,
        inChannels: inner,
        outChannels: inner,
        kernel: [1, 3, 3],
        stride: [1, st1, st1],
        padding: [0, 1, 1],
        relu: true,
      });
      y = convBn(g, params, y, {
        conv: `${m}.branch2.c`,
        bn: `${m}.branch2.c_bn`,
        inChannels: inner,
        outChannels: dimOut,
        kernel: [1, 1, 1],
        stride: [1, 1, 1],
        padding: [0, 0, 0],
        relu: false,
        seededGamma: 0.5,
      });
      const sum = g.addNode('Add', [shortcut, y], `${m}.sum`);
      x[p] = g.addNode('Relu', [sum], `${m}.out`);
      channels[p] = dimOut;
    }
  }
  return { x, channels, frames: st.frames, size: convOut(st.size, 3, stride, 1) };
}

/**
 * ACAV100M's feature tap: each pathway through SlowFast's head pool (AvgPool3d with kernel
 * [frames, 7, 7], stride 1, as built for 224 training crops), channels concatenated, then the
 * mean over the remaining time, height and width. Not the same as a plain global mean:
 * border positions fall into fewer pooling windows.
 */
function tap(g: GraphBuilder, c: SlowFastConfig, k: number, st: Pathways, options: SlowFastBuildOptions): void {
  const k2 = c.headPoolSize;
  if (st.size < k2) {
    throw new ClipstreamError('ERR_MODEL', `Input size ${c.inputSize} leaves ${st.size}x${st.size} at layer_${k}, smaller than the ${k2}x${k2} pool`);
  }
  const pooled = ([0, 1] as const).map((p) =>
    g.addNode('AveragePool', [st.x[p]], `tap${k}.pathway${p}_avgpool`, {
      kernel_shape: ints([st.frames[p], k2, k2]),
      strides: ints([1, 1, 1]),
    }),
  );
  const cat = g.addNode('Concat', pooled, `tap${k}.concat`, { axis: int(1) });
  g.addNode('ReduceMean', [cat], LAYER_NAMES[k], { axes: ints([2, 3, 4]), keepdims: int(0) });
  g.addOutput(LAYER_NAMES[k], ['batch', st.channels[0] + st.channels[1]]);
  if (options.debugTaps) {
    // Identity gives the raw pathway tensors graph-output names of their own.
    ([0, 1] as const).forEach((p) => {
      const name = `tap_${k}_${p === 0 ? 'slow' : 'fast'}`;
      g.addNode('Identity', [st.x[p]], name);
      g.addOutput(name, ['batch', st.channels[p], st.frames[p], st.size, st.size]);
    });
  }
}

/**
 * Builds a SlowFast ONNX model: input `frames` [B, 3, 32, 256, 256] (normalised RGB),
 * slow pathway gathered inside the graph, outputs `layer_0..layer_4` [B, C] (ACAV100M taps
 * after s1..s4 fusion and s5) and `logits` when `config.numClasses > 0`. BN is folded into
 * the convs. Without `weights` the parameters are seeded from `config.seed`.
 *
 * @example
 * const model = buildSlowFast(SLOWFAST_SMALL);
 * model.layerSizes; // { layer_0: 11, ... }
 */
export function buildSlowFast(config: SlowFastConfig, weights?: ImportedWeights, options: SlowFastBuildOptions = {}): BuiltModel {
  const g = defineSlowFast(config, weights ? importedParams(weights) : seededParams(config.seed), options);
  return { ...describeGraph(g, LAYER_NAMES), bytes: g.toBuffer() };
}

/**
 * The declared inputs, outputs, layer sizes and expected state dict (unfolded BN included) of a
 * SlowFast config, without allocating weights.
 *
 * @example
 * describeSlowFast(SLOWFAST_FULL).layerSizes; // { layer_0: 88, layer_1: 352, ..., layer_4: 2304 }
 */
export function describeSlowFast(config: SlowFastConfig, options: Pick<SlowFastBuildOptions, 'inputFormat'> = {}): ArchitectureDescription {
  const params = shapeOnlyParams();
  return { ...describeGraph(defineSlowFast(config, params, options), LAYER_NAMES), stateDictShapes: params.shapes };
}
