/**
 * Batch normalisation kernels for the CPU backend over `[n, c, hw]` (NCHW
 * with the spatial axes flattened), as `torch.nn.functional.batch_norm`
 * computes them on the CPU: statistics accumulate in float64, the output is
 * `x * (invStd * weight) + (bias - mean * invStd * weight)`.
 *
 * @module
 */

import type {
  BatchNormGeometry,
  BatchNormParams,
  BatchNormSaved,
} from "../backend.ts";
import { f32, f32Out } from "./_array_pool.ts";
import { type FastKernels, fastKernels } from "./dispatch.ts";

/**
 * Training-mode batch norm: normalises with the batch statistics (biased
 * variance) and, when given, updates the running statistics in place with
 * `running = (1 - momentum) * running + momentum * batch` (unbiased variance
 * for `runningVar`).
 *
 * @param x Input `[n, c, hw]`.
 * @param p Scale and shift `[c]` (`null` for 1 and 0) and the running mean
 * and variance `[c]`, updated in place, or `null`.
 * @param g Sizes, momentum, eps, and the activation: with `"relu"` a ReLU is
 * applied to `y` as it is written.
 * @returns `y` `[n, c, hw]`, the batch `mean` `[c]` and `invStd` `[c]`.
 */
export function batchNormTrain(
  x: Float32Array,
  p: BatchNormParams<Float32Array>,
  g: BatchNormGeometry,
): { y: Float32Array } & BatchNormSaved<Float32Array> {
  const { weight, bias, runningMean, runningVar } = p;
  const { n, c, hw, momentum, eps } = g;
  const y = f32Out(n * c * hw);
  const mean = f32(c);
  const invStd = f32(c);
  const count = n * hw;
  const k = kernels();
  const stats = new Float64Array(2 * c);
  k.bnStats(x, n, c, hw, stats);
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const m = stats[ch];
    const sq = stats[c + ch];
    const inv = 1 / Math.sqrt(sq / count + eps);
    mean[ch] = m;
    invStd[ch] = inv;
    scale[ch] = inv * (weight ? weight[ch] : 1);
    shift[ch] = (bias ? bias[ch] : 0) - m * scale[ch];
    updateRunning(runningMean, runningVar, ch, m, sq, count, momentum);
  }
  k.channelAffine(x, y, scale, shift, n, c, hw, g.activation === "relu");
  return { y, mean, invStd };
}

function updateRunning(
  runningMean: Float32Array | null,
  runningVar: Float32Array | null,
  ch: number,
  m: number,
  sq: number,
  count: number,
  momentum: number,
): void {
  if (runningMean) {
    runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * m;
  }
  if (runningVar) {
    const unbiased = count > 1 ? sq / (count - 1) : Infinity;
    runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * unbiased;
  }
}

/**
 * Evaluation-mode batch norm with fixed statistics.
 *
 * @param x Input `[n, c, hw]`.
 * @param p Scale and shift `[c]` (`null` for 1 and 0) and the running mean
 * and variance `[c]` (required).
 * @param g Sizes, eps, and the activation: with `"relu"` a ReLU is applied
 * to the output as it is written.
 * @returns `y` `[n, c, hw]`.
 */
export function batchNormEval(
  x: Float32Array,
  p: BatchNormParams<Float32Array>,
  g: BatchNormGeometry,
): Float32Array {
  const { weight, bias } = p;
  const runningMean = p.runningMean!;
  const runningVar = p.runningVar!;
  const { n, c, hw, eps } = g;
  const y = f32Out(n * c * hw);
  const scale = new Float64Array(c);
  const shift = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    const inv = 1 / Math.sqrt(runningVar[ch] + eps);
    scale[ch] = inv * (weight ? weight[ch] : 1);
    shift[ch] = (bias ? bias[ch] : 0) - runningMean[ch] * scale[ch];
  }
  kernels().channelAffine(
    x,
    y,
    scale,
    shift,
    n,
    c,
    hw,
    g.activation === "relu",
  );
  return y;
}

/**
 * Gradients of training-mode batch norm, given the batch `mean` and `invStd`
 * saved by {@linkcode batchNormTrain}.
 *
 * @param x Input of the forward pass `[n, c, hw]`.
 * @param dy Gradient of the output `[n, c, hw]`.
 * @param weight Scale `[c]` or `null` (1).
 * @param saved Batch mean `[c]` and `invStd` (`1 / sqrt(var + eps)`) `[c]`.
 * @param g Sizes (the rest is not needed).
 * @returns `dx` `[n, c, hw]`, `dweight` `[c]` and `dbias` `[c]`.
 */
export function batchNormBackward(
  x: Float32Array,
  dy: Float32Array,
  weight: Float32Array | null,
  saved: BatchNormSaved<Float32Array>,
  g: Pick<BatchNormGeometry, "n" | "c" | "hw">,
): { dx: Float32Array; dweight: Float32Array; dbias: Float32Array } {
  const { mean, invStd } = saved;
  const { n, c, hw } = g;
  const dx = f32Out(n * c * hw);
  const dweight = f32(c);
  const dbias = f32(c);
  const count = n * hw;
  const k = kernels();
  const sums = new Float64Array(2 * c);
  k.bnBwdStats(x, dy, Float64Array.from(mean), n, c, hw, sums);
  const coef = new Float64Array(4 * c);
  for (let ch = 0; ch < c; ch++) {
    const inv = invStd[ch];
    const sumDy = sums[ch];
    const dot = sums[c + ch];
    dweight[ch] = dot * inv;
    dbias[ch] = sumDy;
    coef[ch] = mean[ch];
    coef[c + ch] = (dot * inv * inv) / count; // proj
    coef[2 * c + ch] = sumDy / count; // gradMean
    coef[3 * c + ch] = inv * (weight ? weight[ch] : 1); // scale
  }
  k.bnBwdApply(x, dy, dx, coef, n, c, hw);
  return { dx, dweight, dbias };
}

