/**
 * Compares an ONNX model with a PyTorch reference run of scripts/reference_models.py:
 *   npx tsx scripts/check-reference.ts model.onnx <dir>/<name>.io.safetensors
 * Prints max|diff| / max|ref| per output (the measure test/unit/weights.test.ts holds to 1e-4).
 */
import * as ort from 'onnxruntime-node';
import { readSafetensors } from '../src/models/safetensors.js';

const [modelPath, ioPath] = process.argv.slice(2);
if (!modelPath || !ioPath) throw new Error('usage: check-reference.ts model.onnx name.io.safetensors');
const io = await readSafetensors(ioPath);
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 2, interOpNumThreads: 1 });
const input = io.tensor('input');
const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input.data, input.shape) });
let worst = 0;
for (const name of io.entries.keys()) {
  if (name === 'input') continue;
  const ref = io.tensor(name).data;
  const ours = out[name].data as Float32Array;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  const rel = diff / Math.max(1e-6, scale);
  worst = Math.max(worst, name === 'postprocessed' ? 0 : rel);
  process.stdout.write(`${name}: max|diff| ${diff.toExponential(3)}, max|ref| ${scale.toExponential(3)}, relative ${rel.toExponential(3)}\n`);
}
process.stdout.write(`worst relative error (layers): ${worst.toExponential(3)}\n`);
