/**
 * Data movement: strided copies in and out of views, `indexSelect`,
 * `indexAdd`, `gather` and `scatterAdd`. Values are moved as 32-bit words, so
 * one kernel serves both dtypes (the strided copies have 16-bit twins for
 * float16 and bfloat16); the adds use `atomicAdd`. An index outside
 * `[0, dim)` is skipped (reads give 0) rather than faulting the context.
 *
 * @module
 */

import type { Storage } from "../backend.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { coalesce, isFlat, numel, writeLayout } from "./layout.ts";
import {
  cuda,
  type CudaRuntime,
  type CudaStorage,
  elementBytes,
} from "./runtime.ts";

const source = `
// the 16-bit copies move float16 / bfloat16 patterns
extern "C" __global__ void kd_strided_copy16(unsigned short* __restrict__ y,
                                             const unsigned short* __restrict__ x,
                                             u32 n, int offset, KdLayout<1> l) {
  KD_FOR(i, n) {
    int off[1];
    kd_offsets<1>(l, i, off);
    y[i] = x[offset + off[0]];
  }
}
extern "C" __global__ void kd_strided_write16(
    unsigned short* __restrict__ dst, const unsigned short* __restrict__ src,
    u32 n, int offset, KdLayout<1> l) {
  KD_FOR(i, n) {
    int off[1];
    kd_offsets<1>(l, i, off);
    dst[offset + off[0]] = src[i];
  }
}
extern "C" __global__ void kd_strided_copy(u32* __restrict__ y,
                                           const u32* __restrict__ x, u32 n,
                                           int offset, KdLayout<1> l) {
  KD_FOR(i, n) {
    int off[1];
    kd_offsets<1>(l, i, off);
    y[i] = x[offset + off[0]];
  }
}
extern "C" __global__ void kd_strided_write(u32* __restrict__ dst,
                                            const u32* __restrict__ src,
                                            u32 n, int offset, KdLayout<1> l) {
  KD_FOR(i, n) {
    int off[1];
    kd_offsets<1>(l, i, off);
    dst[offset + off[0]] = src[i];
  }
}
// y[o, j, i] = x[o, idx[j], i]; t runs over [outer, m, inner]
extern "C" __global__ void kd_index_select(u32* __restrict__ y,
                                           const u32* __restrict__ x,
                                           const int* __restrict__ idx, u32 n,
                                           int dim, int inner, int m) {
  KD_FOR(t, n) {
    int i = (int)(t % (u32)inner);
    u32 oj = t / (u32)inner;
    int j = (int)(oj % (u32)m);
    int o = (int)(oj / (u32)m);
    int k = idx[j];
    y[t] = (k >= 0 && k < dim) ? x[((u64)o * dim + k) * inner + i] : 0u;
  }
}
// y[o, j, i] = x[o, index[o, j, i], i]
extern "C" __global__ void kd_gather(u32* __restrict__ y,
                                     const u32* __restrict__ x,
                                     const int* __restrict__ index, u32 n,
                                     int dim, int inner, int m) {
  KD_FOR(t, n) {
    int i = (int)(t % (u32)inner);
    int o = (int)(t / (u32)inner / (u32)m);
    int k = index[t];
    y[t] = (k >= 0 && k < dim) ? x[((u64)o * dim + k) * inner + i] : 0u;
  }
}
// dst[o, idx[j], i] += src[o, j, i]
#define KD_INDEX_ADD(name, T)                                               \\
  extern "C" __global__ void kd_index_add_##name(                           \\
      T* __restrict__ dst, const int* __restrict__ idx,                     \\
      const T* __restrict__ src, u32 n, int dim, int inner, int m) {        \\
    KD_FOR(t, n) {                                                          \\
      int i = (int)(t % (u32)inner);                                        \\
      u32 oj = t / (u32)inner;                                              \\
      int j = (int)(oj % (u32)m);                                           \\
      int o = (int)(oj / (u32)m);                                           \\
      int k = idx[j];                                                       \\
      if (k >= 0 && k < dim)                                                \\
        atomicAdd(dst + ((u64)o * dim + k) * inner + i, src[t]);            \\
    }                                                                       \\
  }                                                                         \\
  extern "C" __global__ void kd_scatter_add_##name(                         \\
      T* __restrict__ dst, const int* __restrict__ index,                   \\
      const T* __restrict__ src, u32 n, int dim, int inner, int m) {        \\
    KD_FOR(t, n) {                                                          \\
      int i = (int)(t % (u32)inner);                                        \\
      int o = (int)(t / (u32)inner / (u32)m);                               \\
      int k = index[t];                                                     \\
      if (k >= 0 && k < dim)                                                \\
        atomicAdd(dst + ((u64)o * dim + k) * inner + i, src[t]);            \\
    }                                                                       \\
  }
KD_INDEX_ADD(f32, float)
KD_INDEX_ADD(i32, int)
`;

