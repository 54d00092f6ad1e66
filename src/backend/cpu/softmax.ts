/**
 * Softmax and log-softmax over the middle axis of `[outer, n, inner]`, and
 * their gradients, numerically stable (the maximum is subtracted first) with
 * the normalising sum accumulated in float64.
 *
 * @module
 */

import { f32 } from "./_array_pool.ts";

/**
 * Softmax (or log-softmax) over the middle axis of `[outer, n, inner]`.
 *
 * @param x Input.
 * @param outer Product of the axes before the softmax axis.
 * @param n Length of the softmax axis.
 * @param inner Product of the axes after it.
 * @param log Return log-softmax instead.
 * @returns The output, same layout.
 */
export function softmax(
  x: Float32Array,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
): Float32Array {
  const y = f32(outer * n * inner);
  if (n === 0) return y;
  if (inner === 1) {
    const e = new Float64Array(n);
    for (let o = 0; o < outer; o++) {
      const base = o * n;
      let max = -Infinity;
      for (let i = 0; i < n; i++) {
        const v = x[base + i];
        if (v > max || v !== v) max = v;
      }
      if (max === -Infinity) max = 0; // all -inf: exp gives 0 / 0 = NaN, as in PyTorch
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const v = Math.exp(x[base + i] - max);
        e[i] = v;
        sum += v;
      }
      if (log) {
        const lse = max + Math.log(sum);
        for (let i = 0; i < n; i++) y[base + i] = x[base + i] - lse;
      } else {
        const inv = 1 / sum;
        for (let i = 0; i < n; i++) y[base + i] = e[i] * inv;
      }
    }
    return y;
  }
  const max = new Float64Array(inner);
  const sum = new Float64Array(inner);
  const e = new Float64Array(n * inner);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    max.fill(-Infinity);
    sum.fill(0);
    for (let i = 0; i < n; i++) {
      const r = base + i * inner;
      for (let j = 0; j < inner; j++) {
        const v = x[r + j];
        if (v > max[j] || v !== v) max[j] = v;
      }
    }
    for (let j = 0; j < inner; j++) if (max[j] === -Infinity) max[j] = 0;
    for (let i = 0; i < n; i++) {
      const r = base + i * inner;
      const er = i * inner;
      for (let j = 0; j < inner; j++) {
        const v = Math.exp(x[r + j] - max[j]);
        e[er + j] = v;
        sum[j] += v;
      }
    }
    if (log) {
      for (let j = 0; j < inner; j++) sum[j] = max[j] + Math.log(sum[j]);
      for (let i = 0; i < n; i++) {
        const r = base + i * inner;
        for (let j = 0; j < inner; j++) y[r + j] = x[r + j] - sum[j];
      }
    } else {
      for (let j = 0; j < inner; j++) sum[j] = 1 / sum[j];
      for (let i = 0; i < n; i++) {
        const r = base + i * inner;
        const er = i * inner;
        for (let j = 0; j < inner; j++) y[r + j] = e[er + j] * sum[j];
      }
    }
  }
  return y;
}

/**
 * Gradient of softmax (`dx = y * (dy - sum(dy * y))`) or log-softmax
 * (`dx = dy - exp(y) * sum(dy)`) given the forward output `y`.
 *
 * @param y Output of {@linkcode softmax}.
 * @param dy Gradient of the output.
 * @param outer Product of the axes before the softmax axis.
 * @param n Length of the softmax axis.
 * @param inner Product of the axes after it.
 * @param log The forward pass was log-softmax.
 * @returns `dx`, same layout.
 */
export function softmaxBackward(
  y: Float32Array,
  dy: Float32Array,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
): Float32Array {
  const dx = f32(outer * n * inner);
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const base = o * n;
      let s = 0;
      if (log) {
        for (let i = base; i < base + n; i++) s += dy[i];
        for (let i = base; i < base + n; i++) {
          dx[i] = dy[i] - Math.exp(y[i]) * s;
        }
      } else {
        for (let i = base; i < base + n; i++) s += dy[i] * y[i];
        for (let i = base; i < base + n; i++) dx[i] = y[i] * (dy[i] - s);
      }
    }
    return dx;
  }
  const s = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    s.fill(0);
    for (let i = 0; i < n; i++) {
      const r = base + i * inner;
      if (log) { for (let j = 0; j < inner; j++) s[j] += dy[r + j]; }
      else for (let j = 0; j < inner; j++) s[j] += dy[r + j] * y[r + j];
    }
    for (let i = 0; i < n; i++) {
      const r = base + i * inner;
      if (log) {
        for (let j = 0; j < inner; j++) {
          dx[r + j] = dy[r + j] - Math.exp(y[r + j]) * s[j];
        }
      } else {
        for (let j = 0; j < inner; j++) {
          dx[r + j] = y[r + j] * (dy[r + j] - s[j]);
        }
      }
    }
  }
  return dx;
}
