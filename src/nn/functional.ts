/**
 * `nn.functional`: the functional forms of the layers and the losses, as
 * `torch.nn.functional`.
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
