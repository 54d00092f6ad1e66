/**
 * Softmax and log-softmax over the middle axis of `[outer, n, inner]`, and
 * their gradients. One block per row (max, then the sum of exponentials,
 * each a block reduction) when rows are contiguous or few; one thread per
 * row otherwise. Accumulation is in float, as PyTorch's is.
 *
 * @module
 */

import type { Storage } from "../backend.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { reduceShape } from "./reduce.ts";
import { cuda, type CudaRuntime, type CudaStorage } from "./runtime.ts";

const source = `
// row = blockIdx.x over [outer, inner]; its n elements are inner apart
extern "C" __global__ void kd_softmax_rows(float* __restrict__ y,
                                           const float* __restrict__ x, int n,
                                           int inner, int log) {
  const u32 o = blockIdx.x / (u32)inner, i = blockIdx.x % (u32)inner;
  const u64 base = (u64)o * n * inner + i;
  const float* px = x + base;
  float* py = y + base;
  float m = -KD_INF;
  for (int j = threadIdx.x; j < n; j += blockDim.x) m = KdMax()(m, px[(u64)j * inner]);
  m = kd_block_reduce(m, KdMax(), -KD_INF);
  float s = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) s += expf(px[(u64)j * inner] - m);
  s = kd_block_reduce(s, KdAdd(), 0.0f);
  if (log) {
    const float ls = logf(s);
    for (int j = threadIdx.x; j < n; j += blockDim.x)
      py[(u64)j * inner] = px[(u64)j * inner] - m - ls;
  } else {
    for (int j = threadIdx.x; j < n; j += blockDim.x)
      py[(u64)j * inner] = expf(px[(u64)j * inner] - m) / s;
  }
}
extern "C" __global__ void kd_softmax_cols(float* __restrict__ y,
                                           const float* __restrict__ x,
                                           u32 rows, int n, int inner,
                                           int log) {
  KD_FOR(t, rows) {
    const u32 o = t / (u32)inner, i = t % (u32)inner;
    const u64 base = (u64)o * n * inner + i;
    const float* px = x + base;
    float* py = y + base;
    float m = -KD_INF;
    for (int j = 0; j < n; ++j) m = KdMax()(m, px[(u64)j * inner]);
    float s = 0.0f;
    for (int j = 0; j < n; ++j) s += expf(px[(u64)j * inner] - m);
    const float ls = logf(s);
    for (int j = 0; j < n; ++j) {
      const float v = px[(u64)j * inner] - m;
      py[(u64)j * inner] = log ? v - ls : expf(v) / s;
    }
  }
}
// softmax: dx = y * (dy - sum(dy * y)); log-softmax: dx = dy - exp(y) * sum(dy)
extern "C" __global__ void kd_softmax_bwd_rows(float* __restrict__ dx,
                                               const float* __restrict__ y,
                                               const float* __restrict__ dy,
                                               int n, int inner, int log) {
  const u32 o = blockIdx.x / (u32)inner, i = blockIdx.x % (u32)inner;
  const u64 base = (u64)o * n * inner + i;
  float s = 0.0f;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const u64 at = base + (u64)j * inner;
    s += log ? dy[at] : dy[at] * y[at];
  }
  s = kd_block_reduce(s, KdAdd(), 0.0f);
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const u64 at = base + (u64)j * inner;
    dx[at] = log ? dy[at] - expf(y[at]) * s : y[at] * (dy[at] - s);
  }
}
extern "C" __global__ void kd_softmax_bwd_cols(float* __restrict__ dx,
                                               const float* __restrict__ y,
                                               const float* __restrict__ dy,
                                               u32 rows, int n, int inner,
                                               int log) {
  KD_FOR(t, rows) {
    const u32 o = t / (u32)inner, i = t % (u32)inner;
    const u64 base = (u64)o * n * inner + i;
    float s = 0.0f;
    for (int j = 0; j < n; ++j) {
      const u64 at = base + (u64)j * inner;
      s += log ? dy[at] : dy[at] * y[at];
    }
    for (int j = 0; j < n; ++j) {
      const u64 at = base + (u64)j * inner;
      dx[at] = log ? dy[at] - expf(y[at]) * s : y[at] * (dy[at] - s);
    }
  }
}
`;

/** Softmax kernels. */
export const SOFTMAX_MODULE: KernelModule = {
  name: "softmax",
  source,
  kernels: {
    kd_softmax_rows: ["ptr", "ptr", "i32", "i32", "i32"],
    kd_softmax_cols: ["ptr", "ptr", "u32", "i32", "i32", "i32"],
    kd_softmax_bwd_rows: ["ptr", "ptr", "ptr", "i32", "i32", "i32"],
    kd_softmax_bwd_cols: ["ptr", "ptr", "ptr", "u32", "i32", "i32", "i32"],
  },
};

/**
 * Softmax (or log-softmax) over the middle axis of `[outer, n, inner]`.
 *
 * @param rt The runtime.
 * @param x Input, float32.
 * @param outer Outer size.
 * @param n Softmax axis size.
 * @param inner Inner size.
 * @param log Log-softmax.
 * @returns New storage of the same layout.
 */
export function softmax(
  rt: CudaRuntime,
  x: Storage,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
): CudaStorage {
  const xs = cuda(x);
  const y = rt.alloc("float32", xs.length);
  const rows = outer * inner;
  if (rows === 0 || n === 0) return y;
  const shape = reduceShape(rows, n, inner);
  if (shape.kind === "rows") {
    const k = rt.kernel(SOFTMAX_MODULE, "kd_softmax_rows");
    k.args.ptr(0, y.ptr).ptr(1, xs.ptr).i32(2, n).i32(3, inner)
      .i32(4, log ? 1 : 0);
    k.launch(rows, shape.block);
  } else {
    const k = rt.kernel(SOFTMAX_MODULE, "kd_softmax_cols");
    k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, rows).i32(3, n).i32(4, inner)
      .i32(5, log ? 1 : 0);
    k.launch(gridFor(rows));
  }
  return y;
}

/**
 * Gradient of softmax (or log-softmax) given its output and `dy`.
 *
 * @param rt The runtime.
 * @param y The forward output.
 * @param dy Gradient of the output.
 * @param outer Outer size.
 * @param n Softmax axis size.
 * @param inner Inner size.
 * @param log Log-softmax.
 * @returns `dx`, same layout.
 */
export function softmaxBackward(
  rt: CudaRuntime,
  y: Storage,
  dy: Storage,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
): CudaStorage {
  const ys = cuda(y);
  const dys = cuda(dy);
  const dx = rt.alloc("float32", ys.length);
  const rows = outer * inner;
  if (rows === 0 || n === 0) return dx;
  const shape = reduceShape(rows, n, inner);
  if (shape.kind === "rows") {
    const k = rt.kernel(SOFTMAX_MODULE, "kd_softmax_bwd_rows");
    k.args.ptr(0, dx.ptr).ptr(1, ys.ptr).ptr(2, dys.ptr).i32(3, n)
      .i32(4, inner).i32(5, log ? 1 : 0);
    k.launch(rows, shape.block);
  } else {
    const k = rt.kernel(SOFTMAX_MODULE, "kd_softmax_bwd_cols");
    k.args.ptr(0, dx.ptr).ptr(1, ys.ptr).ptr(2, dys.ptr).u32(3, rows)
      .i32(4, n).i32(5, inner).i32(6, log ? 1 : 0);
    k.launch(gridFor(rows));
  }
  return dx;
}
