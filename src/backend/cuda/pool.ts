/**
 * Max, average and adaptive average pooling over NCHW, forward and backward,
 * following PyTorch's window arithmetic. Forward kernels run one thread per
 * output; backward kernels zero `dx` and scatter each output's gradient into
 * its window with `atomicAdd` (windows may overlap).
 *
 * @module
 */

import type {
  AdaptivePool2dGeometry,
  Pool2dGeometry,
  Storage,
} from "../backend.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { cuda, type CudaRuntime, type CudaStorage } from "./runtime.ts";

const source = `
struct KdPool {
  int n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, countIncludePad;
};

extern "C" __global__ void kd_maxpool_fwd(float* __restrict__ y,
                                          int* __restrict__ idx,
                                          const float* __restrict__ x,
                                          u32 total, KdPool g) {
  KD_FOR(t, total) {
    const int ow = (int)(t % (u32)g.ow);
    const int oh = (int)(t / (u32)g.ow % (u32)g.oh);
    const u32 plane = t / ((u32)g.ow * g.oh);
    const float* xp = x + (u64)plane * g.h * g.w;
    int hs = oh * g.sh - g.ph, ws = ow * g.sw - g.pw;
    const int he = min(hs + (g.kh - 1) * g.dh + 1, g.h);
    const int we = min(ws + (g.kw - 1) * g.dw + 1, g.w);
    while (hs < 0) hs += g.dh;
    while (ws < 0) ws += g.dw;
    float m = -KD_INF;
    int mi = hs * g.w + ws;
    for (int ih = hs; ih < he; ih += g.dh) {
      for (int iw = ws; iw < we; iw += g.dw) {
        const float v = xp[ih * g.w + iw];
        if (v > m || v != v) { m = v; mi = ih * g.w + iw; }
      }
    }
    y[t] = m;
    idx[t] = mi;
  }
}
extern "C" __global__ void kd_maxpool_bwd(float* __restrict__ dx,
                                          const float* __restrict__ dy,
                                          const int* __restrict__ idx,
                                          u32 total, int inPlane, int outPlane) {
  KD_FOR(t, total) {
    atomicAdd(dx + (u64)(t / (u32)outPlane) * inPlane + idx[t], dy[t]);
  }
}

// PyTorch's avg_pool2d window: the divisor counts padding unless told not to
__device__ __forceinline__ void kd_avg_window(const KdPool& g, int oh, int ow,
                                              int& hs, int& he, int& ws,
                                              int& we, float& div) {
  hs = oh * g.sh - g.ph;
  ws = ow * g.sw - g.pw;
  he = min(hs + g.kh, g.h + g.ph);
  we = min(ws + g.kw, g.w + g.pw);
  const int padded = (he - hs) * (we - ws);
  hs = max(hs, 0);
  ws = max(ws, 0);
  he = min(he, g.h);
  we = min(we, g.w);
  div = (float)(g.countIncludePad ? padded : (he - hs) * (we - ws));
}
extern "C" __global__ void kd_avgpool_fwd(float* __restrict__ y,
                                          const float* __restrict__ x,
                                          u32 total, KdPool g) {
  KD_FOR(t, total) {
    const int ow = (int)(t % (u32)g.ow);
    const int oh = (int)(t / (u32)g.ow % (u32)g.oh);
    const u32 plane = t / ((u32)g.ow * g.oh);
    const float* xp = x + (u64)plane * g.h * g.w;
    int hs, he, ws, we;
    float div;
    kd_avg_window(g, oh, ow, hs, he, ws, we, div);
    float s = 0.0f;
    for (int ih = hs; ih < he; ++ih)
      for (int iw = ws; iw < we; ++iw) s += xp[ih * g.w + iw];
    y[t] = (hs < he && ws < we) ? s / div : 0.0f;
  }
}
extern "C" __global__ void kd_avgpool_bwd(float* __restrict__ dx,
                                          const float* __restrict__ dy,
                                          u32 total, KdPool g) {
  KD_FOR(t, total) {
    const int ow = (int)(t % (u32)g.ow);
    const int oh = (int)(t / (u32)g.ow % (u32)g.oh);
    const u32 plane = t / ((u32)g.ow * g.oh);
    float* dxp = dx + (u64)plane * g.h * g.w;
    int hs, he, ws, we;
    float div;
    kd_avg_window(g, oh, ow, hs, he, ws, we, div);
    const float v = dy[t] / div;
    for (int ih = hs; ih < he; ++ih)
      for (int iw = ws; iw < we; ++iw) atomicAdd(dxp + ih * g.w + iw, v);
  }
}

// bins as PyTorch's adaptive pooling: [floor(i*in/out), ceil((i+1)*in/out))
extern "C" __global__ void kd_adaptive_avg_fwd(float* __restrict__ y,
                                               const float* __restrict__ x,
                                               u32 total, int h, int w,
                                               int oh, int ow) {
  KD_FOR(t, total) {
    const int j = (int)(t % (u32)ow), i = (int)(t / (u32)ow % (u32)oh);
    const u32 plane = t / ((u32)ow * oh);
    const float* xp = x + (u64)plane * h * w;
    const int hs = (i * h) / oh, he = ((i + 1) * h + oh - 1) / oh;
    const int ws = (j * w) / ow, we = ((j + 1) * w + ow - 1) / ow;
    float s = 0.0f;
    for (int ih = hs; ih < he; ++ih)
      for (int iw = ws; iw < we; ++iw) s += xp[ih * w + iw];
    y[t] = s / (float)((he - hs) * (we - ws));
  }
}
extern "C" __global__ void kd_adaptive_avg_bwd(float* __restrict__ dx,
                                               const float* __restrict__ dy,
                                               u32 total, int h, int w,
                                               int oh, int ow) {
  KD_FOR(t, total) {
    const int j = (int)(t % (u32)ow), i = (int)(t / (u32)ow % (u32)oh);
    const u32 plane = t / ((u32)ow * oh);
    float* dxp = dx + (u64)plane * h * w;
    const int hs = (i * h) / oh, he = ((i + 1) * h + oh - 1) / oh;
    const int ws = (j * w) / ow, we = ((j + 1) * w + ow - 1) / ow;
    const float v = dy[t] / (float)((he - hs) * (we - ws));
    for (int ih = hs; ih < he; ++ih)
      for (int iw = ws; iw < we; ++iw) atomicAdd(dxp + ih * w + iw, v);
  }
}
`;

