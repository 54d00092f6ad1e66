/**
 * Losses with class weights for the study's `classWeights` option: the
 * cross-entropy of a student (or teacher) trained alone, and the KD loss
 * whose hard-label part is weighted the same way (PyTorch's
 * `CrossEntropyLoss(weight=...)`: a weighted mean). The distillation term
 * is unchanged: soft labels carry no class to weight.
 *
 * @module
 */

import {
  type CriterionInput,
  type DistillCriterion,
  type KdOptions,
  kdTerms,
  type ResolvedKdOptions,
  resolveKdOptions,
} from "../distill/losses.ts";
import { crossEntropy, mul, tensor } from "../ops/mod.ts";
import type { Tensor } from "../tensor.ts";

function weighted(
  weight: readonly number[],
  logits: Tensor,
  labels: Tensor,
): Tensor {
  const k = logits.shape[1];
  if (weight.length !== k) {
    throw new RangeError(
      `Cannot weight the cross-entropy: ${weight.length} class weights for logits of ${k} classes`,
    );
  }
  const w = tensor(weight, { shape: [k], device: logits.device });
  return crossEntropy(logits, labels, { weight: w });
}

const fmtW = (w: readonly number[]) =>
  w.map((x) => Number(x.toPrecision(4))).join(", ");

/** Cross-entropy with class weights, as a criterion. */
export class WeightedCrossEntropy implements DistillCriterion {
  /** For logs. */
  readonly name = "ce";
  /** One weight per class. */
  readonly weight: readonly number[];
  /** @param weight One weight per class. */
  constructor(weight: readonly number[]) {
    this.weight = [...weight];
  }
  /** @returns How the loss shows in logs. */
  toString(): string {
    return `CrossEntropy(weight=[${fmtW(this.weight)}])`;
  }
  /**
   * @param input Logits and labels.
   * @returns `{ ce }`.
   */
  terms(input: CriterionInput): Record<string, Tensor> {
    if (!input.labels) {
      throw new RangeError(
        "Cannot compute cross-entropy: the batch has no labels",
      );
    }
    return { ce: weighted(this.weight, input.studentLogits, input.labels) };
  }
}

/**
 * `DistillationLoss` whose cross-entropy part has class weights:
 * `(1 - alpha) * CE_w + alpha * [T²] * KL`.
 */
export class WeightedDistillationLoss implements DistillCriterion {
  /** For logs. */
  readonly name = "kd";
  /** One weight per class, on the cross-entropy part. */
  readonly weight: readonly number[];
  /** The KD settings. */
  readonly options: ResolvedKdOptions;
  /**
   * @param kd The KD settings (as `DistillationLoss`).
   * @param weight One weight per class.
   */
  constructor(kd: KdOptions, weight: readonly number[]) {
    this.options = resolveKdOptions(kd);
    this.weight = [...weight];
  }
  /** @returns How the loss shows in logs. */
  toString(): string {
    const o = this.options;
    return `DistillationLoss(preset=${o.preset}, T=${o.temperature}, alpha=${o.alpha}, reduction=${o.reduction}, scaleByT2=${o.scaleByT2}, class weights=[${
      fmtW(this.weight)
    }] on the cross-entropy)`;
  }
  /**
   * @param input Logits and labels.
   * @returns `ce` and `kd` (`kd` alone without labels, `ce` alone, not
   *   scaled, without a teacher).
   */
  terms(input: CriterionInput): Record<string, Tensor> {
    const { studentLogits, teacherLogits, labels } = input;
    if (!teacherLogits) {
      if (!labels) {
        throw new RangeError(
          "Cannot compute the KD loss: a batch with neither labels nor teacher logits",
        );
      }
      return { ce: weighted(this.weight, studentLogits, labels) };
    }
    const { kd } = kdTerms(studentLogits, teacherLogits, null, this.options);
    if (!labels) return { kd };
    const ce = mul(
      weighted(this.weight, studentLogits, labels),
      1 - this.options.alpha,
    );
    return { ce, kd };
  }
}
