/**
 * The teacher-output cache: the teacher's logits are computed once per
 * (sample, augmentation state) and reused in later epochs, so a KD epoch
 * costs about what a student-only epoch costs.
 *
 * How a sample is recognised, in order:
 *
 * 1. the loader's `BatchInfo.keys`, or its `source` + `indices` +
 *    `augmentations` (each augmented view has its own entry, e.g. both flip
 *    states). `DataLoader` and `TensorLoader` give them. The cache trusts
 *    the loader here and does not read the pixels: two images with the same
 *    source, index and augmentation outcome get one entry, whatever their
 *    pixels (the `BatchInfo` contract);
 * 2. otherwise a 64-bit hash of the image's contents as the student sees it
 *    (exact for any loader and any finite set of augmentations, such as
 *    `RandomHorizontalFlip`: each flip state hashes differently): batches
 *    without info, with indices but no augmentation outcomes, and each
 *    sample whose outcome is `null` (unknown: a `Lambda`, a random
 *    transform that does not record it; the cache says so once). A
 *    continuous augmentation (random crops, rotation, colour jitter) rarely
 *    repeats with either key, so the cache mostly misses, and says so;
 * 3. after `precompute(dataset)`, the dataset index alone: the teacher's
 *    logits of the unaugmented view (`dataset.get(i)` with the evaluation
 *    transform), while the student sees augmented images. The cache logs
 *    this choice once. It needs a loader that gives `BatchInfo.indices`,
 *    and serves one source (the first it sees): batches of another (a
 *    transfer set) are refused.
 *
 * The teacher must be in evaluation mode (deterministic outputs); the cache
 * refuses a model in training mode.
 *
 * @module
 */

import { noGrad } from "../autograd.ts";
import type { Module } from "../nn/module.ts";
import { indexSelect, stack, tensor } from "../ops/mod.ts";
import { type Tensor, tidy } from "../tensor.ts";
import type { BatchInfo } from "../data/batch.ts";
import { isMainRank } from "../distributed/collectives.ts"; // distributed: rank 0 only

/** Augmentation outcomes made of flips alone (or no random transform). */
const FLIPS_ONLY = /^(?:[hv]flip=[01](?: [hv]flip=[01])*)?$/;

/** Options of `TeacherCache`. */
export interface TeacherCacheOptions {
  /** Entries kept at most (default 4,000,000); later misses are not stored. */
  maxEntries?: number;
  /** Where notices go (default `console.log`). */
  log?: (line: string) => void;
}

/** Counters of a `TeacherCache`. */
export interface TeacherCacheStats {
  /** Samples answered from the cache. */
  hits: number;
  /** Samples the teacher had to run on. */
  misses: number;
  /** Entries held. */
  entries: number;
  /** Milliseconds spent running the teacher. */
  teacherMs: number;
}

/** A map-style dataset (`data.ImageFolder`, `data.Subset`, ...). */
export interface IndexedDataset {
  /** Number of items. */
  readonly length: number;
  /** Item `i`: `[image [C, H, W], label]`. */
  get(index: number): [Tensor, number] | Promise<[Tensor, number]>;
}

