/**
 * A random permutation, shared by the samplers and the splits.
 *
 * @module
 */

import type { Generator } from "../random.ts";

/** Fisher-Yates shuffle of `0..n-1` (a random permutation). */
export function randperm(n: number, g: Generator): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = g.below(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
