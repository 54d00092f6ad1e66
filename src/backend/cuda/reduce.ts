/**
 * Reductions of the middle axis of `[outer, r, inner]`: sum, max, min,
 * argmax, argmin. Two shapes of kernel: one block per output (threads
 * stride along `r`, then a warp-shuffle block reduction) when there are few
 * outputs or the reduced axis is contiguous and long, else one thread per
 * output walking `r` (neighbouring threads read neighbouring memory).
 *
 * float32 sums accumulate in double and int32 sums in 64-bit integers, as
 * the CPU backend's float64 sums do. Max/min let NaN win; arg-reductions give
 * the first index of the extreme value.
 *
 * @module
 */

import type { ReduceOp, Storage } from "../backend.ts";
import type { ArgKind } from "./kernel_args.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { cuda, type CudaRuntime, type CudaStorage } from "./runtime.ts";

const source = `
template <class T> __device__ __forceinline__ T kd_lowest();
template <> __device__ __forceinline__ float kd_lowest<float>() { return -KD_INF; }
template <> __device__ __forceinline__ int kd_lowest<int>() { return KD_INT_MIN; }
template <class T> __device__ __forceinline__ T kd_highest();
template <> __device__ __forceinline__ float kd_highest<float>() { return KD_INF; }
template <> __device__ __forceinline__ int kd_highest<int>() { return KD_INT_MAX; }

// (v, i) := (v2, i2) when v2 is the better candidate: NaN first, then the
// larger (MAX) or smaller value, ties to the lower index
template <class T, bool MAX>
__device__ __forceinline__ void kd_arg_combine(T& v, int& i, T v2, int i2) {
  const bool n1 = v != v, n2 = v2 != v2;
  bool take;
  if (n1 || n2) take = n2 && (!n1 || i2 < i);
  else if (v2 == v) take = i2 < i;
  else take = MAX ? v2 > v : v2 < v;
  if (take) { v = v2; i = i2; }
}

// ---- sum ------------------------------------------------------------------
template <class T, class A>
__device__ __forceinline__ void kd_sum_rows(T* y, const T* x, int r, int inner) {
  const u32 o = blockIdx.x / (u32)inner, i = blockIdx.x % (u32)inner;
  const T* p = x + (u64)o * r * inner + i;
  A acc = 0;
  for (int j = threadIdx.x; j < r; j += blockDim.x) acc += (A)p[(u64)j * inner];
  acc = kd_block_reduce(acc, KdAdd(), (A)0);
  if (threadIdx.x == 0) y[blockIdx.x] = (T)acc;
}
template <class T, class A>
__device__ __forceinline__ void kd_sum_cols(T* y, const T* x, u32 nout, int r,
                                            int inner) {
  KD_FOR(t, nout) {
    const u32 o = t / (u32)inner, i = t % (u32)inner;
    const T* p = x + (u64)o * r * inner + i;
    A acc = 0;
    for (int j = 0; j < r; ++j) acc += (A)p[(u64)j * inner];
    y[t] = (T)acc;
  }
}

// ---- max / min --------------------------------------------------------------
template <class T, bool MAX>
__device__ __forceinline__ T kd_pick(T a, T b) {
  return MAX ? KdMax()(a, b) : KdMin()(a, b);
}
template <class T, bool MAX>
__device__ __forceinline__ void kd_ext_rows(T* y, const T* x, int r, int inner) {
  const u32 o = blockIdx.x / (u32)inner, i = blockIdx.x % (u32)inner;
  const T* p = x + (u64)o * r * inner + i;
  const T id = MAX ? kd_lowest<T>() : kd_highest<T>();
  T acc = id;
  for (int j = threadIdx.x; j < r; j += blockDim.x)
    acc = kd_pick<T, MAX>(acc, p[(u64)j * inner]);
  if (MAX) acc = kd_block_reduce(acc, KdMax(), id);
  else acc = kd_block_reduce(acc, KdMin(), id);
  if (threadIdx.x == 0) y[blockIdx.x] = acc;
}
template <class T, bool MAX>
__device__ __forceinline__ void kd_ext_cols(T* y, const T* x, u32 nout, int r,
                                            int inner) {
  KD_FOR(t, nout) {
    const u32 o = t / (u32)inner, i = t % (u32)inner;
    const T* p = x + (u64)o * r * inner + i;
    T acc = MAX ? kd_lowest<T>() : kd_highest<T>();
    for (int j = 0; j < r; ++j) acc = kd_pick<T, MAX>(acc, p[(u64)j * inner]);
    y[t] = acc;
  }
}

// ---- argmax / argmin ----------------------------------------------------------
template <class T, bool MAX>
__device__ __forceinline__ void kd_arg_rows(int* y, const T* x, int r, int inner) {
  __shared__ T shv[32];
  __shared__ int shi[32];
  const u32 o = blockIdx.x / (u32)inner, i = blockIdx.x % (u32)inner;
  const T* p = x + (u64)o * r * inner + i;
  T v = MAX ? kd_lowest<T>() : kd_highest<T>();
  int k = KD_INT_MAX;
  for (int j = threadIdx.x; j < r; j += blockDim.x)
    kd_arg_combine<T, MAX>(v, k, p[(u64)j * inner], j);
#pragma unroll
  for (int s = 16; s > 0; s >>= 1) {
    T v2 = __shfl_xor_sync(0xffffffffu, v, s);
    int k2 = __shfl_xor_sync(0xffffffffu, k, s);
    kd_arg_combine<T, MAX>(v, k, v2, k2);
  }
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  if (lane == 0) { shv[wid] = v; shi[wid] = k; }
  __syncthreads();
  if (wid == 0) {
    const int nw = blockDim.x >> 5;
    v = lane < nw ? shv[lane] : (MAX ? kd_lowest<T>() : kd_highest<T>());
    k = lane < nw ? shi[lane] : KD_INT_MAX;
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) {
      T v2 = __shfl_xor_sync(0xffffffffu, v, s);
      int k2 = __shfl_xor_sync(0xffffffffu, k, s);
      kd_arg_combine<T, MAX>(v, k, v2, k2);
    }
    if (lane == 0) y[blockIdx.x] = k == KD_INT_MAX ? 0 : k;
  }
}
template <class T, bool MAX>
__device__ __forceinline__ void kd_arg_cols(int* y, const T* x, u32 nout, int r,
                                            int inner) {
  KD_FOR(t, nout) {
    const u32 o = t / (u32)inner, i = t % (u32)inner;
    const T* p = x + (u64)o * r * inner + i;
    T v = MAX ? kd_lowest<T>() : kd_highest<T>();
    int k = KD_INT_MAX;
    for (int j = 0; j < r; ++j) kd_arg_combine<T, MAX>(v, k, p[(u64)j * inner], j);
    y[t] = k == KD_INT_MAX ? 0 : k;
  }
}

#define KD_REDUCE(name, OT, T, ROWS, COLS)                                  \\
  extern "C" __global__ void kd_reduce_##name##_rows(                       \\
      OT* __restrict__ y, const T* __restrict__ x, int r, int inner) {      \\
    ROWS(y, x, r, inner);                                                   \\
  }                                                                         \\
  extern "C" __global__ void kd_reduce_##name##_cols(                       \\
      OT* __restrict__ y, const T* __restrict__ x, u32 nout, int r,         \\
      int inner) {                                                          \\
    COLS(y, x, nout, r, inner);                                             \\
  }
#define KD_COMMA ,
KD_REDUCE(sum_f32, float, float, kd_sum_rows<float KD_COMMA double>,
          kd_sum_cols<float KD_COMMA double>)
KD_REDUCE(sum_i32, int, int, kd_sum_rows<int KD_COMMA long long>,
          kd_sum_cols<int KD_COMMA long long>)
KD_REDUCE(max_f32, float, float, kd_ext_rows<float KD_COMMA true>,
          kd_ext_cols<float KD_COMMA true>)
KD_REDUCE(max_i32, int, int, kd_ext_rows<int KD_COMMA true>,
          kd_ext_cols<int KD_COMMA true>)
KD_REDUCE(min_f32, float, float, kd_ext_rows<float KD_COMMA false>,
          kd_ext_cols<float KD_COMMA false>)
KD_REDUCE(min_i32, int, int, kd_ext_rows<int KD_COMMA false>,
          kd_ext_cols<int KD_COMMA false>)
KD_REDUCE(argmax_f32, int, float, kd_arg_rows<float KD_COMMA true>,
          kd_arg_cols<float KD_COMMA true>)
KD_REDUCE(argmax_i32, int, int, kd_arg_rows<int KD_COMMA true>,
          kd_arg_cols<int KD_COMMA true>)
KD_REDUCE(argmin_f32, int, float, kd_arg_rows<float KD_COMMA false>,
          kd_arg_cols<float KD_COMMA false>)
KD_REDUCE(argmin_i32, int, int, kd_arg_rows<int KD_COMMA false>,
          kd_arg_cols<int KD_COMMA false>)
`;

