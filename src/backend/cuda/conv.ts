/**
 * 2-D convolution (NCHW input, OIHW weight, groups, stride, padding,
 * dilation) as direct CUDA C kernels: the fallback when cuDNN does not load
 * (the backend runs convolutions on cuDNN when it does), and what the
 * emulated device runs in the tests.
 *
 * - forward: one thread per output element;
 * - backward data: one thread per input element, gathering the outputs whose
 *   windows cover it (no atomics);
 * - backward filter: one block per weight element, its threads striding over
 *   `n * oh * ow` positions, then a block reduction.
 *
 * @module
 */

import type { Conv2dGeometry, Storage } from "../backend.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { cuda, type CudaRuntime, type CudaStorage } from "./runtime.ts";

const source = `
struct KdConv {
  int n, c, h, w, k, r, s, oh, ow, sh, sw, ph, pw, dh, dw, groups;
};

extern "C" __global__ void kd_conv2d_fwd(float* __restrict__ y,
                                         const float* __restrict__ x,
                                         const float* __restrict__ wt,
                                         const float* __restrict__ bias,
                                         u32 total, KdConv g) {
  const int cg = g.c / g.groups, kg = g.k / g.groups;
  KD_FOR(t, total) {
    const int ow = (int)(t % (u32)g.ow);
    u32 q = t / (u32)g.ow;
    const int oh = (int)(q % (u32)g.oh);
    q /= (u32)g.oh;
    const int k = (int)(q % (u32)g.k);
    const int n = (int)(q / (u32)g.k);
    const int c0 = (k / kg) * cg;
    float acc = bias ? bias[k] : 0.0f;
    const float* wk = wt + (u64)k * cg * g.r * g.s;
    for (int ci = 0; ci < cg; ++ci) {
      const float* xp = x + ((u64)n * g.c + c0 + ci) * g.h * g.w;
      const float* wp = wk + (u64)ci * g.r * g.s;
      for (int rr = 0; rr < g.r; ++rr) {
        const int ih = oh * g.sh - g.ph + rr * g.dh;
        if (ih < 0 || ih >= g.h) continue;
        for (int ss = 0; ss < g.s; ++ss) {
          const int iw = ow * g.sw - g.pw + ss * g.dw;
          if (iw < 0 || iw >= g.w) continue;
          acc += xp[ih * g.w + iw] * wp[rr * g.s + ss];
        }
      }
    }
    y[t] = acc;
  }
}

extern "C" __global__ void kd_conv2d_bwd_data(float* __restrict__ dx,
                                              const float* __restrict__ dy,
                                              const float* __restrict__ wt,
                                              u32 total, KdConv g) {
  const int cg = g.c / g.groups, kg = g.k / g.groups;
  KD_FOR(t, total) {
    const int iw = (int)(t % (u32)g.w);
    u32 q = t / (u32)g.w;
    const int ih = (int)(q % (u32)g.h);
    q /= (u32)g.h;
    const int c = (int)(q % (u32)g.c);
    const int n = (int)(q / (u32)g.c);
    const int grp = c / cg, ci = c % cg;
    float acc = 0.0f;
    for (int k = grp * kg; k < (grp + 1) * kg; ++k) {
      const float* dyp = dy + ((u64)n * g.k + k) * g.oh * g.ow;
      const float* wp = wt + ((u64)k * cg + ci) * g.r * g.s;
      for (int rr = 0; rr < g.r; ++rr) {
        const int th = ih + g.ph - rr * g.dh;
        if (th < 0 || th % g.sh != 0) continue;
        const int oh = th / g.sh;
        if (oh >= g.oh) continue;
        for (int ss = 0; ss < g.s; ++ss) {
          const int tw = iw + g.pw - ss * g.dw;
          if (tw < 0 || tw % g.sw != 0) continue;
          const int ow = tw / g.sw;
          if (ow >= g.ow) continue;
          acc += dyp[oh * g.ow + ow] * wp[rr * g.s + ss];
        }
      }
    }
    dx[t] = acc;
  }
}

// one block per weight element (k, ci, rr, ss)
extern "C" __global__ void kd_conv2d_bwd_filter(float* __restrict__ dw,
                                                const float* __restrict__ x,
                                                const float* __restrict__ dy,
                                                KdConv g) {
  const int cg = g.c / g.groups, kg = g.k / g.groups;
  u32 q = blockIdx.x;
  const int ss = (int)(q % (u32)g.s);
  q /= (u32)g.s;
  const int rr = (int)(q % (u32)g.r);
  q /= (u32)g.r;
  const int ci = (int)(q % (u32)cg);
  const int k = (int)(q / (u32)cg);
  const int c = (k / kg) * cg + ci;
  const u32 plane = (u32)g.oh * g.ow, total = (u32)g.n * plane;
  float acc = 0.0f;
  for (u32 p = threadIdx.x; p < total; p += blockDim.x) {
    const int n = (int)(p / plane);
    const u32 rem = p % plane;
    const int oh = (int)(rem / (u32)g.ow), ow = (int)(rem % (u32)g.ow);
    const int ih = oh * g.sh - g.ph + rr * g.dh;
    const int iw = ow * g.sw - g.pw + ss * g.dw;
    if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
    acc += dy[((u64)n * g.k + k) * plane + rem] *
           x[(((u64)n * g.c + c) * g.h + ih) * g.w + iw];
  }
  acc = kd_block_reduce(acc, KdAdd(), 0.0f);
  if (threadIdx.x == 0) dw[blockIdx.x] = acc;
}
`;

