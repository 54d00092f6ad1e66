/**
 * `DataLoader`: batches of `[images, labels, info]` from a dataset, shuffled
 * by a seedable generator, with decoding on Workers that overlaps training.
 * `info` names each sample: its dataset index and what its random transforms
 * drew (the outcome, recorded by a `RecordingGenerator` on the main thread
 * and on Workers alike), which the teacher cache keys by.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { Generator, globalGenerator } from "../random.ts";
import { tensor } from "../ops/creation.ts";
import { nextTurn } from "../memory.ts";
import { stack } from "../ops/shape.ts";
import { defaultBackend, fromStorage, type Tensor } from "../tensor.ts";
import type { Batch, BatchInfo } from "./batch.ts";
import { type Dataset, Subset } from "./dataset.ts";
import type { FloatImage } from "./image.ts";
import { recycleFloatImage } from "./_pixel_arrays.ts";
import { type FolderAccess, folderAccess, label } from "./_folder_access.ts";
import { ImageFolder, type SkippedFile } from "./image_folder.ts";
import {
  buildPipeline,
  type Pipeline,
  runSample,
  type SampleJob,
} from "./_pipeline.ts";
import { RandomSampler, type Sampler, SequentialSampler } from "./samplers.ts";
import { reviveError, WorkerPool } from "./_worker_pool.ts";

/** Options of {@linkcode DataLoader}. */
export interface DataLoaderOptions {
  /** Samples per batch (default 1). */
  batchSize?: number;
  /** Visit the dataset in a new random order each epoch (default false). */
  shuffle?: boolean;
  /** A custom order (excludes `shuffle`). */
  sampler?: Sampler;
  /** Drop the last, smaller batch (default false). */
  dropLast?: boolean;
  /**
   * Workers decoding and transforming images (default 0: on the main
   * thread, blocking it). Used for `ImageFolder`s and `Subset`s of them;
   * other datasets load on the main thread.
   */
  numWorkers?: number;
  /** Batches each worker works ahead (default 2, PyTorch's prefetch_factor). */
  prefetch?: number;
  /**
   * Seed for the order and the augmentations: the same seed gives the same
   * batches, bit for bit, whatever `numWorkers` is. Without it each epoch
   * draws its seed from the process-wide generator (`manualSeed`).
   */
  seed?: number;
  /** Keep workers between epochs (default false); call `close()` after. */
  persistentWorkers?: boolean;
}

interface Source {
  folder: ImageFolder;
  access: FolderAccess;
  map: (i: number) => number;
  /** Whether a main-thread transform is random (its outcome is not recorded). */
  randomTail: boolean;
}

/** Finds the ImageFolder under (nested) Subsets, for the fast path. */
function resolveFolder(ds: Dataset<unknown>): Source | undefined {
  if (ds instanceof ImageFolder) {
    const access = folderAccess(ds);
    // the head is the transforms with specs; the rest run on the main thread
    const tail = ds.transforms.slice(access.plan.specs.length);
    return {
      folder: ds,
      access,
      map: (i) => i,
      randomTail: tail.some((t) => t.random),
    };
  }
  if (ds instanceof Subset) {
    const inner = resolveFolder(ds.dataset);
    if (!inner) return undefined;
    const idx = ds.indices;
    return { ...inner, map: (i) => inner.map(idx[i]) };
  }
  return undefined;
}

