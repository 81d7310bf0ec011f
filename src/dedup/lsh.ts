/**
 * Near-duplicate groups of fingerprints without comparing all pairs: banded LSH, then an exact
 * check, then union-find. Pure: no I/O.
 *
 * A fingerprint is F frame hashes of 64 bits (F × 64 bits, held as 2F 32-bit words). Two
 * fingerprints are near-duplicates when their distance, the mean Hamming distance of aligned
 * frames, is at most `maxDistance`: at most T = floor(F × maxDistance) of their F × 64 bits differ.
 *
 * **Bands.** A band is r bit positions of the fingerprint, drawn without replacement by a seeded
 * generator (so every run draws the same bands); a fingerprint's key in a band is those r bits.
 * Fingerprints with the same key in some band are candidates, and only candidates are compared
 * (exactly: the mean Hamming distance). For a pair with T differing bits, a band of r positions
 * misses all of them with probability p = C(64F - T, r) / C(64F, r), so the pair is a candidate in
 * none of L independently drawn bands with probability (1 - p)^L. `planBands` picks r and L: L
 * so that a pair at exactly `maxDistance` is missed with probability at most `missProbability`
 * (default 1e-6; closer pairs far less), and r so that the work (L keys per fingerprint, and the
 * pairs of unrelated fingerprints that share a key, about n² / 2^(r+1) per band) is least.
 *
 * **Groups.** Every candidate pair within `maxDistance` is joined (union-find), so a group is a
 * connected set: a chain of near-duplicates can hold two clips further apart than `maxDistance`.
 * A pair already in one group is not compared again.
 *
 * @example
 * const fps = FingerprintSet.fromHex(['8f3a...', '8f3b...', '0123...']);
 * groupNearDuplicates(fps, { maxDistance: 12 }).groupOf // Int32Array [0, 0, 2]: each clip's group (its first member)
 */
import { ClipstreamError } from '../errors.js';
import { popcount32 } from '../features/fingerprint.js';

/** Fingerprints of equal length as one block of 32-bit words: fingerprint i is words [i*2F, (i+1)*2F). */
export class FingerprintSet {
  constructor(
    readonly words: Uint32Array,
    readonly frames: number,
  ) {
    if (!Number.isInteger(frames) || frames < 1 || words.length % (2 * frames) !== 0) {
      throw new ClipstreamError('ERR_FORMAT', `a fingerprint set of ${frames} frames cannot hold ${words.length} words`);
    }
  }

  get count(): number {
    return this.words.length / (2 * this.frames);
  }

  /** From hex fingerprints (16 hex digits per frame), all of one length. */
  static fromHex(hex: readonly string[]): FingerprintSet {
    const len = hex[0]?.length ?? 16;
    if (len === 0 || len % 16 !== 0) throw new ClipstreamError('ERR_FORMAT', `not a fingerprint (groups of 16 hex digits): '${hex[0]}'`);
    const frames = len / 16;
    const words = new Uint32Array(hex.length * 2 * frames);
    hex.forEach((h, i) => {
      if (h.length !== len || !/^[0-9a-f]+$/i.test(h)) {
        throw new ClipstreamError('ERR_FORMAT', `fingerprint ${i} is '${h.slice(0, 40)}': expected ${len} hex digits like the first`);
      }
      for (let w = 0; w < 2 * frames; w++) words[i * 2 * frames + w] = Number.parseInt(h.slice(w * 8, w * 8 + 8), 16);
    });
    return new FingerprintSet(words, frames);
  }
}

/** Mean Hamming distance of fingerprints i and j of a set. @internal (the LSH test checks pairs with it) */
export function setDistance(set: FingerprintSet, i: number, j: number): number {
  const n = 2 * set.frames;
  const w = set.words;
  let sum = 0;
  for (let k = 0; k < n; k++) sum += popcount32(w[i * n + k]! ^ w[j * n + k]!);
  return sum / set.frames;
}

export interface BandPlan {
  /** Bit positions per band. */
  bits: number;
  /** Bands. */
  bands: number;
  /** Probability that a pair at exactly maxDistance shares no band (the bound, with independent bands). */
  missAtMax: number;
}

/** Probability that r positions drawn from `total` miss all `differing` ones. */
function bandHitProbability(total: number, differing: number, r: number): number {
  let p = 1;
  for (let i = 0; i < r; i++) p *= Math.max(0, total - differing - i) / (total - i);
  return p;
}

const MAX_BANDS = 20_000;
/** Keys are bucketed by a counting sort over 2^r counters: at most 4 Mi of them. */
const MAX_BAND_BITS = 22;

/**
 * The band size and count for `count` fingerprints of `frames` frames (see the module comment).
 *
 * @example planBands(100_000, 8, 12) // { bits: 17, bands: 502, missAtMax: 1e-6 }
 */
