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

/** The dtype of a creation call, checked: float32 or int32. */
function dtypeOf(op: string, dtype: unknown, fallback: DType): DType {
  const d = dtype ?? fallback;
  if (d === "float16" || d === "bfloat16") {
    throw new DTypeError(
      `Cannot ${op} with dtype ${d}: create the tensor as float32 and ` +
        `convert it (.to("${d}"), .half(), .bfloat16())`,
    );
  }
  if (d !== "float32" && d !== "int32") {
    throw new DTypeError(
      `Cannot ${op}: unknown dtype ${
        typeof d === "string" ? `"${d}"` : String(d)
      }, expected "float32" or "int32"`,
    );
  }
  return d;
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

/**
 * The most nested levels `tensor()` reads (PyTorch's limit on dims): deeper
 * data, or an array that contains itself, is refused with a `ShapeError`
 * instead of overflowing the stack.
 */
const MAX_DEPTH = 64;

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "string") {
    return `a string (${
      JSON.stringify(v.length > 20 ? v.slice(0, 20) + "…" : v)
    })`;
  }
  if (typeof v === "object") {
    return `an object (${Object.prototype.toString.call(v).slice(8, -1)})`;
  }
  return `a ${typeof v}`;
}

/** A typed array of numbers (not a DataView or a BigInt array). */
function isNumberArray(v: unknown): v is ArrayLike<number> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) &&
    !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array);
}

/**
 * The shape of nested data, checking on the way that it holds only numbers,
 * arrays and typed arrays of numbers, is not ragged, and is at most
 * `MAX_DEPTH` levels deep.
 */
function inferShape(data: unknown, path: string, depth = 0): number[] {
  if (typeof data === "number") return [];
  if (isNumberArray(data)) return [data.length];
  if (!Array.isArray(data)) {
    throw new DTypeError(
      `Cannot create tensor: ${path} is ${
        describe(data)
      }, expected a number, an array or a typed array of numbers`,
    );
  }
  if (depth >= MAX_DEPTH) {
    throw new ShapeError(
      `Cannot create tensor: data is nested more than ${MAX_DEPTH} levels deep (an array that contains itself?)`,
    );
  }
  if (data.length === 0) return [0];
  const inner = inferShape(data[0], `${path}[0]`, depth + 1);
  for (let i = 1; i < data.length; i++) {
    const s = inferShape(data[i], `${path}[${i}]`, depth + 1);
    if (s.join() !== inner.join()) {
      throw new ShapeError(
        `Cannot create tensor: ${path}[${i}] has shape ${
          fmtShape(s)
        } but ${path}[0] has ${fmtShape(inner)} (ragged nested array)`,
      );
    }
  }
  return [data.length, ...inner];
}

function flattenInto(data: TensorLike, out: TypedArray, pos: number): number {
  if (typeof data === "number") {
    out[pos] = data;
    return pos + 1;
  }
  if (isNumberArray(data)) {
    out.set(data, pos);
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
 * @throws DTypeError naming where `data` holds something other than a
 * number, an array or a typed array of numbers (`data[1][0] is a string`),
 * or for a dtype other than float32 and int32.
 * @throws ShapeError for ragged data, data nested more than 64 levels (or
 * an array that contains itself), or more than `MAX_ELEMENTS` (2^32 - 1)
 * elements.
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
  const dtype = dtypeOf(
    "create tensor",
    options.dtype,
    data instanceof Int32Array ? "int32" : "float32",
  );
  let shape = inferShape(data, "data");
  checkShape("create tensor", shape, dtype);
  const n = sizeOf(shape);
  const arr = dtype === "int32" ? new Int32Array(n) : new Float32Array(n);
  flattenInto(data, arr, 0);
  if (options.shape) {
    checkShape("create tensor", options.shape, dtype);
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
 * @throws ShapeError for a size that is not a non-negative integer, or
 * more than `MAX_ELEMENTS` (2^32 - 1) elements, naming the shape, dtype and
 * bytes; DTypeError for a dtype other than float32 and int32. So do the
 * other creation functions.
 */
export function full(
  shape: readonly number[],
  value: number,
  options: CreateOptions = {},
): Tensor {
  return filled("full", shape, value, options);
}

function filled(
  op: string,
  shape: readonly number[],
  value: number,
  options: CreateOptions,
): Tensor {
  const dtype = dtypeOf(op, options.dtype, "float32");
  checkShape(op, shape, dtype);
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
  return filled("zeros", shape, 0, options);
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
  return filled("ones", shape, 1, options);
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
  if (![s, e, step].every(Number.isFinite)) {
    throw new RangeError(
      `Cannot arange: start ${s}, end ${e} and step ${step} must be finite numbers`,
    );
  }
  if (step === 0) throw new RangeError("Cannot arange: step must be nonzero");
  const n = Math.max(0, Math.ceil((e - s) / step));
  const dtype = dtypeOf(
    "arange",
    options.dtype,
    Number.isInteger(s) && Number.isInteger(e) && Number.isInteger(step)
      ? "int32"
      : "float32",
  );
  checkShape("arange", [n], dtype);
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
  checkShape("randint", shape, "int32");
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
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
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
