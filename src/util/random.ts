/**
 * mulberry32: tiny, fast, and identical on every platform since it is pure 32-bit integer math.
 * The one seeded generator of the project: seeded model weights, k-means++ in semdedup (the same
 * seed gives the same clusters on every rank), and the generated test media and bench data.
 *
 * @example
 * const rand = mulberry32(42);
 * rand(); // a float in [0, 1), the same on every run
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
