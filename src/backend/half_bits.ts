/**
 * float16 and bfloat16 bit patterns to and from float32, exactly as PyTorch
 * converts on the CPU (c10's `fp16_ieee_from_fp32_value` and
 * `round_to_nearest_even`): round to nearest, ties to even; float16
 * overflows to infinity and keeps subnormals; every NaN becomes `0x7E00`
 * (float16) or `0xFFFF` (bfloat16: what PyTorch's vectorised CPU conversion
 * writes; its scalar and CUDA paths write `0x7FC0`, also a NaN). Checked bit
 * for bit against fixtures written by PyTorch (`tests/amp/generate.py`).
 * It lives with the backends, which store float16 and bfloat16 tensors as
 * these patterns; `src/amp/half.ts` publishes it.
 *
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}

function fromBits(b: number): number {
  u32[0] = b >>> 0;
  return f32[0];
}

const SCALE_TO_INF = 2 ** 112;
const SCALE_TO_ZERO = 2 ** -110;

/**
 * One float32 value to its float16 bit pattern (round to nearest even).
 *
 * @param x A number, rounded to float32 first.
 * @returns The 16-bit pattern.
 */
export function float16Bits(x: number): number {
  const w = bitsOf(x);
  const shl1 = (w * 2) >>> 0;
  const sign = w & 0x80000000;
  let base = Math.fround(
    Math.fround(Math.abs(fromBits(w)) * SCALE_TO_INF) * SCALE_TO_ZERO,
  );
  let bias = (shl1 & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = Math.fround(fromBits((bias >>> 1) + 0x07800000) + base);
  const bits = bitsOf(base);
  const nonsign = ((bits >>> 13) & 0x7c00) + (bits & 0x0fff);
  return ((sign >>> 16) | (shl1 > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

let halfTable: Float32Array | undefined;

/**
 * float16 bit patterns to float32, built once (256 KiB).
 *
 * @returns The table indexed by the 16-bit pattern.
 */
export function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return halfTable = t;
}

/**
 * One float32 value to its bfloat16 bit pattern (round to nearest even).
 *
 * @param x A number, rounded to float32 first.
 * @returns The 16-bit pattern.
 */
export function bfloat16Bits(x: number): number {
  if (Number.isNaN(x)) return 0xffff;
  const u = bitsOf(x);
  return ((u + ((u >>> 16) & 1) + 0x7fff) >>> 16) & 0xffff;
}

/**
 * float32 values to float16 bit patterns, as `tensor.to(torch.float16)`.
 *
 * @param src The values.
 * @returns One 16-bit pattern per value.
 */
export function toFloat16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = float16Bits(src[i]);
  return out;
}

/**
 * float16 bit patterns to float32 values (exact: every float16 is a
 * float32).
 *
 * @param src The patterns.
 * @returns The values.
 */
export function fromFloat16(src: Uint16Array): Float32Array {
  const t = float16Table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

/**
 * float32 values to bfloat16 bit patterns, as `tensor.to(torch.bfloat16)`.
 *
 * @param src The values.
 * @returns One 16-bit pattern per value.
 */
export function toBFloat16(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  if (src instanceof Float32Array) {
    const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < u.length; i++) {
      const b = u[i];
      out[i] = (b & 0x7fffffff) > 0x7f800000
        ? 0xffff
        : ((b + ((b >>> 16) & 1) + 0x7fff) >>> 16) & 0xffff;
    }
    return out;
  }
  for (let i = 0; i < src.length; i++) out[i] = bfloat16Bits(src[i]);
  return out;
}

/**
 * bfloat16 bit patterns to float32 values (exact: the pattern is the top
 * half of a float32).
 *
 * @param src The patterns.
 * @returns The values.
 */
export function fromBFloat16(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
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
  return dtype === "float16"
    ? fromFloat16(toFloat16(src))
    : fromBFloat16(toBFloat16(src));
}

/**
 * The values of float16 or bfloat16 bit patterns.
 *
 * @param bits The patterns.
 * @param dtype Which half type they hold.
 * @returns The values as float32 (exact).
 */
export function halfToFloat32(
  bits: Uint16Array,
  dtype: "float16" | "bfloat16",
): Float32Array {
  return dtype === "float16" ? fromFloat16(bits) : fromBFloat16(bits);
}

/**
 * Values rounded to float16 or bfloat16 bit patterns (nearest, ties to
 * even).
 *
 * @param src The values.
 * @param dtype The half type.
 * @returns The patterns.
 */
export function float32ToHalf(
  src: ArrayLike<number>,
  dtype: "float16" | "bfloat16",
): Uint16Array {
  return dtype === "float16" ? toFloat16(src) : toBFloat16(src);
}
