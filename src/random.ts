/**
 * The process-wide seeded random generator. Every random tensor, every
 * initialisation and every shuffle draws from it, so a seeded run is
 * repeatable bit for bit on the CPU backend.
 *
 * The generator is xoshiro128** (32-bit state words, fast in JavaScript);
 * normals come from the Box-Muller transform.
 *
 * @module
 */

/** A seedable xoshiro128** generator. */
export class Generator {
  #s = new Uint32Array(4);
  #spare: number | null = null;

  /**
   * See the parameters.
   *
   * @param seed Any integer.
   */
  constructor(seed = 0) {
    this.seed(seed);
  }

  /**
   * Resets the state from a seed (splitmix32 expansion).
   *
   * @param seed Any integer.
   */
  seed(seed: number): void {
    let x = (Math.floor(seed) >>> 0) ^ 0x9e3779b9;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) {
      this.#s[0] = 1;
    }
    this.#spare = null;
  }

  /**
   * The next 32-bit unsigned integer.
   *
   * @returns The next 32-bit unsigned integer.
   */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /**
   * A float in [0, 1) with 24 random bits (exact in float32).
   *
   * @returns A float in [0, 1) with 24 random bits (exact in float32).
   */
  uniform(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /**
   * A standard normal sample.
   *
   * @returns A standard normal sample.
   */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * An integer in [0, n), unbiased.
   *
   * @param n Exclusive upper bound, at most 2^32.
   * @returns An integer in [0, n), unbiased.
   */
  below(n: number): number {
    if (n <= 0) throw new RangeError(`below(${n}): bound must be positive`);
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return x % n;
  }

  /**
   * The state, for checkpoints.
   *
   * @returns The state, for checkpoints.
   */
  getState(): number[] {
    return [...this.#s, this.#spare === null ? NaN : this.#spare];
  }

  /**
   * See the parameters.
   *
   * @param state A value from `getState()`.
   */
  setState(state: readonly number[]): void {
    if (state.length !== 5) {
      throw new RangeError("Generator state has 5 numbers");
    }
    for (let i = 0; i < 4; i++) this.#s[i] = state[i] >>> 0;
    this.#spare = Number.isNaN(state[4]) ? null : state[4];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The process-wide generator. */
export const globalGenerator: Generator = new Generator(0);

/**
 * Seeds the process-wide generator, as `torch.manual_seed` does.
 *
 * @param seed Any integer.
 */
export function manualSeed(seed: number): void {
  globalGenerator.seed(seed);
}