/** Pooling kernels. */
export const POOL_MODULE: KernelModule = {
  name: "pool",
  source,
  kernels: {
    kd_maxpool_fwd: ["ptr", "ptr", "ptr", "u32", "pool"],
    kd_maxpool_bwd: ["ptr", "ptr", "ptr", "u32", "i32", "i32"],
    kd_avgpool_fwd: ["ptr", "ptr", "u32", "pool"],
    kd_avgpool_bwd: ["ptr", "ptr", "u32", "pool"],
    kd_adaptive_avg_fwd: ["ptr", "ptr", "u32", "i32", "i32", "i32", "i32"],
    kd_adaptive_avg_bwd: ["ptr", "ptr", "u32", "i32", "i32", "i32", "i32"],
  },
};

/**
 * The 15 ints of `KdPool`, in field order.
 *
 * @param g The geometry.
 * @returns `n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, countIncludePad`.
 */
export function poolFields(g: Pool2dGeometry): number[] {
  return [
    g.n,
    g.c,
    g.h,
    g.w,
    g.oh,
    g.ow,
    g.kernel[0],
    g.kernel[1],
    g.stride[0],
    g.stride[1],
    g.padding[0],
    g.padding[1],
    g.dilation[0],
    g.dilation[1],
    g.countIncludePad ? 1 : 0,
  ];
}

/**
 * Max pooling.
 *
 * @param rt The runtime.
 * @param x `[n, c, h, w]`.
 * @param g The geometry.
 * @returns `y` `[n, c, oh, ow]` and int32 `indices` into each `h * w` plane.
 */
export function maxPool2d(
  rt: CudaRuntime,
  x: Storage,
  g: Pool2dGeometry,
): { y: CudaStorage; indices: CudaStorage } {
  const xs = cuda(x);
  const total = g.n * g.c * g.oh * g.ow;
  const y = rt.alloc("float32", total);
  const indices = rt.alloc("int32", total);
  if (total === 0) return { y, indices };
  const k = rt.kernel(POOL_MODULE, "kd_maxpool_fwd");
  k.args.ptr(0, y.ptr).ptr(1, indices.ptr).ptr(2, xs.ptr).u32(3, total)
    .ints(4, poolFields(g));
  k.launch(gridFor(total));
  return { y, indices };
}

