/**
 * What `Trainer.fit` needs to run unchanged under `mpirun -np N`: the
 * group (joined on first use when `mpirun` launched the process), the
 * loaders sharded for this rank, gradients averaged across ranks, numbers
 * summed across ranks, and "is this rank 0" for printing and writing.
 *
 * @module
 */

import { DataLoader } from "../data/data_loader.ts";
import type { Batch, Loader } from "../data/batch.ts";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor.ts";
import { maybeGroup } from "./_group.ts";
import { GradientReducer } from "./_reducer.ts";
import {
  allReduceNumbers,
  barrier,
  broadcast,
  init,
  isMainRank,
} from "./collectives.ts";
import { DistributedDataParallel } from "./ddp.ts";
import { DistributedSampler } from "./sampler.ts";

/** The trainer's view of the process group (world size above one). */
export interface TrainerGroup {
  /** This rank. */
  readonly rank: number;
  /** Number of ranks. */
  readonly worldSize: number;
  /** Whether this rank prints and writes. */
  readonly main: boolean;
  /**
   * This rank's share of a loader (see {@linkcode shardLoader}).
   *
   * @param loader The whole loader.
   * @param pad Pad to equal shards (training) or not (evaluation).
   * @param stable Keep each sample on one rank across epochs.
   * @returns The rank's loader.
   */
  shard(loader: Loader, pad: boolean, stable: boolean): Loader;
  /**
   * Makes every rank's model equal to rank 0's and averages gradients from
   * now on (nothing when the model is a `DistributedDataParallel`).
   *
   * @param model The model.
   * @param extra Other trained parameters (a loss's adapters).
   * @returns A function that stops averaging.
   */
  attach(model: Module, extra: readonly Tensor[]): () => void;
  /**
   * Broadcasts rank 0's buffers (BatchNorm statistics).
   *
   * @param model The model.
   */
  syncBuffers(model: Module): void;
  /**
   * Sums numbers across ranks.
   *
   * @param values This rank's values.
   * @returns The sums.
   */
  sum(values: readonly number[]): number[];
  /**
   * Whether any rank asked to stop.
   *
   * @param stop This rank's flag.
   * @returns True when one did.
   */
  anyStop(stop: boolean): boolean;
  /** Waits for every rank (after rank 0 wrote a file others read). */
  barrier(): void;
}

function launchedWorld(): number {
  try {
    return Number(Deno.env.get("OMPI_COMM_WORLD_SIZE") ?? "1") || 1;
  } catch {
    return 1;
  }
}

/**
 * The group for a fit, or null in a world of one. When `mpirun` launched
 * several ranks and nothing joined the group yet, joins it (`"nccl"` when
 * the model is on CUDA, else `"mpi"`).
 *
 * @param model The model (for the backend).
 * @returns The group, or null.
 */
export function trainerGroup(model: Module): TrainerGroup | null {
  let g = maybeGroup();
  if (!g && launchedWorld() > 1) {
    const onCuda = model.parameters().some((p) => p.device === "cuda");
    init({ backend: onCuda ? "nccl" : "mpi" });
    g = maybeGroup();
  }
  if (!g || g.worldSize === 1) return null;
  const { rank, worldSize } = g;
  return {
    rank,
    worldSize,
    main: rank === 0,
    shard: (loader, pad, stable) =>
      shardLoader(loader, rank, worldSize, pad, stable),
    attach(model, extra) {
      const params = [...model.parameters(), ...extra];
      for (const t of [...params, ...model.buffers()]) broadcast(t, 0);
      if (model instanceof DistributedDataParallel) return () => {};
      const reducer = new GradientReducer(params, {
        names: [
          ...model.namedParameters().map(([n]) => n),
          ...extra.map((_, i) => `loss parameter ${i}`),
        ],
        findUnusedParameters: true,
      });
      return () => reducer.remove();
    },
    syncBuffers(model) {
      for (const b of model.buffers()) broadcast(b, 0);
    },
    sum: (values) => allReduceNumbers(values),
    anyStop: (stop) => allReduceNumbers([stop ? 1 : 0], "max")[0] > 0,
    barrier: () => barrier(),
  };
}

