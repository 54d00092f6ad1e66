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

/** Softmax along `dim`. */
export function softmax(x: Tensor, dim: number): Tensor {
  return softmaxImpl(x, dim, false);
}

/** Log-softmax along `dim` (stable). */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  return softmaxImpl(x, dim, true);
}
