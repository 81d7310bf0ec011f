import { createHash } from 'node:crypto';
import type { BuiltModel } from '../src/models/built.js';
import { buildSlowFast, SLOWFAST_SMALL } from '../src/models/slowfast.js';
import { buildVggish, VGGISH_SMALL } from '../src/models/vggish.js';

/** A model that ships in `models/`, with the exact call that produces its bytes. */
export interface ShippedModel {
  file: string;
  build: () => BuiltModel;
}

/** The seeded small models committed under `models/`; tests rebuild them to catch stale files. */
export const SHIPPED_MODELS: readonly ShippedModel[] = [
  // uint8 input: the decoder's frames go in as they are and the graph normalises them (no float copy in JS).
  { file: 'slowfast_small.onnx', build: () => buildSlowFast(SLOWFAST_SMALL, undefined, { inputFormat: 'uint8-thwc' }) },
  { file: 'vggish_small.onnx', build: () => buildVggish(VGGISH_SMALL) },
];

/** One `models/manifest.json` entry. */
export interface ManifestEntry {
  file: string;
  kind: string;
  extractor_name: string;
  dataset: string;
  weights: string;
  inputs: { name: string; dims: (number | string)[] }[];
  outputs: { name: string; dims: (number | string)[] }[];
  layer_sizes: Record<string, number>;
  preprocessing: unknown;
  architecture: unknown;
  parameters: number;
  bytes: number;
  sha256: string;
}

/**
 * The manifest entry of a built model; holds no timestamps so rebuilding gives the same JSON.
 *
 * @example
 * const entry = manifestEntry('vggish_small.onnx', buildVggish(VGGISH_SMALL));
 */
export function manifestEntry(file: string, model: BuiltModel): ManifestEntry {
  const m = model.metadata;
  return {
    file,
    kind: m['clipstream.kind'],
    extractor_name: m.extractor_name,
    dataset: m.dataset,
    weights: m.weights,
    inputs: model.inputs,
    outputs: model.outputs,
    layer_sizes: model.layerSizes,
    preprocessing: JSON.parse(m.preprocessing),
    architecture: JSON.parse(m.architecture),
    parameters: model.parameterCount,
    bytes: model.bytes.length,
    sha256: createHash('sha256').update(model.bytes).digest('hex'),
  };
}
