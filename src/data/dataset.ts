/**
 * The dataset protocol (`length` and `get(i)`, PyTorch's map-style
 * `Dataset`) and `Subset`.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { checkIndex } from "./_check.ts";

/**
 * A map-style dataset, as PyTorch's `torch.utils.data.Dataset`: `length`
 * items, item `i` from `get(i)`. `DataLoader` batches any dataset whose items
 * are `[image tensor, label]`.
 */
export interface Dataset<T = [Tensor, number]> {
  /** Number of items. */
  readonly length: number;
  /**
   * Returns one item.
   *
   * @param index An index in `[0, length)`.
   * @returns The item (or a promise of it).
   */
  get(index: number): T | Promise<T>;
  /** Labels of every item, when the dataset knows them without loading. */
  readonly targets?: readonly number[];
}

/**
 * A dataset's items at the given indices, as `torch.utils.data.Subset`.
 * `randomSplit` and `stratifiedSplit` return these. A `Subset` of an
 * `ImageFolder` keeps its fast loading path (Workers, cache).
 */
export class Subset<T = [Tensor, number]> implements Dataset<T> {
  /** The wrapped dataset. */
  readonly dataset: Dataset<T>;
  /** Indices into `dataset`. */
  readonly indices: readonly number[];

  /**
   * A view of `dataset` restricted to `indices`.
   *
   * @param dataset The dataset.
   * @param indices Indices into it, each in `[0, dataset.length)`.
   */
  constructor(dataset: Dataset<T>, indices: readonly number[]) {
    for (const i of indices) {
      if (!Number.isInteger(i) || i < 0 || i >= dataset.length) {
        throw new RangeError(
          `Subset: index ${i} is out of range for a dataset of length ${dataset.length}`,
        );
      }
    }
    this.dataset = dataset;
    this.indices = [...indices];
  }

  /** Number of items. */
  get length(): number {
    return this.indices.length;
  }

  /**
   * Returns the item at `indices[index]` of the underlying dataset.
   *
   * @param index An index in `[0, length)`.
   * @returns Item `indices[index]` of the wrapped dataset.
   */
  get(index: number): T | Promise<T> {
    checkIndex(index, this.length);
    return this.dataset.get(this.indices[index]);
  }

  /** The wrapped dataset's labels at `indices`, when it has `targets`. */
  get targets(): readonly number[] | undefined {
    const t = this.dataset.targets;
    return t ? this.indices.map((i) => t[i]) : undefined;
  }
}
