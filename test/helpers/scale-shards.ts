import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FIXTURE_CLIPS, FIXTURE_CLIPS_DIR } from '../../fixtures/index.js';
import { bundleClips } from '../../src/shards/bundle.js';

/** Fixture clips that decode and are long enough: every one gives a record. */
export const GOOD_CLIPS = FIXTURE_CLIPS.filter((c) => !c.corrupt && !c.tooShort).map((c) => c.file);

/**
 * Many cheap units: `count` clips (good ones, cycled through) bundled `perShard` to a shard
 * under `dir/shards`. Returns the tar paths in order.
 */
export async function makeSmallShards(dir: string, count: number, perShard = 1): Promise<string[]> {
  const clips = join(dir, 'clips');
  await mkdir(clips, { recursive: true });
  for (let i = 0; i < count; i++) await copyFile(join(FIXTURE_CLIPS_DIR, GOOD_CLIPS[i % GOOD_CLIPS.length]!), join(clips, GOOD_CLIPS[i % GOOD_CLIPS.length]!));
  const summary = await bundleClips({ inputDir: clips, outputDir: join(dir, 'shards'), shardSize: perShard, onWarning: () => {} });
  return summary.shards.map((s) => s.tar);
}

/** Every `*.msgpack` (or `.json`) feature shard in `dir` with its bytes, by name. */
export async function featureShards(dir: string, ext = '.msgpack'): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const f of (await readdir(dir)).filter((n) => n.endsWith(ext)).sort()) out.set(f, await readFile(join(dir, f)));
  return out;
}

/** The run logs (`log_*.json`) in `dir`, parsed. */
// biome-ignore lint/suspicious/noExplicitAny: run logs are free-form JSON that each test reads its own way
export async function runLogs(dir: string): Promise<Array<Record<string, any>>> {
  const names = (await readdir(dir)).filter((n) => /^log_.*\.json$/.test(n));
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, n), 'utf8'))));
}
