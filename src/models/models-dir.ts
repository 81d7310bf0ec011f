import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

/** The `models/` folder shipped with the package (works from src/ under tsx and from dist/). */
export function shippedModelsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'models', 'manifest.json'))) return join(dir, 'models');
    dir = dirname(dir);
  }
  return join(process.cwd(), 'models');
}

export const DEFAULT_VISUAL_MODEL = 'slowfast_small.onnx';
export const DEFAULT_AUDIO_MODEL = 'vggish_small.onnx';
/** The published UltraFace RFB-640 (MIT), shipped so `faces` finds real faces without `models fetch` (models/README.md). */
export const DEFAULT_FACE_DETECTOR = 'ultraface_rfb_640.onnx';
