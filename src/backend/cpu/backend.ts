/**
 * The CPU backend class: storage is a typed array; every kernel has a readable
 * TypeScript reference (the fallback and the tests' oracle), and the ops
 * with a faster implementation on this platform (native C, oneDNN,
 * OpenBLAS) take it as listed in `dispatch.ts`.
 *
 * @module
 */

import type {
  AdamUpdate,
  AdaptivePool2dGeometry,
  Backend,
  BatchNormGeometry,
  BatchNormParams,
  BatchNormSaved,
  BinaryOp,
  Conv2dGeometry,
  DType,
  Pool2dGeometry,
  ReduceOp,
  SgdUpdate,
  Storage,
  TypedArray,
  UnaryOp,
} from "../backend.ts";
import * as ew from "./elementwise.ts";
import * as red from "./reduce.ts";
import { sgemm } from "./gemm.ts";
import * as conv from "./conv.ts";
import * as pool from "./pool.ts";
import * as bn from "./batch_norm.ts";
import * as sm from "./softmax.ts";
import * as opt from "./optim.ts";
import { fastKernels } from "./dispatch.ts";
import { DTypeError } from "../../errors.ts";
import { HALF_KERNEL_OPS, isHalfDType } from "../types.ts";
import { float32ToHalf, halfToFloat32 } from "../half_bits.ts";
import {
  f32 as allocF32,
  f32Out as allocF32Out,
  i32 as allocI32,
  i32Out as allocI32Out,
  recycle,
} from "./_array_pool.ts";

/**
 * CPU storage: a typed array and its dtype. float16 and bfloat16 hold their
 * bit patterns in a `Uint16Array`.
 */
export class CpuStorage implements Storage {
  /** The elements. */
  data: TypedArray;
  /** Element type. */
  readonly dtype: DType;
  /**
   * @param data The elements (taken, not copied).
   * @param dtype The element type; needed for a `Uint16Array`, which holds
   * either half type (default: float16).
   */
  constructor(data: TypedArray, dtype?: DType) {
    this.data = data;
    this.dtype = dtype ??
      (data instanceof Int32Array
        ? "int32"
        : data instanceof Uint16Array
        ? "float16"
        : "float32");
  }
  /** Number of elements. */
  get length(): number {
    return this.data.length;
  }
}

const wrap = (d: TypedArray): CpuStorage => new CpuStorage(d);

/**
 * Refuses a half-precision storage in a kernel that moves or computes
 * 32-bit elements: the ops layer computes float16 and bfloat16 in float32
 * (elementwise ops, reductions, matrix products) and refuses the rest
 * itself, so this is the last guard.
 */
function noHalf(kernel: string, ...ss: Storage[]): void {
  for (const s of ss) {
    if (isHalfDType(s.dtype)) {
      throw new DTypeError(
        `Cannot run ${HALF_KERNEL_OPS[kernel] ?? kernel} on a ${s.dtype} ` +
          `tensor on the CPU: it takes float32 and int32 only; convert with ` +
          `.float() first`,
      );
    }
  }
}
const f32 = (s: Storage): Float32Array =>
  (s as CpuStorage).data as Float32Array;
const i32 = (s: Storage): Int32Array => (s as CpuStorage).data as Int32Array;
const arr = (s: Storage): TypedArray => (s as CpuStorage).data;
const orNull = (s: Storage | null): Float32Array | null => s ? f32(s) : null;
const arrays = (p: BatchNormParams): BatchNormParams<Float32Array> => ({
  weight: orNull(p.weight),
  bias: orNull(p.bias),
  runningMean: orNull(p.runningMean),
  runningVar: orNull(p.runningVar),
});

/** The CPU backend. */
export class CpuBackend implements Backend {
  /** Always `"cpu"`. */
  readonly name = "cpu" as const;

