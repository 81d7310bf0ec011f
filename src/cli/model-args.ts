import { join } from 'node:path';
import { SYNTHETIC_DETECTOR_FILE } from '../faces/synthetic-detector.js';
import { shippedModelsDir } from '../models/models-dir.js';
import { cachedFaceDetector, resolveModel, type ModelKind } from '../models/registry.js';

/**
 * Model options of the jobs, resolved in the CLI layer: a registry name (`--detector=ultraface-rfb-640`,
 * `--visual_model=slowfast_8x8_r50`) becomes its file in the model cache; a path stays a path.
 *
 * @example resolveModelArg('vggish', 'audio', '--audio_model') // ~/.cache/clipstream/models/vggish/vggish.onnx
 */
export function resolveModelArg<T extends string | null | undefined>(value: T, kind: ModelKind, option: string): T | string {
  if (value === null || value === undefined) return value;
  return resolveModel(value, { kind, option }).path;
}

/**
 * What `faces` runs: a `--detector` given (`synthetic`: the shipped synthetic one, for tests), else a
 * registry detector fetched into the cache, else the shipped UltraFace RFB-640 (`undefined`: the job's default).
 */
export function resolveDetectorArg(
  value: string | undefined,
  log: (line: string) => void,
): { path: string | undefined; format?: string; synthetic: boolean; byDefault: boolean } {
  if (value === 'synthetic') return { path: join(shippedModelsDir(), SYNTHETIC_DETECTOR_FILE), synthetic: true, byDefault: false };
  if (value !== undefined) {
    const r = resolveModel(value, { kind: 'face-detector', option: '--detector' });
    return { path: r.path, format: r.model?.detectorFormat, synthetic: false, byDefault: false };
  }
  const cached = cachedFaceDetector();
  if (!cached) return { path: undefined, synthetic: false, byDefault: true };
  const r = resolveModel(cached.name, { kind: 'face-detector' });
  log(`face detector ${cached.name} from the model cache (${r.path}); --detector=${DEFAULT_DETECTOR_PATH} runs the shipped one`);
  return { path: r.path, format: cached.detectorFormat, synthetic: false, byDefault: true };
}

/** The shipped real detector, as `--detector` names it (relative to the package). */
const DEFAULT_DETECTOR_PATH = 'models/ultraface_rfb_640.onnx';

/** Said when the synthetic detector found no face at all: it only knows the fixture face. */
export const SYNTHETIC_NO_FACE_HINT =
  'no face found: the synthetic detector (--detector=synthetic) finds only the synthetic fixture face, not real ones. For real footage leave --detector out (the shipped UltraFace RFB-640) or name another real detector';
