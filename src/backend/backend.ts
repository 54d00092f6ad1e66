/**
 * The backend contract: the kernel set every backend implements.
 *
 * Kernels work on contiguous, row-major storage. Everything that is a view in
 * PyTorch (permute, expand, slice) reaches a backend as a strided copy, so a
 * kernel never sees a non-contiguous input. Shapes are given in each doc
 * comment; `n` is always an element count.
 *
 * Nothing above `src/backend/` touches a `Storage`'s contents: ops call these
 * kernels, and the tensor layer moves data in and out with `upload` and
 * `download`.
 *
 * @module
 */

import type { DeviceName, DType, TypedArray } from "./types.ts";

export type { DeviceName, DType, HalfDType, TypedArray } from "./types.ts";

/** A block of memory owned by one backend. Opaque above `src/backend/`. */
export interface Storage {
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
}

/** Elementwise functions of one argument. */
export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "abs"
  | "relu"
  | "sigmoid"
  | "tanh"
  | "sign"
  | "square"
  | "reciprocal";

/**
 * Elementwise functions of two arguments. Comparisons produce int32 0/1.
 * `reluGrad` is `b <= 0 ? 0 : a` (the ReLU gradient `a` masked by the output
 * `b`; as in PyTorch's `threshold_backward`, a NaN in `b` lets `a` through).
 */
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "reluGrad"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge";

/** Reductions over one axis. `argmax`/`argmin` produce int32 indices. */
export type ReduceOp = "sum" | "max" | "min" | "argmax" | "argmin";

/** Geometry of a 2-D convolution, NCHW input and OIHW weight. */
export interface Conv2dGeometry {
  /** Batch size. */
  n: number;
  /** Input channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  k: number;
  /** Kernel height. */
  r: number;
  /** Kernel width. */
  s: number;
  /** Output height. */
  oh: number;
  /** Output width. */
  ow: number;
  /** Stride `[h, w]`. */
  stride: [number, number];
  /** Zero padding `[h, w]`. */
  padding: [number, number];
  /** Dilation `[h, w]`. */
  dilation: [number, number];
  /** Groups: `c` and `k` are both divisible by it. */
  groups: number;
}

/** Geometry of a 2-D pooling window over an NCHW input. */
export interface Pool2dGeometry {
  /** Batch size. */
  n: number;
  /** Channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output height. */
  oh: number;
  /** Output width. */
  ow: number;
  /** Window `[h, w]`. */
  kernel: [number, number];
  /** Stride `[h, w]`. */
  stride: [number, number];
  /** Implicit padding `[h, w]` (-inf for max, 0 for average). */
  padding: [number, number];
  /** Dilation `[h, w]` (max pooling only). */
  dilation: [number, number];
  /** Average pooling: count padded cells in the divisor (PyTorch default true). */
  countIncludePad: boolean;
}

/** Sizes of an adaptive 2-D pooling over an NCHW input, PyTorch's bins. */
export interface AdaptivePool2dGeometry {
  /** Batch size. */
  n: number;
  /** Channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output height. */
  oh: number;
  /** Output width. */
  ow: number;
}

/** An activation a backend may apply as a kernel writes its output. */
export type FusedActivation = "none" | "relu";

/**
 * One batch norm over `[n, c, hw]` (`hw` is the product of the dims after the
 * channel): its sizes and constants, shared by forward and backward.
 */
export interface BatchNormGeometry {
  /** Batch size. */
  n: number;
  /** Channels. */
  c: number;
  /** Elements per channel and sample (`h * w` for NCHW). */
  hw: number;
  /** Added to the variance. */
  eps: number;
  /** Weight of the new batch in the running averages (training only). */
  momentum: number;
  /**
   * Activation applied to `y`. Only the optional fused entry points
   * (`batchNormTrainRelu`, `batchNormEvalRelu`) apply it; the plain kernels
   * ignore it and `fused.ts` composes the activation after them.
   */
  activation: FusedActivation;
}

/**
 * The per-channel `[c]` inputs of a batch norm; null where absent. `S` is
 * the backend's storage (a CPU kernel takes `Float32Array`s).
 */
