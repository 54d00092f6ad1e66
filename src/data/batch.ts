/**
 * The one batch type and the loader protocol: what `DataLoader` and
 * `TensorLoader` yield, and what the trainer, `evaluate` and the teacher
 * cache read. A loader is any async iterable of `[images, labels]` with a
 * `length` (batches per epoch); it may add a third element, a `BatchInfo`
 * naming each sample (its dataset index and augmentation outcome), which the
 * teacher cache uses as its key instead of hashing the pixels. `DataLoader`
 * and `TensorLoader` attach one to every batch.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import type { Tensor } from "../tensor.ts";

/**
 * Optional per-sample identity a loader may attach to a batch.
 *
 * The contract: two samples with the same `source`, index and augmentation
 * outcome are the same image, pixel for pixel. The teacher cache relies on
 * it and does not look at the pixels of such samples.
 */
export interface BatchInfo {
  /** Each sample's index in its dataset. */
  indices?: readonly number[];
  /**
   * Each sample's augmentation outcome, alongside `indices`: what the random
   * transforms did, not their seed (`DataLoader`: `"rrcrop=2,3,20,20
   * hflip=1"`, see `transforms.RecordingGenerator`; `TensorLoader`: `"flip"`
   * or `"none"`), or `null` where it cannot be described exactly (a
   * `Lambda`, a random transform that does not record its outcome). Without
   * it, or for a `null` entry, the teacher cache keys the sample by its
   * pixels.
   */
  augmentations?: readonly (string | number | null)[];
  /**
   * What the indices refer to, compared with `===` (`DataLoader`: its
   * dataset), so that batches of two datasets sharing one teacher cache do
   * not share entries. Default: one unnamed source.
   */
  source?: unknown;
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
