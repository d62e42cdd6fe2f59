// Seeded randomness for the simulator. Everything is integer arithmetic (Math.imul, >>> 0) or
// V8's own fdlibm-derived Math functions, so a seed gives the same numbers on every platform.

/** What a seed may be: a number (used as 32 bits) or any string. */
export type Seed = number | string;

/**
 * Hashes seed parts into one 32-bit seed. Used to derive independent streams
 * (`hashSeed(seed, 'user', 42)`), so a user's events never depend on how many other users exist.
 */
export function hashSeed(...parts: readonly Seed[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const text = typeof part === 'number' ? `n${part}` : `s${part}`;
    for (let i = 0; i < text.length; i++) {
      h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    }
    h = Math.imul(h ^ 0x1f, 0x01000193); // part separator: ('a','b') != ('ab')
  }
  return fmix32(h);
}

/** MurmurHash3's finalizer: spreads every input bit over the whole word. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO_POW_32 = 4294967296;

/** xoshiro128** (Blackman & Vigna): 128 bits of state, fast, good statistical quality. */
export class Random {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** `seed` is hashed, so nearby seeds (1, 2, 3) give unrelated streams. */
  constructor(seed: Seed) {
    // splitmix32 expands the 32-bit seed into the 128-bit state (never all zero).
    let s = hashSeed(seed);
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      return fmix32(s);
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next() | 1;
  }

  /** An independent stream derived from this one's next output and a label. */
  fork(label: Seed): Random {
    return new Random(hashSeed(this.uint32(), label));
  }

  /** Uniform 32-bit unsigned integer. */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.uint32() / TWO_POW_32;
  }

  /** Uniform in [min, max). */
  range(min: number, max: number): number {
    return min + (max - min) * this.float();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [min, max] (both inclusive). */
  intBetween(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Standard normal (Box–Muller), scaled. */
  normal(mean = 0, sd = 1): number {
    const u = 1 - this.float(); // (0, 1]: log never sees 0
    const v = this.float();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }

  /** exp(normal(mu, sigma)): positive, right-skewed (durations, per-user multipliers). */
  logNormal(mu: number, sigma: number): number {
    return Math.exp(this.normal(mu, sigma));
  }

  /** Geometric number of trials ≥ 1 with the given mean (≥ 1). */
  geometric(mean: number): number {
    if (mean <= 1) return 1;
    const p = 1 / mean;
    return 1 + Math.floor(Math.log(1 - this.float()) / Math.log(1 - p));
  }

  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Random.pick: cannot pick from an empty list');
    return items[this.int(items.length)]!;
  }

  /** An element chosen with probability proportional to its weight. */
  pickWeighted<T>(items: readonly T[], weights: readonly number[]): T {
    if (items.length === 0 || items.length !== weights.length) {
      throw new RangeError(
        `Random.pickWeighted: need as many weights as items, at least one (got ${items.length} items, ${weights.length} weights)`,
      );
    }
    let total = 0;
    for (const w of weights) total += w;
    let r = this.float() * total;
    for (let i = 0; i < items.length; i++) {
      r -= weights[i]!;
      if (r < 0) return items[i]!;
    }
    return items[items.length - 1]!;
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Samples indices 0..n-1 with fixed weights in O(1) (Vose's alias method: one uniform draw, two
 * array reads). Built once per genre/artist, sampled millions of times.
 */
export class WeightedSampler {
  readonly #probability: Float64Array;
  readonly #alias: Int32Array;

  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    if (n === 0) throw new RangeError('WeightedSampler: needs at least one weight');
    let total = 0;
    for (let i = 0; i < n; i++) {
      const w = weights[i]!;
      if (!(w >= 0) || !Number.isFinite(w)) {
        throw new RangeError(`WeightedSampler: weight ${i} must be a finite number >= 0 (got ${w})`);
      }
      total += w;
    }
    if (total <= 0) throw new RangeError('WeightedSampler: weights must not all be zero');

    this.#probability = new Float64Array(n);
    this.#alias = new Int32Array(n);
    const scaled = new Float64Array(n);
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i]! * n) / total;
      (scaled[i]! < 1 ? small : large).push(i);
    }
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!;
      const l = large.pop()!;
      this.#probability[s] = scaled[s]!;
      this.#alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      (scaled[l]! < 1 ? small : large).push(l);
    }
    // Leftovers are 1 up to rounding error.
    for (const i of large) this.#probability[i] = 1;
    for (const i of small) this.#probability[i] = 1;
  }

  get size(): number {
    return this.#probability.length;
  }

  sample(rng: Random): number {
    const u = rng.float() * this.#probability.length;
    const i = Math.floor(u);
    return u - i < this.#probability[i]! ? i : this.#alias[i]!;
  }
}

/** Zipf weights 1/(rank+1)^exponent for ranks 0..n-1. */
export function zipfWeights(n: number, exponent: number): Float64Array {
  const weights = new Float64Array(n);
  for (let i = 0; i < n; i++) weights[i] = 1 / Math.pow(i + 1, exponent);
  return weights;
}

/** A sampler of ranks 0..n-1 with P(rank) ∝ 1/(rank+1)^exponent. */
export function createZipfSampler(n: number, exponent: number): WeightedSampler {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`createZipfSampler: n must be an integer >= 1 (got ${n})`);
  return new WeightedSampler(zipfWeights(n, exponent));
}