  zeros(dtype: DType, n: number): Storage {
    if (isHalfDType(dtype)) return new CpuStorage(new Uint16Array(n), dtype);
    return wrap(dtype === "int32" ? allocI32(n) : allocF32(n));
  }
  upload(data: TypedArray, dtype?: DType): Storage {
    if (data instanceof Uint16Array) {
      return new CpuStorage(data.slice(), dtype ?? "float16");
    }
    // a pooled array: each step's batch reuses the last one's
    const a = data instanceof Int32Array
      ? allocI32Out(data.length)
      : allocF32Out(data.length);
    a.set(data);
    return wrap(a);
  }
  download(s: Storage): TypedArray {
    return arr(s).slice();
  }
  /** The live array behind a storage, without a copy (CPU only). */
  view(s: Storage): TypedArray {
    return arr(s);
  }
  free(s: Storage): void {
    // Drop the reference so use-after-dispose fails loudly, and give the
    // array to the pool: the next step's activation of that size reuses it.
    const st = s as CpuStorage;
    const data = st.data;
    st.data = EMPTY;
    if (!(data instanceof Uint16Array)) recycle(data);
  }
  fill(s: Storage, value: number): void {
    const dt = s.dtype;
    if (isHalfDType(dt)) arr(s).fill(float32ToHalf([value], dt)[0]);
    else arr(s).fill(value);
  }
  assign(dst: Storage, src: Storage): void {
    arr(dst).set(arr(src));
  }
  cast(x: Storage, dtype: DType): Storage {
    let a = arr(x);
    const from = x.dtype;
    if (from === dtype) return new CpuStorage(a.slice(), dtype);
    if (isHalfDType(from)) a = halfToFloat32(a as Uint16Array, from);
    if (isHalfDType(dtype)) {
      return new CpuStorage(float32ToHalf(a, dtype), dtype);
    }
    if (isHalfDType(from) && dtype === "float32") return wrap(a);
    if (dtype === "int32") {
      const y = allocI32(a.length);
      for (let i = 0; i < a.length; i++) y[i] = Math.trunc(a[i]);
      return wrap(y);
    }
    return wrap(Float32Array.from(a));
  }

  unary(op: UnaryOp, x: Storage): Storage {
    noHalf("unary", x);
    return wrap(ew.unary(op, arr(x)));
  }
  binary(
    op: BinaryOp,
    a: Storage,
    aStrides: readonly number[],
    b: Storage,
    bStrides: readonly number[],
    shape: readonly number[],
  ): Storage {
    noHalf("binary", a, b);
    return wrap(ew.binary(op, arr(a), aStrides, arr(b), bStrides, shape));
  }
  binaryScalar(
    op: BinaryOp,
    x: Storage,
    scalar: number,
    reverse: boolean,
  ): Storage {
    noHalf("binaryScalar", x);
    return wrap(ew.binaryScalar(op, arr(x), scalar, reverse));
  }
  where(
    cond: Storage,
    condStrides: readonly number[],
    a: Storage,
    aStrides: readonly number[],
    b: Storage,
    bStrides: readonly number[],
    shape: readonly number[],
  ): Storage {
    noHalf("where", a, b);
    return wrap(
      ew.where(
        arr(cond),
        condStrides,
        arr(a),
        aStrides,
        arr(b),
        bStrides,
        shape,
      ),
    );
  }
  clamp(x: Storage, lo: number, hi: number): Storage {
    noHalf("clamp", x);
    return wrap(ew.clamp(arr(x), lo, hi));
  }
  axpy(dst: Storage, src: Storage, alpha: number): void {
    noHalf("axpy", dst, src);
    const d = arr(dst), s = arr(src);
    const n = d.length;
    const fast = d instanceof Float32Array && s instanceof Float32Array &&
        s.length === n
      ? fastKernels()
      : null;
    if (fast) return fast.axpy(d as Float32Array, s as Float32Array, alpha);
    if (alpha === 1) { for (let i = 0; i < n; i++) d[i] += s[i]; }
    else for (let i = 0; i < n; i++) d[i] += alpha * s[i];
  }

