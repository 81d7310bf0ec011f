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
 * through the engine (./gemm.ts). Memory: the cluster's rows (float32) and one block product.
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
 * Ranks the `n` rows of `x` (float32, unit length, row-major) and decides which are kept.
 * `centroid` is the cluster's k-means centroid (float64).
 */
export async function semdedupCluster(
  x: Float32Array,
  n: number,
  d: number,
  centroid: Float64Array,
  o: { eps: number; keep: KeepRule; gemm: Gemm; block?: number },
): Promise<ClusterVerdict> {
  let cn = 0;
  for (let j = 0; j < d; j++) cn += centroid[j]! ** 2;
  const inv = cn > 0 ? 1 / Math.sqrt(cn) : 0;
  const dist = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j]! * centroid[j]!;
    dist[i] = 1 - s * inv;
  }
  const sign = o.keep === 'hard' ? -1 : 1;
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => sign * (dist[a]! - dist[b]!) || a - b);
  const ranked = new Float32Array(n * d);
  for (let r = 0; r < n; r++) ranked.set(x.subarray(order[r]! * d, (order[r]! + 1) * d), r * d);
  const maxSimilarity = new Float64Array(n).fill(Number.NEGATIVE_INFINITY);
  const argmax = new Int32Array(n).fill(-1);
  const block = o.block ?? 1024;
  for (let j0 = 0; j0 < n; j0 += block) {
    const jn = Math.min(block, n - j0);
    const bj = ranked.subarray(j0 * d, (j0 + jn) * d);
    for (let i0 = 0; i0 < j0 + jn; i0 += block) {
      const iN = Math.min(block, j0 + jn - i0);
      // s[jj * iN + ii] = sim(ranked[j0 + jj], ranked[i0 + ii])
      const s = await o.gemm.abt(bj, jn, ranked.subarray(i0 * d, (i0 + iN) * d), iN, d);
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
