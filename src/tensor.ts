/**
 * Tensor: shape, dtype, device, a reference-counted storage handle, and the
 * autograd fields. Tensors are always contiguous and row-major; `reshape`
 * and `view` share storage, every other shape op copies.
 *
 * @module
 */

import type {
  Backend,
  DeviceName,
  DType,
  Storage,
  TypedArray,
} from "./backend/backend.ts";
import { currentDevice, getBackend } from "./backend/registry.ts";
import { isHalfDType } from "./backend/types.ts";
import { halfToFloat32 } from "./backend/half_bits.ts";
import {
  DTypeError,
  fmtShape,
  ShapeError,
  TensorStateError,
} from "./errors.ts";
import {
  backwardFrom,
  type BackwardOptions,
  type GradNode,
  releaseNode,
} from "./autograd.ts";
import {
  addView,
  beginLifetime,
  deviceCounters,
  endTensor,
  type Lifetime,
} from "./memory.ts";
import * as ops from "./ops/mod.ts";

export { memory } from "./memory.ts";

/**
 * A storage block shared by a tensor and its views, with the lifetime that
 * counts them. The storage is freed at once when its last tensor is
 * disposed; when its tensors are instead garbage-collected, the storage
 * reclaims itself (see `src/memory.ts`).
 */
export class StorageRef {
  /** The counts shared by the tensors on this storage. */
  readonly life: Lifetime;
  /**
   * Creates the object.
   *
   * @param storage The backend storage.
   * @param backend Its backend.
   */
  constructor(readonly storage: Storage, readonly backend: Backend) {
    this.life = beginLifetime(
      deviceCounters(backend.name),
      storage.length * (isHalfDType(storage.dtype) ? 2 : 4),
    );
  }
  /** Number of live tensors using this storage. */
  get refs(): number {
    return this.life.refs;
  }
}

// ---- reclamation and tidy scopes --------------------------------------------

const scopes: Tensor[][] = [];

// Counts a collected tensor out. The held value is the lifetime only: it
// must not reach the storage, or the storage would live until this callback
// runs, which is not before the event loop turns.
const finalizer = new FinalizationRegistry<Lifetime>(endTensor);

/** A nested array of numbers, as `toArray()` returns it. */
export type NestedArray = number | NestedArray[];

/** Anything `tidy` can return: tensors, arrays and plain objects of them. */
export type TensorContainer =
  | void
  | number
  | string
  | boolean
  | null
  | undefined
  | Tensor
  | TensorContainer[]
  | { [key: string]: TensorContainer };

function collect(x: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 8 || x === null || typeof x !== "object") return;
  if (x instanceof Tensor) {
    out.add(x);
    return;
  }
  if (Array.isArray(x)) {
    for (const v of x) collect(v, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it except the tensors
 * it returns (in an array or plain object too) and tensors marked with
 * `keep()`. Gradients written by `backward()` and optimizer state are kept.
 * Like TensorFlow.js's `tidy`, `fn` must be synchronous.
 *
 * @param fn The work to run.
 * @returns What `fn` returned.
 *
 * @example A step leaves nothing behind
 * ```ts
 * import { memory, tensor, tidy } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const before = memory().tensors;
 * const y = tidy(() => tensor([1, 2]).mul(2).add(1));
 * assert.deepEqual(y.toArray(), [3, 5]);
 * assert.equal(memory().tensors, before + 1);
 * ```
 */
export function tidy<T extends TensorContainer>(fn: () => T): T {
  const scope: Tensor[] = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) if (!t.kept) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new TypeError("tidy(fn): fn must be synchronous");
  }
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) {
      if (parent) parent.push(t);
    } else if (!t.kept) t.dispose();
  }
  return result;
}

/**
 * Marks a tensor to survive every enclosing `tidy`.
 *
 * @param t The tensor.
 * @returns The same tensor.
 */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

// ---- the tensor ------------------------------------------------------------

/** Strides of a contiguous row-major layout. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** Product of a shape's sizes. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * An n-dimensional array of float32 or int32 on a device, recording the
 * operations made on it when it requires gradients.
 */
