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
  memory,
  type NestedArray,
  Tensor,
  type TensorContainer,
  tidy,
} from "./src/tensor.ts";
export { isGradEnabled, noGrad, setGradEnabled } from "./src/autograd.ts";
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
  reshape,
  rsqrt,
  sigmoid,
  slice,
  softmax,
  logSoftmax,
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
  where,
  zeros,
  zerosLike,
} from "./src/ops/mod.ts";
export { Generator, globalGenerator, manualSeed } from "./src/random.ts";
export {
  BackendUnavailableError,
  CheckpointError,
  DataError,
  DTypeError,
  ShapeError,
  TensorStateError,
} from "./src/errors.ts";
export type { DeviceName, DType, TypedArray } from "./src/backend/backend.ts";
export {
  backendStatus,
  currentDevice,
  setBackend,
} from "./src/backend/registry.ts";
export * as nn from "./src/nn/mod.ts";
export * as models from "./src/nn/models/mod.ts";
export * as optim from "./src/optim/mod.ts";
export * as io from "./src/io/mod.ts";
