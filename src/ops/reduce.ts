/**
 * Reductions over dims, with keepdim, and their gradients.
 *
 * @module
 */

import type { ReduceOp } from "../backend/backend.ts";
import { isHalfDType } from "../backend/types.ts";
import { record, traceOp } from "../autograd.ts";
import { fmtShape, ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { normDim, normDims, sizeOf, wrap } from "./_util.ts";
import { expand, reshape } from "./shape.ts";
import { cast, rawBinary, sub, whereRaw } from "./elementwise.ts";
import { mul, sqrt } from "./elementwise.ts";

/** Options of a reduction. */
export interface ReduceOptions {
  /** Keep reduced dims with size 1 (default false). */
  keepdim?: boolean;
}

function keptShape(shape: readonly number[], dims: number[]): number[] {
  return shape.map((d, i) => (dims.includes(i) ? 1 : d));
}

function outShape(
  shape: readonly number[],
  dims: number[],
  keepdim: boolean,
): number[] {
  return keepdim
    ? keptShape(shape, dims)
    : shape.filter((_, i) => !dims.includes(i));
}

/** Splits sorted dims into runs of consecutive dims. */
function runs(dims: number[]): number[][] {
  const out: number[][] = [];
  for (const d of dims) {
    const last = out[out.length - 1];
    if (last && last[last.length - 1] === d - 1) last.push(d);
    else out.push([d]);
  }
  return out;
}

/**
 * Runs a reduce kernel over `dims` (already normalised); no autograd. The
 * result keeps reduced dims as size 1. Separate runs of dims (e.g. `[0, 2, 3]`)
 * reduce one run at a time, last run first, without a permuting copy.
 */
export function reduceRaw(op: ReduceOp, x: Tensor, dims: number[]): Tensor {
  if (isHalfDType(x.dtype)) {
    // float16 / bfloat16: accumulated in float32, rounded once at the end,
    // as PyTorch's CPU reductions do (argmax/argmin keep their int32 index)
    const xf = cast(x, "float32");
    const yf = reduceRaw(op, xf, dims);
    xf.dispose();
    if (yf.dtype !== "float32") return yf;
    const y = cast(yf, x.dtype);
    yf.dispose();
    return y;
  }
  const shape = x.shape;
  const be = x.backend;
  if (dims.length === 0) {
    // a 0-d tensor reduces to a copy of itself
    const s = be.zeros(x.dtype, x.numel());
    be.assign(s, x.storage);
    return wrap(be, s, x.shape);
  }
  const parts = runs(dims);
  if (parts.length > 1 && (op === "argmax" || op === "argmin")) {
    throw new ShapeError(`Cannot ${op} over several dims ${fmtShape(dims)}`);
  }
  let cur = x;
  let curShape = [...shape];
  for (let p = parts.length - 1; p >= 0; p--) {
    const run = parts[p];
    const outer = sizeOf(curShape.slice(0, run[0]));
    const r = sizeOf(run.map((d) => curShape[d]));
    const inner = sizeOf(curShape.slice(run[run.length - 1] + 1));
    if (r === 0 && op !== "sum") {
      throw new ShapeError(
        `Cannot ${op} over an empty dim: tensor of shape ${fmtShape(shape)}`,
      );
    }
    const y = be.reduce(op, cur.storage, outer, r, inner);
    curShape = curShape.map((d, i) => (run.includes(i) ? 1 : d));
    const next = wrap(be, y, curShape);
    if (cur !== x) cur.dispose();
    cur = next;
  }
  return cur;
}

/**
 * Sum over `dim` (all dims when omitted).
 *
 * @example Sums of rows and of everything
 * ```ts
 * import { sum, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const x = tensor([[1, 2, 3], [4, 5, 6]]);
 * assert.deepEqual(sum(x, 1).toArray(), [6, 15]);
 * assert.deepEqual(sum(x, 0, { keepdim: true }).shape, [1, 3]);
 * assert.equal(sum(x).item(), 21);
 * ```
 */
export function sum(
  x: Tensor,
  dim?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const dims = normDims("sum", dim, x.shape);
  const kd = reduceRaw("sum", x, dims);
  const y = options.keepdim ? kd : reshape(kd, outShape(x.shape, dims, false));
  const op = { name: "sum", attrs: { dims, keepdim: !!options.keepdim } };
  return record(y, [x], op, (g) => {
    return [expand(reshape(g, keptShape(x.shape, dims)), x.shape)];
  });
}

/**
 * Mean over `dim` (all dims when omitted).
 *
 * @example Means over the spatial dimensions, as global average pooling
 * ```ts
 * import { mean, ones } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const y = mean(ones([2, 8, 7, 7]), [2, 3]);
 * assert.deepEqual(y.shape, [2, 8]);
 * ```
 */
export function mean(
  x: Tensor,
  dim?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  const dims = normDims("mean", dim, x.shape);
  const count = sizeOf(dims.map((d) => x.shape[d]));
  if (isHalfDType(x.dtype)) {
    // the float32 mean rounded once, as PyTorch's CPU mean of a half tensor
    const xf = cast(x, "float32");
    const m = mean(xf, dim, options);
    xf.dispose();
    const y = cast(m, x.dtype);
    m.dispose();
    return y;
  }
  return mul(sum(cast(x, "float32"), dims, options), 1 / count);
}

function extreme(
  op: "max" | "min",
  x: Tensor,
  dim: number | readonly number[] | undefined,
  options: ReduceOptions,
): Tensor {
  const dims = normDims(op, dim, x.shape);
  const kd = reduceRaw(op, x, dims);
  const y = options.keepdim ? kd : reshape(kd, outShape(x.shape, dims, false));
  const info = { name: op, attrs: { dims, keepdim: !!options.keepdim } };
  return record(y, [x], info, (g) => {
    const gk = reshape(g, keptShape(x.shape, dims));
    if (typeof dim === "number") {
      // torch.max(x, dim): the whole gradient goes to the selected index
      const d = dims[0];
      const idx = reduceRaw(op === "max" ? "argmax" : "argmin", x, dims);
      return [scatterInto(x.shape, d, idx, gk)];
    }
    // full / multi-dim reductions share the gradient among ties (amax)
    const mask = cast(rawBinary("eq", x, kd), "float32");
    const count = reduceRaw("sum", mask, dims);
    return [rawBinary("mul", mask, rawBinary("div", gk, count))];
  }, y === kd ? [] : [kd]);
}

/** `dst = zeros(shape); dst.scatter_add_(dim, index, src)` with index/src keepdim-shaped. */
export function scatterInto(
  shape: readonly number[],
  dim: number,
  index: Tensor,
  src: Tensor,
): Tensor {
  const be = src.backend;
  const outer = sizeOf(shape.slice(0, dim));
  const inner = sizeOf(shape.slice(dim + 1));
  const out = be.zeros("float32", sizeOf(shape));
  be.scatterAdd(
    out,
    outer,
    shape[dim],
    inner,
    index.storage,
    index.shape[dim],
    src.storage,
  );
  return wrap(be, out, shape);
}

/** Maximum values over `dim` (all dims when omitted). */
export function max(
  x: Tensor,
  dim?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  return extreme("max", x, dim, options);
}

/** Minimum values over `dim` (all dims when omitted). */
export function min(
  x: Tensor,
  dim?: number | readonly number[],
  options: ReduceOptions = {},
): Tensor {
  return extreme("min", x, dim, options);
}

function argReduce(
  op: "argmax" | "argmin",
  x: Tensor,
  dim: number | undefined,
  options: ReduceOptions,
): Tensor {
  const keepdim = options.keepdim ?? false;
  if (dim === undefined) {
    const flat = reshape(x, [x.numel()]);
    const y = reduceRaw(op, flat, [0]);
    const r = reshape(y, keepdim ? x.shape.map(() => 1) : []);
    return traceOp(r, [x], op, { dim: null, keepdim });
  }
  const d = normDim(op, dim, x.ndim, x.shape);
  const kd = reduceRaw(op, x, [d]);
  const r = keepdim ? kd : reshape(kd, outShape(x.shape, [d], false));
  return traceOp(r, [x], op, { dim: d, keepdim });
}

/**
 * int32 indices of the maxima along `dim` (flattened when omitted).
 *
 * @example Predicted classes from logits
 * ```ts
 * import { argmax, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const logits = tensor([[0.1, 2.0], [3.0, -1.0]]);
 * assert.deepEqual(argmax(logits, 1).toArray(), [1, 0]);
 * ```
 */
export function argmax(
  x: Tensor,
  dim?: number,
  options: ReduceOptions = {},
): Tensor {
  return argReduce("argmax", x, dim, options);
}

/** int32 indices of the minima along `dim` (flattened when omitted). */
export function argmin(
  x: Tensor,
  dim?: number,
  options: ReduceOptions = {},
): Tensor {
  return argReduce("argmin", x, dim, options);
}

/** Options of `var` and `std`. */
export interface VarOptions extends ReduceOptions {
  /** Subtracted from the count in the divisor: 1 = unbiased (default), 0 = population. */
  correction?: number;
}

/** Variance over `dim` (all dims when omitted). */
export function variance(
  x: Tensor,
  dim?: number | readonly number[],
  options: VarOptions = {},
): Tensor {
  const dims = normDims("var", dim, x.shape);
  const count = sizeOf(dims.map((d) => x.shape[d]));
  const correction = options.correction ?? 1;
  const m = mean(x, dims, { keepdim: true });
  const d = sub(x, m);
  const ss = sum(mul(d, d), dims, { keepdim: options.keepdim });
  return mul(ss, 1 / Math.max(count - correction, 0));
}

/** Standard deviation over `dim` (all dims when omitted). */
export function std(
  x: Tensor,
  dim?: number | readonly number[],
  options: VarOptions = {},
): Tensor {
  return sqrt(variance(x, dim, options));
}

export { whereRaw };
