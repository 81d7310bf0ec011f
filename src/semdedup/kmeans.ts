/**
 * k-means over the spilled embeddings, as semantic dedup needs it: seeded k-means++ on an
 * in-memory sample, then Lloyd iterations that stream through a spill file in chunks, then one
 * streaming pass that assigns every row. Memory: the centroids, one chunk, and the labels of the
 * fit sample (4 bytes per sampled row), whatever the number of clips.
 *
 * The Lloyd step is scikit-learn's (`KMeans(init=centroids, n_init=1, algorithm='lloyd', tol=0)`):
 * a row goes to the centroid of least squared distance (the first on a tie); a centroid becomes
 * the mean of its rows; a centroid left with no rows moves to the row farthest from its own
 * centroid (the farthest first, taken from that centroid's sum as scikit-learn does); it stops
 * when no label changed or after `maxIter` iterations.
 */
import type { Gemm } from './gemm.js';
import { decodeHalfRows, type SpillReader, type SpillWriter } from './spill.js';

/**
 * `count` of `rows` row indices, uniformly without replacement, ascending (Knuth's selection
 * sampling: one pass, nothing held).
 */
export function* sampleIndices(rows: number, count: number, rand: () => number): Generator<number> {
  let needed = Math.min(count, rows);
  for (let i = 0; i < rows && needed > 0; i++) {
    if (rand() * (rows - i) < needed) {
      needed--;
      yield i;
    }
  }
}

/** Copies a uniform sample of `count` rows of `reader` into `writer` (ascending order). */
export async function copySample(reader: SpillReader, writer: SpillWriter, count: number, rand: () => number): Promise<void> {
  const chunk = 1024;
  let batch: number[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await writer.addHalf(await reader.readHalfRows(batch), batch.length);
    batch = [];
  };
  for (const i of sampleIndices(reader.rows, count, rand)) {
    batch.push(i);
    if (batch.length === chunk) await flush();
  }
  await flush();
}

/**
 * k-means++ (D² sampling, one candidate per step) on `n` rows of `x` (float32, unit length).
 * Returns min(k, n) centroids, float64, row-major: fewer when there are fewer rows than k.
 */
export async function kmeansPlusPlus(x: Float32Array, n: number, d: number, k: number, rand: () => number, gemm: Gemm): Promise<Float64Array> {
  const kk = Math.min(k, n);
  const centers = new Float64Array(kk * d);
  const sq = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j]! ** 2;
    sq[i] = s;
  }
  const minD2 = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  const chosen = new Uint8Array(n);
  let pick = Math.min(n - 1, Math.floor(rand() * n));
  for (let c = 0; c < kk; c++) {
    chosen[pick] = 1;
    const row = x.subarray(pick * d, (pick + 1) * d);
    for (let j = 0; j < d; j++) centers[c * d + j] = row[j]!;
    if (c === kk - 1) break;
    const dots = await gemm.abt(x, n, row, 1, d);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const d2 = Math.max(0, sq[i]! + sq[pick]! - 2 * dots[i]!);
      if (d2 < minD2[i]!) minD2[i] = d2;
      if (!chosen[i]) total += minD2[i]!;
    }
    pick = -1;
    if (total > 0) {
      let r = rand() * total;
      for (let i = 0; i < n; i++) {
        if (chosen[i]) continue;
        r -= minD2[i]!;
        if (r < 0) {
          pick = i;
          break;
        }
      }
      // Rounding left r a hair above zero: the last unchosen row with weight.
      if (pick < 0) for (let i = n - 1; i >= 0 && pick < 0; i--) if (!chosen[i] && minD2[i]! > 0) pick = i;
    }
    // Every row left coincides with a centroid: the first unchosen one (duplicates make empty clusters).
    if (pick < 0) pick = chosen.indexOf(0);
  }
  return centers;
}

/** Centroids as float32 for the engine, and their squared norms (float64), into `into` when given (reused). */
function centerViews(
  centers: Float64Array,
  k: number,
  d: number,
  into: { c32: Float32Array; norms: Float64Array } = { c32: new Float32Array(k * d), norms: new Float64Array(k) },
): { c32: Float32Array; norms: Float64Array } {
  const { c32, norms } = into;
  c32.set(centers.subarray(0, k * d));
  for (let c = 0; c < k; c++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += centers[c * d + j]! ** 2;
    norms[c] = s;
  }
  return into;
}

/**
 * Labels of `count` rows of `x` against the centroids: argmin of |c|² − 2x·c (the first on a
 * tie); `dist2` gets |x − c|² of the chosen centroid when given.
 */
