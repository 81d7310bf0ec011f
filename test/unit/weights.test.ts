import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { toFloat16Model } from '../../src/models/fp16.js';
import { readModelInfo } from '../../src/models/info.js';
import { readSafetensors, selectStateDict, type SafetensorsFile } from '../../src/models/safetensors.js';
import { buildSlowFast, describeSlowFast, SLOWFAST_FULL, type SlowFastConfig } from '../../src/models/slowfast.js';
import { buildVggish, describeVggish, VGGISH_FULL, VGGISH_PCA_MATRIX, VGGISH_PCA_MEANS, type VggishConfig } from '../../src/models/vggish.js';

/**
 * Holds our ONNX builders to PyTorch: fixtures/reference/* were written once by
 * scripts/reference_models.py (reference modules with the published parameter names, random
 * weights and BN statistics, reduced widths). The ONNX model is built from the saved state
 * dict as is and every layer must match PyTorch's output for the saved input.
 */
const REF = join(import.meta.dirname, '..', '..', 'fixtures', 'reference');
const SESSION: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 2, interOpNumThreads: 1 };

interface Reference {
  config: Record<string, unknown>;
  weights: SafetensorsFile;
  io: SafetensorsFile;
}

async function reference(name: string): Promise<Reference> {
  const meta = JSON.parse(await readFile(join(REF, `${name}.json`), 'utf8')) as { config: Record<string, unknown> };
  return {
    config: meta.config,
    weights: await readSafetensors(join(REF, `${name}.weights.safetensors`)),
    io: await readSafetensors(join(REF, `${name}.io.safetensors`)),
  };
}

/** max|ours - ref| / max(1e-6, max|ref|): the error relative to the layer's scale. */
function relativeError(ours: Float32Array, ref: Float32Array): number {
  expect(ours.length).toBe(ref.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / Math.max(1e-6, scale);
}

async function runModel(bytes: Uint8Array, ref: Reference): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes, SESSION);
  const input = ref.io.tensor('input');
  try {
    return await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input.data, input.shape) });
  } finally {
    await session.release();
  }
}

/** Every output PyTorch wrote (except the input) against ours; returns the errors by name. */
function compare(out: Record<string, ort.Tensor>, ref: Reference): Record<string, number> {
  const errors: Record<string, number> = {};
  for (const name of ref.io.entries.keys()) {
    if (name === 'input') continue;
    const expected = ref.io.tensor(name);
    expect(out[name], `output ${name}`).toBeDefined();
    expect([...out[name].dims]).toEqual(expected.shape);
    errors[name] = relativeError(out[name].data as Float32Array, expected.data);
  }
  return errors;
}

function vggishConfig(ref: Reference): VggishConfig {
  return { ...VGGISH_FULL, ...(ref.config as Partial<VggishConfig>) };
}

function slowFastConfig(ref: Reference): SlowFastConfig {
  return { ...SLOWFAST_FULL, ...(ref.config as Partial<SlowFastConfig>) };
}

function vggishWeights(ref: Reference, config: VggishConfig) {
  const e = config.fcWidths[2];
  const params = selectStateDict(
    ref.weights,
    describeVggish(config).stateDictShapes,
    new Map([
      [VGGISH_PCA_MATRIX, [e, e]],
      [VGGISH_PCA_MEANS, [e, 1]],
    ]),
  );
  return { params, sha256: ref.weights.sha256, dataset: 'test' };
}

