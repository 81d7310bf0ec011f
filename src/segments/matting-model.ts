/**
 * Builds the shipped matting model: RVM's published ONNX interface (inputs `src` [B,3,H,W]
 * RGB 0–1, `r1i`..`r4i` recurrent states that start as zeros [1,1,1,1], `downsample_ratio`
 * [1]; outputs `fgr`, `pha`, `r1o`..`r4o`) with hand-set weights that find the synthetic
 * fixture's red disc (fixtures/matte.ts) on its blue background and nothing else.
 *
 * How it works: like RVM, the frame is resized by `downsample_ratio`, the matte is computed at
 * that size and upsampled back to H×W. The matte is a sigmoid of one 1×1 convolution,
 * `GAIN·(R − B) + BIAS`, which is ≈1 on the disc and ≈0 on the background. The recurrent
 * state is a temporal smoothing of alpha: `alpha = raw + SMOOTHING · seen · (previous − raw)`,
 * where `r1` carries the previous low-resolution alpha and `r2` says a previous frame exists
 * (zeros initially, so the first frame is `raw`). So a fresh state gives different values
 * where the disc moved than a carried one — the "pop" the segments job avoids. `r3`/`r4` are
 * passed through unchanged (RVM has four states; this model needs two). `fgr` is `src`.
 */
import { GraphBuilder, ints } from '../models/onnx-graph.js';

export const MATTING_MODEL_FILE = 'rvm_synthetic.onnx';
/** Weight of the previous frame's alpha once a state exists. */
export const SMOOTHING = 0.3;
const GAIN = 16;
/** (R − B) at which alpha is 0.5: between the disc's 0.75 and the background's −0.47. */
const THRESHOLD = 0.14;

/**
 * Returns the model bytes, the same on every run.
 *
 * @example
 * await writeFile('models/rvm_synthetic.onnx', buildMattingModel());
 */
export function buildMattingModel(): Buffer {
  const g = new GraphBuilder('rvm_synthetic');
  g.addInput('src', ['batch', 3, 'height', 'width']);
  for (const r of ['r1i', 'r2i', 'r3i', 'r4i']) g.addInput(r, ['batch', 'channels', 'state_height', 'state_width']);
  g.addInput('downsample_ratio', [1]);

  // Downsample as RVM does: scales [1, 1, ratio, ratio], bilinear.
  g.addInitializer('scales.head', [2], new Float32Array([1, 1]));
  const scales = g.addNode('Concat', ['scales.head', 'downsample_ratio', 'downsample_ratio'], 'scales', { axis: { type: 'int', value: 0 } });
  const small = g.addNode('Resize', ['src', '', scales], 'src.small', { mode: { type: 'string', value: 'linear' } });

  g.addInitializer('matte.weight', [1, 3, 1, 1], new Float32Array([GAIN, 0, -GAIN]), 'GAIN·(R − B)');
  g.addInitializer('matte.bias', [1], new Float32Array([-GAIN * THRESHOLD]));
  const logits = g.addNode('Conv', [small, 'matte.weight', 'matte.bias'], 'matte.logits', { kernel_shape: ints([1, 1]) });
  const raw = g.addNode('Sigmoid', [logits], 'matte.raw');

  // alpha = raw + SMOOTHING · r2i · (r1i − raw); the states broadcast from [1,1,1,1].
  const diff = g.addNode('Sub', ['r1i', raw], 'smooth.diff');
  const seen = g.addNode('Mul', ['r2i', diff], 'smooth.seen');
  g.addInitializer('smooth.weight', [], new Float32Array([SMOOTHING]));
  const scaled = g.addNode('Mul', [seen, 'smooth.weight'], 'smooth.scaled');
  const alpha = g.addNode('Add', [raw, scaled], 'alpha.small');
  g.addNode('Identity', [alpha], 'r1o');
  g.addInitializer('one', [], new Float32Array([1]));
  g.addInitializer('zero', [], new Float32Array([0]));
  const zeros = g.addNode('Mul', [alpha, 'zero'], 'r2.zeros');
  g.addNode('Add', [zeros, 'one'], 'r2o');
  g.addNode('Identity', ['r3i'], 'r3o');
  g.addNode('Identity', ['r4i'], 'r4o');

  // Upsample the matte to the frame: sizes = shape(src) with the channel dim set to 1.
  const shape = g.addNode('Shape', ['src'], 'src.shape');
  g.addInt64Initializer('sizes.mask', [4], [1, 0, 1, 1]);
  g.addInt64Initializer('sizes.one', [4], [0, 1, 0, 0]);
  const masked = g.addNode('Mul', [shape, 'sizes.mask'], 'sizes.masked');
  const sizes = g.addNode('Add', [masked, 'sizes.one'], 'sizes');
  const up = g.addNode('Resize', [alpha, '', '', sizes], 'pha.up', { mode: { type: 'string', value: 'linear' } });
  g.addNode('Clip', [up, 'zero', 'one'], 'pha');
  g.addNode('Identity', ['src'], 'fgr');

  g.addOutput('fgr', ['batch', 3, 'height', 'width']);
  g.addOutput('pha', ['batch', 1, 'height', 'width']);
  for (const r of ['r1o', 'r2o', 'r3o', 'r4o']) g.addOutput(r, ['batch', 'channels', 'state_height', 'state_width']);
  g.setMetadata('clipstream.kind', 'matting');
  g.setMetadata('matting.format', 'rvm');
  g.setMetadata('dataset', 'none (hand-set weights for the synthetic fixture disc)');
  g.setMetadata('weights', 'hand-set');
  return g.toBuffer();
}
