/**
 * The words every layer shares with the backends: element types, their host
 * arrays, and device names. This module imports nothing, so every file of
 * the backends can use it without an import cycle.
 *
 * @module
 */

/**
 * The names of the devices kdeno knows. `registry.ts` maps each to its
 * backend's factory, and the map's type makes the compiler reject a name
 * without a factory and a factory without a name: a new backend is its
 * folder, its name here and its line in that map.
 */
export type DeviceName = "cpu" | "cuda";

/**
 * Element types a tensor can hold. `float16` and `bfloat16` are stored as
 * their 16-bit patterns (a `Uint16Array` on the host); see `isHalfDType`.
 */
export type DType = "float32" | "int32" | "float16" | "bfloat16";

/** The two 16-bit floating-point types. */
export type HalfDType = "float16" | "bfloat16";

/**
 * The host array type for a dtype: `Float32Array` (float32), `Int32Array`
 * (int32), `Uint16Array` (the bit patterns of float16 and bfloat16).
 */
export type TypedArray = Float32Array | Int32Array | Uint16Array;

/**
 * Whether `dtype` is float16 or bfloat16.
 *
 * @param dtype A dtype.
 * @returns True for the 16-bit floating-point types.
 */
export function isHalfDType(dtype: DType): dtype is HalfDType {
  return dtype === "float16" || dtype === "bfloat16";
}

/**
 * The ops behind the kernels that refuse float16 and bfloat16 storage, for
 * the backends' error messages.
 */
export const HALF_KERNEL_OPS: Readonly<Record<string, string>> = {
  indexSelect: "indexSelect (the indexing kernel)",
  gather: "gather",
  indexAdd: "indexAdd",
  scatterAdd: "scatterAdd",
  gemm: "the matrix product kernel (gemm)",
  reduce: "the reduction kernel",
  axpy: "axpy (gradient accumulation)",
};
