/**
 * `semdedup` (src/jobs/semdedup.ts, src/semdedup/): planted near-copies are removed and every
 * other clip kept (truth: the recipe of test/helpers/semdedup-data.ts); the result equals
 * scikit-learn's KMeans from the same initial centroids plus the same within-cluster rule
 * (scripts/semdedup_reference.py, which reads the shards itself); the float16 spill is the
 * float16 numpy makes of the same vectors.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { semdedup } from '../../src/jobs/semdedup.js';
import { parseCsv } from '../../src/util/csv.js';
import { REPO } from '../helpers/run-cli.js';
import { plantedShards, type PlantedSet } from '../helpers/semdedup-data.js';

const PYTHON = '/usr/bin/python3';
const hasSklearn = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import sklearn, msgpack_numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'semdedup-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

interface RefRow {
  clip_id: string;
  cluster: number;
  kept: boolean;
  max_similarity: number | null;
  duplicate_of: string;
}

function reference(set: PlantedSet, out: string, extra: string[] = []): { rows: RefRow[]; labels: number[]; spill_equal: boolean; ids: string[] } {
  const json = join(out, 'reference.json');
  execFileSync(
    PYTHON,
    [
      join(REPO, 'scripts/semdedup_reference.py'),
      '--init',
      join(out, '.semdedup/init_centroids.npy'),
      '--spill',
      join(out, '.semdedup/embeddings.f16'),
      '--out',
      json,
      ...extra,
      ...set.shards,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return JSON.parse(
    execFileSync(PYTHON, ['-c', `import sys; sys.stdout.write(open(${JSON.stringify(json)}).read())`], { encoding: 'utf8', maxBuffer: 1 << 28 }),
  );
}

async function table(out: string) {
  return parseCsv(await readFile(join(out, 'semdedup.csv'), 'utf8'));
}

/** The planted truth: each group (an original and its copies) keeps exactly one; every other clip is kept. */
function checkPlanted(set: PlantedSet, rows: Record<string, string>[]): void {
  const groups = new Map<string, string[]>();
  for (const [copy, orig] of set.copyOf) groups.set(orig, [...(groups.get(orig) ?? [orig]), copy]);
  const byId = new Map(rows.map((r) => [r.clip_id!, r] as const));
  expect(byId.size).toBe(set.ids.length);
  const grouped = new Set([...groups.values()].flat());
  for (const id of set.ids) if (!grouped.has(id)) expect(byId.get(id)!.kept, id).toBe('true');
  for (const [orig, members] of groups) {
    const kept = members.filter((m) => byId.get(m)!.kept === 'true');
    expect(kept, `group of ${orig}`).toHaveLength(1);
    for (const m of members) {
      const r = byId.get(m)!;
      if (r.kept === 'false') {
        expect(members).toContain(r.duplicate_of);
        expect(Number(r.max_similarity)).toBeGreaterThan(0.95);
      }
    }
  }
}

function checkEqualsReference(rows: Record<string, string>[], ref: RefRow[]): void {
  expect(rows.map((r) => r.clip_id)).toEqual(ref.map((r) => r.clip_id));
  expect(rows.map((r) => Number(r.cluster))).toEqual(ref.map((r) => r.cluster));
  expect(rows.map((r) => r.kept === 'true')).toEqual(ref.map((r) => r.kept));
  expect(rows.map((r) => r.duplicate_of)).toEqual(ref.map((r) => r.duplicate_of));
  for (let i = 0; i < rows.length; i++) {
    const want = ref[i]!.max_similarity;
    if (want === null) expect(rows[i]!.max_similarity).toBe('');
    else expect(Math.abs(Number(rows[i]!.max_similarity) - want)).toBeLessThan(1e-5);
  }
}

describe('semdedup', () => {
  it.skipIf(!hasSklearn)(
    'removes planted near-copies of 2,000 × 64 embeddings and equals scikit-learn + numpy',
    async () => {
      const data = join(dir, 'small');
      const set = await plantedShards(data, { originals: 1800, copies: 200, dim: 64, shards: 7, seed: 1 });
      const out = join(data, 'out');
      const r = await semdedup({ features: set.shards, outputDir: out, clusters: 20 });
      expect(r.rows).toBe(2000);
      expect(r.clusters).toBe(20);
      const rows = await table(out);
      checkPlanted(set, rows);
      expect(r.removed).toBe(rows.filter((x) => x.kept === 'false').length);
      const keep = (await readFile(r.keepList!, 'utf8')).split('\n').filter(Boolean);
      expect(new Set(keep)).toEqual(new Set(rows.filter((x) => x.kept === 'true').map((x) => x.clip_id)));
      expect(keep).toHaveLength(r.kept!);
      const ref = reference(set, out, ['--max_iter', '20']);
      expect(ref.spill_equal).toBe(true);
      checkEqualsReference(rows, ref.rows);
    },
    120_000,
  );

  it.skipIf(!hasSklearn)(
    'equals the reference on 300 × 2,304 embeddings stored as (2, 2304) arrays, eps 0.1, keep easy',
    async () => {
      const data = join(dir, 'wide');
      const set = await plantedShards(data, { originals: 270, copies: 30, dim: 2304, shards: 3, seed: 7, noise: 0.2, shape2d: true });
      const out = join(data, 'out');
      const r = await semdedup({ features: `${data}/shard-{000000..000002}.msgpack`, outputDir: out, clusters: 4, eps: 0.1, keep: 'easy', maxIter: 30 });
      expect(r.rows).toBe(300);
      const rows = await table(out);
      checkPlanted(set, rows);
      const ref = reference(set, out, ['--eps', '0.1', '--keep', 'easy', '--max_iter', '30']);
      expect(ref.spill_equal).toBe(true);
      checkEqualsReference(rows, ref.rows);
    },
    120_000,
  );

  it('the js engine gives the same table as the onnx engine', async () => {
    const data = join(dir, 'engines');
    const set = await plantedShards(data, { originals: 450, copies: 50, dim: 32, shards: 2, seed: 3 });
    await semdedup({ features: set.shards, outputDir: join(data, 'onnx'), clusters: 6 });
    await semdedup({ features: set.shards, outputDir: join(data, 'js'), clusters: 6, engine: 'js' });
    const a = await table(join(data, 'onnx'));
    const b = await table(join(data, 'js'));
    expect(a.map((r) => [r.clip_id, r.kept, r.duplicate_of])).toEqual(b.map((r) => [r.clip_id, r.kept, r.duplicate_of]));
    checkPlanted(set, a);
    expect(existsSync(join(data, 'js', 'keep_list.txt'))).toBe(true);
  }, 120_000);
});
