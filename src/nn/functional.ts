/**
 * `nn.functional`: stateless functions, as `torch.nn.functional`. The
 * functional forms of the layers (`conv2d`, `linear`, `batchNorm`,
 * `maxPool2d`, `avgPool2d`, `adaptiveAvgPool2d`, `dropout`), the
 * activations (`relu`, `sigmoid`, `tanh`, `softmax`, `logSoftmax`) and the
 * losses (`crossEntropy`, `nllLoss`, `klDiv`, `mseLoss`,
 * `binaryCrossEntropyWithLogits`), each taking its weights and options as
 * arguments instead of holding them.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import * as ops from "../ops/mod.ts";

/** Reduction of a loss over the batch: `"none"`, `"mean"` or `"sum"`. */
export type Reduction = ops.Reduction;
/** Options of {@linkcode conv2d}: bias, stride, padding, dilation, groups. */
export type Conv2dOptions = ops.Conv2dOptions;
/** Options of {@linkcode maxPool2d}: stride, padding, dilation, ceil mode. */
export type MaxPool2dOptions = ops.MaxPool2dOptions;
/** Options of {@linkcode avgPool2d}: stride, padding, ceil mode, count_include_pad. */
export type AvgPool2dOptions = ops.AvgPool2dOptions;
/** Options of {@linkcode batchNorm}: affine weights, training, momentum, eps. */
export type BatchNormOptions = ops.BatchNormOptions;
/** Options of {@linkcode nllLoss}: reduction, ignore index, class weights. */
export type NllLossOptions = ops.NllLossOptions;
/** Options of {@linkcode crossEntropy}: those of {@linkcode nllLoss} and label smoothing. */
export type CrossEntropyOptions = ops.CrossEntropyOptions;
/** Options of {@linkcode klDiv}: reduction (`"batchmean"` included), log target. */
export type KlDivOptions = ops.KlDivOptions;
/** Options of {@linkcode binaryCrossEntropyWithLogits}: reduction, pos weight. */
export type BceWithLogitsOptions = ops.BceWithLogitsOptions;

/**
 * 2-D convolution of `[N, C, H, W]` with `[O, C/groups, kH, kW]` weights,
 * as `torch.nn.functional.conv2d`.
 *
 * @example
 * ```ts
 * import { nn, ones } from "@kdeno/kdeno";
 * const y = nn.functional.conv2d(ones([1, 1, 4, 4]), ones([2, 1, 3, 3]), { padding: 1 });
 * // y.shape: [1, 2, 4, 4]
 * ```
 *
 * @param x Input `[N, C, H, W]`.
 * @param weight Kernels `[O, C/groups, kH, kW]`.
 * @param options Bias, stride, padding, dilation, groups.
 * @returns `[N, O, H', W']`.
 */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  options: Conv2dOptions = {},
): Tensor {
  return ops.conv2d(x, weight, options);
}

/**
 * `y = x @ weight^T + bias`, as `torch.nn.functional.linear`.
 *
 * @param x Input `[..., in]`.
 * @param weight `[out, in]`.
 * @param options `bias` `[out]`.
 * @returns `[..., out]`.
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  options: { bias?: Tensor | null } = {},
): Tensor {
  return ops.linear(x, weight, options);
}

/**
 * Batch normalisation over the channels of `[N, C, ...]`, as
 * `torch.nn.functional.batch_norm`: batch statistics in training (updating
 * the running ones), the running statistics in evaluation.
 *
 * @param x Input `[N, C, ...]`.
 * @param runningMean Running mean `[C]`, or null.
 * @param runningVar Running variance `[C]`, or null.
 * @param options Weight, bias, training, momentum, eps.
 * @returns The normalised input.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  options: BatchNormOptions = {},
): Tensor {
  return ops.batchNorm(x, runningMean, runningVar, options);
}

/**
 * 2-D max pooling, as `torch.nn.functional.max_pool2d`.
 *
 * @param x Input `[N, C, H, W]`.
 * @param kernelSize Window size.
 * @param options Stride (default: the window), padding, dilation, ceil mode.
 * @returns The pooled input.
 */
export function maxPool2d(
  x: Tensor,
  kernelSize: number | [number, number],
  options: MaxPool2dOptions = {},
): Tensor {
  return ops.maxPool2d(x, kernelSize, options);
}

/**
 * 2-D average pooling, as `torch.nn.functional.avg_pool2d`.
 *
 * @param x Input `[N, C, H, W]`.
 * @param kernelSize Window size.
 * @param options Stride (default: the window), padding, ceil mode,
 *   `countIncludePad`.
 * @returns The pooled input.
 */
export function avgPool2d(
  x: Tensor,
  kernelSize: number | [number, number],
  options: AvgPool2dOptions = {},
): Tensor {
  return ops.avgPool2d(x, kernelSize, options);
}

