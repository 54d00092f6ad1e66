/**
 * Elementwise CPU kernels on typed arrays: unary, binary with broadcast
 * strides, where, clamp. A contiguous path per op, a strided path for
 * broadcasting. ReLU, its gradient and `add` on contiguous float32 take the
 * platform's fast kernel from `dispatch.ts` when there is one.
 *
 * @module
 */

import type { BinaryOp, TypedArray, UnaryOp } from "../backend.ts";
import { f32Out, i32Out } from "./_array_pool.ts";
import { fastKernels } from "./dispatch.ts";

/** `y[i] = op(x[i])` into a fresh Float32Array. */
export function unary(op: UnaryOp, x: TypedArray): Float32Array {
  const n = x.length;
  const y = f32Out(n);
  switch (op) {
    case "neg":
      for (let i = 0; i < n; i++) y[i] = -x[i];
      break;
    case "exp":
      for (let i = 0; i < n; i++) y[i] = Math.exp(x[i]);
      break;
    case "log":
      for (let i = 0; i < n; i++) y[i] = Math.log(x[i]);
      break;
    case "sqrt":
      for (let i = 0; i < n; i++) y[i] = Math.sqrt(x[i]);
      break;
    case "rsqrt":
      for (let i = 0; i < n; i++) y[i] = 1 / Math.sqrt(x[i]);
      break;
    case "abs":
      for (let i = 0; i < n; i++) y[i] = Math.abs(x[i]);
      break;
    case "relu":
      relu(x, y);
      break;
    case "sigmoid":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        // stable in both tails
        if (v >= 0) y[i] = 1 / (1 + Math.exp(-v));
        else {
          const e = Math.exp(v);
          y[i] = e / (1 + e);
        }
      }
      break;
    case "tanh":
      for (let i = 0; i < n; i++) y[i] = Math.tanh(x[i]);
      break;
    case "sign":
      for (let i = 0; i < n; i++) {
        const v = x[i];
        y[i] = v > 0 ? 1 : v < 0 ? -1 : 0;
      }
      break;
    case "square":
      for (let i = 0; i < n; i++) y[i] = x[i] * x[i];
      break;
    case "reciprocal":
      for (let i = 0; i < n; i++) y[i] = 1 / x[i];
      break;
    default:
      throw new Error(`unknown unary op ${op satisfies never}`);
  }
  return y;
}

/**
 * ReLU, PyTorch's `clamp_min(x, 0)`: a negative becomes +0; -0, NaN and
 * +Infinity pass unchanged (`relu(-0)` is -0 in PyTorch).
 */
function relu(x: TypedArray, y: Float32Array): void {
  const fast = x instanceof Float32Array ? fastKernels() : null;
  if (fast) return fast.relu(x as Float32Array, y);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    y[i] = v < 0 ? 0 : v;
  }
}

type Fn2 = (a: number, b: number) => number;

const FNS: Record<BinaryOp, Fn2> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => Math.pow(a, b),
  maximum: (a, b) => (a !== a || b !== b) ? NaN : a > b ? a : b,
  minimum: (a, b) => (a !== a || b !== b) ? NaN : a < b ? a : b,
  reluGrad: (a, b) => b <= 0 ? 0 : a,
  eq: (a, b) => a === b ? 1 : 0,
  ne: (a, b) => a !== b ? 1 : 0,
  lt: (a, b) => a < b ? 1 : 0,
  le: (a, b) => a <= b ? 1 : 0,
  gt: (a, b) => a > b ? 1 : 0,
  ge: (a, b) => a >= b ? 1 : 0,
};

const COMPARISONS = new Set<BinaryOp>(["eq", "ne", "lt", "le", "gt", "ge"]);

function allocLike(
  op: BinaryOp,
  ref: TypedArray,
  n: number,
): TypedArray {
  if (COMPARISONS.has(op) || ref instanceof Int32Array) {
    return i32Out(n);
  }
  return f32Out(n);
}

function isContiguous(
  strides: readonly number[],
  shape: readonly number[],
): boolean {
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== s) return false;
    s *= shape[d];
  }
  return true;
}

function isScalarStrides(strides: readonly number[]): boolean {
  for (const s of strides) if (s !== 0) return false;
  return true;
}