  stridedCopy(
    x: Storage,
    shape: readonly number[],
    strides: readonly number[],
    offset: number,
  ): Storage {
    // float16 / bfloat16 patterns move as they are
    const y = ew.stridedCopy(arr(x), shape, strides, offset);
    return new CpuStorage(y, x.dtype);
  }
  stridedWrite(
    dst: Storage,
    shape: readonly number[],
    strides: readonly number[],
    offset: number,
    src: Storage,
  ): void {
    // half patterns move only into storage of the same half type
    if (
      (isHalfDType(dst.dtype) || isHalfDType(src.dtype)) &&
      dst.dtype !== src.dtype
    ) {
      throw new DTypeError(
        `Cannot write ${src.dtype} elements into ${dst.dtype} storage`,
      );
    }
    ew.stridedWrite(arr(dst), shape, strides, offset, arr(src));
  }
  indexSelect(
    x: Storage,
    outer: number,
    dim: number,
    inner: number,
    idx: Storage,
  ): Storage {
    noHalf("indexSelect", x);
    return wrap(red.indexSelect(arr(x), outer, dim, inner, i32(idx)));
  }
  indexAdd(
    dst: Storage,
    outer: number,
    dim: number,
    inner: number,
    idx: Storage,
    src: Storage,
  ): void {
    noHalf("indexAdd", dst);
    red.indexAdd(arr(dst), outer, dim, inner, i32(idx), arr(src));
  }
  gather(
    x: Storage,
    outer: number,
    dim: number,
    inner: number,
    index: Storage,
    m: number,
  ): Storage {
    noHalf("gather", x);
    return wrap(red.gather(arr(x), outer, dim, inner, i32(index), m));
  }
  scatterAdd(
    dst: Storage,
    outer: number,
    dim: number,
    inner: number,
    index: Storage,
    m: number,
    src: Storage,
  ): void {
    noHalf("scatterAdd", dst);
    red.scatterAdd(arr(dst), outer, dim, inner, i32(index), m, arr(src));
  }

  reduce(
    op: ReduceOp,
    x: Storage,
    outer: number,
    r: number,
    inner: number,
  ): Storage {
    noHalf("reduce", x);
    return wrap(red.reduce(op, arr(x), outer, r, inner));
  }

  gemm(
    a: Storage,
    b: Storage,
    m: number,
    n: number,
    k: number,
    o: {
      transA: boolean;
      transB: boolean;
      batch: number;
      strideA: number;
      strideB: number;
    },
  ): Storage {
    noHalf("gemm", a, b);
    const A = f32(a), B = f32(b);
    const C = allocF32(o.batch * m * n);
    const lda = o.transA ? m : k;
    const ldb = o.transB ? k : n;
    for (let i = 0; i < o.batch; i++) {
      sgemm(
        o.transA,
        o.transB,
        m,
        n,
        k,
        1,
        A.subarray(i * o.strideA),
        lda,
        B.subarray(i * o.strideB),
        ldb,
        0,
        C.subarray(i * m * n),
        n,
      );
    }
    return wrap(C);
  }

  softmax(
    x: Storage,
    outer: number,
    n: number,
    inner: number,
    log: boolean,
  ): Storage {
    return wrap(sm.softmax(f32(x), outer, n, inner, log));
  }
  softmaxBackward(
    y: Storage,
    dy: Storage,
    outer: number,
    n: number,
    inner: number,
    log: boolean,
  ): Storage {
    return wrap(sm.softmaxBackward(f32(y), f32(dy), outer, n, inner, log));
  }

  conv2d(
    x: Storage,
    weight: Storage,
    bias: Storage | null,
    g: Conv2dGeometry,
  ): Storage {
    return wrap(
      conv.conv2dForward(f32(x), f32(weight), bias ? f32(bias) : null, g),
    );
  }
  conv2dBackwardData(dy: Storage, weight: Storage, g: Conv2dGeometry): Storage {
    return wrap(conv.conv2dBackwardData(f32(dy), f32(weight), g));
  }
  conv2dBackwardFilter(x: Storage, dy: Storage, g: Conv2dGeometry): Storage {
    return wrap(conv.conv2dBackwardFilter(f32(x), f32(dy), g));
  }