/**
 * Iterates over a dataset in batches, as `torch.utils.data.DataLoader`:
 *
 * ```ts ignore
 * const loader = new data.DataLoader(trainSet, {
 *   batchSize: 32, shuffle: true, numWorkers: 2, seed: 0,
 * });
 * for await (const [images, labels] of loader) { ... }
 * ```
 *
 * Images come out as one float32 `[B, C, H, W]` tensor and labels as an
 * int32 `[B]` tensor, with a `BatchInfo`: each sample's index in the dataset
 * and its augmentation outcome (what its random transforms drew, e.g.
 * `"hflip=1"`; null where that is unknown: a random `Lambda` or any dataset
 * other than an `ImageFolder` or a `Subset` of one). With `numWorkers > 0`
 * an `ImageFolder` (or a `Subset` of one) is decoded and transformed on that many Workers, each building whole
 * batches ahead while the main thread trains; samples that get the same seed
 * come out identical with 0 or N workers.
 *
 * Each batch belongs to the loop that receives it: the loader keeps no
 * reference, so a batch nothing references is garbage-collected like any
 * tensor, and `dispose()` or `using` frees it at once (see the `data` module
 * doc).
 *
 * Under the dataset's `onError: "skip"`, unreadable images are dropped from
 * their batch (a batch may be smaller), and at the end of each epoch the
 * loader warns once with the list, also kept in `skipped`.
 *
 * @example Batches of the bundled data
 * ```ts
 * import { data, transforms as T } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const ds = new data.ImageFolder("examples/data/fashion-binary/val", {
 *   transform: [new T.ToTensor()],
 * });
 * const loader = new data.DataLoader(ds, { batchSize: 64, shuffle: true, seed: 0 });
 * let n = 0;
 * for await (const [x, y] of loader) {
 *   assert.deepEqual(x.shape.slice(1), [3, 28, 28]);
 *   assert.equal(y.dtype, "int32");
 *   n += x.shape[0];
 * }
 * assert.equal(n, ds.length);
 * assert.equal(loader.length, Math.ceil(ds.length / 64));
 * ```
 */
export class DataLoader implements AsyncIterable<Batch> {
  /** The dataset. */
  readonly dataset: Dataset<[Tensor, number]>;
  /** Samples per batch. */
  readonly batchSize: number;
  /** Whether the last smaller batch is dropped. */
  readonly dropLast: boolean;
  /** The sampler giving each epoch's order. */
  readonly sampler: Sampler;
  /** Number of decoding Workers. */
  readonly numWorkers: number;
  /** Batches in flight per worker. */
  readonly prefetch: number;
  readonly #seedGen?: Generator;
  readonly #persistent: boolean;
  #pool?: WorkerPool;
  #pipeline?: Pipeline;
  #skipped: SkippedFile[] = [];
  #epoch = 0;

  /**
   * A loader over `dataset`, batching, shuffling and decoding as the options say.
   *
   * @param dataset Items `[image tensor, label]` (an `ImageFolder`, a
   * `Subset`, or any `Dataset`).
   * @param options `batchSize`, `shuffle`, `sampler`, `dropLast`,
   * `numWorkers`, `prefetch`, `seed`, `persistentWorkers`.
   */
  constructor(
    dataset: Dataset<[Tensor, number]>,
    options: DataLoaderOptions = {},
  ) {
    const {
      batchSize = 1,
      shuffle = false,
      dropLast = false,
      numWorkers = 0,
      prefetch = 2,
    } = options;
    if (!Number.isInteger(batchSize) || batchSize <= 0) {
      throw new RangeError(
        `DataLoader: batchSize must be a positive integer, got ${batchSize}`,
      );
    }
    if (!Number.isInteger(numWorkers) || numWorkers < 0) {
      throw new RangeError(
        `DataLoader: numWorkers must be a non-negative integer, got ${numWorkers}`,
      );
    }
    if (!Number.isInteger(prefetch) || prefetch <= 0) {
      throw new RangeError(
        `DataLoader: prefetch must be a positive integer, got ${prefetch}`,
      );
    }
    if (options.sampler && shuffle) {
      throw new RangeError(
        "DataLoader: sampler and shuffle are mutually exclusive",
      );
    }
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.dropLast = dropLast;
    this.numWorkers = numWorkers;
    this.prefetch = prefetch;
    this.sampler = options.sampler ??
      (shuffle ? new RandomSampler(dataset) : new SequentialSampler(dataset));
    this.#seedGen = options.seed !== undefined
      ? new Generator(options.seed)
      : undefined;
    this.#persistent = options.persistentWorkers ?? false;
  }

  /** Number of batches per epoch. */
  get length(): number {
    const n = this.sampler.length;
    return this.dropLast
      ? Math.floor(n / this.batchSize)
      : Math.ceil(n / this.batchSize);
  }

