/**
 * Writes the shipped seeded models and their manifest:
 *   npx tsx scripts/build-models.ts [outDir]   (default: models/)
 * The output is deterministic, so re-running it on an unchanged tree changes no bytes.
 */
import { join } from 'node:path';
import { manifestEntry, SHIPPED_MODELS } from './shipped-models.js';
import { writeFileAtomic } from '../src/util/atomic.js';

const outDir = process.argv[2] ?? 'models';
const entries = [];
for (const { file, build } of SHIPPED_MODELS) {
  const model = build();
  await writeFileAtomic(join(outDir, file), model.bytes);
  const entry = manifestEntry(file, model);
  entries.push(entry);
  process.stdout.write(`${join(outDir, file)}: ${entry.bytes} bytes, ${entry.parameters} parameters, ${entry.weights}\n`);
}
await writeFileAtomic(join(outDir, 'manifest.json'), `${JSON.stringify({ models: entries }, null, 2)}\n`);
process.stdout.write(`${join(outDir, 'manifest.json')}\n`);