/**
 * The passes over the data: the platform's fast kernels or the TypeScript
 * references below (same arithmetic; the per-channel coefficients between
 * them are computed once, above).
 */
type Passes = Pick<
  FastKernels,
  "bnStats" | "channelAffine" | "bnBwdStats" | "bnBwdApply"
>;

function kernels(): Passes {
  return fastKernels() ?? TS_PASSES;
}

const TS_PASSES: Passes = {
  bnStats(x, n, c, hw, out) {
    const chw = c * hw;
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let b = 0; b < n; b++) sum += rangeSum(x, b * chw + ch * hw, hw);
      const m = sum / (n * hw);
      let sq = 0;
      for (let b = 0; b < n; b++) sq += rangeSqDev(x, b * chw + ch * hw, hw, m);
      out[ch] = m;
      out[c + ch] = sq;
    }
  },
  channelAffine(x, y, scale, shift, n, c, hw, relu) {
    const chw = c * hw;
    for (let ch = 0; ch < c; ch++) {
      for (let b = 0; b < n; b++) {
        const o = b * chw + ch * hw;
        affineRange(x, y, o, hw, scale[ch], shift[ch]);
        // the plane is still in cache: the ReLU costs little here
        if (relu) reluRange(y, o, o + hw);
      }
    }
  },
  bnBwdStats(x, dy, mean, n, c, hw, out) {
    const chw = c * hw;
    for (let ch = 0; ch < c; ch++) {
      let sumDy = 0;
      let dot = 0;
      for (let b = 0; b < n; b++) {
        const o = b * chw + ch * hw;
        sumDy += rangeSum(dy, o, hw);
        dot += rangeDot(x, dy, o, hw, mean[ch]);
      }
      out[ch] = sumDy;
      out[c + ch] = dot;
    }
  },
  bnBwdApply(x, dy, dx, coef, n, c, hw) {
    const chw = c * hw;
    for (let ch = 0; ch < c; ch++) {
      for (let b = 0; b < n; b++) {
        backwardRange(
          x,
          dy,
          dx,
          b * chw + ch * hw,
          hw,
          coef[ch],
          coef[c + ch],
          coef[2 * c + ch],
          coef[3 * c + ch],
        );
      }
    }
  },
};

// Float64 sums with four independent accumulators (an add's latency, not its
// throughput, bounds a single running sum).

function rangeSum(a: Float32Array, o: number, len: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const end = o + len;
  let i = o;
  for (; i + 4 <= end; i += 4) {
    s0 += a[i];
    s1 += a[i + 1];
    s2 += a[i + 2];
    s3 += a[i + 3];
  }
  for (; i < end; i++) s0 += a[i];
  return (s0 + s1) + (s2 + s3);
}

function rangeSqDev(
  a: Float32Array,
  o: number,
  len: number,
  m: number,
): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const end = o + len;
  let i = o;
  for (; i + 4 <= end; i += 4) {
    const d0 = a[i] - m, d1 = a[i + 1] - m, d2 = a[i + 2] - m;
    const d3 = a[i + 3] - m;
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < end; i++) {
    const d = a[i] - m;
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

/** `sum((x - m) * g)` over a range. */
function rangeDot(
  x: Float32Array,
  g: Float32Array,
  o: number,
  len: number,
  m: number,
): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const end = o + len;
  let i = o;
  for (; i + 4 <= end; i += 4) {
    s0 += (x[i] - m) * g[i];
    s1 += (x[i + 1] - m) * g[i + 1];
    s2 += (x[i + 2] - m) * g[i + 2];
    s3 += (x[i + 3] - m) * g[i + 3];
  }
  for (; i < end; i++) s0 += (x[i] - m) * g[i];
  return (s0 + s1) + (s2 + s3);
}

// The per-range loops live in small functions so V8 optimises them as whole
// functions; as inner loops of one long call they ran in on-stack-replaced
// code that fell back to the interpreter at every loop exit.

function affineRange(
  x: Float32Array,
  y: Float32Array,
  o: number,
  len: number,
  scale: number,
  shift: number,
): void {
  const end = o + len;
  for (let i = o; i < end; i++) y[i] = x[i] * scale + shift;
}

function backwardRange(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  o: number,
  len: number,
  m: number,
  proj: number,
  gradMean: number,
  scale: number,
): void {
  const end = o + len;
  for (let i = o; i < end; i++) {
    dx[i] = (dy[i] - (x[i] - m) * proj - gradMean) * scale;
  }
}

/** ReLU in place on `y[from..to)`, PyTorch's: -0 and NaN stay. */
function reluRange(y: Float32Array, from: number, to: number): void {
  for (let i = from; i < to; i++) if (y[i] < 0) y[i] = 0;
}
