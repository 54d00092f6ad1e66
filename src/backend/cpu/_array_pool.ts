/**
 * A pool of large typed arrays for the CPU backend. A training step makes
 * and disposes the same large activations every step; writing into a fresh
 * multi-megabyte array costs a page fault per 4 KiB page (about 30 ms for a
 * 25 MB activation on these machines), while reusing a disposed one costs a
 * `fill(0)`. The pool keeps whole buffers, shared by float32 and int32: a
 * request takes a free buffer of its exact size, or else the smallest one
 * up to 4× larger (the array is then a view of its first bytes), so the
 * memory held tracks the largest set of arrays live at once rather than the
 * sum, over every size, of the most arrays of that size live at once.
 * Arrays from {@linkcode f32} and {@linkcode i32} are zeroed,
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
/** A free buffer serves requests down to 1/FIT_RATIO of its size. */
const FIT_RATIO = 4;

/** Free buffers by byte length. */
const free = new Map<number, ArrayBuffer[]>();
/** Buffers handed out for a smaller array (a view of their first bytes). */
const lent = new WeakSet<ArrayBuffer>();
let pooledBytes = 0;

function envFlag(name: string): boolean {
  try {
    return Deno.env.get(name) === "1";
  } catch {
    return false; // no --allow-env
  }
}

const POISON = envFlag("KDENO_POOL_POISON");

/** A free buffer of at least `bytes` (exact size first), or undefined. */
function take(bytes: number): ArrayBuffer | undefined {
  let list = free.get(bytes);
  let size = bytes;
  if (!list?.length) {
    size = Infinity;
    for (const [b, l] of free) {
      if (l.length && b > bytes && b <= FIT_RATIO * bytes && b < size) {
        size = b;
      }
    }
    if (size === Infinity) return undefined;
    list = free.get(size)!;
  }
  const buf = list.pop()!;
  pooledBytes -= size;
  if (size !== bytes) lent.add(buf);
  return buf;
}

/**
 * A Float32Array of `n` elements with unspecified contents (a recycled one
 * when available): for outputs the caller overwrites completely.
 */
export function f32Out(n: number): Float32Array {
  const buf = n >= MIN_POOLED ? take(4 * n) : undefined;
  const a = buf ? new Float32Array(buf, 0, n) : new Float32Array(n);
  if (POISON) a.fill(NaN);
  return a;
}

/** Like {@linkcode f32Out}, for Int32Array. */
export function i32Out(n: number): Int32Array {
  const buf = n >= MIN_POOLED ? take(4 * n) : undefined;
  const a = buf ? new Int32Array(buf, 0, n) : new Int32Array(n);
  if (POISON) a.fill(-1);
  return a;
}

/** A zeroed Float32Array of `n` elements, reused when one was recycled. */
export function f32(n: number): Float32Array {
  const buf = n >= MIN_POOLED ? take(4 * n) : undefined;
  return buf ? new Float32Array(buf, 0, n).fill(0) : new Float32Array(n);
}

/** A zeroed Int32Array of `n` elements, reused when one was recycled. */
export function i32(n: number): Int32Array {
  const buf = n >= MIN_POOLED ? take(4 * n) : undefined;
  return buf ? new Int32Array(buf, 0, n).fill(0) : new Int32Array(n);
}

/**
 * Gives an array back for reuse. The caller must hold no other reference
 * that will be used again: the next request of a fitting size may return
 * its buffer. Views of other arrays are ignored.
 */
export function recycle(a: Float32Array | Int32Array): void {
  const buf = a.buffer as ArrayBuffer;
  if (a.length < MIN_POOLED || a.byteOffset !== 0) return;
  if (buf.byteLength !== a.byteLength) {
    if (!lent.has(buf)) return; // a view of someone else's array
    lent.delete(buf);
  }
  const size = buf.byteLength;
  if (pooledBytes + size > MAX_POOLED_BYTES) return;
  let list = free.get(size);
  if (!list) free.set(size, list = []);
  list.push(buf);
  pooledBytes += size;
}

/** Drops every pooled array (for tests and memory pressure). */
export function clearPool(): void {
  free.clear();
  pooledBytes = 0;
}

/** Bytes held by the pool for reuse (not live tensors). */
export function pooledByteCount(): number {
  return pooledBytes;
}
