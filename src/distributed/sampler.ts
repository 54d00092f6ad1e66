/**
 * `DistributedSampler`, as `torch.utils.data.distributed.DistributedSampler`.
 *
 * @module
 */

import { Sampler, type Sized } from "../data/samplers.ts";
import { randperm } from "../data/_randperm.ts";
import { Generator } from "../random.ts";
import { rank as groupRank, worldSize as groupWorld } from "./collectives.ts";

/** Options of {@linkcode DistributedSampler}. */
export interface DistributedSamplerOptions {
  /** Number of ranks (default the group's world size). */
  numReplicas?: number;
  /** This rank (default the group's rank). */
  rank?: number;
  /** A new permutation each epoch (default true). */
  shuffle?: boolean;
  /** Seed of the permutation, the same on every rank (default 0). */
  seed?: number;
  /**
   * Drop the tail so that shards are equal without repeating samples
   * (default false: pad by repeating from the start).
   */
  dropLast?: boolean;
  /**
   * Shard this sampler's order instead of `0..n-1` (e.g. a
   * `SubsetRandomSampler`): it is drawn from a generator seeded with
   * `seed + epoch`, the same on every rank; `shuffle` then must be false
   * or is ignored.
   */
  sampler?: Sampler;
  /**
   * Keep each sample on the same rank every epoch (a kdeno extension, off
   * by default): the shards come from the permutation of `seed`, and each
   * epoch only the order within a shard changes (`seed + epoch`). Per-rank
   * caches (the teacher cache) then hold one shard each.
   */
  stableShards?: boolean;
  /**
   * Neither pad nor drop (a kdeno extension for evaluation): shards differ
   * by at most one sample and every sample is visited once.
   */
  noPadding?: boolean;
}

/**
 * One rank's share of a dataset, as PyTorch's `DistributedSampler`: each
 * epoch a permutation of `0..n-1` seeded with `seed + epoch` (the same on
 * every rank), padded by repeating indices from its start to a multiple of
 * the world size (or, with `dropLast`, cut to one), and then strided:
 * rank `r` gets `indices[r], indices[r + R], indices[r + 2R], ...`. Every
 * rank therefore gets the same number of samples (`length`) and, without
 * `dropLast`, every sample is visited. Call `setEpoch(epoch)` before each
 * epoch, or every epoch uses the same order. The permutation comes from
 * kdeno's generator, so it is not PyTorch's order; the sharding pattern is.
 *
 * @example Shard a loader
 * ```ts ignore
 * import { data, distributed } from "@kdeno/kdeno";
 *
 * declare const ds: data.Dataset<[import("@kdeno/kdeno").Tensor, number]>;
 * const sampler = new distributed.DistributedSampler(ds, { seed: 0 });
 * const loader = new data.DataLoader(ds, { batchSize: 16, sampler });
 * for (let epoch = 0; epoch < 3; epoch++) {
 *   sampler.setEpoch(epoch);
 *   for await (const [x, y] of loader) { x.dispose(); y.dispose(); }
 * }
 * ```
 */
export class DistributedSampler extends Sampler {
  /** The dataset's size. */
  readonly size: number;
  /** Number of ranks. */
  readonly numReplicas: number;
  /** This rank. */
  readonly rank: number;
  /** Whether each epoch is a new permutation. */
  readonly shuffle: boolean;
  /** The permutation's seed. */
  readonly seed: number;
  /** Whether the tail is dropped instead of padded. */
  readonly dropLast: boolean;
  /** Samples per rank per epoch. */
  readonly numSamples: number;
  /** Samples over all ranks per epoch (`numSamples * numReplicas`). */
  readonly totalSize: number;
  /** Whether shards stay the same across epochs. */
  readonly stableShards: boolean;
  /** Whether shards are neither padded nor cut. */
  readonly noPadding: boolean;
  readonly #inner?: Sampler;
  #epoch = 0;

