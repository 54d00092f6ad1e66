/**
 * Batch normalisation, as `torch.nn.functional.batch_norm`.
 *
 * @module
 */

import { isGradEnabled, record } from "../autograd.ts";
import { fmtShape, ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { backendOf, requireFloat, sizeOf, wrap } from "./_util.ts";
import { add, mul, relu, rsqrt, sub } from "./elementwise.ts";
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
   * Apply a ReLU to the result (default false). In eval mode without
   * gradients the CPU backend applies it as the output is written, with no
   * pass of its own; otherwise it is an ordinary `relu` after the norm.
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
  if (!options.relu) return batchNormCore(x, runningMean, runningVar, options);
  const be = x.backend;
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  const needGrad = isGradEnabled() &&
    [x, weight, bias].some((t) => t?.requiresGrad);
  if (
    !options.training && !needGrad && be.batchNormEvalRelu && runningMean &&
    runningVar && x.ndim >= 2
  ) {
    // shapes, dtypes and devices checked as for any batch norm
    batchNormCore(x, runningMean, runningVar, options, true);
    const [n, c] = x.shape;
    return wrap(
      be,
      be.batchNormEvalRelu(
        x.storage,
        weight?.storage ?? null,
        bias?.storage ?? null,
        runningMean.storage,
        runningVar.storage,
        n,
        c,
        sizeOf(x.shape.slice(2)),
        options.eps ?? 1e-5,
      ),
      x.shape,
    );
  }
  if (options.training && be.batchNormTrainRelu && x.ndim >= 2) {
    batchNormCore(x, runningMean, runningVar, options, true);
    return batchNormTrainRelu(x, runningMean, runningVar, options, needGrad);
  }
  const y = batchNormCore(x, runningMean, runningVar, options);
  const r = relu(y);
  if (!needGrad) y.dispose();
  return r;
}

/**
 * Training-mode batch norm and ReLU as one kernel and one graph node: the
 * ReLU's output is all the backward pass needs besides the input (the
 * gradient is masked by it, then goes through batch norm's backward), so the
 * batch norm's own output is never stored.
 */
function batchNormTrainRelu(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  options: BatchNormOptions,
  needGrad: boolean,
): Tensor {
  const be = x.backend;
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  const [n, c] = x.shape;
  const hw = sizeOf(x.shape.slice(2));
  if (n * hw <= 1) {
    throw new ShapeError(
      `Cannot batchNorm in training mode: input of shape ${
        fmtShape(x.shape)
      } has 1 value per channel`,
    );
  }
  const r = be.batchNormTrainRelu!(
    x.storage,
    weight?.storage ?? null,
    bias?.storage ?? null,
    runningMean?.storage ?? null,
    runningVar?.storage ?? null,
    n,
    c,
    hw,
    options.momentum ?? 0.1,
    options.eps ?? 1e-5,
  );
  const y = wrap(be, r.y, x.shape);
  const mean = wrap(be, r.mean, [c]);
  const invStd = wrap(be, r.invStd, [c]);
  if (!needGrad) {
    mean.dispose();
    invStd.dispose();
    return y;
  }
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const strides = x.shape.map((_, i) => sizeOf(x.shape.slice(i + 1)));
  return record(y, inputs, "batchNormRelu", (dy) => {
    const masked = be.binary(
      "reluGrad",
      dy.storage,
      strides,
      y.storage,
      strides,
      x.shape,
    );
    const g = be.batchNormBackward(
      x.storage,
      masked,
      weight?.storage ?? null,
      mean.storage,
      invStd.storage,
      n,
      c,
      hw,
    );
    be.free(masked);
    const out: (Tensor | null)[] = [wrap(be, g.dx, x.shape)];
    if (weight) out.push(wrap(be, g.dweight, [c]));
    else be.free(g.dweight);
    if (bias) out.push(wrap(be, g.dbias, [c]));
    else be.free(g.dbias);
    return out;
  });
}

function batchNormCore(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  options: BatchNormOptions,
  validateOnly = false,
): Tensor {
  requireFloat("batchNorm", x);
  const weight = options.weight ?? null;
  const bias = options.bias ?? null;
  const training = options.training ?? false;
  const momentum = options.momentum ?? 0.1;
  const eps = options.eps ?? 1e-5;
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
  if (validateOnly) return x;
  if (training) {
    if (n * hw <= 1) {
      throw new ShapeError(
        `Cannot batchNorm in training mode: input of shape ${
          fmtShape(x.shape)
        } has 1 value per channel`,
      );
    }
    const r = be.batchNormTrain(
      x.storage,
      weight?.storage ?? null,
      bias?.storage ?? null,
      runningMean?.storage ?? null,
      runningVar?.storage ?? null,
      n,
      c,
      hw,
      momentum,
      eps,
    );
    const y = wrap(be, r.y, x.shape);
    const mean = wrap(be, r.mean, [c]);
    const invStd = wrap(be, r.invStd, [c]);
    const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
    if (!inputs.some((t) => t.requiresGrad) || !isGradEnabled()) {
      mean.dispose();
      invStd.dispose();
      return y;
    }
    return record(y, inputs, "batchNorm", (dy) => {
      const g = be.batchNormBackward(
        x.storage,
        dy.storage,
        weight?.storage ?? null,
        mean.storage,
        invStd.storage,
        n,
        c,
        hw,
      );
      const out: (Tensor | null)[] = [wrap(be, g.dx, x.shape)];
      if (weight) out.push(wrap(be, g.dweight, [c]));
      else be.free(g.dweight);
      if (bias) out.push(wrap(be, g.dbias, [c]));
      else be.free(g.dbias);
      return out;
    });
  }
  if (!runningMean || !runningVar) {
    throw new ShapeError(
      "Cannot batchNorm in eval mode without runningMean and runningVar",
    );
  }
  const needGrad = isGradEnabled() &&
    [x, weight, bias].some((t) => t?.requiresGrad);
  if (!needGrad) {
    return wrap(
      be,
      be.batchNormEval(
        x.storage,
        weight?.storage ?? null,
        bias?.storage ?? null,
        runningMean.storage,
        runningVar.storage,
        n,
        c,
        hw,
        eps,
      ),
      x.shape,
    );
  }
  // eval mode with gradients: compose, so autograd differentiates it
  const bshape = [1, c, ...x.shape.slice(2).map(() => 1)];
  let scale = rsqrt(add(runningVar, eps));
  if (weight) scale = mul(scale, weight);
  const s = reshape(scale, bshape);
  let y = mul(sub(x, reshape(runningMean, bshape)), s);
  if (bias) y = add(y, reshape(bias, bshape));
  return y;
}