async function assignChunk(
  x: Float32Array,
  count: number,
  d: number,
  k: number,
  view: { c32: Float32Array; norms: Float64Array },
  gemm: Gemm,
  labels: Int32Array,
  dist2?: Float64Array,
): Promise<void> {
  const dots = await gemm.abt(x, count, view.c32, k, d);
  for (let i = 0; i < count; i++) {
    let best = 0;
    let bestScore = Number.POSITIVE_INFINITY;
    const o = i * k;
    for (let c = 0; c < k; c++) {
      const s = view.norms[c]! - 2 * dots[o + c]!;
      if (s < bestScore) {
        bestScore = s;
        best = c;
      }
    }
    labels[i] = best;
    if (dist2) {
      let xx = 0;
      for (let j = 0; j < d; j++) xx += x[i * d + j]! ** 2;
      dist2[i] = Math.max(0, xx + bestScore);
    }
  }
}

export interface LloydResult {
  centers: Float64Array;
  iterations: number;
  converged: boolean;
}

/** Lloyd iterations over every row of `reader` (the fit sample), streamed in chunks of `chunkRows`. */
export async function lloyd(
  reader: SpillReader,
  init: Float64Array,
  k: number,
  maxIter: number,
  gemm: Gemm,
  o: { chunkRows?: number; signal?: AbortSignal } = {},
): Promise<LloydResult> {
  const d = reader.dim;
  const n = reader.rows;
  const chunkRows = o.chunkRows ?? 2048;
  let centers = Float64Array.from(init);
  let labels = new Int32Array(n).fill(-1);
  let prev = new Int32Array(n).fill(-1);
  const dist2 = new Float64Array(n);
  const chunkLabels = new Int32Array(chunkRows);
  const chunkDist = new Float64Array(chunkRows);
  // Allocated once, reused by every iteration (k × d float64 each: 18 MB at 1,000 × 2,304).
  const view = { c32: new Float32Array(k * d), norms: new Float64Array(k) };
  const sums = new Float64Array(k * d);
  const counts = new Float64Array(k);
  let next = new Float64Array(k * d);
  for (let it = 1; it <= maxIter; it++) {
    o.signal?.throwIfAborted();
    centerViews(centers, k, d, view);
    sums.fill(0);
    counts.fill(0);
    for await (const { start, count, x } of reader.chunks(chunkRows)) {
      await assignChunk(x, count, d, k, view, gemm, chunkLabels, chunkDist);
      for (let i = 0; i < count; i++) {
        const c = chunkLabels[i]!;
        labels[start + i] = c;
        dist2[start + i] = chunkDist[i]!;
        counts[c]!++;
        const so = c * d;
        const xo = i * d;
        for (let j = 0; j < d; j++) sums[so + j]! += x[xo + j]!;
      }
    }
    const empty: number[] = [];
    for (let c = 0; c < k; c++) if (counts[c] === 0) empty.push(c);
    if (empty.length > 0) {
      // The rows farthest from their centroids, farthest first, seed the empty clusters.
      const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => dist2[b]! - dist2[a]! || a - b);
      const far = order.slice(0, empty.length).sort((a, b) => a - b);
      const rows = decodeHalfRows(await reader.readHalfRows(far), far.length, d);
      const byRow = new Map(far.map((r, i) => [r, i] as const));
      for (let e = 0; e < empty.length; e++) {
        const r = order[e]!;
        const xo = byRow.get(r)! * d;
        const from = labels[r]!;
        const to = empty[e]!;
        for (let j = 0; j < d; j++) {
          sums[from * d + j]! -= rows[xo + j]!;
          sums[to * d + j] = rows[xo + j]!;
        }
        counts[from]!--;
        counts[to] = 1;
      }
    }
    for (let c = 0; c < k; c++) {
      const cnt = counts[c]!;
      for (let j = 0; j < d; j++) next[c * d + j] = cnt > 0 ? sums[c * d + j]! / cnt : centers[c * d + j]!;
    }
    [centers, next] = [next, centers];
    let same = true;
    for (let i = 0; i < n && same; i++) if (labels[i] !== prev[i]) same = false;
    if (same) return { centers, iterations: it, converged: true };
    [prev, labels] = [labels, prev];
  }
  return { centers, iterations: maxIter, converged: false };
}

/** Labels every row of `reader` against `centers`; `onChunk` gets each chunk's labels in order. */
export async function assignAll(
  reader: SpillReader,
  centers: Float64Array,
  k: number,
  gemm: Gemm,
  onChunk: (start: number, labels: Int32Array) => Promise<void> | void,
  o: { chunkRows?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const view = centerViews(centers, k, reader.dim);
  const labels = new Int32Array(o.chunkRows ?? 2048);
  for await (const { start, count, x } of reader.chunks(o.chunkRows ?? 2048)) {
    o.signal?.throwIfAborted();
    await assignChunk(x, count, reader.dim, k, view, gemm, labels);
    await onChunk(start, labels.subarray(0, count));
  }
}