  maxPool2d(
    x: Storage,
    g: Pool2dGeometry,
    needIndices = true,
  ): { y: Storage; indices: Storage } {
    const r = pool.maxPool2d(f32(x), g, needIndices);
    return { y: wrap(r.y), indices: wrap(r.indices) };
  }
  maxPool2dBackward(dy: Storage, indices: Storage, g: Pool2dGeometry): Storage {
    return wrap(pool.maxPool2dBackward(f32(dy), i32(indices), g));
  }
  avgPool2d(x: Storage, g: Pool2dGeometry): Storage {
    return wrap(pool.avgPool2d(f32(x), g));
  }
  avgPool2dBackward(dy: Storage, g: Pool2dGeometry): Storage {
    return wrap(pool.avgPool2dBackward(f32(dy), g));
  }
  adaptiveAvgPool2d(x: Storage, g: AdaptivePool2dGeometry): Storage {
    return wrap(pool.adaptiveAvgPool2d(f32(x), g));
  }
  adaptiveAvgPool2dBackward(dy: Storage, g: AdaptivePool2dGeometry): Storage {
    return wrap(pool.adaptiveAvgPool2dBackward(f32(dy), g));
  }

  batchNormTrain(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): { y: Storage } & BatchNormSaved {
    return this.#batchNormTrain(x, p, { ...g, activation: "none" });
  }
  batchNormEval(x: Storage, p: BatchNormParams, g: BatchNormGeometry): Storage {
    return this.#batchNormEval(x, p, { ...g, activation: "none" });
  }
  batchNormTrainRelu(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): { y: Storage } & BatchNormSaved {
    return this.#batchNormTrain(x, p, { ...g, activation: "relu" });
  }
  batchNormEvalRelu(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): Storage {
    return this.#batchNormEval(x, p, { ...g, activation: "relu" });
  }
  #batchNormTrain(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): { y: Storage } & BatchNormSaved {
    const r = bn.batchNormTrain(f32(x), arrays(p), g);
    return { y: wrap(r.y), mean: wrap(r.mean), invStd: wrap(r.invStd) };
  }
  #batchNormEval(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): Storage {
    return wrap(bn.batchNormEval(f32(x), arrays(p), g));
  }
  batchNormBackward(
    x: Storage,
    dy: Storage,
    weight: Storage | null,
    saved: BatchNormSaved,
    g: BatchNormGeometry,
  ): { dx: Storage; dweight: Storage; dbias: Storage } {
    const r = bn.batchNormBackward(
      f32(x),
      f32(dy),
      weight ? f32(weight) : null,
      { mean: f32(saved.mean), invStd: f32(saved.invStd) },
      g,
    );
    return { dx: wrap(r.dx), dweight: wrap(r.dweight), dbias: wrap(r.dbias) };
  }

  sgdStep(
    param: Storage,
    grad: Storage,
    momentumBuf: Storage | null,
    o: SgdUpdate,
  ): void {
    opt.sgdStep(
      f32(param),
      f32(grad),
      momentumBuf ? f32(momentumBuf) : null,
      o,
    );
  }
  adamStep(
    param: Storage,
    grad: Storage,
    expAvg: Storage,
    expAvgSq: Storage,
    maxExpAvgSq: Storage | null,
    o: AdamUpdate,
  ): void {
    opt.adamStep(
      f32(param),
      f32(grad),
      f32(expAvg),
      f32(expAvgSq),
      maxExpAvgSq ? f32(maxExpAvgSq) : null,
      o,
    );
  }

  synchronize(): void {}
}

const EMPTY = new Float32Array(0);
