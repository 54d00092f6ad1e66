/**
 * `nn`: modules, layers, initialisers and `nn.functional`.
 *
 * @module
 */

export * as functional from "./functional.ts";
export * as init from "./init.ts";
export {
  Buffer,
  type ForwardHook,
  type FreezeOptions,
  type LoadResult,
  type LoadStateDictOptions,
  Module,
  Parameter,
} from "./module.ts";
export {
  AdaptiveAvgPool2d,
  AvgPool2d,
  BatchNorm2d,
  type BatchNormOptions as BatchNorm2dOptions,
  Conv2d,
  type Conv2dLayerOptions,
  Dropout,
  Flatten,
  Identity,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
} from "./layers.ts";
