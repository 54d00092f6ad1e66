/**
 * Batch normalisation, as `torch.nn.functional.batch_norm`.
 *
 * @module
 */

import { isGradEnabled, record, traceOp } from "../autograd.ts";
import { fmtShape, ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { backendOf, requireFloat, sizeOf, wrap } from "./_util.ts";
import { add, mul, relu as reluOp, rsqrt, sub } from "./elementwise.ts";
import type { BatchNormGeometry } from "../backend/backend.ts";
import * as fused from "../backend/fused.ts";
import { reshape } from "./shape.ts";

/** Options of `batchNorm`. */
export interface BatchNormOptions {
  /** Scale `[c]`. */
  weight?: Tensor | null;
  /** Shift `[c]`. */
  bias?: Tensor | null;
  /** Use batch statistics and update the running ones (default false). */
  training?: boolean;
  /** Weight of the new batch in the running averages (default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /**
   * Apply a ReLU to the result (default false). Where the backend has a
   * fused kernel (the CPU backend) the ReLU is applied as the output is
   * written, with no pass of its own; otherwise the backend's `relu` runs
   * after the norm (see `src/backend/fused.ts`). In training the two are one
   * graph node.
   */
  relu?: boolean;
}

/**
 * Normalises each channel of `[n, c, ...]`. In training mode it uses the
 * batch statistics and updates `runningMean`/`runningVar` in place
 * (unbiased variance, PyTorch's momentum); in eval mode it uses them.
 *
 * @param x Input `[n, c, ...]`.
 * @param runningMean `[c]` or null.
 * @param runningVar `[c]` or null.
 * @param options Weight, bias, training, momentum, eps.
 * @returns The normalised input.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  options: BatchNormOptions = {},
): Tensor {
  requireFloat("batchNorm", x);
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  const training = options.training ?? false;
  const momentum = options.momentum ?? 0.1;
  const eps = options.eps ?? 1e-5;
  const relu = options.relu ?? false;
  if (x.ndim < 2) {
    throw new ShapeError(
      `Cannot batchNorm: input of shape ${
        fmtShape(x.shape)
      } needs at least 2 dims [n, c, ...]`,
    );
  }
  const [n, c] = x.shape;
  const hw = sizeOf(x.shape.slice(2));
  for (
    const [name, t] of [
      ["weight", weight],
      ["bias", bias],
      ["runningMean", runningMean],
      ["runningVar", runningVar],
    ] as const
  ) {
    if (t && (t.ndim !== 1 || t.shape[0] !== c)) {
      throw new ShapeError(
        `Cannot batchNorm: ${name} of shape ${
          fmtShape(t.shape)
        } does not match ${c} channels of input ${fmtShape(x.shape)}`,
      );
    }
  }
  const be = backendOf(
    "batchNorm",
    x,
    ...[weight, bias, runningMean, runningVar].filter((t): t is Tensor => !!t),
  );
  const needGrad = isGradEnabled() &&
    [x, weight, bias].some((t) => t?.requiresGrad);
  // what a trace (the ONNX exporter) needs beyond the input
  const attrs = { weight, bias, runningMean, runningVar, eps, relu, training };
  const g: BatchNormGeometry = {
    n,
    c,
    hw,
    eps,
    momentum,
    activation: relu ? "relu" : "none",
  };
  if (training) {
    if (n * hw <= 1) {
      throw new ShapeError(
        `Cannot batchNorm in training mode: input of shape ${
          fmtShape(x.shape)
        } has 1 value per channel`,
      );
    }
    // with the activation applied y is the ReLU's output, which (with x) is
    // all the backward pass needs
    const r = fused.batchNormTrain(be, x.storage, {
      weight: weight?.storage ?? null,
      bias: bias?.storage ?? null,
      runningMean: runningMean?.storage ?? null,
      runningVar: runningVar?.storage ?? null,
    }, g);
    const y = wrap(be, r.y, x.shape);
    const mean = wrap(be, r.mean, [c]);
    const invStd = wrap(be, r.invStd, [c]);
    if (!needGrad) {
      mean.dispose();
      invStd.dispose();
      return traceOp(y, [x], "batchNorm", attrs);
    }
    const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
    return record(
      y,
      inputs,
      { name: relu ? "batchNormRelu" : "batchNorm", attrs },
      (dy) => {
        const d = fused.batchNormBackward(
          be,
          x.storage,
          dy.storage,
          relu ? y.storage : null,
          weight?.storage ?? null,
          { mean: mean.storage, invStd: invStd.storage },
          g,
        );
        const grads: (Tensor | null)[] = [wrap(be, d.dx, x.shape)];
        if (weight) grads.push(wrap(be, d.dweight, [c]));
        else be.free(d.dweight);
        if (bias) grads.push(wrap(be, d.dbias, [c]));
        else be.free(d.dbias);
        return grads;
      },
      [mean, invStd],
    );
  }
  if (!runningMean || !runningVar) {
    throw new ShapeError(
      "Cannot batchNorm in eval mode without runningMean and runningVar",
    );
  }
  if (!needGrad) {
    return traceOp(
      wrap(
        be,
        fused.batchNormEval(be, x.storage, {
          weight: weight?.storage ?? null,
          bias: bias?.storage ?? null,
          runningMean: runningMean.storage,
          runningVar: runningVar.storage,
        }, g),
        x.shape,
      ),
      [x],
      "batchNorm",
      attrs,
    );
  }
  // eval mode with gradients: compose, so autograd differentiates it
  const bshape = [1, c, ...x.shape.slice(2).map(() => 1)];
  let scale = rsqrt(add(runningVar, eps));
  if (weight) scale = mul(scale, weight);
  const s = reshape(scale, bshape);
  let y = mul(sub(x, reshape(runningMean, bshape)), s);
  if (bias) y = add(y, reshape(bias, bshape));
  return relu ? reluOp(y) : y;
}