describe('built models match the PyTorch reference (reduced widths)', () => {
  it('VGGish: layers 0-4 and the PCA postprocess, from the state dict as saved', async () => {
    const ref = await reference('vggish_tiny');
    const config = vggishConfig(ref);
    const model = buildVggish(config, vggishWeights(ref, config));
    expect(model.outputs.map((o) => o.name)).toContain('postprocessed');
    const out = await runModel(model.bytes, ref);
    const errors = compare(out, ref);
    expect(Object.keys(errors).sort()).toEqual(['layer_0', 'layer_1', 'layer_2', 'layer_3', 'layer_4', 'postprocessed']);
    for (const [name, err] of Object.entries(errors)) {
      // The quantised output is an integer 0..255: a value right at a rounding boundary may flip by 1.
      if (name === 'postprocessed') expect(err, name).toBeLessThanOrEqual(1 / 255 + 1e-6);
      else expect(err, name).toBeLessThanOrEqual(1e-4);
    }
    // The reference is not degenerate: every layer has live (non-zero) features.
    for (let k = 0; k < 5; k++) expect(Math.max(...ref.io.tensor(`layer_${k}`).data)).toBeGreaterThan(0);
    console.log('VGGish reduced, max relative error per layer:', errors);
  });

  it('SlowFast: layers 0-4 and logits, BN folded, F16 weights file', async () => {
    const ref = await reference('slowfast_tiny');
    expect(ref.weights.entries.get('s1.pathway0_stem.conv.weight')?.dtype).toBe('F16');
    const config = slowFastConfig(ref);
    const params = selectStateDict(ref.weights, describeSlowFast(config).stateDictShapes);
    const model = buildSlowFast(config, { params, sha256: ref.weights.sha256, dataset: 'test' });
    const out = await runModel(model.bytes, ref);
    const errors = compare(out, ref);
    expect(Object.keys(errors).sort()).toEqual(['layer_0', 'layer_1', 'layer_2', 'layer_3', 'layer_4', 'logits']);
    for (const [name, err] of Object.entries(errors)) expect(err, name).toBeLessThanOrEqual(1e-4);
    console.log('SlowFast reduced, max relative error per layer:', errors);
  });

  it('the state dict holds exactly the parameters the builders ask for (BN buffers included)', async () => {
    const sf = await reference('slowfast_tiny');
    const expected = describeSlowFast(slowFastConfig(sf)).stateDictShapes;
    expect([...sf.weights.entries.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, shape] of expected) expect(sf.weights.entries.get(name)?.shape, name).toEqual(shape);
    const vg = await reference('vggish_tiny');
    const vExpected = describeVggish(vggishConfig(vg)).stateDictShapes;
    expect([...vg.weights.entries.keys()].sort()).toEqual([...vExpected.keys(), VGGISH_PCA_MATRIX, VGGISH_PCA_MEANS].sort());
  });
});

describe('float16 variants', () => {
  it('load in ONNX Runtime CPU, keep the float32 contract and match float32 within fp16 precision', async () => {
    for (const name of ['vggish_tiny', 'slowfast_tiny']) {
      const ref = await reference(name);
      const model = name.startsWith('vggish')
        ? buildVggish(vggishConfig(ref), vggishWeights(ref, vggishConfig(ref)))
        : buildSlowFast(slowFastConfig(ref), {
            params: selectStateDict(ref.weights, describeSlowFast(slowFastConfig(ref)).stateDictShapes),
            sha256: ref.weights.sha256,
            dataset: 'test',
          });
      const half = toFloat16Model(model.bytes);
      expect(half.length).toBeLessThan(model.bytes.length * 0.6);
      const session = await ort.InferenceSession.create(half, SESSION);
      expect(session.inputNames).toHaveLength(1);
      await session.release();
      const out = await runModel(half, ref);
      const errors = compare(out, ref);
      for (const [layer, err] of Object.entries(errors)) {
        expect(out[layer].type).toBe('float32');
        // float16 keeps ~3 decimal digits; errors compound over the depth of the net.
        // The quantised PCA output can move by a few of its 256 levels.
        expect(err, `${name} ${layer}`).toBeLessThanOrEqual(layer === 'postprocessed' ? 0.05 : 1e-2);
        expect(err, `${name} ${layer} (float16 must not be bit-identical to float32)`).toBeGreaterThan(0);
      }
      console.log(`${name} float16, max relative error per layer:`, errors);
    }
  });

  it('say so in their metadata, which otherwise stays that of the float32 model', async () => {
    const ref = await reference('vggish_tiny');
    const model = buildVggish(vggishConfig(ref), vggishWeights(ref, vggishConfig(ref)));
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'clipstream-fp16-'));
    try {
      const file = join(dir, 'v16.onnx');
      await writeFile(file, toFloat16Model(model.bytes));
      const info = await readModelInfo(file);
      expect(info.metadata['clipstream.precision']).toBe('float16');
      expect(info.extractorName).toBe(model.metadata.extractor_name);
      expect(info.weights).toBe(`imported:${ref.weights.sha256}`);
      expect(info.layerSizes).toEqual(model.layerSizes);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
