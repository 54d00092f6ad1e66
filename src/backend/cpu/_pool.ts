/**
 * A pool of large typed arrays for the CPU backend. A training step makes
 * and disposes the same large activations every step; writing into a fresh
 * multi-megabyte array costs a page fault per 4 KiB page (about 30 ms for a
 * 25 MB activation on these machines), while reusing a disposed one costs a
 * `fill(0)`. Arrays handed out are zeroed, exactly like `new Float32Array(n)`.
 *
 * @module
 */

/** Arrays shorter than this are left to the garbage collector. */
const MIN_POOLED = 1 << 16;
/** The most bytes kept for reuse. */
const MAX_POOLED_BYTES = 1 << 30;

const f32Free = new Map<number, Float32Array[]>();
const i32Free = new Map<number, Int32Array[]>();
let pooledBytes = 0;

/** A zeroed Float32Array of `n` elements, reused when one was recycled. */
export function f32(n: number): Float32Array {
  if (n >= MIN_POOLED) {
    const a = f32Free.get(n)?.pop();
    if (a) {
      pooledBytes -= a.byteLength;
      a.fill(0);
      return a;
    }
  }
  return new Float32Array(n);
}

/** A zeroed Int32Array of `n` elements, reused when one was recycled. */
export function i32(n: number): Int32Array {
  if (n >= MIN_POOLED) {
    const a = i32Free.get(n)?.pop();
    if (a) {
      pooledBytes -= a.byteLength;
      a.fill(0);
      return a;
    }
  }
  return new Int32Array(n);
}

/**
 * Gives an array back for reuse. The caller must hold no other reference
 * that will be used again: the next `f32`/`i32` of that size may return it.
 */
export function recycle(a: Float32Array | Int32Array): void {
  const n = a.length;
  if (
    n < MIN_POOLED || a.byteOffset !== 0 || a.buffer.byteLength !== a.byteLength
  ) {
    return;
  }
  if (pooledBytes + a.byteLength > MAX_POOLED_BYTES) return;
  const map = a instanceof Float32Array ? f32Free : i32Free;
  let list = map.get(n);
  if (!list) map.set(n, list = []);
  list.push(a as never);
  pooledBytes += a.byteLength;
}

/** Drops every pooled array (for tests and memory pressure). */
export function clearPool(): void {
  f32Free.clear();
  i32Free.clear();
  pooledBytes = 0;
}
