/**
 * Feature shards of synthetic embeddings with planted near-copies, for the semdedup tests and
 * bench: the recipe is the truth (which clip is a copy of which).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeFeatureRecord, msgpackArrayHeader } from '../../src/sinks/msgpack-numpy.js';
import type { FeatureRecord } from '../../src/types.js';
import { mulberry32 } from '../../src/util/random.js';

/** A seeded standard normal generator (Box–Muller on mulberry32). */
export function gaussian(seed: number): () => number {
  const rand = mulberry32(seed);
  // Half a step up, so the logarithm never sees 0 (exact: both terms are multiples of 2^-33).
  const u = () => rand() + 2 ** -33;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

export interface PlantedSet {
  /** Clip ids in shard order. */
  ids: string[];
  /** copy id → the id of the clip it copies. */
  copyOf: Map<string, string>;
  shards: string[];
}

/**
 * `originals` random directions of `dim` values, and `copies` clips that each copy one of them
 * plus gaussian noise of relative size `noise` (cosine ≈ 1 − noise²/2), shuffled into `shards`
 * msgpack shards. `layer_4` of the visual set holds the vector; `shape2d` stores it as a
 * (2, dim) array whose mean over the first axis is the vector.
 */
export async function plantedShards(
  dir: string,
  o: { originals: number; copies: number; dim: number; shards: number; seed: number; noise?: number; shape2d?: boolean },
): Promise<PlantedSet> {
  await mkdir(dir, { recursive: true });
  const g = gaussian(o.seed);
  const noise = o.noise ?? 0.02;
  const base: Float32Array[] = [];
  for (let i = 0; i < o.originals; i++) base.push(Float32Array.from({ length: o.dim }, () => g()));
  const items: { id: string; v: Float32Array }[] = base.map((v, i) => ({ id: `orig_${i}`, v }));
  const copyOf = new Map<string, string>();
  for (let c = 0; c < o.copies; c++) {
    const src = Math.floor(((g() + 10) * 7919 * (c + 1)) % o.originals);
    const b = base[src]!;
    let norm = 0;
    for (const x of b) norm += x * x;
    const scale = (noise * Math.sqrt(norm)) / Math.sqrt(o.dim);
    const v = Float32Array.from(b, (x) => x + scale * g());
    items.push({ id: `copy_${c}`, v });
    copyOf.set(`copy_${c}`, `orig_${src}`);
  }
  // A seeded shuffle, so copies and originals sit in different shards.
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor((((g() + 10) * 104729) % 1) * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  const shards: string[] = [];
  const per = Math.ceil(items.length / o.shards);
  for (let s = 0; s < o.shards; s++) {
    const part = items.slice(s * per, (s + 1) * per);
    const path = join(dir, `shard-${String(s).padStart(6, '0')}.msgpack`);
    const records = part.map(({ id, v }): FeatureRecord => {
      const data = o.shape2d ? Float32Array.from({ length: 2 * o.dim }, (_, k) => (k < o.dim ? v[k]! * 0.5 : v[k - o.dim]! * 1.5)) : v;
      return {
        filename: `${id}.mp4`,
        id,
        segment: [0, 10],
        visual_features: [{ extractor_name: 'synthetic', dataset: 'none', feat_array: { layer_4: { data, shape: o.shape2d ? [2, o.dim] : [o.dim] } } }],
        audio_features: [],
        __key__: id,
      };
    });
    await writeFile(path, Buffer.concat([msgpackArrayHeader(records.length), ...records.map((r) => encodeFeatureRecord(r))]));
    shards.push(path);
  }
  return { ids: items.map((x) => x.id), copyOf, shards };
}
