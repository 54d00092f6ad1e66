/**
 * The CPU backend's one choice between implementations. Every CPU kernel has
 * a readable TypeScript reference in its family file (`elementwise.ts`,
 * `reduce.ts`, `pool.ts`, `batch_norm.ts`, ...): it is the oracle the tests
 * compare against and the fallback that runs without `--allow-ffi`. An op
 * with a faster implementation on this platform gets it from the table
 * below, chosen here and nowhere else; kernels call `fastKernels()?.op` and
 * run their reference when there is no table.
 *
 * | op (contiguous float32)       | fast implementation                    |
 * | ----------------------------- | -------------------------------------- |
 * | relu, reluGrad, add, axpy     | native C (`native.ts`)                 |
 * | sum over the middle axis      | native C                               |
 * | max pooling and its gradient  | native C                               |
 * | batch norm passes (+ ReLU)    | native C                               |
 * | conv2d and its gradients      | oneDNN, else OpenBLAS GEMM (`conv.ts`) |
 * | GEMM                          | OpenBLAS (`gemm.ts`)                   |
 *
 * Convolution and GEMM choose inside their own files because their choice
 * depends on the shapes (oneDNN primitives are built per geometry and fall
 * back per geometry); the ops in this table depend only on the platform.
 *
 * Removed, as they no longer ran where the C kernels build: a oneDNN ReLU
 * gradient (used only when the C kernels were missing) and TypeScript
 * bit-trick variants of ReLU and max pooling (separable int32-key passes, a
 * 2x2 kernel, a tiling 2x2 backward); the bit variants also turned -0 into
 * +0 where PyTorch keeps it. With the C kernels the models bench is
 * unchanged (interleaved A/B, within noise). The TypeScript fallback alone
 * (`KDENO_NATIVE=0`) got slower on 25.7M-element inputs, 2 shared cores:
 * ReLU 75 → 177 ms, its gradient 37 (oneDNN) → 188 ms, max pooling 3x3/2
 * 180 → 247 ms and 2x2/2 14 → 40 ms; its backward 8 → 4 ms. Every
 * implementation keeps PyTorch's semantics for the sign of zero, NaN and
 * infinities, pinned for every backend in `tests/ops/edge_semantics_test.ts`.
 *
 * @module
 */

import type { Pool2dGeometry } from "../backend.ts";
import { type NativeKernels, nativeKernels } from "./native.ts";

/** The fast implementations on this platform; each writes its output. */
export interface FastKernels {
  /** `y = x < 0 ? 0 : x` (-0 and NaN kept, as PyTorch). */
  relu(x: Float32Array, y: Float32Array): void;
  /** `out = y <= 0 ? 0 : dy` (a select: a NaN `y` passes `dy`). */
  reluGrad(dy: Float32Array, y: Float32Array, out: Float32Array): void;
  /** `y = a + b`. */
  add(a: Float32Array, b: Float32Array, y: Float32Array): void;
  /** `d += alpha * s`. */
  axpy(d: Float32Array, s: Float32Array, alpha: number): void;
  /** Sums the middle axis of `[outer, r, inner]` into `y` (float64 sums). */
  sumMid(
    x: Float32Array,
    y: Float32Array,
    outer: number,
    r: number,
    inner: number,
  ): void;
  /** Max pooling over `n * c` planes; the argmax only when `idx` is non-empty. */
  maxPool2d(
    x: Float32Array,
    y: Float32Array,
    idx: Int32Array,
    g: Pool2dGeometry,
  ): void;
  /** `dx[idx] += dy` per plane; `tiles`: 2x2/2 windows that tile the input. */
  maxPool2dBackward(
    dy: Float32Array,
    idx: Int32Array,
    dx: Float32Array,
    g: Pool2dGeometry,
    tiles: boolean,
  ): void;
  /** Batch-norm statistics: `out[ch]` = mean, `out[c + ch]` = sum of squared deviations. */
  bnStats(
    x: Float32Array,
    n: number,
    c: number,
    hw: number,
    out: Float64Array,
  ): void;
  /** `y = x * scale[ch] + shift[ch]`, then ReLU if asked. */
  channelAffine(
    x: Float32Array,
    y: Float32Array,
    scale: Float64Array,
    shift: Float64Array,
    n: number,
    c: number,
    hw: number,
    relu: boolean,
  ): void;
  /** `out[ch]` = sum(dy), `out[c + ch]` = sum((x - mean[ch]) * dy). */
  bnBwdStats(
    x: Float32Array,
    dy: Float32Array,
    mean: Float64Array,
    n: number,
    c: number,
    hw: number,
    out: Float64Array,
  ): void;
  /** `dx = (dy - (x - m) * proj - gradMean) * scale`; coef: m, proj, gradMean, scale. */
  bnBwdApply(
    x: Float32Array,
    dy: Float32Array,
    dx: Float32Array,
    coef: Float64Array,
    n: number,
    c: number,
    hw: number,
  ): void;
}

let chosenFor: NativeKernels | null | undefined;
let chosen: FastKernels | null = null;

/**
 * The fast kernels of this platform, or `null` when only the TypeScript
 * references run (no native build, or turned off by `setNativeKernels`).
 * Chosen once, and again only when the native kernels are turned on or off.
 *
 * @returns The table, or `null`.
 */
export function fastKernels(): FastKernels | null {
  const nk = nativeKernels();
  if (nk !== chosenFor) {
    chosenFor = nk;
    chosen = nk ? fromNative(nk) : null;
  }
  return chosen;
}

function fromNative(nk: NativeKernels): FastKernels {
  return {
    relu: (x, y) => nk.kd_relu(x, y, x.length),
    reluGrad: (dy, y, out) => nk.kd_relu_grad(dy, y, out, out.length),
    add: (a, b, y) => nk.kd_add(a, b, y, y.length),
    axpy: (d, s, alpha) => nk.kd_axpy(d, s, alpha, d.length),
    sumMid: (x, y, outer, r, inner) => nk.kd_sum_mid(x, y, outer, r, inner),
    maxPool2d(x, y, idx, g) {
      const geo = Int32Array.of(
        g.h,
        g.w,
        g.oh,
        g.ow,
        ...g.kernel,
        ...g.stride,
        ...g.padding,
        ...g.dilation,
      );
      nk.kd_maxpool(x, y, idx, idx.length > 0 ? 1 : 0, g.n * g.c, geo);
    },
    maxPool2dBackward: (dy, idx, dx, g, tiles) =>
      nk.kd_maxpool_bwd(dy, idx, dx, g.n * g.c, g.h, g.w, g.oh, g.ow, +tiles),
    bnStats: (x, n, c, hw, out) =>
      nk.kd_bn_stats(x, n, c, hw, new Float64Array(n * c), out),
    channelAffine: (x, y, scale, shift, n, c, hw, relu) =>
      nk.kd_channel_affine(x, y, scale, shift, n, c, hw, relu ? 1 : 0),
    bnBwdStats: (x, dy, mean, n, c, hw, out) =>
      nk.kd_bn_bwd_stats(
        x,
        dy,
        mean,
        n,
        c,
        hw,
        new Float64Array(2 * n * c),
        out,
      ),
    bnBwdApply: (x, dy, dx, coef, n, c, hw) =>
      nk.kd_bn_bwd_apply(x, dy, dx, coef, n, c, hw),
  };
}
