/**
 * The one place that chooses between a backend's optional fused entry points
 * and the unfused composition. A backend that leaves `batchNormTrainRelu` or
 * `batchNormEvalRelu` out gets the plain kernel followed by its own `relu`,
 * so a new backend implements only the required kernels and runs every op.
 *
 * The fused CPU kernels apply the ReLU as `y` is written (no pass of its
 * own); the composition costs one more pass and one more buffer, freed at
 * once. Both give the same numbers.
 *
 * @module
 */

import type {
  Backend,
  BatchNormGeometry,
  BatchNormParams,
  BatchNormSaved,
  Storage,
} from "./backend.ts";

/** `relu(y)` into new storage; frees `y`. */
function reluInPlaceOf(be: Backend, y: Storage): Storage {
  const r = be.unary("relu", y);
  be.free(y);
  return r;
}

/**
 * Training-mode batch norm with `g.activation` applied to `y`: the fused
 * entry point when the backend has one, else `batchNormTrain` then `relu`.
 *
 * @param be The backend.
 * @param x Input `[n, c, hw]`.
 * @param p Weight, bias and running statistics.
 * @param g Sizes, eps, momentum and activation.
 * @returns `y` (after the activation) and the statistics backward needs.
 */
export function batchNormTrain(
  be: Backend,
  x: Storage,
  p: BatchNormParams,
  g: BatchNormGeometry,
): { y: Storage } & BatchNormSaved {
  if (g.activation === "none") return be.batchNormTrain(x, p, g);
  if (be.batchNormTrainRelu) return be.batchNormTrainRelu(x, p, g);
  const r = be.batchNormTrain(x, p, g);
  return { y: reluInPlaceOf(be, r.y), mean: r.mean, invStd: r.invStd };
}

/**
 * Eval-mode batch norm with `g.activation` applied: the fused entry point
 * when the backend has one, else `batchNormEval` then `relu`.
 *
 * @param be The backend.
 * @param x Input `[n, c, hw]`.
 * @param p Weight, bias and the running statistics (required).
 * @param g Sizes, eps and activation.
 * @returns `y` after the activation.
 */
export function batchNormEval(
  be: Backend,
  x: Storage,
  p: BatchNormParams,
  g: BatchNormGeometry,
): Storage {
  if (g.activation === "none") return be.batchNormEval(x, p, g);
  if (be.batchNormEvalRelu) return be.batchNormEvalRelu(x, p, g);
  return reluInPlaceOf(be, be.batchNormEval(x, p, g));
}

/**
 * Gradients of `batchNormTrain` above: the backend's fused
 * `batchNormBackwardRelu` when it has one (the ReLU mask applied as `dy` is
 * read: no third activation-sized buffer), else back through the activation
 * into a masked copy of `dy` (the ReLU gradient masked by the output `y`),
 * then `batchNormBackward`.
 *
 * @param be The backend.
 * @param x The forward's input.
 * @param dy Gradient of `y` (after the activation).
 * @param y The forward's output (after the activation); read only when
 * there is an activation, so null will do without one.
 * @param weight The forward's weight, or null.
 * @param saved The forward's mean and invStd.
 * @param g The forward's geometry.
 * @returns `dx`, `dweight` `[c]` and `dbias` `[c]`.
 */
export function batchNormBackward(
  be: Backend,
  x: Storage,
  dy: Storage,
  y: Storage | null,
  weight: Storage | null,
  saved: BatchNormSaved,
  g: BatchNormGeometry,
): { dx: Storage; dweight: Storage; dbias: Storage } {
  if (g.activation === "none") {
    return be.batchNormBackward(x, dy, weight, saved, g);
  }
  if (y === null) {
    throw new TypeError(
      `Cannot run batchNormBackward through ${g.activation}: y is null`,
    );
  }
  if (be.batchNormBackwardRelu) {
    return be.batchNormBackwardRelu(x, dy, y, weight, saved, g);
  }
  const len = [g.n * g.c * g.hw];
  const masked = be.binary("reluGrad", dy, [1], y, [1], len);
  try {
    return be.batchNormBackward(x, masked, weight, saved, g);
  } finally {
    be.free(masked);
  }
}
