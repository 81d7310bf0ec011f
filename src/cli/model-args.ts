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

/** What `faces` runs: a `--detector` given, else a real detector from the cache, else the shipped synthetic one (`undefined`). */
export function resolveDetectorArg(
  value: string | undefined,
  log: (line: string) => void,
): { path: string | undefined; format?: string; synthetic: boolean; byDefault: boolean } {
  if (value === 'synthetic') return { path: undefined, synthetic: true, byDefault: false };
  if (value !== undefined) {
    const r = resolveModel(value, { kind: 'face-detector', option: '--detector' });
    return { path: r.path, format: r.model?.detectorFormat, synthetic: false, byDefault: false };
  }
  const cached = cachedFaceDetector();
  if (!cached) return { path: undefined, synthetic: true, byDefault: true };
  const r = resolveModel(cached.name, { kind: 'face-detector' });
  log(`face detector ${cached.name} from the model cache (${r.path}); --detector=synthetic runs the shipped synthetic one`);
  return { path: r.path, format: cached.detectorFormat, synthetic: false, byDefault: true };
}

const FETCH_HINT = 'For real footage: clipstream models fetch ultraface-rfb-640, then --detector=ultraface-rfb-640 (once fetched, faces uses it by default)';

/** Said when the synthetic detector found no face at all: it only knows the fixture face. */
export const SYNTHETIC_NO_FACE_HINT = `no face found: the shipped synthetic detector finds only the synthetic fixture face, not real ones. ${FETCH_HINT}`;

/** Said when the default synthetic detector found "faces": on real footage its matches are not faces. */
export const SYNTHETIC_FACES_NOTE = `note: these faces come from the shipped synthetic detector (a template of the fixture face); on real footage its boxes are not faces. ${FETCH_HINT}`;
