/**
 * Batch norm over `[n, c, hw]`: training (batch statistics, running
 * estimates updated with PyTorch's momentum and the unbiased variance),
 * evaluation, and backward. Training and backward run one block per channel
 * with double-precision sums; evaluation runs one thread per element. Weight
 * and bias are optional (NULL means 1 and 0).
 *
 * @module
 */

import type {
  BatchNormGeometry,
  BatchNormParams,
  BatchNormSaved,
  Storage,
} from "../backend.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { cuda, type CudaRuntime, type CudaStorage } from "./runtime.ts";

const source = `
#define KD_BN_AT(t) (((u64)((t) / (u32)hw) * c + ch) * hw + (t) % (u32)hw)

extern "C" __global__ void kd_bn_train(
    float* __restrict__ y, float* __restrict__ meanOut,
    float* __restrict__ invStdOut, float* __restrict__ runMean,
    float* __restrict__ runVar, const float* __restrict__ x,
    const float* __restrict__ w, const float* __restrict__ b, int n, int c,
    int hw, float momentum, float eps, int relu) {
  const int ch = blockIdx.x;
  const u32 cnt = (u32)n * hw;
  double s = 0.0;
  for (u32 t = threadIdx.x; t < cnt; t += blockDim.x) s += x[KD_BN_AT(t)];
  const double mean = kd_block_reduce(s, KdAdd(), 0.0) / cnt;
  double q = 0.0;
  for (u32 t = threadIdx.x; t < cnt; t += blockDim.x) {
    const double d = x[KD_BN_AT(t)] - mean;
    q += d * d;
  }
  const double var = kd_block_reduce(q, KdAdd(), 0.0) / cnt;
  const float invStd = (float)(1.0 / sqrt(var + (double)eps));
  if (threadIdx.x == 0) {
    meanOut[ch] = (float)mean;
    invStdOut[ch] = invStd;
    if (runMean)
      runMean[ch] = (float)((1.0 - momentum) * runMean[ch] + momentum * mean);
    if (runVar) {
      const double unbiased = cnt > 1 ? var * cnt / (cnt - 1) : var;
      runVar[ch] = (float)((1.0 - momentum) * runVar[ch] + momentum * unbiased);
    }
  }
  const float scale = (w ? w[ch] : 1.0f) * invStd;
  const float shift = b ? b[ch] : 0.0f, fmean = (float)mean;
  for (u32 t = threadIdx.x; t < cnt; t += blockDim.x) {
    const u64 at = KD_BN_AT(t);
    const float v = (x[at] - fmean) * scale + shift;
    y[at] = relu && v < 0.0f ? 0.0f : v;
  }
}

extern "C" __global__ void kd_bn_eval(float* __restrict__ y,
                                      const float* __restrict__ x,
                                      const float* __restrict__ w,
                                      const float* __restrict__ b,
                                      const float* __restrict__ runMean,
                                      const float* __restrict__ runVar,
                                      u32 total, int c, int hw, float eps,
                                      int relu) {
  KD_FOR(t, total) {
    const int ch = (int)(t / (u32)hw % (u32)c);
    const float invStd = 1.0f / sqrtf(runVar[ch] + eps);
    const float v = (x[t] - runMean[ch]) * invStd;
    const float r = v * (w ? w[ch] : 1.0f) + (b ? b[ch] : 0.0f);
    // PyTorch's clamp_min(x, 0): -0 and NaN stay
    y[t] = relu && r < 0.0f ? 0.0f : r;
  }
}

// ReLU in place, after cuDNN's batch norm wrote y
extern "C" __global__ void kd_bn_relu_inplace(float* y, u32 total) {
  KD_FOR(t, total) {
    const float v = y[t];
    if (v < 0.0f) y[t] = 0.0f;
  }
}

// dx = w * invStd / cnt * (cnt * dy - sum(dy) - xhat * sum(dy * xhat)),
// where with a ReLU output ymask given dy is first masked by it (0 where
// ymask <= 0, the ReLU gradient) as it is read, so the masked gradient is
// never stored
#define KD_BN_DY(at) (ymask && ymask[at] <= 0.0f ? 0.0f : dy[at])
extern "C" __global__ void kd_bn_bwd(
    float* __restrict__ dx, float* __restrict__ dw, float* __restrict__ db,
    const float* __restrict__ x, const float* __restrict__ dy,
    const float* __restrict__ w, const float* __restrict__ mean,
    const float* __restrict__ invStd, int n, int c, int hw,
    const float* __restrict__ ymask) {
  const int ch = blockIdx.x;
  const u32 cnt = (u32)n * hw;
  const float m = mean[ch], is = invStd[ch];
  double sdy = 0.0, sdyx = 0.0;
  for (u32 t = threadIdx.x; t < cnt; t += blockDim.x) {
    const u64 at = KD_BN_AT(t);
    const float g = KD_BN_DY(at);
    sdy += g;
    sdyx += (double)g * ((x[at] - m) * is);
  }
  sdy = kd_block_reduce(sdy, KdAdd(), 0.0);
  sdyx = kd_block_reduce(sdyx, KdAdd(), 0.0);
  if (threadIdx.x == 0) {
    db[ch] = (float)sdy;
    dw[ch] = (float)sdyx;
  }
  const float k = (w ? w[ch] : 1.0f) * is / (float)cnt;
  const float a = (float)sdy, bb = (float)sdyx;
  for (u32 t = threadIdx.x; t < cnt; t += blockDim.x) {
    const u64 at = KD_BN_AT(t);
    const float xhat = (x[at] - m) * is;
    dx[at] = k * ((float)cnt * KD_BN_DY(at) - a - xhat * bb);
  }
}
`;