/** Contiguous `y = op(a, b)` with both of length n. */
function binaryContig(
  op: BinaryOp,
  a: TypedArray,
  b: TypedArray,
  y: TypedArray,
): void {
  const n = y.length;
  switch (op) {
    case "add":
      for (let i = 0; i < n; i++) y[i] = a[i] + b[i];
      return;
    case "sub":
      for (let i = 0; i < n; i++) y[i] = a[i] - b[i];
      return;
    case "mul":
      for (let i = 0; i < n; i++) y[i] = a[i] * b[i];
      return;
    case "div":
      for (let i = 0; i < n; i++) y[i] = a[i] / b[i];
      return;
    case "reluGrad":
      // a select, not a mask multiply: NaN * 0 would leak a NaN gradient
      for (let i = 0; i < n; i++) y[i] = b[i] <= 0 ? 0 : a[i];
      return;
    default: {
      const f = FNS[op];
      for (let i = 0; i < n; i++) y[i] = f(a[i], b[i]);
    }
  }
}

/** `y = op(x, s)` or `op(s, x)` for a scalar s. */
export function binaryScalar(
  op: BinaryOp,
  x: TypedArray,
  s: number,
  reverse: boolean,
): TypedArray {
  const n = x.length;
  const y = allocLike(op, x, n);
  if (!reverse) {
    switch (op) {
      case "add":
        for (let i = 0; i < n; i++) y[i] = x[i] + s;
        return y;
      case "sub":
        for (let i = 0; i < n; i++) y[i] = x[i] - s;
        return y;
      case "mul":
        for (let i = 0; i < n; i++) y[i] = x[i] * s;
        return y;
      case "div":
        for (let i = 0; i < n; i++) y[i] = x[i] / s;
        return y;
      case "gt":
        for (let i = 0; i < n; i++) y[i] = +(x[i] > s);
        return y;
      case "lt":
        for (let i = 0; i < n; i++) y[i] = +(x[i] < s);
        return y;
      case "ge":
        for (let i = 0; i < n; i++) y[i] = +(x[i] >= s);
        return y;
      case "le":
        for (let i = 0; i < n; i++) y[i] = +(x[i] <= s);
        return y;
      case "eq":
        for (let i = 0; i < n; i++) y[i] = +(x[i] === s);
        return y;
      case "ne":
        for (let i = 0; i < n; i++) y[i] = +(x[i] !== s);
        return y;
      default: {
        const f = FNS[op];
        for (let i = 0; i < n; i++) y[i] = f(x[i], s);
        return y;
      }
    }
  }
  const f = FNS[op];
  for (let i = 0; i < n; i++) y[i] = f(s, x[i]);
  return y;
}

/**
 * Calls `body(offsets...)` over `shape` with an odometer on the outer dims
 * and an inner loop of the last dim, for up to three strided operands.
 */