export interface BatchNormParams<S = Storage> {
  /** Scale, or null for 1. */
  weight: S | null;
  /** Shift, or null for 0. */
  bias: S | null;
  /** Running mean: updated in training (when given), read in eval. */
  runningMean: S | null;
  /** Running variance: updated in training (when given), read in eval. */
  runningVar: S | null;
}

/** What training-mode batch norm saves for backward, each `[c]`. */
export interface BatchNormSaved<S = Storage> {
  /** The batch mean. */
  mean: S;
  /** `1 / sqrt(var + eps)` of the batch. */
  invStd: S;
}

/** Options of one SGD update, as `torch.optim.SGD` defines them. */
export interface SgdUpdate {
  /** Learning rate. */
  lr: number;
  /** Momentum factor. */
  momentum: number;
  /** Dampening for momentum. */
  dampening: number;
  /** L2 penalty added to the gradient. */
  weightDecay: number;
  /** Nesterov momentum. */
  nesterov: boolean;
  /** True on the first step (the momentum buffer is initialised to the gradient). */
  firstStep: boolean;
}

/** Options of one Adam/AdamW update, as `torch.optim.Adam(W)` define them. */
export interface AdamUpdate {
  /** Learning rate. */
  lr: number;
  /** Coefficient for the running average of the gradient. */
  beta1: number;
  /** Coefficient for the running average of its square. */
  beta2: number;
  /** Term added to the denominator. */
  eps: number;
  /** Weight decay: L2 (Adam) or decoupled (AdamW). */
  weightDecay: number;
  /** True for AdamW's decoupled weight decay. */
  decoupled: boolean;
  /** Step number, starting at 1. */
  step: number;
  /** AMSGrad variant (uses `maxExpAvgSq`). */
  amsgrad: boolean;
}

/**
 * The kernel set. Every method returns fresh storage unless it says it works
 * in place. Backends may assume their inputs have the documented sizes.
 */
export interface Backend {
  /** The device this backend runs on. */
  readonly name: DeviceName;

  // ---- memory ------------------------------------------------------------
  /** Allocates `n` elements of `dtype`, zero-filled. */
  zeros(dtype: DType, n: number): Storage;
  /**
   * Copies a host array into new storage. A `Uint16Array` holds float16 or
   * bfloat16 bit patterns: `dtype` says which (default float16); other
   * arrays give their own dtype.
   */
  upload(data: TypedArray, dtype?: DType): Storage;
  /** Copies storage to a new host array. */
  download(s: Storage): TypedArray;
  /** Releases storage; it must not be used afterwards. */
  free(s: Storage): void;
  /** Sets every element to `value`, in place. */
  fill(s: Storage, value: number): void;
  /** Copies `src` into `dst` (same dtype and length), in place. */
  assign(dst: Storage, src: Storage): void;
  /**
   * Converts to another dtype (float to int truncates toward zero; to
   * float16 and bfloat16 rounds to nearest, ties to even). The other
   * kernels take float32 and int32 only: float16 and bfloat16 storage goes
   * through `zeros`, `upload`, `download`, `free`, `fill`, `assign` and
   * `cast`.
   */
  cast(x: Storage, dtype: DType): Storage;

  // ---- elementwise -------------------------------------------------------
  /** `y[i] = op(x[i])`, float32. */
  unary(op: UnaryOp, x: Storage): Storage;
  /**
   * `y = op(a, b)` over `shape`, reading `a` and `b` through broadcast strides
   * (0 on broadcast axes). Both inputs have the same dtype; comparisons give
   * int32 0/1, everything else the input dtype.
   */
  binary(
    op: BinaryOp,
    a: Storage,
    aStrides: readonly number[],
    b: Storage,
    bStrides: readonly number[],
    shape: readonly number[],
  ): Storage;
  /** `y[i] = op(x[i], scalar)`, or `op(scalar, x[i])` when `reverse`. */
  binaryScalar(
    op: BinaryOp,
    x: Storage,
    scalar: number,
    reverse: boolean,
  ): Storage;
  /** `y = cond != 0 ? a : b`, each read through its strides over `shape`. */
  where(
    cond: Storage,
    condStrides: readonly number[],
    a: Storage,
    aStrides: readonly number[],
    b: Storage,
    bStrides: readonly number[],
    shape: readonly number[],
  ): Storage;
  /** `y[i] = min(max(x[i], lo), hi)`; `lo`/`hi` may be +-Infinity. */
  clamp(x: Storage, lo: number, hi: number): Storage;
  /** `dst[i] += alpha * src[i]`, in place. */
  axpy(dst: Storage, src: Storage, alpha: number): void;