/** Direct convolution kernels. */
export const CONV_MODULE: KernelModule = {
  name: "conv",
  source,
  kernels: {
    kd_conv2d_fwd: ["ptr", "ptr", "ptr", "ptr", "u32", "conv"],
    kd_conv2d_bwd_data: ["ptr", "ptr", "ptr", "u32", "conv"],
    kd_conv2d_bwd_filter: ["ptr", "ptr", "ptr", "conv"],
  },
};

/**
 * The 16 ints of `KdConv`, in field order.
 *
 * @param g The geometry.
 * @returns `n, c, h, w, k, r, s, oh, ow, sh, sw, ph, pw, dh, dw, groups`.
 */
export function convFields(g: Conv2dGeometry): number[] {
  return [
    g.n,
    g.c,
    g.h,
    g.w,
    g.k,
    g.r,
    g.s,
    g.oh,
    g.ow,
    g.stride[0],
    g.stride[1],
    g.padding[0],
    g.padding[1],
    g.dilation[0],
    g.dilation[1],
    g.groups,
  ];
}

/**
 * Convolution forward.
 *
 * @param rt The runtime.
 * @param x `[n, c, h, w]`.
 * @param weight `[k, c/groups, r, s]`.
 * @param bias `[k]` or null.
 * @param g The geometry.
 * @returns `[n, k, oh, ow]`.
 */
export function conv2d(
  rt: CudaRuntime,
  x: Storage,
  weight: Storage,
  bias: Storage | null,
  g: Conv2dGeometry,
): CudaStorage {
  const xs = cuda(x);
  const ws = cuda(weight);
  const bs = bias ? cuda(bias) : null;
  const total = g.n * g.k * g.oh * g.ow;
  const y = rt.alloc("float32", total);
  if (total === 0) return y;
  const k = rt.kernel(CONV_MODULE, "kd_conv2d_fwd");
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).ptr(2, ws.ptr).ptr(3, bs ? bs.ptr : 0n)
    .u32(4, total).ints(5, convFields(g));
  k.launch(gridFor(total));
  return y;
}

/**
 * Gradient of the convolution with respect to its input.
 *
 * @param rt The runtime.
 * @param dy `[n, k, oh, ow]`.
 * @param weight `[k, c/groups, r, s]`.
 * @param g The geometry.
 * @returns `[n, c, h, w]`.
 */
export function conv2dBackwardData(
  rt: CudaRuntime,
  dy: Storage,
  weight: Storage,
  g: Conv2dGeometry,
): CudaStorage {
  const dys = cuda(dy);
  const ws = cuda(weight);
  const total = g.n * g.c * g.h * g.w;
  const dx = rt.alloc("float32", total);
  if (total === 0) return dx;
  const k = rt.kernel(CONV_MODULE, "kd_conv2d_bwd_data");
  k.args.ptr(0, dx.ptr).ptr(1, dys.ptr).ptr(2, ws.ptr).u32(3, total)
    .ints(4, convFields(g));
  k.launch(gridFor(total));
  return dx;
}

/**
 * Gradient of the convolution with respect to its weight.
 *
 * @param rt The runtime.
 * @param x `[n, c, h, w]`.
 * @param dy `[n, k, oh, ow]`.
 * @param g The geometry.
 * @returns `[k, c/groups, r, s]`.
 */
export function conv2dBackwardFilter(
  rt: CudaRuntime,
  x: Storage,
  dy: Storage,
  g: Conv2dGeometry,
): CudaStorage {
  const xs = cuda(x);
  const dys = cuda(dy);
  const count = g.k * (g.c / g.groups) * g.r * g.s;
  const dw = rt.alloc("float32", count);
  if (count === 0) return dw;
  const positions = g.n * g.oh * g.ow;
  if (positions === 0) {
    rt.device.fill32(dw.pointer, 0, count);
    return dw;
  }
  const k = rt.kernel(CONV_MODULE, "kd_conv2d_bwd_filter");
  k.args.ptr(0, dw.ptr).ptr(1, xs.ptr).ptr(2, dys.ptr).ints(3, convFields(g));
  const block = positions >= 4096 ? 256 : positions >= 512 ? 128 : 32;
  k.launch(count, block);
  return dw;
}
