/**
 * cuDNN batch norm (spatial mode) on device addresses, with the contract's
 * {@link BatchNormGeometry} for the sizes, `eps` and `momentum` (its
 * `activation` is not applied here: `fused.ts` composes it). See the "Batch
 * norm" decision in `cudnn.ts` for how cuDNN's factors map to PyTorch's.
 *
 * @module
 */

import type { BatchNormGeometry } from "../backend.ts";
import { CUDNN_BATCHNORM_SPATIAL } from "../../../ffi/cudnn.ts";
import {
  type CudnnContext,
  ONE,
  optPtr,
  ptr,
  ZERO,
} from "./cudnn_descriptors.ts";

/** Device addresses of a training-mode batch norm. */
export interface CudnnBatchNormTrain {
  /** Input `[n, c, hw]`. */
  x: bigint;
  /** Output (may equal x). */
  y: bigint;
  /** Scale `[c]` (ones when the layer has none). */
  weight: bigint;
  /** Shift `[c]` (zeros when the layer has none). */
  bias: bigint;
  /** Running mean `[c]`, updated in place; null (then also runningVar). */
  runningMean: bigint | null;
  /** Running variance `[c]`, updated in place; or null. */
  runningVar: bigint | null;
  /** Out: batch mean `[c]`. */
  mean: bigint;
  /** Out: batch `1/sqrt(var + eps)` `[c]`. */
  invStd: bigint;
}

/** Device addresses of an inference-mode batch norm. */
export interface CudnnBatchNormEval {
  /** Input `[n, c, hw]`. */
  x: bigint;
  /** Output. */
  y: bigint;
  /** Scale `[c]` (ones when the layer has none). */
  weight: bigint;
  /** Shift `[c]` (zeros when the layer has none). */
  bias: bigint;
  /** Mean `[c]`. */
  runningMean: bigint;
  /** Variance `[c]`. */
  runningVar: bigint;
}

/** Device addresses of a batch-norm backward pass. */
export interface CudnnBatchNormBackward {
  /** The forward input. */
  x: bigint;
  /** Output gradient. */
  dy: bigint;
  /** Scale `[c]` (ones when the layer has none). */
  weight: bigint;
  /** Out: input gradient. */
  dx: bigint;
  /** Out: scale gradient `[c]`. */
  dweight: bigint;
  /** Out: shift gradient `[c]`. */
  dbias: bigint;
  /** The forward's saved mean. */
  mean: bigint;
  /** The forward's saved `1/sqrt(var + eps)`. */
  invStd: bigint;
}

/**
 * Training-mode batch norm: normalises with the batch statistics, updates
 * the running buffers when given and saves the batch mean and inverse std.
 *
 * @param ctx The handle and its descriptors.
 * @param b The buffers.
 * @param g Sizes, `eps` (>= 0 in cuDNN 9) and `momentum` (PyTorch's).
 */
export function batchNormTrain(
  ctx: CudnnContext,
  b: CudnnBatchNormTrain,
  g: BatchNormGeometry,
): void {
  if ((b.runningMean === null) !== (b.runningVar === null)) {
    throw new TypeError(
      "Cannot run cuDNN batch norm: runningMean and runningVar must both " +
        "be given or both be null",
    );
  }
  const [xd, bn] = ctx.descriptors.batchNorm(g.n, g.c, g.hw);
  ctx.check(
    ctx.api.cudnnBatchNormalizationForwardTraining(
      ctx.handle,
      CUDNN_BATCHNORM_SPATIAL,
      ONE,
      ZERO,
      xd,
      ptr(b.x),
      xd,
      ptr(b.y),
      bn,
      ptr(b.weight),
      ptr(b.bias),
      g.momentum,
      optPtr(b.runningMean),
      optPtr(b.runningVar),
      g.eps,
      ptr(b.mean),
      ptr(b.invStd),
    ),
    "cudnnBatchNormalizationForwardTraining",
  );
}

/**
 * Inference-mode batch norm with fixed statistics:
 * `y = weight * (x - mean) / sqrt(var + eps) + bias`.
 *
 * @param ctx The handle and its descriptors.
 * @param b The buffers.
 * @param g Sizes and `eps`.
 */
export function batchNormEval(
  ctx: CudnnContext,
  b: CudnnBatchNormEval,
  g: BatchNormGeometry,
): void {
  const [xd, bn] = ctx.descriptors.batchNorm(g.n, g.c, g.hw);
  ctx.check(
    ctx.api.cudnnBatchNormalizationForwardInference(
      ctx.handle,
      CUDNN_BATCHNORM_SPATIAL,
      ONE,
      ZERO,
      xd,
      ptr(b.x),
      xd,
      ptr(b.y),
      bn,
      ptr(b.weight),
      ptr(b.bias),
      ptr(b.runningMean),
      ptr(b.runningVar),
      g.eps,
    ),
    "cudnnBatchNormalizationForwardInference",
  );
}

/**
 * Gradients of training-mode batch norm from the saved batch statistics;
 * `dx`, `dweight` and `dbias` are overwritten.
 *
 * @param ctx The handle and its descriptors.
 * @param b The buffers.
 * @param g Sizes and the forward's `eps`.
 */
export function batchNormBackward(
  ctx: CudnnContext,
  b: CudnnBatchNormBackward,
  g: BatchNormGeometry,
): void {
  const [xd, bn] = ctx.descriptors.batchNorm(g.n, g.c, g.hw);
  ctx.check(
    ctx.api.cudnnBatchNormalizationBackward(
      ctx.handle,
      CUDNN_BATCHNORM_SPATIAL,
      ONE,
      ZERO,
      ONE,
      ZERO,
      xd,
      ptr(b.x),
      xd,
      ptr(b.dy),
      xd,
      ptr(b.dx),
      bn,
      ptr(b.weight),
      ptr(b.dweight),
      ptr(b.dbias),
      g.eps,
      ptr(b.mean),
      ptr(b.invStd),
    ),
    "cudnnBatchNormalizationBackward",
  );
}
