/**
 * The words every layer shares with the backends: element types, their host
 * arrays, and device names. Device names are declared in `registry.ts`, next
 * to the factory map whose keys they are, so adding a backend touches its
 * folder and that file only.
 *
 * @module
 */

export type { DeviceName } from "./registry.ts";

/** Element types a tensor can hold. */
export type DType = "float32" | "int32";

/** The host array type for a dtype. */
export type TypedArray = Float32Array | Int32Array;
