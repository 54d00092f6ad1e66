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

/** Element types a tensor can hold. */
export type DType = "float32" | "int32";

/** The host array type for a dtype. */
export type TypedArray = Float32Array | Int32Array;
