/**
 * Softmax and log-softmax over a dim, each one kernel forward and one
 * backward.
 *
 * @module
 */

import { record } from "../autograd.ts";
import type { Tensor } from "../tensor.ts";
import { normDim, requireFloat, sizeOf, wrap } from "./_util.ts";

function softmaxImpl(x: Tensor, dim: number, log: boolean): Tensor {
  const name = log ? "logSoftmax" : "softmax";
  requireFloat(name, x);
  const d = normDim(name, dim, x.ndim, x.shape);
  const be = x.backend;
  const outer = sizeOf(x.shape.slice(0, d));
  const n = x.ndim === 0 ? 1 : x.shape[d];
  const inner = sizeOf(x.shape.slice(d + 1));
  const y = wrap(be, be.softmax(x.storage, outer, n, inner, log), x.shape);
  return record(y, [x], { name, attrs: { dim: d } }, (g) => [
    wrap(
      be,
      be.softmaxBackward(y.storage, g.storage, outer, n, inner, log),
      x.shape,
    ),
  ]);
}

/**
 * Softmax along `dim`, as `torch.softmax`: `exp(x)` normalised to sum to 1,
 * computed stably (the maximum is subtracted first).
 *
 * @example Probabilities over the last dim
 * ```ts
 * import { softmax, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const p = softmax(tensor([[0, 0], [0, Math.log(3)]]), -1).toArray() as number[][];
 * assert.deepEqual(p[0], [0.5, 0.5]);
 * assert.ok(Math.abs(p[1][1] - 0.75) < 1e-6);
 * ```
 */
export function softmax(x: Tensor, dim: number): Tensor {
  return softmaxImpl(x, dim, false);
}

/** Log-softmax along `dim` (stable). */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return softmaxImpl(x, dim, true);
}
