/**
 * Banded LSH (src/dedup/lsh.ts) against brute force: on 20,000 random 8-frame fingerprints with
 * planted near-copies (at, under and just over the distance), the groups are exactly the connected
 * sets of the all-pairs check, while far fewer pairs are compared. In test/zoo, not test/unit: the
 * all-pairs check alone takes about 20 s.
 */
import { describe, expect, it } from 'vitest';
import { FingerprintSet, groupNearDuplicates, planBands, setDistance } from '../../src/dedup/lsh.js';
import { fingerprintDistance, popcount32 } from '../../src/features/fingerprint.js';
import { mulberry32 } from '../../src/util/random.js';

/** A seeded generator for the test's own data (not the one the bands use). */

const FRAMES = 8;
const STRIDE = 2 * FRAMES;

/** `count` random fingerprints, then copies of some with `flips` bits flipped (spread over the frames). */
function plant(count: number, plants: Array<{ of: number; flips: number }>, seed: number): FingerprintSet {
  const rand = mulberry32(seed);
  const words = new Uint32Array((count + plants.length) * STRIDE);
  for (let i = 0; i < count * STRIDE; i++) words[i] = Math.floor(rand() * 2 ** 32);
  plants.forEach((p, n) => {
    const at = (count + n) * STRIDE;
    words.set(words.subarray(p.of * STRIDE, (p.of + 1) * STRIDE), at);
    const flipped = new Set<number>();
    while (flipped.size < p.flips) flipped.add(Math.floor(rand() * 64 * FRAMES));
    for (const bit of flipped) words[at + (bit >>> 5)]! ^= 1 << (31 - (bit & 31));
  });
  return new FingerprintSet(words, FRAMES);
}

/** Connected sets of the all-pairs check, each named by its smallest member. */
function bruteForce(set: FingerprintSet, maxDistance: number): { groupOf: Int32Array; pairs: Array<[number, number]> } {
  const n = set.count;
  const limit = Math.floor(FRAMES * maxDistance);
  const w = set.words;
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x]!]!;
    return x;
  };
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let sum = 0;
      for (let k = 0; k < STRIDE && sum <= limit; k++) sum += popcount32(w[i * STRIDE + k]! ^ w[j * STRIDE + k]!);
      if (sum > limit) continue;
      pairs.push([i, j]);
      const a = find(i);
      const b = find(j);
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
  }
  const groupOf = new Int32Array(n);
  const smallest = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const r = find(i);
    if (smallest[r] === -1) smallest[r] = i;
    groupOf[i] = smallest[r]!;
  }
  return { groupOf, pairs };
}

describe('banded LSH finds what brute force finds', () => {
  it('20,000 fingerprints with planted near-copies: the same groups, every pair within the distance inside one', () => {
    const maxDistance = 12; // at most 96 of 512 bits
    const rand = mulberry32(7);
    const plants: Array<{ of: number; flips: number }> = [];
    for (let k = 0; k < 300; k++) plants.push({ of: Math.floor(rand() * 19_000), flips: 96 }); // exactly at the distance
    for (let k = 0; k < 300; k++) plants.push({ of: Math.floor(rand() * 19_000), flips: Math.floor(rand() * 96) });
    for (let k = 0; k < 200; k++) plants.push({ of: Math.floor(rand() * 19_000), flips: 97 + Math.floor(rand() * 12) }); // just over
    for (let k = 0; k < 100; k++) plants.push({ of: 19_000 + k, flips: 0 }); // exact copies
    const set = plant(20_000 - plants.length, plants, 11);
    expect(set.count).toBe(20_000);
    // Planted copies of planted copies chain: the connected sets decide, on both sides.
    const truth = bruteForce(set, maxDistance);
    const got = groupNearDuplicates(set, { maxDistance });
    const inTruth = truth.pairs.length;
    expect(inTruth).toBeGreaterThanOrEqual(700);
    for (const [i, j] of truth.pairs) expect(got.groupOf[i], `pair ${i}-${j} at ${setDistance(set, i, j)}`).toBe(got.groupOf[j]);
    expect(Array.from(got.groupOf)).toEqual(Array.from(truth.groupOf));
    // Over the distance stays apart (each planted with 97+ flips of an unrelated random base).
    const over = plants.map((p, n) => ({ ...p, at: set.count - plants.length + n })).filter((p) => p.flips > 96 && truth.groupOf[p.at] === p.at);
    expect(over.length).toBeGreaterThan(150);
    // Not all pairs: under 5 % of the 2e8 (about 2.5 % with the bands planned for 20,000).
    expect(got.compared).toBeLessThan(0.05 * ((20_000 * 19_999) / 2));
    // The all-pairs check is the slow part (about 20 s of CPU); a loaded machine stretches it.
  }, 400_000);

  it('the band plan bounds the miss chance at the distance, and the hex distance agrees with the set distance', () => {
    const plan = planBands(100_000, 8, 12);
    expect(plan.missAtMax).toBeLessThanOrEqual(1e-6);
    expect(plan.bits).toBeGreaterThanOrEqual(12);
    const set = FingerprintSet.fromHex(['00000000000000ff' + 'f'.repeat(16), '0000000000000000' + 'f'.repeat(15) + '0']);
    expect(setDistance(set, 0, 1)).toBe(fingerprintDistance('00000000000000ff' + 'f'.repeat(16), '0000000000000000' + 'f'.repeat(15) + '0'));
    expect(setDistance(set, 0, 1)).toBe(6);
    expect(() => FingerprintSet.fromHex(['0000000000000000', '00000000'])).toThrow(/expected 16 hex digits/);
  });
});
