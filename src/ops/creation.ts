/**
 * Tensor creation, from data and from the seeded generator.
 *
 * @module
 */

import type { DeviceName, DType, TypedArray } from "../backend/backend.ts";
import { getBackend } from "../backend/registry.ts";
import { record } from "../autograd.ts";
import { DTypeError, fmtShape, ShapeError } from "../errors.ts";
import { globalGenerator } from "../random.ts";
import type { Tensor } from "../tensor.ts";
import { checkShape, defaultBackend, fromStorage, sizeOf } from "./_util.ts";
import { rawBinary } from "./elementwise.ts";

/** Nested arrays of numbers, as accepted by `tensor()`. */
export type TensorLike = number | TypedArray | readonly TensorLike[];

/** Options of the creation functions. */
export interface CreateOptions {
  /** Element type (default float32). */
  dtype?: DType;
  /** Record gradients for the new tensor (float32 only). */
  requiresGrad?: boolean;
  /** Device (default: the current one). */
  device?: DeviceName;
}

function backendFor(o: CreateOptions) {
  return o.device ? getBackend(o.device) : defaultBackend();
}

function make(
  data: TypedArray,
  shape: readonly number[],
  o: CreateOptions,
): Tensor {
  const be = backendFor(o);
  const t = fromStorage(be, be.upload(data), shape);
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}

function inferShape(data: TensorLike, path: string): number[] {
  if (typeof data === "number") return [];
  if (ArrayBuffer.isView(data)) return [(data as TypedArray).length];
  const arr = data as readonly TensorLike[];
  if (arr.length === 0) return [0];
  const inner = inferShape(arr[0], `${path}[0]`);
  for (let i = 1; i < arr.length; i++) {
    const s = inferShape(arr[i], `${path}[${i}]`);
    if (s.join() !== inner.join()) {
      throw new ShapeError(
        `Cannot create tensor: ${path}[${i}] has shape ${
          fmtShape(s)
        } but ${path}[0] has ${fmtShape(inner)} (ragged nested array)`,
      );
    }
  }
  return [arr.length, ...inner];
}

function flattenInto(data: TensorLike, out: TypedArray, pos: number): number {
  if (typeof data === "number") {
    out[pos] = data;
    return pos + 1;
  }
  if (ArrayBuffer.isView(data)) {
    out.set(data as TypedArray, pos);
    return pos + (data as TypedArray).length;
  }
  for (const v of data as readonly TensorLike[]) pos = flattenInto(v, out, pos);
  return pos;
}

/**
 * Creates a tensor from a number, nested arrays or a typed array.
 *
 * Numbers become float32 unless `dtype` says otherwise (an `Int32Array`
 * becomes int32).
 *
 * @param data The values.
 * @param options `dtype`, `requiresGrad`, `device`, and `shape` to view flat data.
 * @returns A new tensor.
 *
 * @example Shape and values
 * ```ts
 * import { tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const t = tensor([[1, 2, 3], [4, 5, 6]]);
 * assert.deepEqual(t.shape, [2, 3]);
 * assert.equal(t.sum().item(), 21);
 * ```
 */
export function tensor(
  data: TensorLike,
  options: CreateOptions & { shape?: readonly number[] } = {},
): Tensor {
  const dtype = options.dtype ??
    (data instanceof Int32Array ? "int32" : "float32");
  if (dtype !== "float32" && dtype !== "int32") {
    throw new DTypeError(`Cannot create tensor: unknown dtype "${dtype}"`);
  }
  let shape = inferShape(data, "data");
  const n = sizeOf(shape);
  const arr = dtype === "int32" ? new Int32Array(n) : new Float32Array(n);
  flattenInto(data, arr, 0);
  if (options.shape) {
    checkShape("create tensor", options.shape);
    if (sizeOf(options.shape) !== n) {
      throw new ShapeError(
        `Cannot create tensor of shape ${
          fmtShape(options.shape)
        } from ${n} values`,
      );
    }
    shape = [...options.shape];
  }
  return make(arr, shape, { ...options, dtype });
}

function alloc(dtype: DType, n: number): TypedArray {
  return dtype === "int32" ? new Int32Array(n) : new Float32Array(n);
}

/**
 * A tensor filled with `value`.
 *
 * @param shape The shape.
 * @param value The fill value.
 * @param options dtype, requiresGrad, device.
 * @returns A tensor filled with `value`.
 */
export function full(
  shape: readonly number[],
  value: number,
  options: CreateOptions = {},
): Tensor {
  checkShape("full", shape);
  const dtype = options.dtype ?? "float32";
  const be = backendFor(options);
  const s = be.zeros(dtype, sizeOf(shape));
  if (value !== 0) be.fill(s, value);
  const t = fromStorage(be, s, shape);
  if (options.requiresGrad) t.requiresGrad_(true);
  return t;
}

