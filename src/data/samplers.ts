/**
 * Samplers: the order in which a `DataLoader` visits a dataset, as in
 * `torch.utils.data`. Each epoch a sampler gives a list of indices drawn from
 * a {@linkcode Generator}: its own when constructed with one, else the one the
 * loader passes (seeded from the loader's `seed`), else the process-wide one.
 *
 * @module
 */

import { type Generator, globalGenerator } from "../random.ts";
import { randperm } from "./_randperm.ts";

/** Anything with a length (a dataset). */
export interface Sized {
  /** Number of items. */
  readonly length: number;
}

/** Base class of the samplers. */
export abstract class Sampler implements Iterable<number> {
  /** A generator of its own; when set, it is used instead of the loader's. */
  readonly generator?: Generator;

  /**
   * A sampler, optionally with a generator of its own.
   *
   * @param generator A generator of its own (optional).
   */
  constructor(generator?: Generator) {
    this.generator = generator;
  }

  /** Number of indices per epoch. */
  abstract readonly length: number;

  /**
   * Draws one epoch's indices.
   *
   * @param generator Used when the sampler has no generator of its own.
   * @returns The indices, in visiting order.
   */
  abstract sample(generator?: Generator): number[];

  /**
   * Iterates over one epoch's indices.
   *
   * @returns One epoch's indices (from the sampler's or the global generator).
   */
  [Symbol.iterator](): Iterator<number> {
    return this.sample()[Symbol.iterator]();
  }

  /**
   * The sampler's generator, else `fallback`, else the global one.
   *
   * @returns The generator to draw from.
   */
  protected gen(fallback?: Generator): Generator {
    return this.generator ?? fallback ?? globalGenerator;
  }
}

/** Visits `0, 1, ..., n - 1` in order (`SequentialSampler`). */
export class SequentialSampler extends Sampler {
  readonly #source: Sized;
  /**
   * Visits `0 .. length - 1` of `dataSource` in order.
   *
   * @param dataSource The dataset.
   */
  constructor(dataSource: Sized) {
    super();
    this.#source = dataSource;
  }
  /** Number of indices per epoch. */
  get length(): number {
    return this.#source.length;
  }
  /**
   * The indices in order.
   *
   * @returns `[0, ..., length - 1]`.
   */
  sample(): number[] {
    return Array.from({ length: this.length }, (_, i) => i);
  }
}

/** Options of {@linkcode RandomSampler}. */
export interface RandomSamplerOptions {
  /** Draw with replacement (default false). */
  replacement?: boolean;
  /** Indices per epoch (default: the dataset's length). */
  numSamples?: number;
  /** A generator of its own. */
  generator?: Generator;
}

/**
 * Visits the dataset in a random order (`RandomSampler`): a new permutation
 * each epoch, or, with `replacement`, `numSamples` uniform draws.
 */