  /**
   * A sampler over `dataset` for one rank.
   *
   * @param dataset Anything with a `length`.
   * @param options Replicas, rank, shuffle, seed, dropLast, inner sampler.
   * @throws RangeError for a rank outside `0..numReplicas-1` or a
   *   non-positive `numReplicas`.
   */
  constructor(dataset: Sized, options: DistributedSamplerOptions = {}) {
    super();
    this.numReplicas = options.numReplicas ?? groupWorld();
    this.rank = options.rank ?? groupRank();
    if (!Number.isInteger(this.numReplicas) || this.numReplicas < 1) {
      throw new RangeError(
        `DistributedSampler: numReplicas must be a positive integer, got ${this.numReplicas}`,
      );
    }
    if (
      !Number.isInteger(this.rank) || this.rank < 0 ||
      this.rank >= this.numReplicas
    ) {
      throw new RangeError(
        `DistributedSampler: invalid rank ${this.rank}, rank should be in the interval [0, ${
          this.numReplicas - 1
        }]`,
      );
    }
    this.#inner = options.sampler;
    this.size = this.#inner ? this.#inner.length : dataset.length;
    this.shuffle = this.#inner ? false : options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    this.stableShards = options.stableShards ?? false;
    this.noPadding = options.noPadding ?? false;
    const n = this.size, r = this.numReplicas;
    this.numSamples = this.noPadding
      ? Math.max(0, Math.ceil((n - this.rank) / r))
      : this.dropLast && n % r !== 0
      ? Math.max(0, Math.ceil((n - r) / r))
      : Math.ceil(n / r);
    this.totalSize = this.noPadding ? n : Math.ceil(n / r) * r;
    if (this.dropLast && !this.noPadding) this.totalSize = this.numSamples * r;
  }

  /** Samples per rank per epoch. */
  get length(): number {
    return this.numSamples;
  }

  /** The epoch set by {@linkcode DistributedSampler.setEpoch}. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Sets the epoch, which seeds the next permutation (`seed + epoch`).
   *
   * @param epoch The epoch (0-based).
   */
  setEpoch(epoch: number): void {
    this.#epoch = epoch;
  }

  /**
   * Every rank's indices for this epoch before striding (padded or cut to
   * `totalSize`).
   *
   * @returns `totalSize` indices.
   */
  globalOrder(): number[] {
    return this.#order(this.#epoch);
  }

  #order(epoch: number): number[] {
    const n = this.size;
    let indices: number[];
    if (this.#inner) {
      indices = this.#inner.sample(new Generator(this.seed + epoch));
    } else if (this.shuffle) {
      indices = randperm(n, new Generator(this.seed + epoch));
    } else {
      indices = Array.from({ length: n }, (_, i) => i);
    }
    if (this.noPadding) return indices;
    if (!this.dropLast) {
      const pad = this.totalSize - indices.length;
      if (pad > 0 && indices.length > 0) {
        const base = indices.slice();
        while (indices.length < this.totalSize) {
          indices.push(...base.slice(0, this.totalSize - indices.length));
        }
      }
    } else {
      indices = indices.slice(0, this.totalSize);
    }
    return indices;
  }

  /**
   * This rank's indices for the epoch: `globalOrder()[rank::numReplicas]`.
   *
   * @returns `numSamples` indices.
   */
  sample(): number[] {
    const stride = (all: number[]) => {
      const out: number[] = [];
      for (let i = this.rank; i < all.length; i += this.numReplicas) {
        out.push(all[i]);
      }
      return out;
    };
    if (!this.stableShards || this.#epoch === 0) {
      return stride(this.#order(this.#epoch));
    }
    // the shard of epoch 0, visited in this epoch's order
    const count = new Map<number, number>();
    for (const i of stride(this.#order(0))) {
      count.set(i, (count.get(i) ?? 0) + 1);
    }
    const out: number[] = [];
    for (const i of this.#order(this.#epoch)) {
      const c = count.get(i);
      if (c) {
        out.push(i);
        count.set(i, c - 1);
      }
    }
    for (const [i, c] of count) for (let k = 0; k < c; k++) out.push(i);
    return out;
  }
}