  // ---- data movement -----------------------------------------------------
  /** Gathers a strided view of `x` (element `offset`) into contiguous storage of `shape`. */
  stridedCopy(
    x: Storage,
    shape: readonly number[],
    strides: readonly number[],
    offset: number,
  ): Storage;
  /** Writes contiguous `src` of `shape` into the strided view of `dst`, in place. */
  stridedWrite(
    dst: Storage,
    shape: readonly number[],
    strides: readonly number[],
    offset: number,
    src: Storage,
  ): void;
  /** `y[o, j, i] = x[o, idx[j], i]`; x is `[outer, dim, inner]`, y `[outer, idx.length, inner]`. */
  indexSelect(
    x: Storage,
    outer: number,
    dim: number,
    inner: number,
    idx: Storage,
  ): Storage;
  /** `dst[o, idx[j], i] += src[o, j, i]`, in place; dst is `[outer, dim, inner]`. */
  indexAdd(
    dst: Storage,
    outer: number,
    dim: number,
    inner: number,
    idx: Storage,
    src: Storage,
  ): void;
  /** `y[o, j, i] = x[o, index[o, j, i], i]`; x `[outer, dim, inner]`, index `[outer, m, inner]`. */
  gather(
    x: Storage,
    outer: number,
    dim: number,
    inner: number,
    index: Storage,
    m: number,
  ): Storage;
  /** `dst[o, index[o, j, i], i] += src[o, j, i]`, in place. */
  scatterAdd(
    dst: Storage,
    outer: number,
    dim: number,
    inner: number,
    index: Storage,
    m: number,
    src: Storage,
  ): void;

  // ---- reductions --------------------------------------------------------
  /**
   * Reduces the middle axis of `[outer, r, inner]` to `[outer, inner]`. Sums
   * accumulate in float64 on the CPU.
   */
  reduce(
    op: ReduceOp,
    x: Storage,
    outer: number,
    r: number,
    inner: number,
  ): Storage;

  // ---- matrix multiply ---------------------------------------------------
  /**
   * Batched `C[b] = op(A[b]) @ op(B[b])`: `op(A)` is `[m, k]`, `op(B)` is `[k, n]`,
   * C is `[batch, m, n]`. A is stored `[m, k]` (or `[k, m]` when `transA`), B
   * `[k, n]` (or `[n, k]` when `transB`). A batch stride of 0 reuses one matrix.
   */
  gemm(
    a: Storage,
    b: Storage,
    m: number,
    n: number,
    k: number,
    options: {
      transA: boolean;
      transB: boolean;
      batch: number;
      strideA: number;
      strideB: number;
    },
  ): Storage;

  // ---- softmax -----------------------------------------------------------
  /** Softmax (or log-softmax) over the middle axis of `[outer, n, inner]`. */
  softmax(
    x: Storage,
    outer: number,
    n: number,
    inner: number,
    log: boolean,
  ): Storage;
  /** Gradient of softmax given its output `y` and `dy`, same layout. */
  softmaxBackward(
    y: Storage,
    dy: Storage,
    outer: number,
    n: number,
    inner: number,
    log: boolean,
  ): Storage;

  // ---- convolution -------------------------------------------------------
  /** NCHW `x` `[n, c, h, w]`, weight `[k, c/groups, r, s]`, optional bias `[k]` → `[n, k, oh, ow]`. */
  conv2d(
    x: Storage,
    weight: Storage,
    bias: Storage | null,
    g: Conv2dGeometry,
  ): Storage;
  /** Gradient w.r.t. the input: dy `[n, k, oh, ow]` → dx `[n, c, h, w]`. */
  conv2dBackwardData(dy: Storage, weight: Storage, g: Conv2dGeometry): Storage;
  /** Gradient w.r.t. the weight: → dw `[k, c/groups, r, s]`. */
  conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage;

