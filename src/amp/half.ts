/**
 * float16 and bfloat16 bit patterns to and from float32, exactly as PyTorch
 * converts on the CPU (c10's `fp16_ieee_from_fp32_value` and
 * `round_to_nearest_even`): round to nearest, ties to even; float16
 * overflows to infinity and keeps subnormals; every NaN becomes `0x7E00`
 * (float16) or `0xFFFF` (bfloat16). The backends store float16 and bfloat16
 * tensors as these patterns, so the conversions live with them
 * (`src/backend/half_bits.ts`); these are the public entry points. Checked
 * bit for bit against fixtures written by PyTorch (`tests/amp/generate.py`).
 *
 * @module
 */

import * as bits from "../backend/half_bits.ts";

/**
 * One float32 value to its float16 bit pattern (round to nearest even).
 *
 * @param x A number, rounded to float32 first.
 * @returns The 16-bit pattern.
 */
export function float16Bits(x: number): number {
  return bits.float16Bits(x);
}

/**
 * float16 bit patterns to float32, built once (256 KiB).
 *
 * @returns The table indexed by the 16-bit pattern.
 */
export function float16Table(): Float32Array {
  return bits.float16Table();
}

/**
 * One float32 value to its bfloat16 bit pattern (round to nearest even).
 *
 * @param x A number, rounded to float32 first.
 * @returns The 16-bit pattern.
 */
export function bfloat16Bits(x: number): number {
  return bits.bfloat16Bits(x);
}

/**
 * float32 values to float16 bit patterns, as `tensor.to(torch.float16)`.
 *
 * @param src The values.
 * @returns One 16-bit pattern per value.
 */
export function toFloat16(src: ArrayLike<number>): Uint16Array {
  return bits.toFloat16(src);
}

/**
 * float16 bit patterns to float32 values (exact: every float16 is a
 * float32).
 *
 * @param src The patterns.
 * @returns The values.
 */
export function fromFloat16(src: Uint16Array): Float32Array {
  return bits.fromFloat16(src);
}

/**
 * float32 values to bfloat16 bit patterns, as `tensor.to(torch.bfloat16)`.
 *
 * @param src The values.
 * @returns One 16-bit pattern per value.
 */
export function toBFloat16(src: ArrayLike<number>): Uint16Array {
  return bits.toBFloat16(src);
}

/**
 * bfloat16 bit patterns to float32 values (exact: the pattern is the top
 * half of a float32).
 *
 * @param src The patterns.
 * @returns The values.
 */
export function fromBFloat16(src: Uint16Array): Float32Array {
  return bits.fromBFloat16(src);
}

/**
 * Float32 values rounded through a half type and back, as
 * `x.to(dtype).float()` in PyTorch: what a value keeps of its precision
 * when stored in float16 or bfloat16.
 *
 * @param src The values.
 * @param dtype `"float16"` or `"bfloat16"`.
 * @returns The rounded values.
 */
export function roundThrough(
  src: ArrayLike<number>,
  dtype: "float16" | "bfloat16",
): Float32Array {
  return bits.roundThrough(src, dtype);
}
