/**
 * Loss functions, composed from ops so their gradients come from the parts.
 * Names and defaults follow `torch.nn.functional`.
 *
 * @module
 */

import { DTypeError, fmtShape, ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { requireFloat } from "./_util.ts";
import {
  abs,
  add,
  cast,
  div,
  exp,
  log,
  mul,
  neg,
  relu,
  sub,
  whereRaw,
} from "./elementwise.ts";
import { mean, sum } from "./reduce.ts";
import { gather, indexSelect, permute, reshape } from "./shape.ts";
import { logSoftmax } from "./softmax.ts";

/** How a loss reduces over elements. */
export type Reduction = "none" | "mean" | "sum";

function reduceLoss(op: string, loss: Tensor, reduction: string): Tensor {
  switch (reduction) {
    case "none":
      return loss;
    case "sum":
      return sum(loss);
    case "mean":
      return mean(loss);
    default:
      throw new RangeError(
        `Cannot ${op}: reduction "${reduction}" is not one of none, mean, sum`,
      );
  }
}

/** `[n, c, d1, ...]` → `[n * d1 * ..., c]`, and targets `[n, d1, ...]` → flat. */
function flattenClasses(
  op: string,
  input: Tensor,
  target: Tensor,
): { x: Tensor; t: Tensor; outShape: number[] } {
  if (target.dtype !== "int32") {
    throw new DTypeError(
      `Cannot ${op}: target of shape ${
        fmtShape(target.shape)
      } has dtype ${target.dtype}, expected int32 class indices`,
    );
  }
  if (input.ndim < 1 || input.ndim > 1 && target.ndim !== input.ndim - 1) {
    throw new ShapeError(
      `Cannot ${op}: input of shape ${
        fmtShape(input.shape)
      } and target of shape ${
        fmtShape(target.shape)
      } (expected input [n, c, ...] and target [n, ...])`,
    );
  }
  if (input.ndim === 1) {
    if (target.ndim !== 0) {
      throw new ShapeError(
        `Cannot ${op}: unbatched input of shape ${
          fmtShape(input.shape)
        } needs a 0-d target, got ${fmtShape(target.shape)}`,
      );
    }
    return {
      x: reshape(input, [1, input.shape[0]]),
      t: reshape(target, [1]),
      outShape: [],
    };
  }
  const ok = target.shape[0] === input.shape[0] &&
    target.shape.slice(1).every((d, i) => d === input.shape[i + 2]);
  if (!ok) {
    throw new ShapeError(
      `Cannot ${op}: input of shape ${
        fmtShape(input.shape)
      } and target of shape ${
        fmtShape(target.shape)
      } disagree (expected target [${
        [input.shape[0], ...input.shape.slice(2)].join(", ")
      }])`,
    );
  }
  const c = input.shape[1];
  let x = input;
  if (input.ndim > 2) {
    const dims = [0, ...[...Array(input.ndim - 2).keys()].map((i) => i + 2), 1];
    x = reshape(permute(input, dims), [-1, c]);
  }
  return { x, t: reshape(target, [-1]), outShape: [...target.shape] };
}

/** Options of `nllLoss`. */
export interface NllLossOptions {
  /** Per-class weights `[c]`. */
  weight?: Tensor | null;
  /** Target value that contributes nothing (default -100). */
  ignoreIndex?: number;
  /** `"mean"` (weighted, the default), `"sum"` or `"none"`. */
  reduction?: Reduction;
}

function checkTargets(op: string, t: Tensor, c: number, ignore: number): void {
  const d = t.data();
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (v !== ignore && (v < 0 || v >= c)) {
      throw new ShapeError(
        `Cannot ${op}: target ${v} at position ${i} is out of range for ${c} classes`,
      );
    }
  }
}

