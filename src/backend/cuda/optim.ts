/**
 * Fused optimizer updates, one thread per parameter element, following
 * `torch.optim.SGD` and `torch.optim.Adam`/`AdamW` (single-tensor path).
 * Bias corrections are computed on the host in double precision.
 *
 * @module
 */

import type { AdamUpdate, SgdUpdate, Storage } from "../backend.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { cuda, type CudaRuntime } from "./runtime.ts";

const source = `
extern "C" __global__ void kd_sgd(float* __restrict__ p,
                                  const float* __restrict__ g,
                                  float* __restrict__ buf, u32 n, float lr,
                                  float momentum, float dampening, float wd,
                                  int nesterov, int first) {
  KD_FOR(i, n) {
    float d = g[i];
    if (wd != 0.0f) d += wd * p[i];
    if (momentum != 0.0f) {
      const float b = first ? d : momentum * buf[i] + (1.0f - dampening) * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
  }
}
extern "C" __global__ void kd_adam(float* __restrict__ p,
                                   const float* __restrict__ g,
                                   float* __restrict__ m, float* __restrict__ v,
                                   float* __restrict__ vmax, u32 n, float lr,
                                   float beta1, float beta2, float eps,
                                   float wd, int decoupled, float stepSize,
                                   float bc2Sqrt, int amsgrad) {
  KD_FOR(i, n) {
    float gi = g[i], pi = p[i];
    if (wd != 0.0f) {
      if (decoupled) pi *= 1.0f - lr * wd;
      else gi += wd * pi;
    }
    const float mi = m[i] + (1.0f - beta1) * (gi - m[i]);  // lerp, as torch
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float vv = vi;
    if (amsgrad) {
      vv = fmaxf(vmax[i], vi);
      vmax[i] = vv;
    }
    p[i] = pi - stepSize * mi / (sqrtf(vv) / bc2Sqrt + eps);
  }
}
`;

/** Optimizer kernels. */
export const OPTIM_MODULE: KernelModule = {
  name: "optim",
  source,
  kernels: {
    kd_sgd: [
      "ptr",
      "ptr",
      "ptr",
      "u32",
      "f32",
      "f32",
      "f32",
      "f32",
      "i32",
      "i32",
    ],
    kd_adam: [
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "ptr",
      "u32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "i32",
      "f32",
      "f32",
      "i32",
    ],
  },
};

/**
 * One SGD step, in place.
 *
 * @param rt The runtime.
 * @param param Parameters.
 * @param grad Gradients.
 * @param momentumBuf Momentum buffer (needed when momentum > 0).
 * @param o The update.
 */
export function sgdStep(
  rt: CudaRuntime,
  param: Storage,
  grad: Storage,
  momentumBuf: Storage | null,
  o: SgdUpdate,
): void {
  const ps = cuda(param);
  const n = ps.length;
  if (n === 0) return;
  if (o.momentum !== 0 && !momentumBuf) {
    throw new TypeError(
      "Cannot run sgdStep on CUDA: momentum is set but no momentum buffer " +
        "was given",
    );
  }
  const k = rt.kernel(OPTIM_MODULE, "kd_sgd");
  k.args.ptr(0, ps.ptr).ptr(1, cuda(grad).ptr)
    .ptr(2, momentumBuf ? cuda(momentumBuf).ptr : 0n).u32(3, n).f32(4, o.lr)
    .f32(5, o.momentum).f32(6, o.dampening).f32(7, o.weightDecay)
    .i32(8, o.nesterov ? 1 : 0).i32(9, o.firstStep ? 1 : 0);
  k.launch(gridFor(n));
}

/**
 * One Adam/AdamW step, in place.
 *
 * @param rt The runtime.
 * @param param Parameters.
 * @param grad Gradients.
 * @param expAvg First moment.
 * @param expAvgSq Second moment.
 * @param maxExpAvgSq Running maximum of the second moment (AMSGrad).
 * @param o The update.
 */
export function adamStep(
  rt: CudaRuntime,
  param: Storage,
  grad: Storage,
  expAvg: Storage,
  expAvgSq: Storage,
  maxExpAvgSq: Storage | null,
  o: AdamUpdate,
): void {
  const ps = cuda(param);
  const n = ps.length;
  if (n === 0) return;
  if (o.amsgrad && !maxExpAvgSq) {
    throw new TypeError(
      "Cannot run adamStep on CUDA: amsgrad is set but no maxExpAvgSq buffer " +
        "was given",
    );
  }
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const k = rt.kernel(OPTIM_MODULE, "kd_adam");
  k.args.ptr(0, ps.ptr).ptr(1, cuda(grad).ptr).ptr(2, cuda(expAvg).ptr)
    .ptr(3, cuda(expAvgSq).ptr)
    .ptr(4, maxExpAvgSq ? cuda(maxExpAvgSq).ptr : 0n).u32(5, n).f32(6, o.lr)
    .f32(7, o.beta1).f32(8, o.beta2).f32(9, o.eps).f32(10, o.weightDecay)
    .i32(11, o.decoupled ? 1 : 0).f32(12, o.lr / bc1).f32(13, Math.sqrt(bc2))
    .i32(14, o.amsgrad ? 1 : 0);
  k.launch(gridFor(n));
}
