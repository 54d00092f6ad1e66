/**
 * float32 to float16 / bfloat16 conversion kernels, for the half-precision
 * matrix products of `amp.autocast`: the inputs are rounded into scratch
 * buffers that cuBLAS reads (`cublasGemmEx` with `CUDA_R_16F` or
 * `CUDA_R_16BF`). Integer arithmetic only, so the result does not depend on
 * the compiler's denormal handling: round to nearest, ties to even, as
 * PyTorch's `__float2half_rn` and `c10::BFloat16`.
 *
 * @module
 */

import type { HalfDType } from "./autocast_state.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { cuda, type CudaRuntime, type CudaStorage } from "./runtime.ts";
import type { Storage } from "../backend.ts";

const halfSource = `
typedef unsigned short u16;
__device__ __forceinline__ u16 kd_f16_bits(u32 x) {
  u32 sign = (x >> 16) & 0x8000u;
  u32 ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (u16)(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (ax >= 0x477ff000u) return (u16)(sign | 0x7c00u);  // 65520 and up: inf
  if (ax < 0x38800000u) {  // below 2^-14: a subnormal or zero
    u32 e = ax >> 23;
    if (e < 102u) return (u16)sign;
    u32 m = (ax & 0x7fffffu) | 0x800000u;
    u32 shift = 126u - e;
    u32 q = m >> shift;
    u32 rem = m & ((1u << shift) - 1u);
    u32 half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (u16)(sign | q);
  }
  u32 r = ax - 0x38000000u;
  u32 q = r >> 13;
  u32 rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;
  return (u16)(sign | q);
}
__device__ __forceinline__ u16 kd_bf16_bits(u32 x) {
  if ((x & 0x7fffffffu) > 0x7f800000u) return (u16)0x7fc0u;
  return (u16)((x + ((x >> 16) & 1u) + 0x7fffu) >> 16);
}
extern "C" __global__ void kd_to_f16(u16* __restrict__ y,
                                     const u32* __restrict__ x, u32 n) {
  KD_FOR(i, n) y[i] = kd_f16_bits(x[i]);
}
extern "C" __global__ void kd_to_bf16(u16* __restrict__ y,
                                      const u32* __restrict__ x, u32 n) {
  KD_FOR(i, n) y[i] = kd_bf16_bits(x[i]);
}
// half bit patterns to float32 bit patterns (exact)
__device__ __forceinline__ u32 kd_f16_to_f32_bits(u32 h) {
  u32 sign = (h & 0x8000u) << 16;
  u32 e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 31u) return sign | 0x7f800000u | (m << 13);  // inf, NaN
  if (e != 0u) return sign | ((e + 112u) << 23) | (m << 13);
  if (m == 0u) return sign;
  // subnormal: normalise
  u32 sh = 0u;
  while (!(m & 0x400u)) { m <<= 1; sh++; }
  return sign | ((113u - sh) << 23) | ((m & 0x3ffu) << 13);
}
extern "C" __global__ void kd_from_f16(u32* __restrict__ y,
                                       const u16* __restrict__ x, u32 n) {
  KD_FOR(i, n) y[i] = kd_f16_to_f32_bits(x[i]);
}
extern "C" __global__ void kd_from_bf16(u32* __restrict__ y,
                                        const u16* __restrict__ x, u32 n) {
  KD_FOR(i, n) y[i] = ((u32)x[i]) << 16;
}
`;

/** The conversion kernels. */
export const HALF_MODULE: KernelModule = {
  name: "half",
  source: halfSource,
  kernels: {
    kd_to_f16: ["ptr", "ptr", "u32"],
    kd_to_bf16: ["ptr", "ptr", "u32"],
    kd_from_f16: ["ptr", "ptr", "u32"],
    kd_from_bf16: ["ptr", "ptr", "u32"],
  },
};

/**
 * float32 storage rounded to a half type in new scratch storage (the
 * autocast inputs of a half GEMM); free it with `rt.free` once the work that
 * reads it is queued.
 *
 * @param rt The runtime.
 * @param x float32 storage.
 * @param dtype The half type.
 * @returns The scratch storage holding the 16-bit patterns.
 * @throws {TypeError} When `x` is not float32.
 */
export function toHalf(
  rt: CudaRuntime,
  x: Storage,
  dtype: HalfDType,
): CudaStorage {
  const xs = cuda(x);
  if (xs.dtype !== "float32") {
    throw new TypeError(
      `Cannot round to ${dtype} on CUDA: the input is ${xs.dtype}, not float32`,
    );
  }
  return castToHalf(rt, xs, dtype);
}

/**
 * float32 storage rounded into new float16 or bfloat16 storage (the dtype
 * of a half tensor, 2 bytes per element).
 *
 * @param rt The runtime.
 * @param x float32 storage.
 * @param dtype The half type.
 * @returns New storage of `dtype`.
 */
export function castToHalf(
  rt: CudaRuntime,
  x: Storage,
  dtype: HalfDType,
): CudaStorage {
  const xs = cuda(x);
  const n = xs.length;
  const y = rt.alloc(dtype, n);
  if (n === 0) return y;
  const k = rt.kernel(
    HALF_MODULE,
    dtype === "float16" ? "kd_to_f16" : "kd_to_bf16",
  );
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, n);
  k.launch(gridFor(n));
  return y;
}

/**
 * float16 or bfloat16 storage widened into new float32 storage (exact).
 *
 * @param rt The runtime.
 * @param x Storage of a half type.
 * @returns New float32 storage.
 */
export function castFromHalf(rt: CudaRuntime, x: Storage): CudaStorage {
  const xs = cuda(x);
  const n = xs.length;
  const y = rt.alloc("float32", n);
  if (n === 0) return y;
  const k = rt.kernel(
    HALF_MODULE,
    xs.dtype === "float16" ? "kd_from_f16" : "kd_from_bf16",
  );
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, n);
  k.launch(gridFor(n));
  return y;
}