function zeros(rt: CudaRuntime, n: number): CudaStorage {
  const s = rt.alloc("float32", n);
  rt.device.fill32(s.pointer, 0, n);
  return s;
}

/**
 * Routes `dy` to the positions max pooling picked.
 *
 * @param rt The runtime.
 * @param dy `[n, c, oh, ow]`.
 * @param indices From {@link maxPool2d}.
 * @param g The geometry.
 * @returns `dx` `[n, c, h, w]`.
 */
export function maxPool2dBackward(
  rt: CudaRuntime,
  dy: Storage,
  indices: Storage,
  g: Pool2dGeometry,
): CudaStorage {
  const dys = cuda(dy);
  const is = cuda(indices);
  const dx = zeros(rt, g.n * g.c * g.h * g.w);
  const total = g.n * g.c * g.oh * g.ow;
  if (total === 0) return dx;
  const k = rt.kernel(POOL_MODULE, "kd_maxpool_bwd");
  k.args.ptr(0, dx.ptr).ptr(1, dys.ptr).ptr(2, is.ptr).u32(3, total)
    .i32(4, g.h * g.w).i32(5, g.oh * g.ow);
  k.launch(gridFor(total));
  return dx;
}

/**
 * Average pooling.
 *
 * @param rt The runtime.
 * @param x `[n, c, h, w]`.
 * @param g The geometry.
 * @returns `[n, c, oh, ow]`.
 */
export function avgPool2d(
  rt: CudaRuntime,
  x: Storage,
  g: Pool2dGeometry,
): CudaStorage {
  const xs = cuda(x);
  const total = g.n * g.c * g.oh * g.ow;
  const y = rt.alloc("float32", total);
  if (total === 0) return y;
  const k = rt.kernel(POOL_MODULE, "kd_avgpool_fwd");
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, total).ints(3, poolFields(g));
  k.launch(gridFor(total));
  return y;
}

/**
 * Gradient of average pooling.
 *
 * @param rt The runtime.
 * @param dy `[n, c, oh, ow]`.
 * @param g The geometry.
 * @returns `dx` `[n, c, h, w]`.
 */
export function avgPool2dBackward(
  rt: CudaRuntime,
  dy: Storage,
  g: Pool2dGeometry,
): CudaStorage {
  const dys = cuda(dy);
  const dx = zeros(rt, g.n * g.c * g.h * g.w);
  const total = g.n * g.c * g.oh * g.ow;
  if (total === 0) return dx;
  const k = rt.kernel(POOL_MODULE, "kd_avgpool_bwd");
  k.args.ptr(0, dx.ptr).ptr(1, dys.ptr).u32(2, total).ints(3, poolFields(g));
  k.launch(gridFor(total));
  return dx;
}

/**
 * Adaptive average pooling `[n, c, h, w]` → `[n, c, oh, ow]`, or its
 * gradient.
 *
 * @param rt The runtime.
 * @param input `x`, or `dy` when `backward`.
 * @param g Sizes `n, c, h, w, oh, ow`.
 * @param backward Compute the gradient.
 * @returns `y`, or `dx` when `backward`.
 */
export function adaptiveAvgPool2d(
  rt: CudaRuntime,
  input: Storage,
  g: AdaptivePool2dGeometry,
  backward: boolean,
): CudaStorage {
  const s = cuda(input);
  const { n, c, h, w, oh, ow } = g;
  const total = n * c * oh * ow;
  const out = backward ? zeros(rt, n * c * h * w) : rt.alloc("float32", total);
  if (total === 0) return out;
  const k = rt.kernel(
    POOL_MODULE,
    backward ? "kd_adaptive_avg_bwd" : "kd_adaptive_avg_fwd",
  );
  k.args.ptr(0, out.ptr).ptr(1, s.ptr).u32(2, total).i32(3, h).i32(4, w)
    .i32(5, oh).i32(6, ow);
  k.launch(gridFor(total));
  return out;
}
