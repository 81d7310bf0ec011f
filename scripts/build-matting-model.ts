/**
 * Writes the shipped matting model (RVM's ONNX interface, hand-set weights):
 *   npx tsx scripts/build-matting-model.ts [outDir]   (default: models/)
 * Deterministic: re-running it on an unchanged tree changes no bytes.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { buildMattingModel, MATTING_MODEL_FILE } from '../src/segments/matting-model.js';
import { writeFileAtomic } from '../src/util/atomic.js';

const outDir = process.argv[2] ?? 'models';
const bytes = buildMattingModel();
const path = join(outDir, MATTING_MODEL_FILE);
await writeFileAtomic(path, bytes);
process.stdout.write(`${path}: ${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}\n`);