/**
 * This rank's share of a loader. A `DataLoader` is rebuilt over the same
 * dataset with a {@linkcode DistributedSampler} wrapping its sampler (so
 * each rank decodes only its own images); any other loader is sharded by
 * batches: rank `r` takes batches `r, r + R, ...`, padded (training) by
 * wrapping around to the first batches so that every rank runs the same
 * number of steps.
 *
 * @param loader The whole loader.
 * @param rank This rank.
 * @param world Number of ranks.
 * @param pad Equal shards by repetition (training) or not (evaluation).
 * @param stable Keep each sample on the same rank every epoch (a teacher
 *   cache then holds each rank's share only).
 * @returns The rank's loader.
 */
export function shardLoader(
  loader: Loader,
  rank: number,
  world: number,
  pad: boolean,
  stable: boolean,
): Loader {
  if (loader instanceof DataLoader) {
    const sampler = new DistributedSampler(loader.dataset, {
      numReplicas: world,
      rank,
      sampler: loader.sampler,
      stableShards: stable,
      noPadding: !pad,
    });
    const inner = new DataLoader(loader.dataset, {
      batchSize: loader.batchSize,
      dropLast: loader.dropLast,
      numWorkers: loader.numWorkers,
      prefetch: loader.prefetch,
      sampler,
    });
    let epoch = 0;
    return {
      get length() {
        return inner.length;
      },
      async *[Symbol.asyncIterator]() {
        sampler.setEpoch(epoch++);
        yield* inner;
      },
    };
  }
  const n = loader.length;
  const mine = pad
    ? Math.ceil(n / world)
    : Math.max(0, Math.ceil((n - rank) / world));
  // padding: the batch indices past the end wrap around to the start
  const wrapped = new Map<number, number>(); // batch index -> copies needed
  if (pad && n > 0) {
    for (let j = 0; j < mine; j++) {
      const k = j * world + rank;
      if (k >= n) wrapped.set(k % n, (wrapped.get(k % n) ?? 0) + 1);
    }
  }
  return {
    length: mine,
    async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
      const again: Batch[] = [];
      let b = 0;
      for await (const batch of loader) {
        for (let c = wrapped.get(b) ?? 0; c > 0; c--) {
          again.push(cloneBatch(batch));
        }
        if (b++ % world === rank) yield batch;
        else {
          batch[0].dispose();
          batch[1].dispose();
        }
      }
      yield* again;
    },
  };
}

function cloneBatch(b: Batch): Batch {
  return [b[0].clone(), b[1].clone(), b[2]];
}

export { isMainRank };

/** The fit options {@linkcode distributeFit} changes. */
export interface DistributableFit {
  /** Where lines go. */
  log?: (line: string) => void;
  /** Progress display. */
  progress?: "auto" | "bar" | "lines" | "none";
  /** The report folder (rank 0 only). */
  report?: unknown;
  /** Training batches. */
  train: Loader;
  /** Validation batches. */
  val?: Loader | null;
  /** Unlabeled batches. */
  transfer?: Loader | null;
  /** The teacher. */
  teacher?: Module | null;
  /** Whether the teacher's logits are cached. */
  teacherCache?: unknown;
}

/**
 * A fit's options for this rank: the loaders sharded (training and
 * transfer padded to equal shards, validation not), and on ranks other
 * than 0 no lines, no progress and no report.
 *
 * @param o The fit's options.
 * @param dist The group.
 * @returns The options for this rank.
 */
export function distributeFit<T extends DistributableFit>(
  o: T,
  dist: TrainerGroup,
): T {
  // with a teacher cache, keep each sample on one rank so that each rank
  // caches its own shard only
  const stable = !!o.teacher && o.teacherCache !== false;
  return {
    ...o,
    train: dist.shard(o.train, true, stable),
    val: o.val ? dist.shard(o.val, false, false) : o.val,
    transfer: o.transfer ? dist.shard(o.transfer, true, stable) : o.transfer,
    ...(dist.main
      ? {}
      : { log: () => {}, progress: "none", report: undefined }),
  };
}