/** 64-bit content hash of `words` as 16 hex digits (two 32-bit murmur-style lanes). */
function hashWords(words: Uint32Array, from: number, to: number): string {
  let h1 = 0x9747b28c ^ (to - from);
  let h2 = 0x85ebca6b ^ (to - from);
  for (let i = from; i < to; i++) {
    let k = Math.imul(words[i], 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h1 ^= k;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    h2 = Math.imul(h2 ^ words[i], 0x01000193);
    h2 ^= h2 >>> 15;
  }
  const fmix = (h: number) => {
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  };
  return fmix(h1).toString(16).padStart(8, "0") +
    fmix(h2 ^ h1).toString(16).padStart(8, "0");
}

/**
 * Caches a teacher's logits per sample and augmentation state.
 *
 * @example The second epoch runs no teacher
 * ```ts
 * import { distill, models, randn } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const teacher = new models.StudentNet({ inputSize: 8 }).eval();
 * const cache = new distill.TeacherCache(teacher);
 * const x = randn([4, 3, 8, 8]);
 * const a = cache.logits(x);
 * const b = cache.logits(x);
 * assert.deepEqual(a.toArray(), b.toArray());
 * assert.deepEqual([cache.stats.misses, cache.stats.hits], [4, 4]);
 * ```
 */
export class TeacherCache {
  /** The teacher. */
  readonly teacher: Module;
  readonly #map = new Map<string, Float32Array>();
  readonly #max: number;
  readonly #log: (line: string) => void;
  #unaugmented = false;
  /** The source precomputed logits serve (bound on first use). */
  #precomputedSource: { source: unknown } | undefined;
  /** Small ids for `BatchInfo.source` values, to keep keys short. */
  readonly #sources = new Map<unknown, number>();
  #hits = 0;
  #misses = 0;
  #teacherMs = 0;
  #said = new Set<string>();
  #epochHits = 0;
  #epochMisses = 0;
  /** Whether every key of this epoch came from flip outcomes alone. */
  #epochFlipsOnly = true;

  /**
   * A cache of `teacher`'s outputs, keyed by sample index.
   *
   * @param teacher The teacher, in evaluation mode.
   * @param options maxEntries, log.
   */
  constructor(teacher: Module, options: TeacherCacheOptions = {}) {
    this.teacher = teacher;
    this.#max = options.maxEntries ?? 4_000_000;
    this.#log = options.log ?? ((l) => console.log(l));
  }

  /**
   * Hits, misses and the memory the cache holds.
   *
   * @returns The counters.
   */
  get stats(): TeacherCacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      entries: this.#map.size,
      teacherMs: this.#teacherMs,
    };
  }

  /** Whether `precompute` filled the cache with the unaugmented views. */
  get unaugmented(): boolean {
    return this.#unaugmented;
  }

  /** Forgets every entry and counter. */
  clear(): void {
    this.#map.clear();
    this.#hits = this.#misses = this.#teacherMs = 0;
    this.#epochHits = this.#epochMisses = 0;
    this.#unaugmented = false;
    this.#precomputedSource = undefined;
    this.#sources.clear();
  }

  #say(key: string, line: string): void {
    if (this.#said.has(key)) return;
    this.#said.add(key);
    if (isMainRank()) this.#log(line); // distributed: notices from rank 0 only
  }

  #keys(images: Tensor, info?: BatchInfo): string[] {
    const b = images.shape[0];
    const check = (what: string, n: number) => {
      if (n !== b) {
        throw new RangeError(
          `Cannot key the teacher cache: ${what} has ${n} entries for a batch of ${b}`,
        );
      }
    };
    if (this.#unaugmented) {
      if (!info?.indices) {
        throw new RangeError(
          "Cannot look up precomputed teacher logits: the loader gives no sample indices (BatchInfo.indices); use the content-keyed cache instead (no precompute)",
        );
      }
      check("indices", info.indices.length);
      this.#precomputedSource ??= { source: info.source };
      if (this.#precomputedSource.source !== info.source) {
        throw new RangeError(
          "Cannot look up precomputed teacher logits: the batch comes from another dataset than the one they were first used for (BatchInfo.source differs, e.g. transfer images); use a second cache for it",
        );
      }
      return info.indices.map((i) => `i${i}`);
    }
    if (info?.keys) {
      this.#epochFlipsOnly = false; // the loader's own keys: nothing known
      check("keys", info.keys.length);
      return [...info.keys];
    }
    // undefined: keyed by content below
    const keys = new Array<string | undefined>(b).fill(undefined);
    const { indices, augmentations: augs } = info ?? {};
    if (indices && augs) {
      check("indices", indices.length);
      check("augmentations", augs.length);
      let id = this.#sources.get(info!.source);
      if (id === undefined) {
        id = this.#sources.size;
        this.#sources.set(info!.source, id);
      }
      for (let k = 0; k < b; k++) {
        if (augs[k] !== null) {
          keys[k] = `s${id}i${indices[k]}|${augs[k]}`;
          if (!FLIPS_ONLY.test(String(augs[k]))) this.#epochFlipsOnly = false;
        }
      }
      if (keys.includes(undefined)) {
        this.#say(
          "unknown",
          "Teacher cache: some samples have no known augmentation outcome (a Lambda, a dataset other than an ImageFolder, or a transform that does not record what it drew), so they are keyed by a hash of their pixels",
        );
      }
    }
    if (keys.includes(undefined)) {
      this.#epochFlipsOnly = false;
      const data = images.data() as Float32Array;
      const words = new Uint32Array(data.buffer, data.byteOffset, data.length);
      const per = data.length / Math.max(b, 1);
      for (let k = 0; k < b; k++) {
        keys[k] ??= "h" + hashWords(words, k * per, (k + 1) * per);
      }
    }
    return keys as string[];
  }

  /**
   * The teacher's logits for a batch: cached rows where the sample (and
   * augmentation state) was seen before, the teacher run on the rest. No
   * gradient flows; the result is a new tensor on the images' device.
   *
   * @param images `[B, C, H, W]`.
   * @param info The loader's per-sample identity, when it gives one.
   * @returns `[B, classes]`.
   */
  logits(images: Tensor, info?: BatchInfo): Tensor {
    if (this.teacher.training) {
      throw new RangeError(
        "Cannot cache the outputs of a teacher in training mode: dropout and batch statistics make them random; call teacher.eval()",
      );
    }
    const keys = this.#keys(images, info);
    const rows: (Float32Array | undefined)[] = keys.map((k) =>
      this.#map.get(k)
    );
    const miss: number[] = [];
    // a key repeated inside one batch is computed once
    const firstOf = new Map<string, number>();
    rows.forEach((r, i) => {
      if (r) return;
      if (!firstOf.has(keys[i])) {
        firstOf.set(keys[i], i);
        miss.push(i);
      }
    });
    this.#hits += keys.length - miss.length;
    this.#misses += miss.length;
    this.#epochHits += keys.length - miss.length;
    this.#epochMisses += miss.length;
    if (miss.length) {
      if (this.#unaugmented) {
        throw new RangeError(
          `Cannot find precomputed teacher logits for sample ${
            keys[miss[0]].slice(1)
          }: precompute() covered a different dataset`,
        );
      }
      const t0 = performance.now();
      const out = noGrad(() =>
        tidy(() => {
          const sub = miss.length === keys.length ? images : indexSelect(
            images,
            0,
            tensor(Int32Array.from(miss), { device: images.device }),
          );
          return this.teacher.call(sub);
        })
      );
      const data = out.data() as Float32Array;
      const c = out.shape[1];
      out.dispose();
      this.#teacherMs += performance.now() - t0;
      miss.forEach((i, k) => {
        const row = data.slice(k * c, (k + 1) * c);
        rows[i] = row;
        if (this.#map.size < this.#max) this.#map.set(keys[i], row);
      });
      rows.forEach((r, i) => {
        if (!r) rows[i] = rows[firstOf.get(keys[i])!];
      });
    }
    const c = rows[0]!.length;
    const flat = new Float32Array(keys.length * c);
    rows.forEach((r, i) => flat.set(r!, i * c));
    return tensor(flat, { shape: [keys.length, c], device: images.device });
  }

  /**
   * Called by the trainer at the end of each epoch: after the second epoch,
   * says once when the cache is not paying (the augmentation is continuous).
   *
   * @param epoch The 0-based epoch that ended.
   */
  endEpoch(epoch: number): void {
    const total = this.#epochHits + this.#epochMisses;
    if (
      epoch >= 1 && total > 0 && this.#epochHits / total < 0.5 &&
      this.#epochFlipsOnly
    ) {
      this.#say(
        "flips",
        `Teacher cache: only ${
          (100 * this.#epochHits / total).toFixed(0)
        }% hits in epoch ${
          epoch + 1
        }: the only augmentation is a random flip, so each image has 2 states and this epoch drew many in a state not seen before; each state runs the teacher once, so the hit rate climbs in the next epochs`,
      );
    } else if (epoch >= 1 && total > 0 && this.#epochHits / total < 0.5) {
      this.#say(
        "continuous",
        `Teacher cache: only ${
          (100 * this.#epochHits / total).toFixed(0)
        }% hits in epoch ${
          epoch + 1
        }: the augmentation does not repeat (random crops, colour jitter, ...), so the teacher runs on most batches. Precompute the unaugmented views (cache.precompute(dataset) with a loader giving sample indices) or turn the cache off`,
      );
    }
    this.#epochHits = this.#epochMisses = 0;
    this.#epochFlipsOnly = true;
  }

  /**
   * Fills the cache with the teacher's logits of every item of a dataset
   * (typically the training set with the evaluation transform: the
   * unaugmented views). Afterwards lookups go by `BatchInfo.indices` alone,
   * and the cache says so once.
   *
   * @param dataset Items `[image, label]`; item `i` answers index `i`.
   * @param options `batchSize` of the teacher's passes (default 64).
   */
  async precompute(
    dataset: IndexedDataset,
    options: { batchSize?: number } = {},
  ): Promise<void> {
    if (this.teacher.training) {
      throw new RangeError(
        "Cannot precompute the outputs of a teacher in training mode; call teacher.eval()",
      );
    }
    const bs = options.batchSize ?? 64;
    this.#map.clear();
    this.#precomputedSource = undefined;
    for (let off = 0; off < dataset.length; off += bs) {
      const items = await Promise.all(
        Array.from(
          { length: Math.min(bs, dataset.length - off) },
          (_, k) => dataset.get(off + k),
        ),
      );
      const t0 = performance.now();
      const out = noGrad(() =>
        tidy(() => this.teacher.call(stack(items.map(([x]) => x))))
      );
      const data = out.data() as Float32Array;
      const c = out.shape[1];
      out.dispose();
      for (const [x] of items) x.dispose();
      this.#teacherMs += performance.now() - t0;
      items.forEach((_, k) => {
        this.#map.set(`i${off + k}`, data.slice(k * c, (k + 1) * c));
      });
    }
    this.#unaugmented = true;
    this.#say(
      "unaugmented",
      `Teacher cache: precomputed the teacher's logits of the ${dataset.length} unaugmented training images; the student sees augmented views, the teacher's soft labels are those of the unaugmented ones`,
    );
  }
}
