/**
 * kdeno: tensors with autograd, layers, optimizers and knowledge
 * distillation for Deno, on a TypeScript/OpenBLAS CPU backend or on NVIDIA
 * GPUs through cuBLAS and NVRTC.
 *
 * ```ts
 * import { nn, optim, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const model = new nn.Linear(2, 1);
 * const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
 * const x = tensor([[1, 2], [3, 4]]);
 * const y = tensor([[1], [2]]);
 * const loss = nn.functional.mseLoss(model.call(x), y);
 * loss.backward();
 * opt.step();
 * assert.ok(Number.isFinite(loss.item()));
 * ```
 *
 * @module
 */

export {
  keep,
  type NestedArray,
  StorageRef,
  Tensor,
  type TensorContainer,
  tidy,
} from "./src/tensor.ts";
export {
  collectGarbage,
  type CreationSite,
  type DeviceMemory,
  type Lifetime,
  memory,
  type MemoryInfo,
  type MemoryOptions,
} from "./src/memory.ts";
export {
  type BackwardOptions,
  type GradNode,
  isGradEnabled,
  noGrad,
  setGradEnabled,
} from "./src/autograd.ts";
export {
  abs,
  add,
  arange,
  argmax,
  argmin,
  cat,
  clamp,
  type CreateOptions,
  div,
  exp,
  expand,
  flatten,
  full,
  gather,
  indexSelect,
  log,
  logSoftmax,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  neg,
  ones,
  onesLike,
  permute,
  pow,
  rand,
  randint,
  randn,
  type ReduceOptions,
  reshape,
  rsqrt,
  sigmoid,
  slice,
  softmax,
  sqrt,
  squeeze,
  stack,
  std,
  sub,
  sum,
  tanh,
  tensor,
  type TensorLike,
  transpose,
  unsqueeze,
  variance,
  type VarOptions,
  where,
  zeros,
  zerosLike,
} from "./src/ops/mod.ts";
export { Generator, globalGenerator, manualSeed } from "./src/random.ts";
export { VERSION } from "./src/version.ts";
export {
  BackendUnavailableError,
  CheckpointError,
  DataError,
  DecompressionBombError,
  DTypeError,
  GraphFreedError,
  ShapeError,
  TensorStateError,
} from "./src/errors.ts";
export {
  type AllocatorStats,
  DeviceOutOfMemoryError,
} from "./src/backend/cuda/allocator.ts";
export type {
  AdamUpdate,
  AdaptivePool2dGeometry,
  Backend,
  BatchNormGeometry,
  BatchNormParams,
  BatchNormSaved,
  BinaryOp,
  Conv2dGeometry,
  DeviceName,
  DType,
  FusedActivation,
  Pool2dGeometry,
  ReduceOp,
  SgdUpdate,
  Storage,
  TypedArray,
  UnaryOp,
} from "./src/backend/backend.ts";
export {
  backendStatus,
  currentDevice,
  setBackend,
} from "./src/backend/registry.ts";
/** Modules, layers, initialisers and `nn.functional`. */
export * as nn from "./src/nn/mod.ts";
/** The tutorial's teacher (`resnet18`) and student (`StudentNet`). */
export * as models from "./src/nn/models/mod.ts";
/** Optimizers (`SGD`, `Adam`, `AdamW`) and learning-rate schedulers. */
export * as optim from "./src/optim/mod.ts";
/** Reading and writing tensors: safetensors. */
export * as io from "./src/io/mod.ts";
export * as data from "./src/data/mod.ts";
export * as transforms from "./src/data/transforms.ts";
/** Knowledge distillation: KD and feature losses, the teacher cache. */
export * as distill from "./src/distill/mod.ts";
/** Training: the `Trainer`, checkpoints, progress. */
export * as train from "./src/train/mod.ts";
/** Evaluation: metrics, statistics, cost, the HTML report. */
export * as evaluation from "./src/eval/mod.ts";
/** Studies: the distillation experiment over seeds, its verdict and report. */
export * as study from "./src/study/mod.ts";
