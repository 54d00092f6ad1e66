/**
 * Shared helpers of the ops layer: device checks, dims, broadcasting.
 *
 * @module
 */

import type { Backend, DType, Storage } from "../backend/backend.ts";
import {
  DTypeError,
  fmtBytes,
  fmtShape,
  ShapeError,
  TensorStateError,
} from "../errors.ts";
import {
  contiguousStrides,
  defaultBackend,
  fromStorage,
  sizeOf,
  type Tensor,
} from "../tensor.ts";

export { contiguousStrides, defaultBackend, fromStorage, sizeOf };

/** The common backend of tensors; throws if they live on different devices. */
export function backendOf(op: string, ...ts: Tensor[]): Backend {
  const b = ts[0].backend;
  for (let i = 1; i < ts.length; i++) {
    if (ts[i].backend !== b) {
      throw new TensorStateError(
        `Cannot ${op}: tensors are on different devices (${
          ts.map((t) => t.device).join(", ")
        }); move them with .to(device)`,
      );
    }
  }
  return b;
}

/** Wraps a kernel result as a tensor of `shape` on backend `b`. */
export function wrap(b: Backend, s: Storage, shape: readonly number[]): Tensor {
  return fromStorage(b, s, shape);
}

/** Normalises a possibly negative dim; throws ShapeError when out of range. */
export function normDim(
  op: string,
  dim: number,
  ndim: number,
  shape: readonly number[],
): number {
  const lo = -Math.max(ndim, 1), hi = Math.max(ndim, 1) - 1;
  if (!Number.isInteger(dim) || dim < lo || dim > hi) {
    throw new ShapeError(
      `Cannot ${op}: dim ${dim} is out of range for a tensor of shape ${
        fmtShape(shape)
      } (expected a dim in [${lo}, ${hi}])`,
    );
  }
  return dim < 0 ? dim + Math.max(ndim, 1) : dim;
}

/** Normalises a dim list (sorted, unique); `undefined` means every dim. */
export function normDims(
  op: string,
  dim: number | readonly number[] | undefined,
  shape: readonly number[],
): number[] {
  if (dim === undefined) return [...shape.keys()];
  const list = typeof dim === "number" ? [dim] : dim;
  const out = list.map((d) => normDim(op, d, shape.length, shape));
  const uniq = [...new Set(out)].sort((a, b) => a - b);
  if (uniq.length !== out.length) {
    throw new ShapeError(
      `Cannot ${op}: dim ${JSON.stringify(list)} repeats a dim`,
    );
  }
  return uniq;
}

/** The broadcast shape of two shapes; throws ShapeError naming both. */
export function broadcastShapes(
  op: string,
  a: readonly number[],
  b: readonly number[],
): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `Cannot ${op} tensors: shapes ${fmtShape(a)} and ${
          fmtShape(b)
        } do not broadcast`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  if (sizeOf(out) > MAX_ELEMENTS) {
    // the message is built only when it is needed: this runs on every op
    checkShape(
      `${op} tensors of shapes ${fmtShape(a)} and ${fmtShape(b)}`,
      out,
    );
  }
  return out;
}

/** Strides that read a contiguous `shape` as if broadcast to `target`. */
export function broadcastStrides(
  shape: readonly number[],
  target: readonly number[],
): number[] {
  const strides = contiguousStrides(shape);
  const out = new Array<number>(target.length).fill(0);
  const off = target.length - shape.length;
  for (let i = 0; i < shape.length; i++) {
    out[off + i] = shape[i] === 1 && target[off + i] !== 1 ? 0 : strides[i];
  }
  return out;
}

/** Throws DTypeError unless `t` is float32. */
export function requireFloat(op: string, t: Tensor, what = "input"): void {
  if (t.dtype !== "float32") {
    throw new DTypeError(
      `Cannot ${op}: ${what} of shape ${
        fmtShape(t.shape)
      } has dtype ${t.dtype}, expected float32` +
        (t.dtype === "float16" || t.dtype === "bfloat16" ? HALF_HINT : ""),
    );
  }
}

/**
 * What a refusal of a half tensor adds: which ops take them, and the way
 * out.
 */
const HALF_HINT = " (float16 and bfloat16 tensors take casts, shape " +
  "ops, elementwise ops, sum/mean/max/min/argmax/argmin and " +
  "matmul/linear; convert with .float() first)";

/**
 * Throws DTypeError unless `t` is float32, float16 or bfloat16 (ops that
 * compute half tensors in float32 and round the result back).
 */
export function requireFloatOrHalf(
  op: string,
  t: Tensor,
  what = "input",
): void {
  const d = t.dtype;
  if (d !== "float32" && d !== "float16" && d !== "bfloat16") {
    throw new DTypeError(
      `Cannot ${op}: ${what} of shape ${
        fmtShape(t.shape)
      } has dtype ${d}, expected float32, float16 or bfloat16`,
    );
  }
}

/** Throws DTypeError unless `t` is int32. */
export function requireInt(op: string, t: Tensor, what = "index"): void {
  if (t.dtype !== "int32") {
    throw new DTypeError(
      `Cannot ${op}: ${what} of shape ${
        fmtShape(t.shape)
      } has dtype ${t.dtype}, expected int32`,
    );
  }
}

/**
 * The most elements one tensor may hold: 2^32 - 1, the largest count the
 * CUDA kernels index (`u32 n`); a float32 tensor of that many is 16 GiB.
 * Shapes over it are refused by `checkShape` before anything is allocated,
 * with a `ShapeError` naming the shape, the dtype and the bytes, rather than
 * failing inside the allocator.
 */
export const MAX_ELEMENTS: number = 2 ** 32 - 1;

/**
 * Validates a shape: every size a non-negative integer, and at most
 * `MAX_ELEMENTS` elements in all.
 *
 * @param op The operation, for the message (`Cannot ${op}: ...`).
 * @param shape The shape.
 * @param dtype The element type, for the bytes named in the message.
 */
export function checkShape(
  op: string,
  shape: readonly number[],
  dtype: DType = "float32",
): void {
  if (!Array.isArray(shape)) {
    throw new ShapeError(
      `Cannot ${op}: shape ${
        shape !== null && typeof shape === "object" ? "{...}" : String(shape)
      } is not an array of sizes such as [2, 3]`,
    );
  }
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(
        `Cannot ${op}: shape ${
          fmtShape(shape)
        } has a size that is not a non-negative integer`,
      );
    }
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (n > MAX_ELEMENTS) {
    throw new ShapeError(
      `Cannot ${op}: shape ${fmtShape(shape)} has ${n} elements (${
        fmtBytes(n * 4)
      } of ${dtype}), more than the ${MAX_ELEMENTS} a tensor can hold`,
    );
  }
}

/** The dtype of `a op b` under PyTorch's promotion for float32/int32. */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  if (a === "float32" || b === "float32") return "float32";
  // int32 with a half type gives the half type; float16 with bfloat16
  // gives float32, as torch.promote_types
  if (a === "int32") return b;
  if (b === "int32") return a;
  return "float32";
}
