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

export {
  adaptiveAvgPool2d,
  avgPool2d,
  batchNorm,
  binaryCrossEntropyWithLogits,
  conv2d,
  crossEntropy,
  dropout,
  klDiv,
  linear,
  logSoftmax,
  maxPool2d,
  mseLoss,
  nllLoss,
  relu,
  sigmoid,
  softmax,
  tanh,
} from "../ops/mod.ts";
export type {
  AvgPool2dOptions,
  BatchNormOptions,
  BceWithLogitsOptions,
  Conv2dOptions,
  CrossEntropyOptions,
  KlDivOptions,
  MaxPool2dOptions,
  NllLossOptions,
  Reduction,
} from "../ops/mod.ts";