  /** Files skipped in the last (or current) epoch. */
  get skipped(): SkippedFile[] {
    return [...this.#skipped];
  }

  /** Stops the workers (needed only with `persistentWorkers`). */
  close(): void {
    this.#pool?.close();
    this.#pool = undefined;
  }

  /** Same as `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Yields one epoch of `[inputs, labels]` batches.
   *
   * @returns The batches of one epoch.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    const epochSeed = (this.#seedGen ?? globalGenerator).nextUint32();
    this.#epoch++;
    this.#skipped = [];
    const order = this.sampler.sample(new Generator(epochSeed));
    const aug = new Generator(epochSeed ^ 0x5851f42d);
    const batches: { indices: number[]; seeds: number[] }[] = [];
    for (let off = 0; off < order.length; off += this.batchSize) {
      const indices = order.slice(off, off + this.batchSize);
      if (indices.length < this.batchSize && this.dropLast) break;
      batches.push({ indices, seeds: indices.map(() => aug.nextUint32()) });
    }
    const src = resolveFolder(this.dataset);
    try {
      if (src && this.numWorkers > 0) {
        yield* this.#viaWorkers(src, batches);
      } else {
        for (const b of batches) {
          // Let the event loop turn once per batch (about 5 µs): a loop
          // whose awaits all settle at once would otherwise never run the
          // finalization callbacks that return collected tensors' device
          // memory and count them out of memory().
          await nextTurn();
          const batch = await this.#mainThread(src, b.indices, b.seeds);
          if (batch) yield batch;
        }
      }
      this.#report();
    } finally {
      if (!this.#persistent) this.close();
    }
  }

  #report(): void {
    if (this.#skipped.length === 0) return;
    // Each reason is a DataError message, which names the file.
    const list = this.#skipped.slice(0, 20).map((s) => `  ${s.reason}`);
    if (this.#skipped.length > 20) {
      list.push(`  ... and ${this.#skipped.length - 20} more`);
    }
    console.warn(
      `DataLoader: skipped ${this.#skipped.length} unreadable image(s) in epoch ${this.#epoch}:\n${
        list.join("\n")
      }`,
    );
  }

  #noteSkip(src: Source, index: number, reason: string): void {
    src.access.skip(index, reason);
    this.#skipped.push({ index, path: src.folder.samples[index][0], reason });
  }

  async #mainThread(
    src: Source | undefined,
    indices: number[],
    seeds: number[],
  ): Promise<Batch | undefined> {
    if (!src) {
      const items = await Promise.all(indices.map((i) => this.dataset.get(i)));
      return [
        stack(items.map((it) => it[0])),
        tensor(Int32Array.from(items.map((it) => it[1])), {
          shape: [items.length],
        }),
        // what the dataset's get() did to each item is unknown
        {
          indices,
          augmentations: indices.map(() => null),
          source: this.dataset,
        },
      ];
    }
    // The folder's own head transforms, as ImageFolder.get() runs them (and
    // as Workers rebuild them from their specs).
    const a = src.access;
    this.#pipeline ??= buildPipeline(
      a.plan,
      src.folder.transforms.slice(0, a.plan.specs.length),
    );
    const imgs: FloatImage[] = [];
    const labels: number[] = [];
    const info = this.#info();
    for (const [k, i] of indices.entries()) {
      const fi = src.map(i);
      try {
        const known = a.bad(fi);
        if (known !== undefined) throw new DataError(known);
        const job = {
          path: src.folder.samples[fi][0],
          cached: a.cached(fi),
          seed: seeds[k],
        };
        const r = await runSample(this.#pipeline, job, a.caching);
        if (r.cache) a.store(fi, r.cache);
        imgs.push(a.finish(r));
        labels.push(label(src.folder, fi));
        info.add(i, src.randomTail ? null : r.augmentation);
      } catch (e) {
        if (!(e instanceof DataError) || src.folder.onError !== "skip") throw e;
        this.#noteSkip(src, fi, e.message);
      }
    }
    // without a main-thread tail no user transform saw the pixel arrays (one
    // could keep a reference, e.g. to mix images), so they can be reused
    return collate(imgs, labels, a.packable, info.info);
  }

  /** A `BatchInfo` being filled, sample by sample. */
  #info(): { info: BatchInfo; add(i: number, aug: string | null): void } {
    const indices: number[] = [];
    const augmentations: (string | null)[] = [];
    return {
      info: { indices, augmentations, source: this.dataset },
      add(i, aug) {
        indices.push(i);
        augmentations.push(aug);
      },
    };
  }