/** Strided copies and indexing. */
export const INDEX_MODULE: KernelModule = {
  name: "index",
  source,
  kernels: {
    kd_strided_copy: ["ptr", "ptr", "u32", "i32", "layout1"],
    kd_strided_write: ["ptr", "ptr", "u32", "i32", "layout1"],
    kd_strided_copy16: ["ptr", "ptr", "u32", "i32", "layout1"],
    kd_strided_write16: ["ptr", "ptr", "u32", "i32", "layout1"],
    kd_index_select: ["ptr", "ptr", "ptr", "u32", "i32", "i32", "i32"],
    kd_gather: ["ptr", "ptr", "ptr", "u32", "i32", "i32", "i32"],
    kd_index_add_f32: ["ptr", "ptr", "ptr", "u32", "i32", "i32", "i32"],
    kd_index_add_i32: ["ptr", "ptr", "ptr", "u32", "i32", "i32", "i32"],
    kd_scatter_add_f32: ["ptr", "ptr", "ptr", "u32", "i32", "i32", "i32"],
    kd_scatter_add_i32: ["ptr", "ptr", "ptr", "u32", "i32", "i32", "i32"],
  },
};

function at(s: CudaStorage, offset: number): Deno.PointerValue {
  return offset === 0 ? s.pointer : Deno.UnsafePointer.create(
    s.ptr + BigInt(elementBytes(s.dtype) * offset),
  );
}

/**
 * Gathers the strided view `(shape, strides, offset)` of `x` into new
 * contiguous storage; a view that is already contiguous is one copy.
 *
 * @param rt The runtime.
 * @param x Source.
 * @param shape View shape.
 * @param strides View strides (elements).
 * @param offset View offset (elements).
 * @returns New storage.
 */
export function stridedCopy(
  rt: CudaRuntime,
  x: Storage,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): CudaStorage {
  const xs = cuda(x);
  const n = numel(shape);
  const y = rt.alloc(xs.dtype, n);
  if (n === 0) return y;
  const l = coalesce(shape, [strides]);
  if (isFlat(l)) {
    rt.device.copyOnDevice(
      y.pointer,
      at(xs, offset),
      elementBytes(xs.dtype) * n,
    );
    return y;
  }
  const k = rt.kernel(
    INDEX_MODULE,
    elementBytes(xs.dtype) === 2 ? "kd_strided_copy16" : "kd_strided_copy",
  );
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, n).i32(3, offset);
  writeLayout(k.args, 4, l, "stridedCopy");
  k.launch(gridFor(n));
  return y;
}

/**
 * Writes contiguous `src` into the strided view `(shape, strides, offset)`
 * of `dst`, in place.
 *
 * @param rt The runtime.
 * @param dst Destination.
 * @param shape View shape.
 * @param strides View strides (elements).
 * @param offset View offset (elements).
 * @param src Contiguous source of `shape`.
 */
export function stridedWrite(
  rt: CudaRuntime,
  dst: Storage,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  src: Storage,
): void {
  const ds = cuda(dst);
  const ss = cuda(src);
  const n = numel(shape);
  if (n === 0) return;
  const l = coalesce(shape, [strides]);
  if (isFlat(l)) {
    rt.device.copyOnDevice(
      at(ds, offset),
      ss.pointer,
      elementBytes(ds.dtype) * n,
    );
    return;
  }
  const k = rt.kernel(
    INDEX_MODULE,
    elementBytes(ds.dtype) === 2 ? "kd_strided_write16" : "kd_strided_write",
  );
  k.args.ptr(0, ds.ptr).ptr(1, ss.ptr).u32(2, n).i32(3, offset);
  writeLayout(k.args, 4, l, "stridedWrite");
  k.launch(gridFor(n));
}

