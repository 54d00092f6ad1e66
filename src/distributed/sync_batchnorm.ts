/**
 * `SyncBatchNorm`, as PyTorch's: batch statistics over every rank's batch.
 *
 * @module
 */

import { noGrad, record } from "../autograd.ts";
import { BatchNorm2d } from "../nn/layers.ts";
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor.ts";
import { ShapeError } from "../errors.ts";
import { maybeGroup } from "./_group.ts";
import { allReduce, allReduceNumbers } from "./collectives.ts";

/**
 * Sums `t` across ranks; the gradient of the sum is the sum of every rank's
 * gradient (the backward pass all-reduces too).
 *
 * @param t The tensor (same shape on every rank).
 * @returns A new tensor holding the sum.
 */
export function allReduceSumWithGrad(t: Tensor): Tensor {
  const out = noGrad(() => allReduce(t.clone(), "sum"));
  return record(out, [t], "allReduceSum", (g) => [allReduce(g.clone(), "sum")]);
}

/**
 * Batch normalisation whose training statistics (per-channel mean and
 * variance) are computed over the batches of every rank, as
 * `torch.nn.SyncBatchNorm`; the backward pass all-reduces the matching
 * sums, so gradients equal those of one process holding every rank's
 * batch. In evaluation mode, or in a world of one, it is a `BatchNorm2d`.
 * Opt in with {@linkcode SyncBatchNorm.convertSyncBatchNorm}; it costs two
 * small all-reduces per layer in the forward pass and two in the backward
 * pass.
 */
export class SyncBatchNorm extends BatchNorm2d {
  /**
   * Replaces every `BatchNorm2d` in `module` (and `module` itself, when it
   * is one) with a `SyncBatchNorm` sharing its parameters and buffers.
   *
   * @param module The model.
   * @returns `module`, or the replacement when `module` is a `BatchNorm2d`.
   */
  static convertSyncBatchNorm<M extends Module>(module: M): M | SyncBatchNorm {
    if (module instanceof BatchNorm2d && !(module instanceof SyncBatchNorm)) {
      return SyncBatchNorm.from(module);
    }
    for (const m of module.modules()) {
      for (const [k, v] of Object.entries(m)) {
        if (v instanceof BatchNorm2d && !(v instanceof SyncBatchNorm)) {
          (m as unknown as Record<string, unknown>)[k] = SyncBatchNorm.from(v);
        }
      }
    }
    return module;
  }

  /**
   * A `SyncBatchNorm` sharing `bn`'s parameters, buffers and settings.
   *
   * @param bn The layer to replace.
   * @returns The replacement.
   */
  static from(bn: BatchNorm2d): SyncBatchNorm {
    const s = new SyncBatchNorm(bn.numFeatures, {
      eps: bn.eps,
      momentum: bn.momentum,
      affine: bn.weight !== null,
      trackRunningStats: bn.runningMean !== null,
    });
    for (
      const t of [
        s.weight,
        s.bias,
        s.runningMean,
        s.runningVar,
        s.numBatchesTracked,
      ]
    ) {
      t?.dispose();
    }
    s.weight = bn.weight;
    s.bias = bn.bias;
    s.runningMean = bn.runningMean;
    s.runningVar = bn.runningVar;
    s.numBatchesTracked = bn.numBatchesTracked;
    s.afterLoad();
    s.training = bn.training;
    return s;
  }

  /**
   * Normalises with statistics over every rank's batch (training, world
   * size above one), else as `BatchNorm2d`.
   *
   * @param x NCHW input.
   * @returns The normalised input.
   */
  override forward(x: Tensor): Tensor {
    const g = maybeGroup();
    if (!this.training || !g || g.worldSize === 1) return super.forward(x);
    return this.#sync(x);
  }

  /**
   * `relu(forward(x))`.
   *
   * @param x NCHW input.
   * @returns The normalised input after ReLU.
   */
  override forwardRelu(x: Tensor): Tensor {
    const g = maybeGroup();
    if (!this.training || !g || g.worldSize === 1) {
      return super.forwardRelu(x);
    }
    return this.#sync(x).relu();
  }

  #sync(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(
        `SyncBatchNorm(${this.numFeatures}): expected an NCHW input with ${this.numFeatures} channels, got [${
          x.shape.join(", ")
        }]`,
      );
    }
    const c = this.numFeatures;
    const [count] = allReduceNumbers([x.shape[0] * x.shape[2] * x.shape[3]]);
    if (count <= 1) {
      throw new ShapeError(
        `SyncBatchNorm(${c}): expected more than 1 value per channel over all ranks when training, got input [${
          x.shape.join(", ")
        }] (${count} in total)`,
      );
    }
    const dims = [0, 2, 3];
    // two passes (mean, then the centred squares) for float32 accuracy
    const mean = allReduceSumWithGrad(x.sum(dims)).div(count);
    const xc = x.sub(mean.reshape([1, c, 1, 1]));
    const variance = allReduceSumWithGrad(xc.square().sum(dims)).div(count);
    let y = xc.mul(variance.add(this.eps).rsqrt().reshape([1, c, 1, 1]));
    if (this.weight) y = y.mul(this.weight.reshape([1, c, 1, 1]));
    if (this.bias) y = y.add(this.bias.reshape([1, c, 1, 1]));
    if (this.runningMean && this.runningVar) {
      noGrad(() => {
        const tracked = this.numBatchesTracked
          ? this.numBatchesTracked.item() + 1
          : 1;
        if (this.numBatchesTracked) {
          this.numBatchesTracked.backend.fill(
            this.numBatchesTracked.storage,
            tracked,
          );
          this.afterLoad(); // BatchNorm2d's own counter follows the buffer
        }
        const m = this.momentum ?? 1 / tracked;
        const rm = this.runningMean!, rv = this.runningVar!;
        const newMean = rm.mul(1 - m).add(mean.detach().mul(m));
        const unbiased = variance.detach().mul(count / (count - 1));
        const newVar = rv.mul(1 - m).add(unbiased.mul(m));
        rm.backend.assign(rm.storage, newMean.storage);
        rv.backend.assign(rv.storage, newVar.storage);
        newMean.dispose();
        newVar.dispose();
      });
    }
    return y;
  }
}
