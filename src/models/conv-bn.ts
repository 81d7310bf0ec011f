import { type GraphBuilder, ints } from './onnx-graph.js';
import { foldBatchNorm, type ParamSource } from './params.js';

/** A bias-free Conv3d followed by BatchNorm3d, named as the PyTorch modules are. */
export interface ConvBnSpec {
  /** Conv module path, e.g. `s2.pathway0_res0.branch2.a`. */
  conv: string;
  /** BN module path, e.g. `s2.pathway0_res0.branch2.a_bn`. */
  bn: string;
  inChannels: number;
  outChannels: number;
  kernel: [number, number, number];
  stride: [number, number, number];
  padding: [number, number, number];
  relu: boolean;
  /**
   * Scale of the seeded BN gamma. Residual branches end with a smaller gamma so the sum
   * over many blocks does not blow up (the role ZERO_INIT_FINAL_BN plays in training).
   */
  seededGamma?: number;
}

/**
 * Emits Conv (+ Relu) with the BN folded into weight and bias. The folded tensors keep the
 * conv's name (`<conv>.weight`, `<conv>.bias`) and say in their doc string which BN went in,
 * because the PyTorch conv has no bias and the BN has no separate node at inference.
 *
 * @example
 * const y = convBn(g, params, 'x', {
 *   conv: 's1.pathway0_stem.conv', bn: 's1.pathway0_stem.bn', inChannels: 3, outChannels: 64,
 *   kernel: [1, 7, 7], stride: [1, 2, 2], padding: [0, 3, 3], relu: true,
 * });
 */
export function convBn(g: GraphBuilder, params: ParamSource, x: string, spec: ConvBnSpec): string {
  const { conv, bn, inChannels: cin, outChannels: cout, kernel } = spec;
  const wShape = [cout, cin, ...kernel];
  const fanIn = cin * kernel[0] * kernel[1] * kernel[2];
  const weight = params.get(`${conv}.weight`, wShape, { kind: 'kaiming', fanIn });
  const gScale = spec.seededGamma ?? 1;
  const gamma = params.get(`${bn}.weight`, [cout], { kind: 'uniform', lo: 0.8 * gScale, hi: 1.2 * gScale });
  const beta = params.get(`${bn}.bias`, [cout], { kind: 'uniform', lo: -0.05, hi: 0.1 });
  const mean = params.get(`${bn}.running_mean`, [cout], { kind: 'normal', mean: 0, std: 0.05 });
  const variance = params.get(`${bn}.running_var`, [cout], { kind: 'uniform', lo: 0.8, hi: 1.2 });
  const folded = params.materialize ? foldBatchNorm(weight, { gamma, beta, mean, variance }) : { weight: new Float32Array(0), bias: new Float32Array(0) };
  const doc = `BatchNorm ${bn} folded in`;
  const w = g.addInitializer(`${conv}.weight`, wShape, folded.weight, doc);
  const b = g.addInitializer(`${conv}.bias`, [cout], folded.bias, doc);
  const [pt, ph, pw] = spec.padding;
  let y = g.addNode('Conv', [x, w, b], `${conv}.out`, {
    kernel_shape: ints(kernel),
    strides: ints(spec.stride),
    pads: ints([pt, ph, pw, pt, ph, pw]),
  });
  if (spec.relu) y = g.addNode('Relu', [y], `${bn}.relu.out`);
  return y;
}

/**
 * Output size of a conv or pool along one axis (floor mode, as PyTorch).
 *
 * @example
 * convOut(256, 7, 2, 3); // 128
 */
export function convOut(size: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}
