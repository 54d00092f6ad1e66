/**
 * The one batch type and the loader protocol: what `DataLoader` and
 * `TensorLoader` yield, and what the trainer, `evaluate` and the teacher
 * cache read. A loader is any async iterable of `[images, labels]` with a
 * `length` (batches per epoch); it may add a third element, a `BatchInfo`
 * naming each sample (its dataset index and augmentation state), which the
 * teacher cache uses as its key.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import type { Tensor } from "../tensor.ts";

/** Optional per-sample identity a loader may attach to a batch. */
export interface BatchInfo {
  /** Each sample's index in its dataset. */
  indices?: readonly number[];
  /**
   * Each sample's augmentation state (e.g. `"flip"` / `"none"`), alongside
   * `indices`. Without it the indices alone key the teacher cache, which
   * then holds the logits of whichever view it saw (see `TeacherCache`).
   */
  augmentations?: readonly (string | number)[];
  /** Ready-made cache keys, one per sample (overrides the two above). */
  keys?: readonly string[];
}

/**
 * A batch: images `[B, C, H, W]` float32, labels `[B]` int32, and
 * optionally each sample's identity.
 */
export type Batch = [images: Tensor, labels: Tensor, info?: BatchInfo];

/** Anything that yields batches and knows how many per epoch. */
export type Loader = AsyncIterable<Batch> & { readonly length: number };

/**
 * The batch's images and labels on `device` (the same tensors when already
 * there).
 *
 * @param batch The batch.
 * @param device The target device, or undefined to leave them.
 * @returns `[images, labels]`.
 */
export function moveBatch(
  batch: Batch,
  device?: DeviceName,
): [Tensor, Tensor] {
  const [x, y] = batch;
  if (!device) return [x, y];
  return [
    x.device === device ? x : x.to(device),
    y.device === device ? y : y.to(device),
  ];
}
