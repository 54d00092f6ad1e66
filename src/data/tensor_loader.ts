/**
 * `TensorLoader`: batches over images and labels held in memory, with
 * shuffling and random horizontal flips drawn from the process-wide
 * generator.
 *
 * @module
 */

import { tensor } from "../ops/creation.ts";
import { globalGenerator } from "../random.ts";
import type { Tensor } from "../tensor.ts";
import type { Batch, Loader } from "./batch.ts";

/** Options of `TensorLoader`. */
export interface TensorLoaderOptions {
  /** Samples per batch (default 32). */
  batchSize?: number;
  /** A new order each epoch, drawn from the process-wide generator. */
  shuffle?: boolean;
  /**
   * Flip each image horizontally with probability 1/2 (the tutorial's
   * `RandomHorizontalFlip`), drawn from the process-wide generator and
   * reported in `BatchInfo.augmentations` as `"flip"` or `"none"`.
   */
  randomFlip?: boolean;
  /** Drop a last smaller batch (default false). */
  dropLast?: boolean;
}

/**
 * Batches over images and labels held in memory, yielding `[images,
 * labels, { indices, augmentations }]`. Its randomness (order, flips) comes
 * from the process-wide generator, so a checkpoint's RNG state reproduces
 * it on resume.
 *
 * @example Two batches of a tiny set
 * ```ts
 * import { data, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const x = tensor(new Float32Array(3 * 1 * 2 * 2), { shape: [3, 1, 2, 2] });
 * const y = tensor(new Int32Array([0, 1, 0]));
 * const loader = new data.TensorLoader(x, y, { batchSize: 2 });
 * const sizes = [];
 * for await (const [images] of loader) sizes.push(images.shape[0]);
 * assert.deepEqual(sizes, [2, 1]);
 * assert.equal(loader.length, 2);
 * ```
 */
export class TensorLoader implements Loader {
  /** Samples per batch. */
  readonly batchSize: number;
  /** Whether each epoch is shuffled. */
  readonly shuffle: boolean;
  /** Whether images are randomly flipped. */
  readonly randomFlip: boolean;
  /** Whether the last smaller batch is dropped. */
  readonly dropLast: boolean;
  #x: Float32Array;
  #y: Int32Array;
  #shape: number[];

  /**
   * A loader over tensors held in memory.
   *
   * @param images float32 `[N, C, H, W]` (copied to the host).
   * @param labels int32 `[N]`.
   * @param options batchSize, shuffle, randomFlip, dropLast.
   */
  constructor(
    images: Tensor,
    labels: Tensor,
    options: TensorLoaderOptions = {},
  ) {
    if (images.ndim !== 4 || labels.ndim !== 1) {
      throw new RangeError(
        `Cannot make a TensorLoader: images [${
          images.shape.join(", ")
        }] must be [N, C, H, W] and labels [${labels.shape.join(", ")}] [N]`,
      );
    }
    if (images.shape[0] !== labels.shape[0]) {
      throw new RangeError(
        `Cannot make a TensorLoader: ${images.shape[0]} images and ${
          labels.shape[0]
        } labels`,
      );
    }
    this.#x = Float32Array.from(images.data());
    this.#y = Int32Array.from(labels.data());
    this.#shape = [...images.shape];
    this.batchSize = options.batchSize ?? 32;
    this.shuffle = options.shuffle ?? false;
    this.randomFlip = options.randomFlip ?? false;
    this.dropLast = options.dropLast ?? false;
  }

  /** Number of samples. */
  get size(): number {
    return this.#shape[0];
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.#shape[0];
    return this.dropLast
      ? Math.floor(n / this.batchSize)
      : Math.ceil(n / this.batchSize);
  }

  /**
   * Yields one epoch of `[inputs, labels]` batches.
   *
   * @returns One epoch of batches.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    const [n, c, h, w] = this.#shape;
    const order = Array.from({ length: n }, (_, i) => i);
    if (this.shuffle) {
      for (let i = n - 1; i > 0; i--) {
        const j = globalGenerator.below(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    const per = c * h * w;
    for (let off = 0; off < n; off += this.batchSize) {
      const idx = order.slice(off, off + this.batchSize);
      if (idx.length < this.batchSize && this.dropLast) break;
      const out = new Float32Array(idx.length * per);
      const aug: string[] = [];
      idx.forEach((src, k) => {
        const flip = this.randomFlip && globalGenerator.uniform() < 0.5;
        aug.push(flip ? "flip" : "none");
        const from = this.#x.subarray(src * per, (src + 1) * per);
        if (!flip) {
          out.set(from, k * per);
          return;
        }
        for (let row = 0; row < c * h; row++) {
          for (let x = 0; x < w; x++) {
            out[k * per + row * w + x] = from[row * w + (w - 1 - x)];
          }
        }
      });
      const labels = Int32Array.from(idx, (i) => this.#y[i]);
      yield [
        tensor(out, { shape: [idx.length, c, h, w] }),
        tensor(labels, { shape: [idx.length] }),
        { indices: idx, augmentations: aug },
      ];
      await Promise.resolve();
    }
  }
}