const OPS: ReduceOp[] = ["sum", "max", "min", "argmax", "argmin"];

/** The reduction kernels. */
export const REDUCE_MODULE: KernelModule = {
  name: "reduce",
  source,
  kernels: Object.fromEntries(
    OPS.flatMap((op) =>
      ["f32", "i32"].flatMap((t): [string, ArgKind[]][] => [
        [`kd_reduce_${op}_${t}_rows`, ["ptr", "ptr", "i32", "i32"]],
        [`kd_reduce_${op}_${t}_cols`, ["ptr", "ptr", "u32", "i32", "i32"]],
      ])
    ),
  ),
};

/**
 * Picks the kernel shape: block-per-output when the outputs alone would not
 * fill the GPU or the reduced axis is contiguous and long enough for a warp.
 *
 * @param nOut Number of outputs.
 * @param r Reduced length.
 * @param inner Inner size (1 means the reduced axis is contiguous).
 * @returns `"rows"` or `"cols"`, and the block size for rows.
 */
export function reduceShape(
  nOut: number,
  r: number,
  inner: number,
): { kind: "rows" | "cols"; block: number } {
  if (nOut < 2048 || (inner === 1 && r >= 64)) {
    const block = r >= 2048 ? 512 : r >= 256 ? 128 : r >= 64 ? 64 : 32;
    return { kind: "rows", block };
  }
  return { kind: "cols", block: 256 };
}