  async *#viaWorkers(
    src: Source,
    batches: { indices: number[]; seeds: number[] }[],
  ): AsyncGenerator<Batch> {
    const a = src.access;
    this.#pool ??= new WorkerPool(this.numWorkers, a.plan);
    const pool = this.#pool;
    interface InFlight {
      indices: number[];
      folderIdx: number[];
      dispatched: number[]; // positions in folderIdx sent to the worker
      promise: ReturnType<WorkerPool["run"]>;
    }
    const inflight: InFlight[] = [];
    let next = 0;
    const dispatch = () => {
      const b = batches[next];
      const folderIdx = b.indices.map(src.map);
      const jobs: SampleJob[] = [];
      const dispatched: number[] = [];
      for (const [k, fi] of folderIdx.entries()) {
        if (a.bad(fi) !== undefined) continue;
        jobs.push({
          path: src.folder.samples[fi][0],
          cached: a.cached(fi),
          seed: b.seeds[k],
        });
        dispatched.push(k);
      }
      const promise = pool.run(next, jobs, a.caching, a.packable);
      promise.catch(() => {}); // observed when awaited
      inflight.push({ indices: b.indices, folderIdx, dispatched, promise });
      next++;
    };
    const depth = this.numWorkers * this.prefetch;
    while (next < batches.length && inflight.length < depth) dispatch();
    while (inflight.length > 0) {
      const cur = inflight.shift()!;
      const { results, packed } = await cur.promise;
      if (next < batches.length) dispatch();
      const imgs: FloatImage[] = [];
      const labels: number[] = [];
      const info = this.#info();
      const sent = new Set(cur.dispatched);
      for (const [k, fi] of cur.folderIdx.entries()) {
        if (!sent.has(k)) {
          this.#noteSkip(src, fi, a.bad(fi)!);
          continue;
        }
        const r = results[cur.dispatched.indexOf(k)];
        if (!r.ok) {
          // a failure that is not a DataError was rejected by the pool
          if (src.folder.onError !== "skip") throw reviveError(r);
          this.#noteSkip(src, fi, r.message);
          continue;
        }
        if (r.cache) a.store(fi, r.cache);
        if (!packed) imgs.push(a.finish(r as typeof r & { out: FloatImage }));
        labels.push(label(src.folder, fi));
        info.add(cur.indices[k], src.randomTail ? null : r.augmentation);
      }
      const batch = packed
        ? makeBatch(
          packed.data,
          [labels.length, ...packed.shape],
          labels,
          info.info,
        )
        // from Workers: copies, nothing to reuse
        : collate(imgs, labels, false, info.info);
      if (batch) yield batch;
    }
  }
}

/**
 * Wraps a filled batch buffer and its labels as tensors. The buffer goes to
 * the backend's `upload` directly (one copy fewer than `tensor()`, which
 * first copies into an array of its own).
 */
function makeBatch(
  data: Float32Array,
  shape: number[],
  labels: number[],
  info: BatchInfo,
): Batch {
  const be = defaultBackend();
  return [
    fromStorage(be, be.upload(data), shape),
    tensor(Int32Array.from(labels), { shape: [labels.length] }),
    info,
  ];
}

/**
 * The array batches are assembled in before the backend copies them to a
 * tensor's storage: one, reused, instead of a fresh batch-sized array of
 * garbage per batch (a 224×224 batch of 32 is 19 MB, and the garbage
 * collector lets several pile up before it runs).
 */
let staging = new Float32Array(0);

/**
 * Stacks images (same shape), labels and their info into a batch; with
 * `recycle`, hands the images' pixel arrays back to `ToTensor` afterwards.
 */
function collate(
  imgs: FloatImage[],
  labels: number[],
  recycle: boolean,
  info: BatchInfo,
): Batch | undefined {
  if (imgs.length === 0) return undefined;
  const { channels: c, height: h, width: w } = imgs[0];
  const size = c * h * w;
  if (staging.length < imgs.length * size) {
    staging = new Float32Array(imgs.length * size);
  }
  const out = staging.subarray(0, imgs.length * size);
  for (const [k, im] of imgs.entries()) {
    if (im.channels !== c || im.height !== h || im.width !== w) {
      throw new DataError(
        `Cannot batch images of different sizes: [${c}, ${h}, ${w}] and [${im.channels}, ${im.height}, ${im.width}] (add Resize or CenterCrop to the transform)`,
      );
    }
    out.set(im.data, k * size);
  }
  if (recycle) { for (const im of imgs) recycleFloatImage(im.data); }
  return makeBatch(out, [imgs.length, c, h, w], labels, info);
}
