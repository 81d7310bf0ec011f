import type { GraphBuilder } from './onnx-graph.js';
import type { ParamSource } from './params.js';

/** How frames must be prepared for a visual model; stored as JSON in the `preprocessing` metadata. */
export interface VisualPreprocessing {
  frames: number;
  size: number;
  crop: 'top-left';
  mean: number;
  std: number;
  window_s: number;
  /**
   * `uint8-thwc`: the model takes the decoder's frames as they are (uint8 [batch, T, H, W, 3])
   * and applies `mean`/`std` itself. Absent: float32 [batch, 3, T, H, W], already normalised.
   */
  input?: 'uint8-thwc';
}

/** How audio must be prepared for an audio model. */
export interface AudioPreprocessing {
  sample_rate: number;
  frontend: 'vggish-logmel';
  example_frames: number;
  mel_bands: number;
}

export type FeatureModelKind = 'visual' | 'audio';

/** Metadata keys every clipstream model carries; `readModelInfo` refuses files without them. */
export const REQUIRED_METADATA = ['clipstream.kind', 'extractor_name', 'dataset', 'weights', 'preprocessing', 'layers'] as const;

export const LAYER_NAMES = ['layer_0', 'layer_1', 'layer_2', 'layer_3', 'layer_4'] as const;

/**
 * Writes the metadata props in a fixed order (byte-identical rebuilds depend on it).
 *
 * @example
 * writeModelMetadata(g, { kind: 'audio', extractorName: 'VGGish', params, preprocessing, layers, architecture });
 */
export function writeModelMetadata(
  g: GraphBuilder,
  meta: {
    kind: FeatureModelKind;
    extractorName: string;
    params: ParamSource;
    preprocessing: VisualPreprocessing | AudioPreprocessing;
    layers: readonly string[];
    architecture: object;
  },
): void {
  g.setMetadata('clipstream.kind', meta.kind);
  g.setMetadata('extractor_name', meta.extractorName);
  g.setMetadata('dataset', meta.params.dataset);
  g.setMetadata('weights', meta.params.weights);
  g.setMetadata('preprocessing', JSON.stringify(meta.preprocessing));
  g.setMetadata('layers', JSON.stringify(meta.layers));
  // The architecture config lets a later import check a checkpoint against the graph it rebuilds.
  g.setMetadata('architecture', JSON.stringify(meta.architecture));
}
