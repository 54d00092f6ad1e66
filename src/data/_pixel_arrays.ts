/**
 * Float pixel arrays for `ToTensor`, reused once the loader has copied an
 * image into a batch: a 224×224 RGB image is 600 kB, and a batch of 32 left
 * to the garbage collector is 19 MB that piles up with the next ones before
 * it runs.
 *
 * @module
 */

/** Arrays handed back, at most {@linkcode MAX_SPARE}. */
const spare: Float32Array[] = [];
const MAX_SPARE = 64;
/** Arrays made here: the only ones {@linkcode recycleFloatImage} takes. */
const made = new WeakSet<Float32Array>();

/**
 * A float array of `n` elements with unspecified contents (a reused one when
 * available), for a kernel that writes every element.
 *
 * @param n Length.
 * @returns The array.
 */
export function pixelArray(n: number): Float32Array {
  const k = spare.findIndex((a) => a.length === n);
  const out = k >= 0 ? spare.splice(k, 1)[0] : new Float32Array(n);
  made.add(out);
  return out;
}

/**
 * Hands back the pixels of a float image that nothing will read again; arrays
 * not made by {@linkcode pixelArray} are ignored.
 *
 * @param data The image's pixel array.
 */
export function recycleFloatImage(data: Float32Array): void {
  if (made.has(data) && spare.length < MAX_SPARE) {
    made.delete(data);
    spare.push(data);
  }
}