export class Tensor {
  /** Sizes of each dimension. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Storage shared with views. */
  ref: StorageRef;
  /** Whether gradients are recorded for this tensor. */
  requiresGrad = false;
  /** The accumulated gradient, after `backward()`. */
  grad: Tensor | null = null;
  /** How this tensor was made, when it is not a leaf. */
  gradNode: GradNode | null = null;
  /** Survives `tidy` scopes. */
  kept = false;
  /** A parameter's name inside its module, for messages. */
  name?: string;
  #disposed = false;

  /**
   * Wraps storage. Most code creates tensors with `tensor()`, `zeros()` and
   * the ops instead.
   *
   * @param ref The storage (its reference count is owned by this tensor).
   * @param shape The shape; its size must equal the storage length.
   * @param dtype Element type.
   */
  constructor(ref: StorageRef, shape: readonly number[], dtype: DType) {
    this.ref = ref;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    finalizer.register(this, ref.life, this);
    const scope = scopes[scopes.length - 1];
    if (scope) scope.push(this);
  }

  /** The backend holding the storage. */
  get backend(): Backend {
    return this.ref.backend;
  }
  /** The storage; throws if disposed. */
  get storage(): Storage {
    if (this.#disposed) {
      throw new TensorStateError(
        `Cannot use tensor of shape ${fmtShape(this.shape)}${
          this.name ? ` (${this.name})` : ""
        }: it was disposed`,
      );
    }
    return this.ref.storage;
  }
  /** The device this tensor lives on. */
  get device(): DeviceName {
    return this.ref.backend.name;
  }
  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }
  /** Whether `dispose()` was called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }
  /** True when not produced by a recorded op. */
  get isLeaf(): boolean {
    return this.gradNode === null;
  }

  /**
   * The number of elements.
   *
   * @returns The number of elements.
   */
  numel(): number {
    return sizeOf(this.shape);
  }

  /**
   * Sets `requiresGrad` and returns this tensor, as PyTorch's `requires_grad_`.
   *
   * @param flag Whether to record gradients (default true).
   * @returns This tensor.
   */
  requiresGrad_(flag = true): this {
    if (flag && this.dtype !== "float32") {
      throw new DTypeError(
        `Cannot require gradients of a ${this.dtype} tensor of shape ${
          fmtShape(this.shape)
        }: only float32 tensors have gradients`,
      );
    }
    this.requiresGrad = flag;
    return this;
  }

  /**
   * Releases the storage now, when no view shares it, instead of when the
   * garbage collector finds the tensor unreachable. The graph that made this
   * tensor can no longer be back-propagated through.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    finalizer.unregister(this);
    if (endTensor(this.ref.life)) this.ref.backend.free(this.ref.storage);
    if (this.gradNode) releaseNode(this.gradNode, "dispose");
  }

  /** Disposes on leaving a `using` block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * A host copy of the elements: a `Float32Array` (float32), an
   * `Int32Array` (int32), or for float16 and bfloat16 a `Uint16Array` of
   * their bit patterns (`toArray()` and `item()` give their values).
   *
   * @returns A host copy of the elements.
   */
  data(): TypedArray {
    return this.backend.download(this.storage);
  }

  /** The elements as numbers: half bit patterns decoded. */
  #values(): Float32Array | Int32Array {
    const d = this.data();
    const dt = this.dtype;
    return isHalfDType(dt)
      ? halfToFloat32(d as Uint16Array, dt)
      : d as Float32Array | Int32Array;
  }

  /**
   * The elements as nested arrays (a number for a 0-d tensor).
   *
   * @returns The elements as nested arrays (a number for a 0-d tensor).
   */
  toArray(): NestedArray {
    const d = this.#values();
    if (this.shape.length === 0) return d[0];
    const build = (dim: number, off: number): NestedArray[] => {
      const n = this.shape[dim];
      const out: NestedArray[] = new Array(n);
      if (dim === this.shape.length - 1) {
        for (let i = 0; i < n; i++) out[i] = d[off + i];
        return out;
      }
      const stride = sizeOf(this.shape.slice(dim + 1));
      for (let i = 0; i < n; i++) out[i] = build(dim + 1, off + i * stride);
      return out;
    };
    return build(0, 0);
  }

  /**
   * The single element of a one-element tensor.
   *
   * @returns The single element of a one-element tensor.
   */
  item(): number {
    if (this.numel() !== 1) {
      throw new ShapeError(
        `Cannot call item() on a tensor of shape ${
          fmtShape(this.shape)
        }: it has ${this.numel()} elements, not 1`,
      );
    }
    return this.#values()[0];
  }

  /**
   * A readable rendering, like PyTorch's.
   *
   * @returns A readable rendering, like PyTorch's.
   */
  toString(): string {
    if (this.#disposed) {
      return `tensor(<disposed>, shape=${fmtShape(this.shape)})`;
    }
    const d = this.#values();
    const isInt = this.dtype === "int32";
    let maxAbs = 0;
    for (let i = 0; i < d.length; i++) {
      const a = Math.abs(d[i]);
      if (Number.isFinite(a) && a > maxAbs) maxAbs = a;
    }
    const sci = !isInt && (maxAbs >= 1e5 || (maxAbs > 0 && maxAbs < 1e-4));
    const fmt = (v: number): string => {
      if (isInt) return String(v);
      if (Number.isNaN(v)) return "nan";
      if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
      return sci ? v.toExponential(4) : v.toFixed(4);
    };
    const cells = Array.from(d, fmt);
    const width = cells.reduce((w, c) => Math.max(w, c.length), 0);
    const limit = 1000;
    const render = (dim: number, off: number, indent: string): string => {
      if (this.shape.length === 0) return cells[0];
      const n = this.shape[dim];
      const idx = n > 6 && d.length > limit
        ? [0, 1, 2, -1, n - 3, n - 2, n - 1]
        : [
          ...Array(n).keys(),
        ];
      if (dim === this.shape.length - 1) {
        return "[" +
          idx.map((i) => i < 0 ? "..." : cells[off + i].padStart(width)).join(
            ", ",
          ) + "]";
      }
      const stride = sizeOf(this.shape.slice(dim + 1));
      const sep = ",\n" + "\n".repeat(this.shape.length - dim - 2) + indent +
        " ";
      return "[" +
        idx.map((i) =>
          i < 0 ? "..." : render(dim + 1, off + i * stride, indent + " ")
        ).join(sep) + "]";
    };
    const extras: string[] = [];
    if (this.dtype !== "float32") extras.push(`dtype=${this.dtype}`);
    if (this.device !== "cpu") extras.push(`device=${this.device}`);
    if (this.requiresGrad) {
      extras.push(
        this.gradNode ? `gradFn=${this.gradNode.name}` : "requiresGrad=true",
      );
    }
    return `tensor(${render(0, 0, "       ")}${
      extras.length ? ", " + extras.join(", ") : ""
    })`;
  }

  /** Deno's console.log hook. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  // ---- autograd ------------------------------------------------------------

  /**
   * Computes the gradient of this tensor w.r.t. every leaf that requires
   * gradients, accumulating into their `.grad`, then frees the graph (the
   * tensors it saved for the backward pass), as PyTorch does. A second
   * `backward()` through the same graph throws `GraphFreedError` unless the
   * first was given `{ retainGraph: true }`.
   *
   * @param grad The upstream gradient; may be omitted for a one-element
   * tensor. Options may be given here instead.
   * @param options `retainGraph` keeps the graph for another backward().
   *
   * @example Backward twice needs retainGraph
   * ```ts
   * import { GraphFreedError, tensor } from "@kdeno/kdeno";
   * import assert from "node:assert/strict";
   *
   * const w = tensor([3], { requiresGrad: true });
   * const y = w.mul(w).sum();
   * y.backward({ retainGraph: true });
   * y.backward(); // accumulates: 6 + 6
   * assert.deepEqual(w.grad!.toArray(), [12]);
   * assert.throws(() => y.backward(), GraphFreedError);
   * ```
   */
  backward(
    grad?: Tensor | BackwardOptions,
    options: BackwardOptions = {},
  ): void {
    if (grad !== undefined && !(grad instanceof Tensor)) {
      backwardFrom(this, undefined, grad);
    } else backwardFrom(this, grad, options);
  }

  /**
   * A tensor sharing storage, cut from the graph.
   *
   * @returns A tensor sharing storage, cut from the graph.
   */
  detach(): Tensor {
    return shareStorage(this, this.shape);
  }

  /**
   * Copies to another device, or converts to another dtype (as
   * `tensor.to(torch.float16)`); returns this tensor when it is already
   * there.
   *
   * @example float32 to float16 and back
   * ```ts
   * import { tensor } from "@kdeno/kdeno";
   * import assert from "node:assert/strict";
   *
   * const h = tensor([1, 0.1, 65520]).to("float16");
   * assert.equal(h.dtype, "float16");
   * assert.deepEqual(h.toArray(), [1, 0.0999755859375, Infinity]);
   * ```
   *
   * @param target `"cpu"` or `"cuda"`, or a dtype (`"float32"`, `"int32"`,
   * `"float16"`, `"bfloat16"`).
   * @returns A tensor on `target`, or of dtype `target`. Gradients flow
   * back through a device copy; a dtype conversion records none.
   */
  to(target: DeviceName | DType): Tensor {
    if (
      target === "float32" || target === "int32" || target === "float16" ||
      target === "bfloat16"
    ) {
      return ops.cast(this, target);
    }
    return ops.toDevice(this, target);
  }

  // ---- elementwise ---------------------------------------------------------

  /**
   * Returns `this + other`.
   *
   * @param other Tensor or scalar.
   * @returns `this + other`.
   */
  add(other: Tensor | number): Tensor {
    return ops.add(this, other);
  }
  /**
   * Returns `this - other`.
   *
   * @param other Tensor or scalar.
   * @returns `this - other`.
   */
  sub(other: Tensor | number): Tensor {
    return ops.sub(this, other);
  }
  /**
   * Returns `this * other`.
   *
   * @param other Tensor or scalar.
   * @returns `this * other`.
   */
  mul(other: Tensor | number): Tensor {
    return ops.mul(this, other);
  }
  /**
   * Returns `this / other` (true division).
   *
   * @param other Tensor or scalar.
   * @returns `this / other` (true division).
   */
  div(other: Tensor | number): Tensor {
    return ops.div(this, other);
  }
  /**
   * Returns `this ** exponent`.
   *
   * @param exponent Tensor or scalar.
   * @returns `this ** exponent`.
   */
  pow(exponent: Tensor | number): Tensor {
    return ops.pow(this, exponent);
  }
  /**
   * Elementwise maximum.
   *
   * @param other Tensor or scalar.
   * @returns Elementwise maximum.
   */
  maximum(other: Tensor | number): Tensor {
    return ops.maximum(this, other);
  }
  /**
   * Elementwise minimum.
   *
   * @param other Tensor or scalar.
   * @returns Elementwise minimum.
   */
  minimum(other: Tensor | number): Tensor {
    return ops.minimum(this, other);
  }
  /**
   * Returns `-this`.
   *
   * @returns `-this`.
   */
  neg(): Tensor {
    return ops.neg(this);
  }
  /**
   * Returns `e^this`.
   *
   * @returns `e^this`.
   */
  exp(): Tensor {
    return ops.exp(this);
  }
  /**
   * Natural logarithm.
   *
   * @returns Natural logarithm.
   */
  log(): Tensor {
    return ops.log(this);
  }
  /**
   * Square root.
   *
   * @returns Square root.
   */
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  /**
   * Returns `1 / sqrt(this)`.
   *
   * @returns `1 / sqrt(this)`.
   */
  rsqrt(): Tensor {
    return ops.rsqrt(this);
  }
  /**
   * Absolute value.
   *
   * @returns Absolute value.
   */
  abs(): Tensor {
    return ops.abs(this);
  }
  /**
   * Returns `this * this`.
   *
   * @returns `this * this`.
   */
  square(): Tensor {
    return ops.square(this);
  }
  /**
   * Returns `max(this, 0)`.
   *
   * @returns `max(this, 0)`.
   */
  relu(): Tensor {
    return ops.relu(this);
  }
  /**
   * Logistic sigmoid.
   *
   * @returns Logistic sigmoid.
   */
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  /**
   * Hyperbolic tangent.
   *
   * @returns Hyperbolic tangent.
   */
  tanh(): Tensor {
    return ops.tanh(this);
  }
  /**
   * Values clamped to `[min, max]`.
   *
   * @param min Lower bound (or undefined).
   * @param max Upper bound (or undefined).
   * @returns Values clamped to `[min, max]`.
   */
  clamp(min?: number, max?: number): Tensor {
    return ops.clamp(this, min, max);
  }
  /**
   * Returns int32 mask of `this == other`.
   *
   * @param other Tensor or scalar.
   * @returns int32 mask of `this == other`.
   */
  eq(other: Tensor | number): Tensor {
    return ops.compare("eq", this, other);
  }
  /**
   * Returns int32 mask of `this != other`.
   *
   * @param other Tensor or scalar.
   * @returns int32 mask of `this != other`.
   */
  ne(other: Tensor | number): Tensor {
    return ops.compare("ne", this, other);
  }
  /**
   * Returns int32 mask of `this < other`.
   *
   * @param other Tensor or scalar.
   * @returns int32 mask of `this < other`.
   */
  lt(other: Tensor | number): Tensor {
    return ops.compare("lt", this, other);
  }
  /**
   * Returns int32 mask of `this <= other`.
   *
   * @param other Tensor or scalar.
   * @returns int32 mask of `this <= other`.
   */
  le(other: Tensor | number): Tensor {
    return ops.compare("le", this, other);
  }
  /**
   * Returns int32 mask of `this > other`.
   *
   * @param other Tensor or scalar.
   * @returns int32 mask of `this > other`.
   */
  gt(other: Tensor | number): Tensor {
    return ops.compare("gt", this, other);
  }
  /**
   * Returns int32 mask of `this >= other`.
   *
   * @param other Tensor or scalar.
   * @returns int32 mask of `this >= other`.
   */
  ge(other: Tensor | number): Tensor {
    return ops.compare("ge", this, other);
  }
  /**
   * A converted copy (or this tensor when already `dtype`).
   *
   * @param dtype Target dtype.
   * @returns A converted copy (or this tensor when already `dtype`).
   */
  toDtype(dtype: DType): Tensor {
    return ops.cast(this, dtype);
  }
  /**
   * A float32 copy.
   *
   * @returns A float32 copy.
   */
  float(): Tensor {
    return ops.cast(this, "float32");
  }
  /**
   * A float16 copy (round to nearest, ties to even; beyond ±65504 gives
   * ±infinity), as `tensor.half()`.
   *
   * @returns A float16 copy (this tensor when already float16).
   */
  half(): Tensor {
    return ops.cast(this, "float16");
  }
  /**
   * A bfloat16 copy (round to nearest, ties to even), as
   * `tensor.bfloat16()`.
   *
   * @returns A bfloat16 copy (this tensor when already bfloat16).
   */
  bfloat16(): Tensor {
    return ops.cast(this, "bfloat16");
  }
  /**
   * An int32 copy (truncated toward zero).
   *
   * @returns An int32 copy (truncated toward zero).
   */
  int(): Tensor {
    return ops.cast(this, "int32");
  }

  // ---- reductions ----------------------------------------------------------

  /**
   * The sum.
   *
   * @param dim Dim or dims to reduce; all when omitted.
   * @param options `keepdim` keeps reduced dims as size 1.
   * @returns The sum.
   */
  sum(dim?: number | number[], options: { keepdim?: boolean } = {}): Tensor {
    return ops.sum(this, dim, options);
  }
  /**
   * The mean.
   *
   * @param dim Dim or dims to reduce; all when omitted.
   * @param options `keepdim`.
   * @returns The mean.
   */
  mean(dim?: number | number[], options: { keepdim?: boolean } = {}): Tensor {
    return ops.mean(this, dim, options);
  }
  /**
   * The maximum values.
   *
   * @param dim Dim or dims to reduce; all when omitted.
   * @param options `keepdim`.
   * @returns The maximum values.
   */
  max(dim?: number | number[], options: { keepdim?: boolean } = {}): Tensor {
    return ops.max(this, dim, options);
  }
  /**
   * The minimum values.
   *
   * @param dim Dim or dims to reduce; all when omitted.
   * @param options `keepdim`.
   * @returns The minimum values.
   */
  min(dim?: number | number[], options: { keepdim?: boolean } = {}): Tensor {
    return ops.min(this, dim, options);
  }
  /**
   * Returns int32 indices of the maxima (the first on ties).
   *
   * @param dim Dim to reduce; the flattened tensor when omitted.
   * @param options `keepdim`.
   * @returns int32 indices of the maxima (the first on ties).
   */
  argmax(dim?: number, options: { keepdim?: boolean } = {}): Tensor {
    return ops.argmax(this, dim, options);
  }
  /**
   * Returns int32 indices of the minima.
   *
   * @param dim Dim to reduce; the flattened tensor when omitted.
   * @param options `keepdim`.
   * @returns int32 indices of the minima.
   */
  argmin(dim?: number, options: { keepdim?: boolean } = {}): Tensor {
    return ops.argmin(this, dim, options);
  }
  /**
   * The variance.
   *
   * @param dim Dim or dims to reduce; all when omitted.
   * @param options `keepdim`; `correction` (1 = unbiased, the default).
   * @returns The variance.
   */
  var(
    dim?: number | number[],
    options: { keepdim?: boolean; correction?: number } = {},
  ): Tensor {
    return ops.variance(this, dim, options);
  }
  /**
   * The standard deviation.
   *
   * @param dim Dim or dims to reduce; all when omitted.
   * @param options `keepdim`; `correction` (1 = unbiased, the default).
   * @returns The standard deviation.
   */
  std(
    dim?: number | number[],
    options: { keepdim?: boolean; correction?: number } = {},
  ): Tensor {
    return ops.std(this, dim, options);
  }

  // ---- linear algebra ------------------------------------------------------

  /**
   * The matrix product (as `torch.matmul`).
   *
   * @param other Right operand.
   * @returns The matrix product (as `torch.matmul`).
   */
  matmul(other: Tensor): Tensor {
    return ops.matmul(this, other);
  }

  // ---- shape ---------------------------------------------------------------

  /**
   * A reshaped tensor.
   *
   * @param shape New shape; one entry may be -1.
   * @returns A reshaped tensor.
   */
  reshape(shape: readonly number[]): Tensor {
    return ops.reshape(this, shape);
  }
  /**
   * A view sharing storage.
   *
   * @param shape New shape; one entry may be -1.
   * @returns A view sharing storage.
   */
  view(shape: readonly number[]): Tensor {
    return ops.reshape(this, shape);
  }
  /**
   * The permuted tensor.
   *
   * @param dims A permutation of the dims.
   * @returns The permuted tensor.
   */
  permute(dims: readonly number[]): Tensor {
    return ops.permute(this, dims);
  }
  /**
   * The tensor with the two dims swapped.
   *
   * @param dim0 First dim.
   * @param dim1 Second dim.
   * @returns The tensor with the two dims swapped.
   */
  transpose(dim0: number, dim1: number): Tensor {
    return ops.transpose(this, dim0, dim1);
  }
  /**
   * The transpose of a 2-D tensor.
   *
   * @returns The transpose of a 2-D tensor.
   */
  t(): Tensor {
    if (this.ndim > 2) {
      throw new ShapeError(
        `Cannot call t() on a tensor of shape ${
          fmtShape(this.shape)
        }: it has ${this.ndim} dims, at most 2 allowed`,
      );
    }
    return this.ndim < 2 ? this : ops.transpose(this, 0, 1);
  }
  /**
   * The flattened tensor.
   *
   * @param startDim First dim to flatten.
   * @param endDim Last dim to flatten.
   * @returns The flattened tensor.
   */
  flatten(startDim = 0, endDim = -1): Tensor {
    return ops.flatten(this, startDim, endDim);
  }
  /**
   * The squeezed tensor.
   *
   * @param dim Dim to drop if size 1; all size-1 dims when omitted.
   * @returns The squeezed tensor.
   */
  squeeze(dim?: number): Tensor {
    return ops.squeeze(this, dim);
  }
  /**
   * The unsqueezed tensor.
   *
   * @param dim Where to insert a size-1 dim.
   * @returns The unsqueezed tensor.
   */
  unsqueeze(dim: number): Tensor {
    return ops.unsqueeze(this, dim);
  }
  /**
   * The broadcast tensor.
   *
   * @param shape Target shape (-1 keeps a dim).
   * @returns The broadcast tensor.
   */
  expand(shape: readonly number[]): Tensor {
    return ops.expand(this, shape);
  }
  /**
   * Python's `x[..., start:end:step, ...]` on one dim.
   *
   * @param dim The dim.
   * @param start First index (negative counts from the end).
   * @param end End index, exclusive (default: the size).
   * @param step Step, positive (default 1).
   * @returns The slice.
   */
  slice(dim: number, start: number, end?: number, step = 1): Tensor {
    return ops.slice(this, dim, start, end, step);
  }
  /**
   * Returns `slice(dim, start, start + length)`.
   *
   * @param dim The dim.
   * @param start First index.
   * @param length How many.
   * @returns `slice(dim, start, start + length)`.
   */
  narrow(dim: number, start: number, length: number): Tensor {
    return ops.slice(this, dim, start, start + length, 1);
  }
  /**
   * The selected entries.
   *
   * @param dim The dim to index.
   * @param index 1-D int32 indices.
   * @returns The selected entries.
   */
  indexSelect(dim: number, index: Tensor): Tensor {
    return ops.indexSelect(this, dim, index);
  }
  /**
   * Returns `out[i][j] = this[index[i][j]][j]` for dim 0, and so on.
   *
   * @param dim The dim to gather along.
   * @param index int32 indices, same rank as this tensor.
   * @returns `out[i][j] = this[index[i][j]][j]` for dim 0, and so on.
   */
  gather(dim: number, index: Tensor): Tensor {
    return ops.gather(this, dim, index);
  }
  /**
   * This tensor (kdeno tensors are always contiguous).
   *
   * @returns This tensor (kdeno tensors are always contiguous).
   */
  contiguous(): Tensor {
    return this;
  }
  /**
   * A copy that shares no storage, recorded for autograd.
   *
   * @returns A copy that shares no storage, recorded for autograd.
   */
  clone(): Tensor {
    return ops.clone(this);
  }

  // ---- softmax -------------------------------------------------------------

  /**
   * Softmax along `dim`.
   *
   * @param dim The dim to normalise.
   * @returns Softmax along `dim`.
   */
  softmax(dim: number): Tensor {
    return ops.softmax(this, dim);
  }
  /**
   * Log-softmax along `dim`.
   *
   * @param dim The dim to normalise.
   * @returns Log-softmax along `dim`.
   */
  logSoftmax(dim: number): Tensor {
    return ops.logSoftmax(this, dim);
  }
}

/**
 * A new tensor of `shape` on `t`'s storage (a view: `reshape`, `detach`).
 *
 * @param t The tensor whose storage is shared.
 * @param shape The view's shape (same element count).
 * @returns The view.
 */
export function shareStorage(t: Tensor, shape: readonly number[]): Tensor {
  addView(t.ref.life);
  return new Tensor(t.ref, shape, t.dtype);
}

/** Creates a tensor around fresh storage on a backend. */
export function fromStorage(
  backend: Backend,
  storage: Storage,
  shape: readonly number[],
): Tensor {
  return new Tensor(new StorageRef(storage, backend), shape, storage.dtype);
}

/** The backend new tensors go to. */
export function defaultBackend(): Backend {
  return getBackend(currentDevice());
}

export { DTypeError, ShapeError };