/** Picks `-w[t] * x[i, t]` per row; returns the per-row loss and weights. */
function pickNll(
  op: string,
  x: Tensor,
  t: Tensor,
  weight: Tensor | null,
  ignore: number,
): { loss: Tensor; w: Tensor } {
  const c = x.shape[1];
  checkTargets(op, t, c, ignore);
  const valid = cast(t.ne(ignore), "float32");
  const safeT = whereRaw(t.ne(ignore), t, 0);
  const picked = reshape(gather(x, 1, reshape(safeT, [-1, 1])), [-1]);
  let w = valid;
  if (weight) {
    if (weight.ndim !== 1 || weight.shape[0] !== c) {
      throw new ShapeError(
        `Cannot ${op}: weight of shape ${
          fmtShape(weight.shape)
        } does not match ${c} classes`,
      );
    }
    w = mul(indexSelect(weight, 0, safeT), valid);
  }
  return { loss: neg(mul(picked, w)), w };
}

/**
 * Negative log-likelihood of class indices, as `torch.nn.functional.nll_loss`.
 *
 * @param logProbs `[n, c]` or `[n, c, d1, ...]` log-probabilities.
 * @param target int32 `[n]` or `[n, d1, ...]`.
 * @param options Weight, ignoreIndex, reduction.
 * @returns The loss.
 */