function forEachStrided3(
  shape: readonly number[],
  s0: readonly number[],
  s1: readonly number[],
  s2: readonly number[],
  inner: (
    o0: number,
    o1: number,
    o2: number,
    len: number,
    st0: number,
    st1: number,
    st2: number,
    out: number,
  ) => void,
): void {
  const nd = shape.length;
  if (nd === 0) {
    inner(0, 0, 0, 1, 0, 0, 0, 0);
    return;
  }
  const last = nd - 1;
  const len = shape[last];
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return;
  const idx = new Array<number>(nd).fill(0);
  let o0 = 0, o1 = 0, o2 = 0, out = 0;
  const rows = total / len;
  for (let r = 0; r < rows; r++) {
    inner(o0, o1, o2, len, s0[last], s1[last], s2[last], out);
    out += len;
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      o0 += s0[d];
      o1 += s1[d];
      o2 += s2[d];
      if (idx[d] < shape[d]) break;
      o0 -= s0[d] * shape[d];
      o1 -= s1[d] * shape[d];
      o2 -= s2[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** `y = op(a, b)` over `shape` with broadcast strides. */
export function binary(
  op: BinaryOp,
  a: TypedArray,
  aStrides: readonly number[],
  b: TypedArray,
  bStrides: readonly number[],
  shape: readonly number[],
): TypedArray {
  let n = 1;
  for (const d of shape) n *= d;
  const aC = isContiguous(aStrides, shape) && a.length === n;
  const bC = isContiguous(bStrides, shape) && b.length === n;
  const f32s = a instanceof Float32Array && b instanceof Float32Array;
  const fast = aC && bC && f32s ? fastKernels() : null;
  if (fast && (op === "reluGrad" || op === "add")) {
    const y = f32Out(n);
    fast[op](a as Float32Array, b as Float32Array, y);
    return y;
  }
  if (aC && bC) {
    const y = allocLike(op, a, n);
    binaryContig(op, a, b, y);
    return y;
  }
  if (aC && isScalarStrides(bStrides)) return binaryScalar(op, a, b[0], false);
  if (bC && isScalarStrides(aStrides)) return binaryScalar(op, b, a[0], true);
  const y = allocLike(op, a, n);
  const f = FNS[op];
  const zero: number[] = new Array(shape.length).fill(0);
  if (op === "add" || op === "mul" || op === "sub") {
    forEachStrided3(
      shape,
      aStrides,
      bStrides,
      zero,
      (oa, ob, _o2, len, sa, sb, _s2, out) => {
        if (op === "add") {
          for (let i = 0; i < len; i++) {
            y[out + i] = a[oa + i * sa] + b[ob + i * sb];
          }
        } else if (op === "mul") {
          for (let i = 0; i < len; i++) {
            y[out + i] = a[oa + i * sa] * b[ob + i * sb];
          }
        } else {
          for (let i = 0; i < len; i++) {
            y[out + i] = a[oa + i * sa] - b[ob + i * sb];
          }
        }
      },
    );
    return y;
  }
  forEachStrided3(
    shape,
    aStrides,
    bStrides,
    zero,
    (oa, ob, _o2, len, sa, sb, _s2, out) => {
      for (let i = 0; i < len; i++) {
        y[out + i] = f(a[oa + i * sa], b[ob + i * sb]);
      }
    },
  );
  return y;
}

/** `y = cond != 0 ? a : b` over `shape`. */
export function where(
  cond: TypedArray,
  cStrides: readonly number[],
  a: TypedArray,
  aStrides: readonly number[],
  b: TypedArray,
  bStrides: readonly number[],
  shape: readonly number[],
): TypedArray {
  let n = 1;
  for (const d of shape) n *= d;
  const y = a instanceof Int32Array ? i32Out(n) : f32Out(n);
  // forEachStrided3 carries three operands; the output is contiguous.
  const nd = shape.length;
  if (nd === 0) {
    y[0] = cond[0] !== 0 ? a[0] : b[0];
    return y;
  }
  if (
    cond.length === n && isContiguous(cStrides, shape) &&
    a.length === n && isContiguous(aStrides, shape)
  ) {
    if (isScalarStrides(bStrides)) {
      const bv = b[0];
      for (let i = 0; i < n; i++) y[i] = cond[i] !== 0 ? a[i] : bv;
      return y;
    }
    if (b.length === n && isContiguous(bStrides, shape)) {
      for (let i = 0; i < n; i++) y[i] = cond[i] !== 0 ? a[i] : b[i];
      return y;
    }
  }
  forEachStrided3(
    shape,
    cStrides,
    aStrides,
    bStrides,
    (oc, oa, ob, len, sc, sa, sb, out) => {
      for (let i = 0; i < len; i++) {
        y[out + i] = cond[oc + i * sc] !== 0 ? a[oa + i * sa] : b[ob + i * sb];
      }
    },
  );
  return y;
}

/** `y = min(max(x, lo), hi)`; NaN stays NaN. */
export function clamp(x: TypedArray, lo: number, hi: number): TypedArray {
  const n = x.length;
  const y = x instanceof Int32Array ? i32Out(n) : f32Out(n);
  for (let i = 0; i < n; i++) {
    const v = x[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return y;
}

/** Strided gather of a view of `x` into a contiguous array. */
export function stridedCopy(
  x: TypedArray,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): TypedArray {
  let n = 1;
  for (const d of shape) n *= d;
  // a Uint16Array holds float16 / bfloat16 patterns, copied as they are
  const y = x instanceof Int32Array
    ? i32Out(n)
    : x instanceof Uint16Array
    ? new Uint16Array(n)
    : f32Out(n);
  if (shape.length === 0) {
    y[0] = x[offset];
    return y;
  }
  const zero: number[] = new Array(shape.length).fill(0);
  forEachStrided3(
    shape,
    strides,
    zero,
    zero,
    (o, _1, _2, len, s, _s1, _s2, out) => {
      if (s === 1) y.set(x.subarray(offset + o, offset + o + len), out);
      else for (let i = 0; i < len; i++) y[out + i] = x[offset + o + i * s];
    },
  );
  return y;
}

/** Writes contiguous `src` into the strided view of `dst`. */
export function stridedWrite(
  dst: TypedArray,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  src: TypedArray,
): void {
  if (shape.length === 0) {
    dst[offset] = src[0];
    return;
  }
  const zero: number[] = new Array(shape.length).fill(0);
  forEachStrided3(
    shape,
    strides,
    zero,
    zero,
    (o, _1, _2, len, s, _s1, _s2, out) => {
      if (s === 1) dst.set(src.subarray(out, out + len), offset + o);
      else for (let i = 0; i < len; i++) dst[offset + o + i * s] = src[out + i];
    },
  );
}
