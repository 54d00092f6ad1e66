/**
 * Whether an `amp.autocast` scope is open on the CUDA device, and with which
 * half type: the CUDA backend's matrix products read it (inputs rounded to
 * float16 or bfloat16, products accumulated and returned in float32). It
 * imports nothing, so `src/amp/` sets it and the backend reads it without
 * an import cycle.
 *
 * @module
 */

/** The half-precision types autocast computes in. */
export type { HalfDType } from "../types.ts";
import type { HalfDType } from "../types.ts";

let cudaHalf: HalfDType | null = null;

/**
 * The half type CUDA matrix products use now, or null outside autocast.
 *
 * @returns The type, or null.
 */
export function cudaAutocastDtype(): HalfDType | null {
  return cudaHalf;
}

/**
 * Sets the half type CUDA matrix products use (null: float32).
 *
 * @param dtype The type, or null.
 * @returns The previous setting, to restore.
 */
export function setCudaAutocastDtype(
  dtype: HalfDType | null,
): HalfDType | null {
  const prev = cudaHalf;
  cudaHalf = dtype;
  return prev;
}