export class RandomSampler extends Sampler {
  readonly #source: Sized;
  readonly #replacement: boolean;
  readonly #numSamples?: number;
  /**
   * Visits the indices of `dataSource` in a random order.
   *
   * @param dataSource The dataset.
   * @param options `replacement`, `numSamples`, `generator`.
   */
  constructor(dataSource: Sized, options: RandomSamplerOptions = {}) {
    super(options.generator);
    this.#source = dataSource;
    this.#replacement = options.replacement ?? false;
    this.#numSamples = options.numSamples;
    if (
      this.#numSamples !== undefined &&
      (!Number.isInteger(this.#numSamples) || this.#numSamples <= 0)
    ) {
      throw new RangeError(
        `RandomSampler: numSamples must be a positive integer, got ${this.#numSamples}`,
      );
    }
  }
  /** Number of indices per epoch. */
  get length(): number {
    return this.#numSamples ?? this.#source.length;
  }
  /**
   * A random permutation (or draws with replacement).
   *
   * @inheritdoc
   */
  sample(generator?: Generator): number[] {
    const g = this.gen(generator);
    const n = this.#source.length;
    if (this.#replacement) {
      return Array.from({ length: this.length }, () => g.below(n));
    }
    // Like torch: as many whole permutations as needed, then a partial one.
    const out: number[] = [];
    while (out.length < this.length) {
      out.push(...randperm(n, g).slice(0, this.length - out.length));
    }
    return out;
  }
}

/** Visits the given indices in a random order (`SubsetRandomSampler`). */
export class SubsetRandomSampler extends Sampler {
  /** The indices to visit. */
  readonly indices: readonly number[];
  /**
   * Visits the given indices in a random order.
   *
   * @param indices The indices.
   * @param options `generator`.
   */
  constructor(
    indices: readonly number[],
    options: { generator?: Generator } = {},
  ) {
    super(options.generator);
    this.indices = [...indices];
  }
  /** Number of indices per epoch. */
  get length(): number {
    return this.indices.length;
  }
  /**
   * The given indices, shuffled.
   *
   * @inheritdoc
   */
  sample(generator?: Generator): number[] {
    return randperm(this.indices.length, this.gen(generator)).map((i) =>
      this.indices[i]
    );
  }
}

/**
 * Draws indices with probability proportional to `weights`
 * (`WeightedRandomSampler`, as `torch.multinomial`): with replacement
 * (the default) each of the `numSamples` draws is independent; without,
 * each draw is proportional to the weights of the items not drawn yet,
 * and items of weight 0 are never drawn. Per-item weights
 * `1 / classCount[target]` ({@linkcode balancedSampleWeights}) balance
 * imbalanced classes (the chest X-ray data has 3× more pneumonia than
 * normal). Give it to a `DataLoader` as `sampler` (without `shuffle`).
 *
 * @example Balanced classes, in a loader
 * ```ts
 * import { data, Generator } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const targets = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
 * const weights = data.balancedSampleWeights(targets);
 * const sampler = new data.WeightedRandomSampler(weights, 1000);
 * const drawn = sampler.sample(new Generator(0));
 * const ones = drawn.filter((i) => i === 9).length;
 * assert.ok(ones > 400 && ones < 600); // about half, not a tenth
 * ```
 */
export class WeightedRandomSampler extends Sampler {
  readonly #weights: Float64Array;
  readonly #numSamples: number;
  readonly #replacement: boolean;
  /**
   * Draws indices with probability proportional to `weights`.
   *
   * @param weights One non-negative weight per dataset item.
   * @param numSamples Indices per epoch.
   * @param options `replacement` (default true), `generator`.
   */
  constructor(
    weights: readonly number[] | Float32Array | Float64Array,
    numSamples: number,
    options: { replacement?: boolean; generator?: Generator } = {},
  ) {
    super(options.generator);
    this.#weights = Float64Array.from(weights);
    this.#numSamples = numSamples;
    this.#replacement = options.replacement ?? true;
    if (this.#weights.length === 0) {
      throw new RangeError("WeightedRandomSampler: weights is empty");
    }
    const bad = this.#weights.findIndex((w) =>
      !(w >= 0) || !Number.isFinite(w)
    );
    if (bad >= 0) {
      throw new RangeError(
        `WeightedRandomSampler: weight ${bad} is ${
          this.#weights[bad]
        }; weights must be finite and non-negative`,
      );
    }
    const positive = this.#weights.filter((w) => w > 0).length;
    if (positive === 0) {
      throw new RangeError(
        `WeightedRandomSampler: all ${this.#weights.length} weights are zero`,
      );
    }
    if (!Number.isInteger(numSamples) || numSamples <= 0) {
      throw new RangeError(
        `WeightedRandomSampler: numSamples must be a positive integer, got ${numSamples}`,
      );
    }
    if (!this.#replacement && numSamples > positive) {
      throw new RangeError(
        `WeightedRandomSampler: cannot draw ${numSamples} without replacement from ${positive} items of non-zero weight`,
      );
    }
  }
  /** Number of indices per epoch. */
  get length(): number {
    return this.#numSamples;
  }
  /**
   * `numSamples` indices drawn by weight.
   *
   * @inheritdoc
   */
  sample(generator?: Generator): number[] {
    const g = this.gen(generator);
    const w = this.#weights;
    if (this.#replacement) {
      const cum = new Float64Array(w.length);
      let s = 0;
      for (let i = 0; i < w.length; i++) cum[i] = s += w[i];
      const out: number[] = [];
      for (let k = 0; k < this.#numSamples; k++) {
        const u = g.uniform() * s;
        let lo = 0, hi = w.length - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (cum[mid] > u) hi = mid;
          else lo = mid + 1;
        }
        out.push(lo);
      }
      return out;
    }
    // Without replacement: Efraimidis-Spirakis keys u^(1/w), largest first.
    const keys: [number, number][] = [];
    for (let i = 0; i < w.length; i++) {
      if (w[i] > 0) keys.push([Math.log(g.uniform() || 1e-300) / w[i], i]);
    }
    keys.sort((a, b) => b[0] - a[0]);
    return keys.slice(0, this.#numSamples).map(([, i]) => i);
  }
}

function checkTargets(
  fn: string,
  targets: ArrayLike<number>,
  numClasses?: number,
): number[] {
  if (targets.length === 0) {
    throw new RangeError(`${fn}: targets is empty`);
  }
  if (
    numClasses !== undefined &&
    (!Number.isInteger(numClasses) || numClasses < 1)
  ) {
    throw new RangeError(
      `${fn}: numClasses must be a positive integer, got ${numClasses}`,
    );
  }
  let max = -1;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    if (!Number.isInteger(t) || t < 0) {
      throw new RangeError(
        `${fn}: target ${i} is ${t}, not a class index (an integer ≥ 0)`,
      );
    }
    if (numClasses !== undefined && t >= numClasses) {
      throw new RangeError(
        `${fn}: target ${i} is ${t}, outside ${numClasses} classes`,
      );
    }
    if (t > max) max = t;
  }
  const counts: number[] = Array(numClasses ?? max + 1).fill(0);
  for (let i = 0; i < targets.length; i++) counts[targets[i]]++;
  return counts;
}