/**
 * Zeros.
 *
 * @param shape The shape.
 * @param options dtype, requiresGrad, device.
 * @returns Zeros.
 */
export function zeros(
  shape: readonly number[],
  options: CreateOptions = {},
): Tensor {
  return full(shape, 0, options);
}

/**
 * Ones.
 *
 * @param shape The shape.
 * @param options dtype, requiresGrad, device.
 * @returns Ones.
 */
export function ones(
  shape: readonly number[],
  options: CreateOptions = {},
): Tensor {
  return full(shape, 1, options);
}

/**
 * Zeros of its shape, dtype and device.
 *
 * @param t A tensor.
 * @returns Zeros of its shape, dtype and device.
 */
export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, device: t.device });
}

/**
 * Ones of its shape, dtype and device.
 *
 * @param t A tensor.
 * @returns Ones of its shape, dtype and device.
 */
export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, device: t.device });
}

/**
 * `arange(end)` or `arange(start, end, { step })`: values from start up to,
 * not including, end. int32 when every argument is an integer and no dtype
 * is given, as in PyTorch.
 *
 * @param start Start (or the end when `end` is omitted).
 * @param end End, exclusive.
 * @param options step, dtype, device.
 * @returns A 1-D tensor.
 */
export function arange(
  start: number,
  end?: number,
  options: CreateOptions & { step?: number } = {},
): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  const step = options.step ?? 1;
  if (step === 0) throw new RangeError("Cannot arange: step must be nonzero");
  const n = Math.max(0, Math.ceil((e - s) / step));
  const dtype = options.dtype ??
    (Number.isInteger(s) && Number.isInteger(e) && Number.isInteger(step)
      ? "int32"
      : "float32");
  const arr = alloc(dtype, n);
  for (let i = 0; i < n; i++) arr[i] = s + i * step;
  return make(arr, [n], { ...options, dtype });
}

/**
 * Uniform samples in [0, 1) from the seeded generator.
 *
 * @param shape The shape.
 * @param options requiresGrad, device.
 * @returns Uniform samples in [0, 1) from the seeded generator.
 */
export function rand(
  shape: readonly number[],
  options: CreateOptions = {},
): Tensor {
  checkShape("rand", shape);
  const arr = new Float32Array(sizeOf(shape));
  for (let i = 0; i < arr.length; i++) arr[i] = globalGenerator.uniform();
  return make(arr, shape, options);
}

/**
 * Standard normal samples from the seeded generator.
 *
 * @param shape The shape.
 * @param options requiresGrad, device.
 * @returns Standard normal samples from the seeded generator.
 */
export function randn(
  shape: readonly number[],
  options: CreateOptions = {},
): Tensor {
  checkShape("randn", shape);
  const arr = new Float32Array(sizeOf(shape));
  for (let i = 0; i < arr.length; i++) arr[i] = globalGenerator.normal();
  return make(arr, shape, options);
}

/**
 * Returns int32 samples uniform in [low, high).
 *
 * @param low Lowest value.
 * @param high One past the highest value.
 * @param shape The shape.
 * @returns int32 samples uniform in [low, high).
 */
export function randint(
  low: number,
  high: number,
  shape: readonly number[],
): Tensor {
  checkShape("randint", shape);
  if (!(high > low)) {
    throw new RangeError(`Cannot randint: high ${high} must exceed low ${low}`);
  }
  const arr = new Int32Array(sizeOf(shape));
  for (let i = 0; i < arr.length; i++) {
    arr[i] = low + globalGenerator.below(high - low);
  }
  return make(arr, shape, { dtype: "int32" });
}

/**
 * Zeroes elements with probability `p` and scales the rest by `1/(1-p)`
 * during training, as `torch.nn.functional.dropout`.
 *
 * @param x Input.
 * @param options `p` (default 0.5) and `training` (default true).
 * @returns The masked input.
 */
export function dropout(
  x: Tensor,
  options: { p?: number; training?: boolean } = {},
): Tensor {
  const p = options.p ?? 0.5;
  if (p < 0 || p > 1) {
    throw new RangeError(`Cannot dropout: p ${p} must be in [0, 1]`);
  }
  if (!(options.training ?? true) || p === 0) return x;
  const n = x.numel();
  const mask = new Float32Array(n);
  const scale = p === 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < n; i++) {
    mask[i] = globalGenerator.uniform() >= p ? scale : 0;
  }
  const m = fromStorage(x.backend, x.backend.upload(mask), x.shape);
  const y = rawBinary("mul", x, m);
  return record(y, [x], "dropout", (g) => [rawBinary("mul", g, m)], [m]);
}
