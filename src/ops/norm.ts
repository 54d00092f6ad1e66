/**
 * Batch normalisation, as `torch.nn.functional.batch_norm`.
 *
 * @module
 */

import { isGradEnabled, record } from "../autograd.ts";
import { fmtShape, ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { backendOf, requireFloat, sizeOf, wrap } from "./_util.ts";
import { add, mul, relu as reluOp, rsqrt, sub } from "./elementwise.ts";
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
   * written, with no pass of its own, and in training the two are one graph
   * node; otherwise it is an ordinary `relu` after the norm.
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
  if (training) {
    if (n * hw <= 1) {
      throw new ShapeError(
        `Cannot batchNorm in training mode: input of shape ${
          fmtShape(x.shape)
        } has 1 value per channel`,
      );
    }
    // with a fused kernel the ReLU is applied as y is written: y is then the
    // ReLU's output, which (with x) is all the backward pass needs
    const fused = relu && be.batchNormTrainRelu !== undefined;
    const r = (fused ? be.batchNormTrainRelu! : be.batchNormTrain).call(
      be,
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
    if (!needGrad) {
      mean.dispose();
      invStd.dispose();
      return relu && !fused ? reluAfter(y, false) : y;
    }
    const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
    const strides = x.shape.map((_, i) => sizeOf(x.shape.slice(i + 1)));
    const out = record(
      y,
      inputs,
      fused ? "batchNormRelu" : "batchNorm",
      (dy) => {
        // through the fused ReLU first: mask the gradient by its output
        const g0 = fused
          ? be.binary(
            "reluGrad",
            dy.storage,
            strides,
            y.storage,
            strides,
            x.shape,
          )
          : dy.storage;
        const g = be.batchNormBackward(
          x.storage,
          g0,
          weight?.storage ?? null,
          mean.storage,
          invStd.storage,
          n,
          c,
          hw,
        );
        if (fused) be.free(g0);
        const grads: (Tensor | null)[] = [wrap(be, g.dx, x.shape)];
        if (weight) grads.push(wrap(be, g.dweight, [c]));
        else be.free(g.dweight);
        if (bias) grads.push(wrap(be, g.dbias, [c]));
        else be.free(g.dbias);
        return grads;
      },
      [mean, invStd],
    );
    return relu && !fused ? reluAfter(out, true) : out;
  }
  if (!runningMean || !runningVar) {
    throw new ShapeError(
      "Cannot batchNorm in eval mode without runningMean and runningVar",
    );
  }
  if (!needGrad) {
    const fused = relu && be.batchNormEvalRelu !== undefined;
    const y = wrap(
      be,
      (fused ? be.batchNormEvalRelu! : be.batchNormEval).call(
        be,
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
    return relu && !fused ? reluAfter(y, false) : y;
  }
  // eval mode with gradients: compose, so autograd differentiates it
  const bshape = [1, c, ...x.shape.slice(2).map(() => 1)];
  let scale = rsqrt(add(runningVar, eps));
  if (weight) scale = mul(scale, weight);
  const s = reshape(scale, bshape);
  let y = mul(sub(x, reshape(runningMean, bshape)), s);
  if (bias) y = add(y, reshape(bias, bshape));
  return relu ? reluAfter(y, true) : y;
}

/** `relu(y)`; frees `y` when no graph can need it. */
function reluAfter(y: Tensor, graph: boolean): Tensor {
  const r = reluOp(y);
  if (!graph) y.dispose();
  return r;
}
