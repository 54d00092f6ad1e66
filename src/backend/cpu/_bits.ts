/**
 * Float32 values handled as their int32 bits, for branch-free kernels: a
 * compare of random data mispredicts half the time, while integer masks do
 * not. These small functions are inlined by V8 in the hot loops.
 *
 * @module
 */

/** 1 when the float bits `b` are a NaN, else 0. */
export function nanBit(b: number): number {
  return +((b & 0x7fffffff) > 0x7f800000);
}

/**
 * An int32 key whose integer order is the float order of the bits `b`
 * (magnitude bits of negatives flipped; +1 on negatives so -0 and +0 tie).
 * NaNs get keys outside the range of the numbers.
 */
export function floatKey(b: number): number {
  return ((b ^ ((b >> 31) & 0x7fffffff)) + ((b >> 31) & 1)) | 0;
}

/** The float bits of a key from {@linkcode floatKey} (a -0 comes back as +0). */
export function keyBits(k: number): number {
  return ((k - ((k >> 31) & 1)) | 0) ^ ((k >> 31) & 0x7fffffff);
}

/**
 * ReLU on float bits, `src[i]` → `dst[i]` for `from <= i < to` (the two may
 * be the same array): a set sign bit clears the value unless it is a NaN, so
 * NaN stays NaN and -0 and -Infinity become +0.
 */
export function reluBitsRange(
  src: Int32Array,
  dst: Int32Array,
  from: number,
  to: number,
): void {
  for (let i = from; i < to; i++) {
    const b = src[i];
    dst[i] = b & ~((b >> 31) & ~-nanBit(b));
  }
}