  // ---- pooling -----------------------------------------------------------
  /**
   * Max pooling; returns the output and the argmax (flat index into each
   * h*w plane, int32). With `needIndices` false (no gradient will flow) a
   * backend may skip the argmax and return an empty `indices`.
   */
  maxPool2d(
    x: Storage,
    g: Pool2dGeometry,
    needIndices?: boolean,
  ): { y: Storage; indices: Storage };
  /** Routes `dy` back to the argmax positions → `[n, c, h, w]`. */
  maxPool2dBackward(dy: Storage, indices: Storage, g: Pool2dGeometry): Storage;
  /** Average pooling. */
  avgPool2d(x: Storage, g: Pool2dGeometry): Storage;
  /** Gradient of average pooling. */
  avgPool2dBackward(dy: Storage, g: Pool2dGeometry): Storage;
  /** Adaptive average pooling `[n, c, h, w]` → `[n, c, oh, ow]` (PyTorch's bins). */
  adaptiveAvgPool2d(x: Storage, g: AdaptivePool2dGeometry): Storage;
  /** Gradient of adaptive average pooling: dy `[n, c, oh, ow]` → `[n, c, h, w]`. */
  adaptiveAvgPool2dBackward(dy: Storage, g: AdaptivePool2dGeometry): Storage;

  // ---- batch norm --------------------------------------------------------
  /**
   * Batch norm in training mode over `[n, c, hw]`: normalises with the batch
   * statistics and updates `p.runningMean`/`p.runningVar` in place (PyTorch's
   * momentum, unbiased variance for the running estimate) when they are given.
   * Returns `y`, the batch `mean` and `invStd` for backward. Ignores
   * `g.activation`.
   */
  batchNormTrain(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): { y: Storage } & BatchNormSaved;
  /**
   * Batch norm with fixed statistics (`p.runningMean` and `p.runningVar` are
   * given). Ignores `g.activation`.
   */
  batchNormEval(x: Storage, p: BatchNormParams, g: BatchNormGeometry): Storage;
  /**
   * Optional fused entry point: `batchNormTrain` whose `y` is passed through
   * a ReLU as it is written. Call it through `fused.ts`, which falls back to
   * the plain kernel and a ReLU when a backend leaves it out.
   */
  batchNormTrainRelu?(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): { y: Storage } & BatchNormSaved;
  /** Optional fused entry point: `batchNormEval`, then ReLU, in one pass. */
  batchNormEvalRelu?(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): Storage;
  /**
   * Optional fused entry point: `batchNormBackward` through a ReLU, where
   * `dy` is the gradient of the ReLU's output `y` (the forward's output);
   * `dy` is masked by `y` as it is read. Call it through `fused.ts`, which
   * falls back to a masked copy of `dy` and the plain kernel.
   */
  batchNormBackwardRelu?(
    x: Storage,
    dy: Storage,
    y: Storage,
    weight: Storage | null,
    saved: BatchNormSaved,
    g: BatchNormGeometry,
  ): { dx: Storage; dweight: Storage; dbias: Storage };
  /**
   * Gradients of training-mode batch norm given the forward's saved
   * statistics and the same geometry: `dx`, `dweight` `[c]`, `dbias` `[c]`.
   * `dy` is the gradient of the normalised output (before any activation).
   */
  batchNormBackward(
    x: Storage,
    dy: Storage,
    weight: Storage | null,
    saved: BatchNormSaved,
    g: BatchNormGeometry,
  ): { dx: Storage; dweight: Storage; dbias: Storage };

  // ---- optimizers (in place) ---------------------------------------------
  /** One SGD step on `param` given `grad`; `momentumBuf` is updated in place when momentum > 0. */
  sgdStep(
    param: Storage,
    grad: Storage,
    momentumBuf: Storage | null,
    o: SgdUpdate,
  ): void;
  /** One Adam/AdamW step; `expAvg`, `expAvgSq` (and `maxExpAvgSq`) updated in place. */
  adamStep(
    param: Storage,
    grad: Storage,
    expAvg: Storage,
    expAvgSq: Storage,
    maxExpAvgSq: Storage | null,
    o: AdamUpdate,
  ): void;

  /** Waits until all queued work is done (a no-op on the CPU). */
  synchronize(): void;
}
