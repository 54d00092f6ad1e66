/**
 * Reductions and index kernels on typed arrays.
 *
 * @module
 */

import type { ReduceOp, TypedArray } from "../backend.ts";
import { f32, f32Out, i32 } from "./_array_pool.ts";
import { fastKernels } from "./dispatch.ts";

/** Reduces the middle axis of `[outer, r, inner]`; sums in float64. */
export function reduce(
  op: ReduceOp,
  x: TypedArray,
  outer: number,
  r: number,
  inner: number,
): TypedArray {
  const isArg = op === "argmax" || op === "argmin";
  const n = outer * inner;
  const fast = op === "sum" && x instanceof Float32Array ? fastKernels() : null;
  if (fast) {
    const y = f32Out(n);
    fast.sumMid(x as Float32Array, y, outer, r, inner);
    return y;
  }
  const y: TypedArray = isArg || x instanceof Int32Array ? i32(n) : f32(n);
  if (op === "sum") {
    if (inner === 1) {
      for (let o = 0; o < outer; o++) {
        let acc = 0;
        const base = o * r;
        for (let j = 0; j < r; j++) acc += x[base + j];
        y[o] = acc;
      }
    } else {
      const acc = new Float64Array(inner);
      for (let o = 0; o < outer; o++) {
        acc.fill(0);
        for (let j = 0; j < r; j++) {
          const base = (o * r + j) * inner;
          for (let i = 0; i < inner; i++) acc[i] += x[base + i];
        }
        for (let i = 0; i < inner; i++) y[o * inner + i] = acc[i];
      }
    }
    return y;
  }
  const wantMax = op === "max" || op === "argmax";
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * r * inner + i;
      let best = x[base];
      let bestJ = 0;
      if (best === best) {
        for (let j = 1; j < r; j++) {
          const v = x[base + j * inner];
          if (v !== v) { // NaN wins, as in PyTorch
            best = v;
            bestJ = j;
            break;
          }
          if (wantMax ? v > best : v < best) {
            best = v;
            bestJ = j;
          }
        }
      }
      y[o * inner + i] = isArg ? bestJ : best;
    }
  }
  return y;
}

/** `y[o, j, i] = x[o, idx[j], i]`. */
export function indexSelect(
  x: TypedArray,
  outer: number,
  dim: number,
  inner: number,
  idx: Int32Array,
): TypedArray {
  const m = idx.length;
  const y = x instanceof Int32Array
    ? i32(outer * m * inner)
    : f32(outer * m * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const src = (o * dim + idx[j]) * inner;
      y.set(x.subarray(src, src + inner), (o * m + j) * inner);
    }
  }
  return y;
}

/** `dst[o, idx[j], i] += src[o, j, i]`. */
export function indexAdd(
  dst: TypedArray,
  outer: number,
  dim: number,
  inner: number,
  idx: Int32Array,
  src: TypedArray,
): void {
  const m = idx.length;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const d = (o * dim + idx[j]) * inner;
      const s = (o * m + j) * inner;
      for (let i = 0; i < inner; i++) dst[d + i] += src[s + i];
    }
  }
}

/** `y[o, j, i] = x[o, index[o, j, i], i]`. */
export function gather(
  x: TypedArray,
  outer: number,
  dim: number,
  inner: number,
  index: Int32Array,
  m: number,
): TypedArray {
  const y = x instanceof Int32Array
    ? i32(outer * m * inner)
    : f32(outer * m * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const b = (o * m + j) * inner;
      for (let i = 0; i < inner; i++) {
        y[b + i] = x[(o * dim + index[b + i]) * inner + i];
      }
    }
  }
  return y;
}

/** `dst[o, index[o, j, i], i] += src[o, j, i]`. */
export function scatterAdd(
  dst: TypedArray,
  outer: number,
  dim: number,
  inner: number,
  index: Int32Array,
  m: number,
  src: TypedArray,
): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const b = (o * m + j) * inner;
      for (let i = 0; i < inner; i++) {
        dst[(o * dim + index[b + i]) * inner + i] += src[b + i];
      }
    }
  }
}
