/**
 * A pool of large typed arrays for the CPU backend. A training step makes
 * and disposes the same large activations every step; writing into a fresh
 * multi-megabyte array costs a page fault per 4 KiB page (about 30 ms for a
 * 25 MB activation on these machines), while reusing a disposed one costs a
 * `fill(0)`. Arrays from {@linkcode f32} and {@linkcode i32} are zeroed,
 * exactly like `new Float32Array(n)`; {@linkcode f32Out} and
 * {@linkcode i32Out} skip the zeroing, for kernels that write every element.
 * `KDENO_POOL_POISON=1` fills those with NaN (int32: -1) instead, so a test
 * run shows any element a kernel forgot to write.
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

function envFlag(name: string): boolean {
  try {
    return Deno.env.get(name) === "1";
  } catch {
    return false; // no --allow-env
  }
}

const POISON = envFlag("KDENO_POOL_POISON");

/**
 * A Float32Array of `n` elements with unspecified contents (a recycled one
 * when available): for outputs the caller overwrites completely.
 */
export function f32Out(n: number): Float32Array {
  let a: Float32Array | undefined;
  if (n >= MIN_POOLED) {
    a = f32Free.get(n)?.pop();
    if (a) pooledBytes -= a.byteLength;
  }
  a ??= new Float32Array(n);
  if (POISON) a.fill(NaN);
  return a;
}

/** Like {@linkcode f32Out}, for Int32Array. */
export function i32Out(n: number): Int32Array {
  let a: Int32Array | undefined;
  if (n >= MIN_POOLED) {
    a = i32Free.get(n)?.pop();
    if (a) pooledBytes -= a.byteLength;
  }
  a ??= new Int32Array(n);
  if (POISON) a.fill(-1);
  return a;
}

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