/** Batch-norm kernels. */
export const NORM_MODULE: KernelModule = {
  name: "norm",
  source,
  kernels: {
    kd_bn_train: [
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "i32",
      "i32",
      "i32",
      "f32",
      "f32",
      "i32",
    ],
    kd_bn_eval: [
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "u32",
      "i32",
      "i32",
      "f32",
      "i32",
    ],
    kd_bn_relu_inplace: ["ptr", "u32"],
    kd_bn_bwd: [
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "i32",
      "i32",
      "i32",
      "ptr",
    ],
  },
};

const BLOCK = 512;

function addr(s: Storage | null): bigint {
  return s ? cuda(s).ptr : 0n;
}

/**
 * Training-mode batch norm; `y` passes through a ReLU as it is written when
 * `g.activation` is `"relu"`.
 *
 * @param rt The runtime.
 * @param x `[n, c, hw]`.
 * @param p Weight and bias (null for 1 and 0) and the running statistics,
 * updated in place when given.
 * @param g Sizes, momentum and eps.
 * @returns `y`, the batch `mean` and `invStd`.
 */
export function batchNormTrain(
  rt: CudaRuntime,
  x: Storage,
  p: BatchNormParams,
  g: BatchNormGeometry,
): { y: CudaStorage; mean: CudaStorage; invStd: CudaStorage } {
  const { n, c, hw } = g;
  const xs = cuda(x);
  const y = rt.alloc("float32", xs.length);
  const mean = rt.alloc("float32", c);
  const invStd = rt.alloc("float32", c);
  if (c === 0) return { y, mean, invStd };
  const k = rt.kernel(NORM_MODULE, "kd_bn_train");
  k.args.ptr(0, y.ptr).ptr(1, mean.ptr).ptr(2, invStd.ptr)
    .ptr(3, addr(p.runningMean)).ptr(4, addr(p.runningVar)).ptr(5, xs.ptr)
    .ptr(6, addr(p.weight)).ptr(7, addr(p.bias)).i32(8, n).i32(9, c)
    .i32(10, hw).f32(11, g.momentum).f32(12, g.eps)
    .i32(13, g.activation === "relu" ? 1 : 0);
  k.launch(c, BLOCK);
  return { y, mean, invStd };
}

/**
 * Evaluation-mode batch norm with fixed statistics, in one pass with the
 * ReLU when `g.activation` is `"relu"`.
 *
 * @param rt The runtime.
 * @param x `[n, c, hw]`.
 * @param p Weight and bias (null for 1 and 0) and the running statistics
 * (required).
 * @param g Sizes and eps.
 * @returns `y`.
 */
export function batchNormEval(
  rt: CudaRuntime,
  x: Storage,
  p: BatchNormParams,
  g: BatchNormGeometry,
): CudaStorage {
  const { n, c, hw } = g;
  const xs = cuda(x);
  const total = n * c * hw;
  const y = rt.alloc("float32", total);
  if (total === 0) return y;
  const k = rt.kernel(NORM_MODULE, "kd_bn_eval");
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).ptr(2, addr(p.weight))
    .ptr(3, addr(p.bias)).ptr(4, addr(p.runningMean))
    .ptr(5, addr(p.runningVar)).u32(6, total).i32(7, c).i32(8, hw)
    .f32(9, g.eps).i32(10, g.activation === "relu" ? 1 : 0);
  k.launch(gridFor(total));
  return y;
}

/**
 * ReLU in place over `y` (after cuDNN's batch norm wrote it).
 *
 * @param rt The runtime.
 * @param y Float32 storage, overwritten.
 */
export function reluInPlace(rt: CudaRuntime, y: Storage): void {
  const ys = cuda(y);
  if (ys.length === 0) return;
  const k = rt.kernel(NORM_MODULE, "kd_bn_relu_inplace");
  k.args.ptr(0, ys.ptr).u32(1, ys.length);
  k.launch(gridFor(ys.length));
}

/**
 * Gradients of training-mode batch norm. With `reluOut` (the forward's
 * output after its ReLU) the incoming gradient is masked by the ReLU as it
 * is read, so no masked copy of `dy` is made.
 *
 * @param rt The runtime.
 * @param x `[n, c, hw]`.
 * @param dy `[n, c, hw]`.
 * @param weight `[c]` or null.
 * @param saved Batch mean and inverse std from training.
 * @param g Sizes.
 * @param reluOut The ReLU's output `[n, c, hw]`, or null without a ReLU.
 * @returns `dx`, `dweight`, `dbias`.
 */
export function batchNormBackward(
  rt: CudaRuntime,
  x: Storage,
  dy: Storage,
  weight: Storage | null,
  saved: BatchNormSaved,
  g: BatchNormGeometry,
  reluOut: Storage | null = null,
): { dx: CudaStorage; dweight: CudaStorage; dbias: CudaStorage } {
  const { n, c, hw } = g;
  const xs = cuda(x);
  const dx = rt.alloc("float32", xs.length);
  const dweight = rt.alloc("float32", c);
  const dbias = rt.alloc("float32", c);
  if (c === 0) return { dx, dweight, dbias };
  const k = rt.kernel(NORM_MODULE, "kd_bn_bwd");
  k.args.ptr(0, dx.ptr).ptr(1, dweight.ptr).ptr(2, dbias.ptr).ptr(3, xs.ptr)
    .ptr(4, cuda(dy).ptr).ptr(5, addr(weight)).ptr(6, cuda(saved.mean).ptr)
    .ptr(7, cuda(saved.invStd).ptr).i32(8, n).i32(9, c).i32(10, hw)
    .ptr(11, addr(reluOut));
  k.launch(c, BLOCK);
  return { dx, dweight, dbias };
}
