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
export { getNumThreads, setNumThreads } from "./src/backend/cpu/_threads.ts";
/**
 * The CUDA device's memory counters in the style of `torch.cuda`:
 * `memoryStats`, `memoryAllocated`, `maxMemoryAllocated`, `memoryReserved`,
 * `maxMemoryReserved`, `resetPeakMemoryStats`, `emptyCache`, `isAvailable`.
 */
export * as cuda from "./src/backend/cuda/api.ts";
/**
 * Mixed precision in the style of `torch.amp`: `autocast` (float16 and
 * bfloat16 matrix products on CUDA, float32 elsewhere), `GradScaler`, and
 * float16 / bfloat16 conversions bit for bit as PyTorch's.
 */
export * as amp from "./src/amp/mod.ts";
/**
 * Modules and layers in the style of `torch.nn`: `Module` (subclass it and
 * override `forward`), `Parameter`, `Buffer`, `Linear`, `Conv2d`,
 * `BatchNorm2d`, pooling, `Dropout`, `Sequential`; the initialisers in
 * `nn.init` and the functional forms and losses in `nn.functional`.
 */
export * as nn from "./src/nn/mod.ts";
/**
 * The tutorial's models: the ResNet-18 teacher (`resnet18`, `ResNet`,
 * `BasicBlock`; torchvision's layout, so its weights load) and the small
 * `StudentNet`.
 */
export * as models from "./src/nn/models/mod.ts";
/**
 * Optimizers (`SGD`, `Adam`, `AdamW`, the `Optimizer` base class) and
 * learning-rate schedulers (`StepLR`, `CosineAnnealingLR`,
 * `ReduceLROnPlateau`).
 */
export * as optim from "./src/optim/mod.ts";
/**
 * Reading and writing tensors and models: safetensors, PyTorch `.pth`/`.pt`
 * state dicts (a restricted unpickler that never runs the file's code),
 * pretrained weights, ONNX export, and the atomic file write they use.
 */
export * as io from "./src/io/mod.ts";
/**
 * Data loading as `torch.utils.data` and `torchvision.datasets`:
 * `ImageFolder`, `DataLoader`, `TensorLoader`, samplers, splits, and image
 * decoding.
 */
export * as data from "./src/data/mod.ts";
/**
 * Image transforms as `torchvision.transforms`: `Compose`, `Resize`,
 * `CenterCrop`, random crops and flips, `ToTensor`, `Normalize`, ...
 */
export * as transforms from "./src/data/transforms.ts";
/**
 * Knowledge distillation: the KD loss (the tutorial's and the recommended
 * settings), DKD, FitNets hints, attention transfer, feature hooks and the
 * teacher-output cache.
 */
export * as distill from "./src/distill/mod.ts";
/**
 * Training: the `Trainer` (any model and loss, a teacher when distilling),
 * checkpoints written atomically and resumed all or nothing, and the
 * progress display.
 */
export * as train from "./src/train/mod.ts";
/**
 * Evaluation: classification metrics and `evaluate`, statistics for
 * comparing runs (confidence intervals, McNemar's test), a model's cost
 * (parameters, MACs, size, latency), and the HTML report with
 * `metrics.jsonl`.
 */
export * as evaluation from "./src/eval/mod.ts";
/**
 * Studies: the knowledge-distillation experiment over several seeds
 * (`runDistillationStudy`), the data it runs on (`imageFolderStudyData`),
 * its protocol (paired comparison, verdict, results table) and the
 * command-line flag parser the examples use.
 */
export * as study from "./src/study/mod.ts";
/**
 * Data-parallel training: the process group on Open MPI and NCCL
 * (`init`, `allReduce`, `broadcast`, `allGather`, `barrier`),
 * `DistributedDataParallel`, `DistributedSampler` and `SyncBatchNorm`;
 * launched with `mpirun`.
 */
export * as distributed from "./src/distributed/mod.ts";
