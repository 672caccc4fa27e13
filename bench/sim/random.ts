/**
 * Seeded randomness for the cluster simulation: a small PRNG, a Zipf sampler over URL ranks and
 * an integer hash for rendezvous weights and the key-hashing balancer. Everything is a pure
 * function of its seed, so the same seed gives the same run to the last request.
 */

/** A generator of uniform numbers in [0, 1). */
export type Random = () => number;

/** sfc32 seeded through splitmix32: fast, 128 bits of state, good enough for a simulation. */
export function seeded(seed: number): Random {
  let s = seed >>> 0;
  const split = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** A 32-bit mix of two integers (murmur3's finaliser over their combination). */
export function mix(x: number, y: number): number {
  let h = Math.imul(x ^ 0x5bd1e995, 0x9e3779b1) ^ y;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Cumulative Zipf distributions by (urls, exponent), built once each. */
const cdfs = new Map<string, Float64Array>();

/**
 * Draws URL ranks 0..urls-1 with P(rank k) proportional to 1 / (k + 1)^exponent, by binary
 * search in the cumulative distribution (one million URLs: 8 MB, built in a few ms).
 */
export function zipf(urls: number, exponent: number, random: Random): () => number {
  const id = `${urls}:${exponent}`;
  let cdf = cdfs.get(id);
  if (cdf === undefined) {
    cdf = new Float64Array(urls);
    let sum = 0;
    for (let k = 0; k < urls; k++) cdf[k] = sum += 1 / (k + 1) ** exponent;
    for (let k = 0; k < urls; k++) cdf[k]! /= sum;
    cdfs.set(id, cdf);
  }
  const table = cdf;
  return () => {
    const u = random();
    let lo = 0;
    let hi = urls - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (table[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