/**
 * Adaptive average pooling to a fixed output size, as
 * `torch.nn.functional.adaptive_avg_pool2d`.
 *
 * @param x Input `[N, C, H, W]`.
 * @param outputSize Output height and width (one number: square).
 * @returns `[N, C, outH, outW]`.
 */
export function adaptiveAvgPool2d(
  x: Tensor,
  outputSize: number | [number, number],
): Tensor {
  return ops.adaptiveAvgPool2d(x, outputSize);
}

/**
 * Zeroes each element with probability `p` and scales the rest by
 * `1 / (1 - p)` during training, as `torch.nn.functional.dropout`.
 *
 * @param x Input.
 * @param options `p` (default 0.5) and `training` (default true).
 * @returns The masked input.
 */
export function dropout(
  x: Tensor,
  options: { p?: number; training?: boolean } = {},
): Tensor {
  return ops.dropout(x, options);
}

/**
 * `max(x, 0)`, as `torch.nn.functional.relu`.
 *
 * @param x Input.
 * @returns The rectified input.
 */
export function relu(x: Tensor): Tensor {
  return ops.relu(x);
}

/**
 * `1 / (1 + exp(-x))`, as `torch.sigmoid`.
 *
 * @param x Input.
 * @returns The logistic of the input.
 */
export function sigmoid(x: Tensor): Tensor {
  return ops.sigmoid(x);
}

/**
 * Hyperbolic tangent, as `torch.tanh`.
 *
 * @param x Input.
 * @returns `tanh(x)`.
 */
export function tanh(x: Tensor): Tensor {
  return ops.tanh(x);
}

/**
 * Softmax along `dim`, as `torch.nn.functional.softmax`.
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@kdeno/kdeno";
 * const p = nn.functional.softmax(tensor([[1, 2, 3]]), 1);
 * // each row sums to 1
 * ```
 *
 * @param x Input.
 * @param dim The dimension that sums to 1.
 * @returns Probabilities.
 */
export function softmax(x: Tensor, dim: number): Tensor {
  return ops.softmax(x, dim);
}

/**
 * Log of the softmax along `dim`, computed stably, as
 * `torch.nn.functional.log_softmax`.
 *
 * @param x Input.
 * @param dim The dimension normalised over.
 * @returns Log-probabilities.
 */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return ops.logSoftmax(x, dim);
}

/**
 * Cross-entropy of logits `[N, C]` against class indices `[N]`, as
 * `torch.nn.functional.cross_entropy`.
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@kdeno/kdeno";
 * const loss = nn.functional.crossEntropy(tensor([[2, 0], [0, 2]]), tensor([0, 1], { dtype: "int32" }));
 * ```
 *
 * @param logits Unnormalised scores `[N, C]`.
 * @param target Class indices `[N]`.
 * @param options Reduction, ignore index, class weights, label smoothing.
 * @returns The loss.
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  return ops.crossEntropy(logits, target, options);
}

/**
 * Negative log-likelihood of log-probabilities `[N, C]` against class
 * indices `[N]`, as `torch.nn.functional.nll_loss`.
 *
 * @param logProbs Log-probabilities `[N, C]`.
 * @param target Class indices `[N]`.
 * @param options Reduction, ignore index, class weights.
 * @returns The loss.
 */
export function nllLoss(
  logProbs: Tensor,
  target: Tensor,
  options: NllLossOptions = {},
): Tensor {
  return ops.nllLoss(logProbs, target, options);
}

/**
 * Kullback-Leibler divergence with `input` as log-probabilities, as
 * `torch.nn.functional.kl_div`.
 *
 * @param input Log-probabilities.
 * @param target Probabilities (log-probabilities with `logTarget`).
 * @param options Reduction (`"batchmean"` is the mathematically right one),
 *   `logTarget`.
 * @returns The divergence.
 */
export function klDiv(
  input: Tensor,
  target: Tensor,
  options: KlDivOptions = {},
): Tensor {
  return ops.klDiv(input, target, options);
}

/**
 * Mean squared error, as `torch.nn.functional.mse_loss`.
 *
 * @param input Predictions.
 * @param target Targets, same shape.
 * @param options Reduction.
 * @returns The loss.
 */
export function mseLoss(
  input: Tensor,
  target: Tensor,
  options: { reduction?: Reduction } = {},
): Tensor {
  return ops.mseLoss(input, target, options);
}

/**
 * Binary cross-entropy of logits, computed stably, as
 * `torch.nn.functional.binary_cross_entropy_with_logits`.
 *
 * @param logits Unnormalised scores.
 * @param target Targets in [0, 1], same shape.
 * @param options Reduction, `posWeight`.
 * @returns The loss.
 */
export function binaryCrossEntropyWithLogits(
  logits: Tensor,
  target: Tensor,
  options: BceWithLogitsOptions = {},
): Tensor {
  return ops.binaryCrossEntropyWithLogits(logits, target, options);
}