function indexKernel(
  rt: CudaRuntime,
  name: string,
  out: CudaStorage,
  a: CudaStorage,
  b: CudaStorage,
  n: number,
  dim: number,
  inner: number,
  m: number,
): void {
  if (n === 0) return;
  const k = rt.kernel(INDEX_MODULE, name);
  k.args.ptr(0, out.ptr).ptr(1, a.ptr).ptr(2, b.ptr).u32(3, n).i32(4, dim)
    .i32(5, inner).i32(6, m);
  k.launch(gridFor(n));
}

/**
 * `y[o, j, i] = x[o, idx[j], i]`.
 *
 * @param rt The runtime.
 * @param x `[outer, dim, inner]`.
 * @param outer Outer size.
 * @param dim Indexed size.
 * @param inner Inner size.
 * @param idx int32 indices.
 * @returns `[outer, idx.length, inner]`.
 */
export function indexSelect(
  rt: CudaRuntime,
  x: Storage,
  outer: number,
  dim: number,
  inner: number,
  idx: Storage,
): CudaStorage {
  const xs = cuda(x);
  const is = cuda(idx);
  const m = is.length;
  const y = rt.alloc(xs.dtype, outer * m * inner);
  indexKernel(rt, "kd_index_select", y, xs, is, y.length, dim, inner, m);
  return y;
}

/**
 * `dst[o, idx[j], i] += src[o, j, i]`, in place.
 *
 * @param rt The runtime.
 * @param dst `[outer, dim, inner]`.
 * @param outer Outer size.
 * @param dim Indexed size.
 * @param inner Inner size.
 * @param idx int32 indices.
 * @param src `[outer, idx.length, inner]`.
 */
export function indexAdd(
  rt: CudaRuntime,
  dst: Storage,
  outer: number,
  dim: number,
  inner: number,
  idx: Storage,
  src: Storage,
): void {
  const ds = cuda(dst);
  const is = cuda(idx);
  const ss = cuda(src);
  const m = is.length;
  const name = ds.dtype === "float32" ? "kd_index_add_f32" : "kd_index_add_i32";
  indexKernel(rt, name, ds, is, ss, outer * m * inner, dim, inner, m);
}

/**
 * `y[o, j, i] = x[o, index[o, j, i], i]`.
 *
 * @param rt The runtime.
 * @param x `[outer, dim, inner]`.
 * @param outer Outer size.
 * @param dim Indexed size.
 * @param inner Inner size.
 * @param index int32 `[outer, m, inner]`.
 * @param m Middle size of `index`.
 * @returns `[outer, m, inner]`.
 */
export function gather(
  rt: CudaRuntime,
  x: Storage,
  outer: number,
  dim: number,
  inner: number,
  index: Storage,
  m: number,
): CudaStorage {
  const xs = cuda(x);
  const is = cuda(index);
  const y = rt.alloc(xs.dtype, outer * m * inner);
  indexKernel(rt, "kd_gather", y, xs, is, y.length, dim, inner, m);
  return y;
}

/**
 * `dst[o, index[o, j, i], i] += src[o, j, i]`, in place.
 *
 * @param rt The runtime.
 * @param dst `[outer, dim, inner]`.
 * @param outer Outer size.
 * @param dim Indexed size.
 * @param inner Inner size.
 * @param index int32 `[outer, m, inner]`.
 * @param m Middle size of `index`.
 * @param src `[outer, m, inner]`.
 */
export function scatterAdd(
  rt: CudaRuntime,
  dst: Storage,
  outer: number,
  dim: number,
  inner: number,
  index: Storage,
  m: number,
  src: Storage,
): void {
  const ds = cuda(dst);
  const is = cuda(index);
  const ss = cuda(src);
  const name = ds.dtype === "float32"
    ? "kd_scatter_add_f32"
    : "kd_scatter_add_i32";
  indexKernel(rt, name, ds, is, ss, outer * m * inner, dim, inner, m);
}