export function planBands(count: number, frames: number, maxDistance: number, missProbability = 1e-6): BandPlan {
  const total = 64 * frames;
  const differing = Math.floor(frames * maxDistance + 1e-9);
  let best: (BandPlan & { cost: number }) | null = null;
  for (let r = 4; r <= Math.min(MAX_BAND_BITS, total); r++) {
    const p = bandHitProbability(total, differing, r);
    if (p <= 0) break;
    const bands = p >= 1 ? 1 : Math.ceil(Math.log(missProbability) / Math.log1p(-p));
    if (bands > MAX_BANDS) continue;
    // Work: per band, a key of r bits for each fingerprint, a counting sort over 2^r counters, and
    // the unrelated pairs that collide (each compared word by word, about 4 words before it is out).
    const cost = bands * (count * (r + 4) + 2 ** r + ((count * count) / 2 ** (r + 1)) * 16);
    if (!best || cost < best.cost) best = { bits: r, bands, missAtMax: (1 - p) ** bands, cost };
  }
  if (!best) {
    throw new ClipstreamError(
      'ERR_INVALID_OPTION',
      `maxDistance ${maxDistance} is too large for banded search over ${frames} × 64 bits (more than ${MAX_BANDS} bands); use a smaller one`,
      { where: { option: 'options.maxDistance' } },
    );
  }
  return { bits: best.bits, bands: best.bands, missAtMax: best.missAtMax };
}

/** A small seeded generator (xorshift32), so the bands are the same on every run. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Union-find over n items with path halving and union by size. */
class UnionFind {
  readonly parent: Int32Array;
  private readonly size: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    this.size = new Int32Array(n).fill(1);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      p[x] = p[p[x]!]!;
      x = p[x]!;
    }
    return x;
  }
  union(a: number, b: number): void {
    let ra = this.find(a);
    let rb = this.find(b);
    if (ra === rb) return;
    if (this.size[ra]! < this.size[rb]!) [ra, rb] = [rb, ra];
    this.parent[rb] = ra;
    this.size[ra]! += this.size[rb]!;
  }
}

export interface GroupOptions {
  /** Largest mean Hamming distance (bits of 64 per frame) of near-duplicates. */
  maxDistance: number;
  /** Bound on the chance that a pair at exactly maxDistance is never compared; default 1e-6. */
  missProbability?: number;
  /** Seed of the bands; default 1. */
  seed?: number;
  signal?: AbortSignal;
}

export interface GroupResult {
  /** Each fingerprint's group, named by its smallest member index. */
  groupOf: Int32Array;
  plan: BandPlan;
  /** Candidate pairs compared exactly. */
  compared: number;
}

/**
 * Groups near-duplicate fingerprints (see the module comment). Fingerprints are identified by
 * their index in the set; a group is named by its smallest index.
 */
export function groupNearDuplicates(set: FingerprintSet, options: GroupOptions): GroupResult {
  const { maxDistance } = options;
  if (!Number.isFinite(maxDistance) || maxDistance < 0 || maxDistance > 64) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `options.maxDistance must be from 0 to 64, got ${maxDistance}`, {
      where: { option: 'options.maxDistance' },
    });
  }
  const n = set.count;
  const frames = set.frames;
  const stride = 2 * frames;
  const words = set.words;
  const plan = planBands(n, frames, maxDistance, options.missProbability ?? 1e-6);
  const uf = new UnionFind(n);
  const limit = Math.floor(frames * maxDistance + 1e-9);
  const random = xorshift(options.seed ?? 1);
  const keys = new Uint32Array(n);
  const order = new Int32Array(n);
  const starts = new Int32Array(2 ** plan.bits + 1);
  const wordOf = new Int32Array(plan.bits);
  const shiftOf = new Int32Array(plan.bits);
  const positions = Array.from({ length: 64 * frames }, (_, i) => i);
  let compared = 0;
  for (let band = 0; band < plan.bands; band++) {
    options.signal?.throwIfAborted();
    // r positions without replacement: a partial Fisher-Yates shuffle.
    for (let k = 0; k < plan.bits; k++) {
      const j = k + (random() % (positions.length - k));
      [positions[k], positions[j]] = [positions[j]!, positions[k]!];
      wordOf[k] = positions[k]! >>> 5;
      shiftOf[k] = 31 - (positions[k]! & 31);
    }
    // Each fingerprint's key, then the fingerprints bucketed by key (a counting sort: keys < 2^r).
    starts.fill(0);
    for (let i = 0; i < n; i++) {
      const base = i * stride;
      let key = 0;
      for (let k = 0; k < plan.bits; k++) key = (key << 1) | ((words[base + wordOf[k]!]! >>> shiftOf[k]!) & 1);
      keys[i] = key;
      starts[key + 1]!++;
    }
    for (let k = 1; k < starts.length; k++) starts[k]! += starts[k - 1]!;
    for (let i = 0; i < n; i++) order[starts[keys[i]!]!++] = i;
    // After the placing pass starts[key] is the end of the key's bucket; buckets lie in key order.
    let start = 0;
    for (let key = 0; key < starts.length - 1; key++) {
      const end = starts[key]!;
      for (let a = start; a < end - 1; a++) {
        const i = order[a]!;
        for (let b = a + 1; b < end; b++) {
          const j = order[b]!;
          if (uf.find(i) === uf.find(j)) continue;
          compared++;
          let sum = 0;
          for (let k = 0; k < stride && sum <= limit; k++) sum += popcount32(words[i * stride + k]! ^ words[j * stride + k]!);
          if (sum <= limit) uf.union(i, j);
        }
      }
      start = end;
    }
  }
  // Name each group by its smallest member.
  const smallest = new Int32Array(n).fill(-1);
  const groupOf = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const root = uf.find(i);
    if (smallest[root] === -1) smallest[root] = i;
    groupOf[i] = smallest[root]!;
  }
  return { groupOf, plan, compared };
}
