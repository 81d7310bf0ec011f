/**
 * SemDeDup within one cluster, as NeMo Curator runs it (facts from its `semdedup` code and the
 * SemDeDup paper, Abbas et al. 2023):
 *
 * 1. the cluster's embeddings (unit length) are ranked by cosine distance to the cluster's
 *    centroid, `1 − x·c/|c|`: with `keep: 'hard'` (NeMo's default, `which_to_keep: hard`) the
 *    farthest first, with `'easy'` the nearest first; equal distances keep row order;
 * 2. the pairwise cosine similarities of the ranked embeddings, upper triangle only: for the
 *    j-th item, `max_similarity` is its largest similarity to any item ranked before it (NeMo:
 *    `max(triu(S, 1), axis=0)`), whether that item was kept or not;
 * 3. an item is removed when `max_similarity > 1 − eps`; `duplicate_of` is the earlier item of
 *    that largest similarity. So of a group of near-copies the first in rank is kept: with
 *    `hard`, the one farthest from the centroid.
 *
 * The similarity matrix is never whole: blocks of `block` rows against the rows before them,
 * through the engine (./gemm.ts). Memory (semdedupClusterRows): two blocks of rows (float32),
 * one block product and a few numbers per row, whatever the cluster's size.
 */
import type { Gemm } from './gemm.js';

export type KeepRule = 'hard' | 'easy';

export interface ClusterVerdict {
  /** Positions into the cluster's rows, in rank order. */
  order: Int32Array;
  /** Per ranked item: its largest similarity to an item ranked before it (−Infinity for the first). */
  maxSimilarity: Float64Array;
  /** Per ranked item: the rank of that earlier item (−1 for the first). */
  argmax: Int32Array;
  /** Per ranked item: kept or removed. */
  kept: Uint8Array;
}

/**
 * Where a cluster's rows come from: `load(positions, out)` writes the rows at these positions (into
 * the cluster's rows, in its own order) to `out` as float32 (unit length, row-major), one after
 * another. The rows of one call never exceed the block size.
 */
export type ClusterRowLoader = (positions: Int32Array, out: Float32Array) => Promise<void>;

/**
 * Buffers that one cluster after another reuses: each grows to the largest size asked and no
 * further, and none is larger than one block of rows. Give the same scratch to every cluster of a
 * run so that their memory is not allocated (and left for the collector) cluster after cluster.
 */
export class ClusterScratch {
  #f32: Float32Array[] = [new Float32Array(0), new Float32Array(0)];
  #i32 = new Int32Array(0);
  #u16 = new Uint16Array(0);

  /** Float32 buffer `which` (0 or 1) of at least `length` values. */
  f32(which: 0 | 1, length: number): Float32Array {
    if (this.#f32[which]!.length < length) this.#f32[which] = new Float32Array(length);
    return this.#f32[which]!.subarray(0, length);
  }

  i32(length: number): Int32Array {
    if (this.#i32.length < length) this.#i32 = new Int32Array(length);
    return this.#i32.subarray(0, length);
  }

  u16(length: number): Uint16Array {
    if (this.#u16.length < length) this.#u16 = new Uint16Array(length);
    return this.#u16.subarray(0, length);
  }
}

/**
 * Ranks the `n` rows of `x` (float32, unit length, row-major) and decides which are kept.
 * `centroid` is the cluster's k-means centroid (float64).
 */
export async function semdedupCluster(
  x: Float32Array,
  n: number,
  d: number,
  centroid: Float64Array,
  o: { eps: number; keep: KeepRule; gemm: Gemm; block?: number; scratch?: ClusterScratch },
): Promise<ClusterVerdict> {
  const load: ClusterRowLoader = async (positions, out) => {
    for (let t = 0; t < positions.length; t++) out.set(x.subarray(positions[t]! * d, (positions[t]! + 1) * d), t * d);
  };
  return semdedupClusterRows(load, n, d, centroid, o);
}

/**
 * The same as semdedupCluster, with the rows loaded block by block (at most `block` rows at a
 * time) from wherever `load` reads them: memory is two blocks of float32 rows and one block
 * product, whatever the cluster's size. A cluster of at most one block is loaded once; a larger
 * one once to rank it and again block by block for the products (each product of the same rows
 * in the same shapes as semdedupCluster on the whole cluster, so the result is the same).
 */
export async function semdedupClusterRows(
  load: ClusterRowLoader,
  n: number,
  d: number,
  centroid: Float64Array,
  o: { eps: number; keep: KeepRule; gemm: Gemm; block?: number; scratch?: ClusterScratch },
): Promise<ClusterVerdict> {
  const block = o.block ?? 1024;
  const scratch = o.scratch ?? new ClusterScratch();
  const bs = Math.min(block, n);
  const a = scratch.f32(0, bs * d);
  const b = scratch.f32(1, bs * d);
  const positions = scratch.i32(bs);
  let cn = 0;
  for (let j = 0; j < d; j++) cn += centroid[j]! ** 2;
  const inv = cn > 0 ? 1 / Math.sqrt(cn) : 0;
  const dist = new Float64Array(n);
  for (let p0 = 0; p0 < n; p0 += block) {
    const count = Math.min(block, n - p0);
    for (let t = 0; t < count; t++) positions[t] = p0 + t;
    await load(positions.subarray(0, count), a);
    for (let t = 0; t < count; t++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += a[t * d + j]! * centroid[j]!;
      dist[p0 + t] = 1 - s * inv;
    }
  }
  const sign = o.keep === 'hard' ? -1 : 1;
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => sign * (dist[a]! - dist[b]!) || a - b);
  // One block: the rows are all in `a` already; ranked into `b` and used for every product.
  const single = n <= block;
  if (single) for (let r = 0; r < n; r++) b.set(a.subarray(order[r]! * d, (order[r]! + 1) * d), r * d);
  const maxSimilarity = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  const argmax = new Int32Array(n).fill(-1);
  for (let j0 = 0; j0 < n; j0 += block) {
    const jn = Math.min(block, n - j0);
    let bj: Float32Array;
    if (single) bj = b.subarray(0, n * d);
    else {
      await load(order.subarray(j0, j0 + jn), a);
      bj = a.subarray(0, jn * d);
    }
    for (let i0 = 0; i0 < j0 + jn; i0 += block) {
      const iN = Math.min(block, j0 + jn - i0);
      let bi = bj;
      if (i0 !== j0) {
        await load(order.subarray(i0, i0 + iN), b);
        bi = b.subarray(0, iN * d);
      }
      // s[jj * iN + ii] = sim(ranked[j0 + jj], ranked[i0 + ii])
      const s = await o.gemm.abt(bj, jn, bi, iN, d);
      for (let jj = 0; jj < jn; jj++) {
        const j = j0 + jj;
        const upto = Math.min(iN, j - i0);
        let best = maxSimilarity[j]!;
        let at = argmax[j]!;
        for (let ii = 0; ii < upto; ii++) {
          const v = s[jj * iN + ii]!;
          if (v > best) {
            best = v;
            at = i0 + ii;
          }
        }
        maxSimilarity[j] = best;
        argmax[j] = at;
      }
    }
  }
  const kept = new Uint8Array(n);
  for (let r = 0; r < n; r++) kept[r] = maxSimilarity[r]! > 1 - o.eps ? 0 : 1;
  return { order, maxSimilarity, argmax, kept };
}