/**
 * How many items of each class `targets` holds.
 *
 * @param targets The class index of each item (e.g. `dataset.targets`).
 * @param numClasses Number of classes (default: the largest target + 1).
 * @returns `counts[c]`, one per class.
 * @throws RangeError when `targets` is empty or holds a value that is not a
 *   class index below `numClasses` (naming the item).
 *
 * @example
 * ```ts
 * import { data } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(data.classCounts([1, 1, 0, 1]), [1, 3]);
 * ```
 */
export function classCounts(
  targets: ArrayLike<number>,
  numClasses?: number,
): number[] {
  return checkTargets("classCounts", targets, numClasses);
}

/**
 * "Balanced" class weights for a loss, `n / (numClasses * counts[c])`, as
 * scikit-learn's `compute_class_weight("balanced", ...)`: each class then
 * carries the same total weight, and a balanced data set gets weight 1 for
 * every class. Pass them as the `weight` of `crossEntropy` (PyTorch's
 * `CrossEntropyLoss(weight=...)`), computed from the training split only.
 *
 * @param targets The class index of each training item.
 * @param numClasses Number of classes (default: the largest target + 1).
 * @returns One weight per class.
 * @throws RangeError when a class has no item (its weight would be
 *   infinite; the message names the class), or for bad targets as
 *   {@linkcode classCounts}.
 *
 * @example 1 NORMAL to 3 PNEUMONIA
 * ```ts
 * import { data } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(data.balancedClassWeights([0, 1, 1, 1]), [2, 2 / 3]);
 * ```
 */
export function balancedClassWeights(
  targets: ArrayLike<number>,
  numClasses?: number,
): number[] {
  const counts = checkTargets("balancedClassWeights", targets, numClasses);
  const empty = counts.findIndex((c) => c === 0);
  if (empty >= 0) {
    throw new RangeError(
      `balancedClassWeights: class ${empty} has no item among the ${targets.length} targets, so it cannot be weighted`,
    );
  }
  return counts.map((c) => targets.length / (counts.length * c));
}

/**
 * Per-item weights for {@linkcode WeightedRandomSampler} that make every
 * class equally likely to be drawn: item `i` gets `1 / counts[targets[i]]`
 * (PyTorch's usual recipe for imbalanced classes).
 *
 * @param targets The class index of each item (e.g. `dataset.targets`).
 * @returns One weight per item.
 * @throws RangeError for bad targets, as {@linkcode classCounts}.
 *
 * @example Balanced batches from imbalanced data
 * ```ts
 * import { data } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const targets = [0, 1, 1, 1];
 * const w = data.balancedSampleWeights(targets);
 * assert.deepEqual(w, [1, 1 / 3, 1 / 3, 1 / 3]);
 * const sampler = new data.WeightedRandomSampler(w, targets.length);
 * assert.equal(sampler.length, 4);
 * ```
 */
export function balancedSampleWeights(targets: ArrayLike<number>): number[] {
  const counts = checkTargets("balancedSampleWeights", targets);
  return Array.from(targets, (t) => 1 / counts[t]);
}
