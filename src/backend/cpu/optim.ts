/**
 * Fused optimizer updates for the CPU backend, in place, following
 * `torch.optim.SGD`, `torch.optim.Adam` and `torch.optim.AdamW` (PyTorch
 * 1.13, single-tensor path) step by step. The gradient is never modified.
 *
 * @module
 */

import type { AdamUpdate, SgdUpdate } from "../backend.ts";

/**
 * One SGD step: `g = grad + weightDecay * p`; with momentum,
 * `buf = firstStep ? g : momentum * buf + (1 - dampening) * g` and
 * `g = nesterov ? g + momentum * buf : buf`; then `p -= lr * g`.
 *
 * @param param Parameter, updated in place.
 * @param grad Its gradient (read only).
 * @param momentumBuf Momentum buffer, updated in place; required when
 * `o.momentum != 0`.
 * @param o Hyper-parameters of this step.
 */
export function sgdStep(
  param: Float32Array,
  grad: Float32Array,
  momentumBuf: Float32Array | null,
  o: SgdUpdate,
): void {
  const { lr, momentum, dampening, weightDecay: wd, nesterov, firstStep } = o;
  const len = param.length;
  if (momentum === 0) {
    for (let i = 0; i < len; i++) {
      const g = wd !== 0 ? grad[i] + wd * param[i] : grad[i];
      param[i] -= lr * g;
    }
    return;
  }
  if (momentumBuf === null) {
    throw new RangeError(
      `Cannot take an SGD step: momentum ${momentum} needs a momentum buffer`,
    );
  }
  const buf = momentumBuf;
  const keep = 1 - dampening;
  for (let i = 0; i < len; i++) {
    let g = grad[i];
    if (wd !== 0) g = Math.fround(g + wd * param[i]);
    // round the buffer to float32 as PyTorch stores it before using it
    buf[i] = firstStep ? g : momentum * buf[i] + keep * g;
    const b = buf[i];
    const d = nesterov ? g + momentum * b : b;
    param[i] -= lr * d;
  }
}

/**
 * One Adam (or AdamW, `o.decoupled`) step, with optional AMSGrad.
 *
 * @param param Parameter, updated in place.
 * @param grad Its gradient (read only).
 * @param expAvg First-moment estimate, updated in place.
 * @param expAvgSq Second-moment estimate, updated in place.
 * @param maxExpAvgSq Running maximum of `expAvgSq` (AMSGrad), updated in
 * place; required when `o.amsgrad`.
 * @param o Hyper-parameters of this step (`step` starts at 1).
 */
export function adamStep(
  param: Float32Array,
  grad: Float32Array,
  expAvg: Float32Array,
  expAvgSq: Float32Array,
  maxExpAvgSq: Float32Array | null,
  o: AdamUpdate,
): void {
  const { lr, beta1, beta2, eps, weightDecay: wd, decoupled, step, amsgrad } =
    o;
  if (amsgrad && maxExpAvgSq === null) {
    throw new RangeError(
      "Cannot take an AMSGrad step: maxExpAvgSq is missing",
    );
  }
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  const stepSize = lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  const decay = decoupled ? 1 - lr * wd : 1;
  const l2 = decoupled ? 0 : wd;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const len = param.length;
  const mx = maxExpAvgSq ?? expAvgSq;
  for (let i = 0; i < len; i++) {
    // each intermediate PyTorch stores as float32 is re-read from its array
    if (decay !== 1) param[i] *= decay;
    const p = param[i];
    let g = grad[i];
    if (l2 !== 0) g = Math.fround(g + l2 * p);
    expAvg[i] = expAvg[i] * beta1 + c1 * g;
    expAvgSq[i] = expAvgSq[i] * beta2 + c2 * g * g;
    const m = expAvg[i];
    let v = expAvgSq[i];
    if (amsgrad) {
      if (v > mx[i] || v !== v) mx[i] = v;
      v = mx[i];
    }
    const denom = Math.sqrt(v) / bc2Sqrt + eps;
    param[i] = p - stepSize * (m / denom);
  }
}
