/**
 * SemDeDup within one cluster larger than a block (src/semdedup/cluster.ts, blocked): the rows
 * are read from a float16 spill a block at a time (src/semdedup/units.ts's loader), and the
 * verdict must equal a numpy re-implementation that holds the whole similarity matrix
 * (scripts/semdedup_cluster_reference.py) and the recipe (which rows are planted copies), on
 * both engines; the buffers reused from cluster to cluster must stay one block in size.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterScratch, semdedupCluster, semdedupClusterRows, type ClusterVerdict } from '../../src/semdedup/cluster.js';
import { openGemm, type GemmEngine } from '../../src/semdedup/gemm.js';
import { decodeHalfRows, SpillReader, SpillWriter } from '../../src/semdedup/spill.js';
import { spillRowLoader } from '../../src/semdedup/units.js';
import { REPO } from '../helpers/run-cli.js';
import { gaussian } from '../helpers/semdedup-data.js';

const D = 48;
const BLOCK = 64;
const EPS = 0.05;

let dir: string;
let spill: SpillReader;
/** The cluster: rows of the spill (every row but those ≡ 3 mod 7), and their group (a copy and its original share one). */
let rows: Int32Array;
let group: number[];
let centroid: Float64Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cs-semdedup-blocks-'));
  const g = gaussian(7);
  const common = Array.from({ length: D }, () => g());
  const originals = 560;
  const vectors: number[][] = [];
  const groupOf: number[] = [];
  for (let i = 0; i < originals; i++) {
    vectors.push(common.map((c) => 0.6 * c + g()));
    groupOf.push(i);
  }
  // 140 near-copies (relative noise 0.01: cosine ≈ 0.99995); some originals get two.
  for (let i = 0; i < 140; i++) {
    const of = (i * 37) % originals;
    const v = vectors[of]!;
    const norm = Math.hypot(...v);
    vectors.push(v.map((x) => x + 0.01 * (norm / Math.sqrt(D)) * g()));
    groupOf.push(of);
  }
  // Shuffled into the spill (a fixed permutation).
  const perm = vectors.map((_, i) => i).sort((a, b) => ((a * 7919) % 701) - ((b * 7919) % 701));
  const w = await SpillWriter.create(join(dir, 'embeddings.f16'), D, 100);
  for (const i of perm) {
    const v = vectors[i]!;
    const n = Math.hypot(...v);
    await w.add(v.map((x) => x / n));
  }
  await w.finish();
  spill = await SpillReader.open(join(dir, 'embeddings.f16'));
  const picked: number[] = [];
  for (let r = 0; r < perm.length; r++) if (r % 7 !== 3) picked.push(r);
  rows = Int32Array.from(picked);
  group = picked.map((r) => groupOf[perm[r]!]!);
  // The centroid: the mean of the cluster's decoded rows.
  const x = decodeHalfRows(await spill.readHalfRows(rows), rows.length, D);
  centroid = new Float64Array(D);
  for (let r = 0; r < rows.length; r++) for (let j = 0; j < D; j++) centroid[j]! += x[r * D + j]! / rows.length;
});

afterAll(async () => {
  await spill?.close();
  await rm(dir, { recursive: true, force: true });
});

async function reference(keep: 'hard' | 'easy'): Promise<{ order: number[]; max_similarity: (number | null)[]; argmax: number[]; kept: number[] }> {
  const job = join(dir, `job-${keep}.json`);
  await writeFile(job, JSON.stringify({ spill: join(dir, 'embeddings.f16'), rows: [...rows], centroid: [...centroid], eps: EPS, keep }));
  return JSON.parse(execFileSync('/usr/bin/python3', [join(REPO, 'scripts/semdedup_cluster_reference.py'), job], { encoding: 'utf8', maxBuffer: 1 << 26 }));
}

function expectEqualsReference(v: ClusterVerdict, ref: Awaited<ReturnType<typeof reference>>): void {
  expect([...v.order]).toEqual(ref.order);
  expect([...v.argmax]).toEqual(ref.argmax);
  expect([...v.kept]).toEqual(ref.kept);
  for (let r = 1; r < ref.order.length; r++) expect(Math.abs(v.maxSimilarity[r]! - ref.max_similarity[r]!)).toBeLessThan(2e-6);
}

describe('semdedup within a cluster larger than a block', () => {
  for (const engine of ['js', 'onnx'] as GemmEngine[]) {
    it(`${engine}: ${BLOCK}-row blocks read from the spill equal numpy's whole matrix, and remove all but one of each planted group`, async () => {
      const gemm = await openGemm(engine, 1);
      try {
        const scratch = new ClusterScratch();
        for (const keep of ['hard', 'easy'] as const) {
          const v = await semdedupClusterRows(spillRowLoader(spill, rows, scratch), rows.length, D, centroid, { eps: EPS, keep, gemm, block: BLOCK, scratch });
          expectEqualsReference(v, await reference(keep));
          // The recipe: of each group of near-copies present, exactly one kept.
          const keptPerGroup = new Map<number, number>();
          for (let r = 0; r < rows.length; r++) {
            const gr = group[v.order[r]!]!;
            keptPerGroup.set(gr, (keptPerGroup.get(gr) ?? 0) + v.kept[r]!);
          }
          expect(new Set(keptPerGroup.values())).toEqual(new Set([1]));
          expect(v.kept.reduce((a, b) => a + b, 0)).toBe(keptPerGroup.size);
        }
        // Buffers of one block, reused: never the cluster's size (rows.length = 600 > BLOCK).
        expect(scratch.f32(0, 0).buffer.byteLength).toBe(BLOCK * D * 4);
        expect(scratch.f32(1, 0).buffer.byteLength).toBe(BLOCK * D * 4);
        expect(scratch.u16(0).buffer.byteLength).toBe(BLOCK * D * 2);
      } finally {
        await gemm.close();
      }
    });
  }

  it('blocks give the same verdict as one block holding the whole cluster (js engine: exact)', async () => {
    const gemm = await openGemm('js');
    const x = decodeHalfRows(await spill.readHalfRows(rows), rows.length, D);
    const whole = await semdedupCluster(x, rows.length, D, centroid, { eps: EPS, keep: 'hard', gemm, block: 4096 });
    const blocked = await semdedupCluster(x, rows.length, D, centroid, { eps: EPS, keep: 'hard', gemm, block: 50 });
    expect(blocked).toEqual(whole);
  });
});