/**
 * Reduces the middle axis of `[outer, r, inner]` to `[outer, inner]`.
 *
 * @param rt The runtime.
 * @param op The reduction.
 * @param x Input.
 * @param outer Outer size.
 * @param r Reduced size.
 * @param inner Inner size.
 * @returns New storage (int32 for arg-reductions).
 */
export function reduce(
  rt: CudaRuntime,
  op: ReduceOp,
  x: Storage,
  outer: number,
  r: number,
  inner: number,
): CudaStorage {
  const xs = cuda(x);
  const arg = op === "argmax" || op === "argmin";
  const nOut = outer * inner;
  const y = rt.alloc(arg ? "int32" : xs.dtype, nOut);
  if (nOut === 0) return y;
  const dt = xs.dtype === "float32" ? "f32" : "i32";
  const shape = reduceShape(nOut, r, inner);
  const k = rt.kernel(REDUCE_MODULE, `kd_reduce_${op}_${dt}_${shape.kind}`);
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr);
  if (shape.kind === "rows") {
    k.args.i32(2, r).i32(3, inner);
    k.launch(nOut, shape.block);
  } else {
    k.args.u32(2, nOut).i32(3, r).i32(4, inner);
    k.launch(gridFor(nOut), shape.block);
  }
  return y;
}