export function nllLoss(
  logProbs: Tensor,
  target: Tensor,
  options: NllLossOptions = {},
): Tensor {
  requireFloat("nllLoss", logProbs);
  const { x, t, outShape } = flattenClasses("nllLoss", logProbs, target);
  const ignore = options.ignoreIndex ?? -100;
  const { loss, w } = pickNll("nllLoss", x, t, options.weight ?? null, ignore);
  const reduction = options.reduction ?? "mean";
  if (reduction === "mean") return div(sum(loss), sum(w));
  if (reduction === "none") return reshape(loss, outShape);
  return reduceLoss("nllLoss", loss, reduction);
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions extends NllLossOptions {
  /** Mixes the target with a uniform distribution (default 0). */
  labelSmoothing?: number;
}

/**
 * Cross-entropy of logits and class indices, as
 * `torch.nn.functional.cross_entropy`.
 *
 * @param logits `[n, c]` or `[n, c, d1, ...]`.
 * @param target int32 class indices `[n]` or `[n, d1, ...]`.
 * @param options Weight, ignoreIndex, reduction, labelSmoothing.
 * @returns The loss.
 *
 * @example Uniform logits over two classes cost log 2
 * ```ts
 * import { nn, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const loss = nn.functional.crossEntropy(
 *   tensor([[0, 0], [0, 0]]),
 *   tensor([0, 1], { dtype: "int32" }),
 * );
 * assert.ok(Math.abs(loss.item() - Math.log(2)) < 1e-6);
 * ```
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  options: CrossEntropyOptions = {},
): Tensor {
  requireFloat("crossEntropy", logits);
  const { x, t, outShape } = flattenClasses("crossEntropy", logits, target);
  const lp = logSoftmax(x, 1);
  const ignore = options.ignoreIndex ?? -100;
  const weight = options.weight ?? null;
  const eps = options.labelSmoothing ?? 0;
  if (eps < 0 || eps > 1) {
    throw new RangeError(
      `Cannot crossEntropy: labelSmoothing ${eps} must be in [0, 1]`,
    );
  }
  const reduction = options.reduction ?? "mean";
  const { loss: nll, w } = pickNll("crossEntropy", lp, t, weight, ignore);
  let loss = nll;
  if (eps > 0) {
    const c = x.shape[1];
    const valid = cast(t.ne(ignore), "float32");
    const weighted = weight ? mul(lp, reshape(weight, [1, c])) : lp;
    const smooth = mul(neg(sum(weighted, 1)), valid);
    loss = add(mul(nll, 1 - eps), mul(smooth, eps / c));
  }
  if (reduction === "mean") return div(sum(loss), sum(w));
  if (reduction === "none") return reshape(loss, outShape);
  return reduceLoss("crossEntropy", loss, reduction);
}

/** Options of `klDiv`. */
export interface KlDivOptions {
  /**
   * `"mean"` (PyTorch's default: divides by every element, batch × classes),
   * `"batchmean"` (divides by the batch size: the true KL divergence, what
   * PyTorch recommends), `"sum"` or `"none"`.
   */
  reduction?: Reduction | "batchmean";
  /** The target is given as log-probabilities (default false). */
  logTarget?: boolean;
}

/**
 * Kullback-Leibler divergence with `input` as log-probabilities, as
 * `torch.nn.functional.kl_div`: pointwise `target * (log(target) - input)`.
 *
 * @param input Log-probabilities.
 * @param target Probabilities (or log-probabilities with `logTarget`).
 * @param options Reduction and logTarget.
 * @returns The divergence.
 */
export function klDiv(
  input: Tensor,
  target: Tensor,
  options: KlDivOptions = {},
): Tensor {
  requireFloat("klDiv", input);
  requireFloat("klDiv", target, "target");
  if (input.shape.join() !== target.shape.join()) {
    throw new ShapeError(
      `Cannot klDiv: input of shape ${
        fmtShape(input.shape)
      } and target of shape ${fmtShape(target.shape)} differ`,
    );
  }
  let pointwise: Tensor;
  if (options.logTarget) {
    pointwise = mul(exp(target), sub(target, input));
  } else {
    // xlogy: 0 * log(0) = 0
    const pos = target.gt(0);
    const safe = whereRaw(pos, target, 1);
    const tlogt = mul(target, log(safe));
    pointwise = sub(tlogt, mul(target, input));
  }
  const reduction = options.reduction ?? "mean";
  if (reduction === "batchmean") {
    const n = input.ndim === 0 ? 1 : input.shape[0];
    return div(sum(pointwise), n);
  }
  return reduceLoss("klDiv", pointwise, reduction);
}

/**
 * Mean squared error, as `torch.nn.functional.mse_loss`.
 *
 * @param input Predictions.
 * @param target Targets, same shape.
 * @param options Reduction.
 * @returns The loss.
 */
export function mseLoss(
  input: Tensor,
  target: Tensor,
  options: { reduction?: Reduction } = {},
): Tensor {
  requireFloat("mseLoss", input);
  if (input.shape.join() !== target.shape.join()) {
    throw new ShapeError(
      `Cannot mseLoss: input of shape ${
        fmtShape(input.shape)
      } and target of shape ${fmtShape(target.shape)} differ`,
    );
  }
  const d = sub(input, target);
  return reduceLoss("mseLoss", mul(d, d), options.reduction ?? "mean");
}

/** Options of `binaryCrossEntropyWithLogits`. */
export interface BceWithLogitsOptions {
  /** Per-element rescaling, broadcast to the input. */
  weight?: Tensor | null;
  /** Weight of positive examples, broadcast over the last dim (classes). */
  posWeight?: Tensor | null;
  /** Reduction (default "mean"). */
  reduction?: Reduction;
}

/**
 * Sigmoid + binary cross-entropy in one stable expression, as
 * `torch.nn.functional.binary_cross_entropy_with_logits`.
 *
 * @param logits Scores.
 * @param target Probabilities in [0, 1], same shape.
 * @param options Weight, posWeight, reduction.
 * @returns The loss.
 */
export function binaryCrossEntropyWithLogits(
  logits: Tensor,
  target: Tensor,
  options: BceWithLogitsOptions = {},
): Tensor {
  requireFloat("binaryCrossEntropyWithLogits", logits);
  requireFloat("binaryCrossEntropyWithLogits", target, "target");
  if (logits.shape.join() !== target.shape.join()) {
    throw new ShapeError(
      `Cannot binaryCrossEntropyWithLogits: input of shape ${
        fmtShape(logits.shape)
      } and target of shape ${fmtShape(target.shape)} differ`,
    );
  }
  // log(1 + e^-|x|) + max(-x, 0)
  const softplusNeg = add(
    log(add(exp(neg(abs(logits))), 1)),
    relu(neg(logits)),
  );
  let loss: Tensor;
  if (options.posWeight) {
    const lw = add(mul(target, sub(options.posWeight, 1)), 1);
    loss = add(mul(sub(1, target), logits), mul(lw, softplusNeg));
  } else {
    loss = add(mul(sub(1, target), logits), softplusNeg);
  }
  if (options.weight) loss = mul(loss, options.weight);
  return reduceLoss(
    "binaryCrossEntropyWithLogits",
    loss,
    options.reduction ?? "mean",
  );
}
