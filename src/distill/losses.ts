/**
 * Distillation losses: Hinton et al.'s logit KD (`kdLoss`,
 * `DistillationLoss`) with the chest X-ray tutorial's settings and the
 * recommended ones, and DKD (Zhao et al., CVPR 2022). The feature losses
 * (FitNets hints, attention transfer) are in `feature_losses.ts`.
 *
 * Two presets, and which is which:
 *
 * - `"tutorial"` reproduces the tutorial's `DistillationLoss` exactly:
 *   `nn.KLDivLoss()` with PyTorch's default reduction `'mean'` (which divides
 *   by batch × classes, so on 2 classes the soft term counts half of a true
 *   KL), no T² factor, T = 1, alpha = 0.25. Use it to compare numbers with
 *   PyTorch.
 * - `"recommended"` (the default) is what Hinton et al. (2015) and the KD
 *   frameworks (torchdistill, mdistiller, RepDistiller) do: reduction
 *   `'batchmean'` (the true KL divergence per sample), the soft term
 *   multiplied by T² so its gradient does not shrink as 1/T², T = 4,
 *   alpha = 0.9.
 *
 * In both, `alpha` weighs the distillation term exactly as the tutorial's
 * code does: `loss = (1 - alpha) * CE + alpha * KL`. So alpha = 0 is plain
 * cross-entropy (no distillation) and alpha = 1 is distillation only. The
 * tutorial's prose says the opposite (that alpha = 0 means "only
 * distillation"); its code, which kdeno follows, does not.
 *
 * @module
 */

import {
  arange,
  cast,
  cat,
  crossEntropy,
  div,
  klDiv,
  log,
  logSoftmax,
  mul,
  softmax,
  sub,
  sum,
  unsqueeze,
} from "../ops/mod.ts";
import { ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";

/** The two named settings of the KD loss. */
export type KdPreset = "tutorial" | "recommended";

/** How the KL term is reduced over the batch. */
export type KdReduction = "mean" | "batchmean" | "sum";

/** Options of `kdLoss` and `DistillationLoss`. */
export interface KdOptions {
  /**
   * Starting values for the other options (default `"recommended"`):
   * `"tutorial"` is T = 1, alpha = 0.25, reduction `"mean"`, no T²;
   * `"recommended"` is T = 4, alpha = 0.9, reduction `"batchmean"`, T².
   * Options given alongside a preset override it.
   */
  preset?: KdPreset;
  /** Softmax temperature T applied to both students' and teacher's logits. */
  temperature?: number;
  /**
   * Weight of the distillation term: `(1 - alpha) * CE + alpha * KL`
   * (0 = cross-entropy only, 1 = distillation only), as in the tutorial's
   * code.
   */
  alpha?: number;
  /**
   * Reduction of the KL term: `"batchmean"` (the true KL per sample),
   * `"mean"` (PyTorch's `KLDivLoss` default: divides by batch × classes),
   * `"sum"`.
   */
  reduction?: KdReduction;
  /** Multiply the KL term by T² (Hinton et al. 2015). */
  scaleByT2?: boolean;
}

/** `KdOptions` with every field decided. */
export interface ResolvedKdOptions {
  /** The preset the values started from. */
  preset: KdPreset;
  /** Temperature. */
  temperature: number;
  /** Weight of the distillation term. */
  alpha: number;
  /** Reduction of the KL term. */
  reduction: KdReduction;
  /** Whether the KL term is multiplied by T². */
  scaleByT2: boolean;
}

/** The values of each preset. */
export const KD_PRESETS: Readonly<
  Record<KdPreset, Readonly<Omit<ResolvedKdOptions, "preset">>>
> = Object.freeze({
  tutorial: Object.freeze({
    temperature: 1,
    alpha: 0.25,
    reduction: "mean",
    scaleByT2: false,
  }),
  recommended: Object.freeze({
    temperature: 4,
    alpha: 0.9,
    reduction: "batchmean",
    scaleByT2: true,
  }),
});

/**
 * Fills in a KD option set from its preset and checks every value.
 *
 * @param options The options as given.
 * @returns Every option decided.
 * @throws RangeError for an unknown preset or reduction, T ≤ 0 or alpha
 * outside [0, 1].
 *
 * @example The tutorial preset
 * ```ts
 * import { distill } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const o = distill.resolveKdOptions({ preset: "tutorial" });
 * assert.deepEqual(o, {
 *   preset: "tutorial",
 *   temperature: 1,
 *   alpha: 0.25,
 *   reduction: "mean",
 *   scaleByT2: false,
 * });
 * ```
 */
export function resolveKdOptions(options: KdOptions = {}): ResolvedKdOptions {
  const preset = options.preset ?? "recommended";
  const base = KD_PRESETS[preset];
  if (!base) {
    throw new RangeError(
      `Cannot configure KD loss: preset "${preset}" is not one of tutorial, recommended`,
    );
  }
  const out: ResolvedKdOptions = {
    preset,
    temperature: options.temperature ?? base.temperature,
    alpha: options.alpha ?? base.alpha,
    reduction: options.reduction ?? base.reduction,
    scaleByT2: options.scaleByT2 ?? base.scaleByT2,
  };
  if (!(out.temperature > 0) || !Number.isFinite(out.temperature)) {
    throw new RangeError(
      `Cannot configure KD loss: temperature ${out.temperature} must be a positive number`,
    );
  }
  if (!(out.alpha >= 0 && out.alpha <= 1)) {
    throw new RangeError(
      `Cannot configure KD loss: alpha ${out.alpha} must be in [0, 1]`,
    );
  }
  if (!["mean", "batchmean", "sum"].includes(out.reduction)) {
    throw new RangeError(
      `Cannot configure KD loss: reduction "${out.reduction}" is not one of mean, batchmean, sum`,
    );
  }
  return out;
}

function checkLogits(
  op: string,
  student: Tensor,
  teacher: Tensor | null,
  labels: Tensor | null,
): void {
  if (student.ndim !== 2) {
    throw new ShapeError(
      `Cannot ${op}: student logits of shape [${
        student.shape.join(", ")
      }] must be [batch, classes]`,
    );
  }
  if (teacher && teacher.shape.join() !== student.shape.join()) {
    throw new ShapeError(
      `Cannot ${op}: student logits [${
        student.shape.join(", ")
      }] and teacher logits [${teacher.shape.join(", ")}] differ`,
    );
  }
  if (labels && (labels.ndim !== 1 || labels.shape[0] !== student.shape[0])) {
    throw new ShapeError(
      `Cannot ${op}: labels of shape [${
        labels.shape.join(", ")
      }] do not match a batch of ${student.shape[0]}`,
    );
  }
}

/** A teacher's logits carry no gradient into the teacher. */
function frozen(t: Tensor): Tensor {
  return t.requiresGrad || t.gradNode ? t.detach() : t;
}

/** The parts of a KD loss, each already weighted; `loss` is their sum. */
export interface KdTerms {
  /** `ce + kd`. */
  loss: Tensor;
  /** `(1 - alpha) * CE(student, labels)`; absent without labels. */
  ce?: Tensor;
  /** `alpha * [T²] * KL(teacher ‖ student)` at temperature T. */
  kd: Tensor;
  /** The unweighted KL at temperature T, with the chosen reduction. */
  rawKl: Tensor;
}

/**
 * The KD loss and its parts. Without labels (unlabeled transfer data) the
 * loss is the weighted distillation term alone.
 *
 * @param studentLogits `[batch, classes]`.
 * @param teacherLogits `[batch, classes]` (never receives a gradient).
 * @param labels int32 `[batch]`, or null for unlabeled data.
 * @param options Preset, temperature, alpha, reduction, scaleByT2.
 * @returns The weighted terms and their sum.
 */
export function kdTerms(
  studentLogits: Tensor,
  teacherLogits: Tensor,
  labels: Tensor | null,
  options: KdOptions | ResolvedKdOptions = {},
): KdTerms {
  checkLogits("kdLoss", studentLogits, teacherLogits, labels);
  const o = resolveKdOptions(options);
  const t = o.temperature;
  const teacher = frozen(teacherLogits);
  const logP = logSoftmax(t === 1 ? studentLogits : div(studentLogits, t), 1);
  const q = softmax(t === 1 ? teacher : div(teacher, t), 1);
  const rawKl = klDiv(logP, q, { reduction: o.reduction });
  const kdScale = o.alpha * (o.scaleByT2 ? t * t : 1);
  const kd = mul(rawKl, kdScale);
  if (!labels) return { loss: kd, kd, rawKl };
  const ce = mul(crossEntropy(studentLogits, labels), 1 - o.alpha);
  return { loss: ce.add(kd), ce, kd, rawKl };
}

/**
 * Knowledge-distillation loss, `(1 - alpha) * CE(student, labels) +
 * alpha * [T²] * KL(softmax(teacher / T) ‖ softmax(student / T))`
 * (Hinton et al. 2015, https://arxiv.org/abs/1503.02531).
 *
 * With `{ preset: "tutorial" }` it equals the tutorial's
 * `DistillationLoss` (reduction `'mean'`, no T², T = 1, alpha = 0.25)
 * value for value; the default `"recommended"` preset uses reduction
 * `'batchmean'`, T², T = 4, alpha = 0.9. `alpha` weighs the distillation
 * term as the tutorial's code does (its prose says the opposite).
 *
 * @param studentLogits `[batch, classes]`.
 * @param teacherLogits `[batch, classes]` (never receives a gradient).
 * @param labels int32 `[batch]`, or null for unlabeled data (the
 *   distillation term alone).
 * @param options Preset, temperature, alpha, reduction, scaleByT2.
 * @returns The scalar loss.
 *
 * @example Identical logits leave only the cross-entropy
 * ```ts
 * import { distill, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const s = tensor([[2, 0], [0, 1]]);
 * const y = tensor(new Int32Array([0, 1]));
 * const loss = distill.kdLoss(s, s, y, { preset: "tutorial" }).item();
 * const ce = Math.log(1 + Math.exp(-2)) / 2 + Math.log(1 + Math.exp(-1)) / 2;
 * assert.ok(Math.abs(loss - 0.75 * ce) < 1e-6);
 * ```
 */
export function kdLoss(
  studentLogits: Tensor,
  teacherLogits: Tensor,
  labels: Tensor | null,
  options: KdOptions = {},
): Tensor {
  return kdTerms(studentLogits, teacherLogits, labels, options).loss;
}

/** What a criterion is given at each step. */
export interface CriterionInput {
  /** The student's logits `[batch, classes]`. */
  studentLogits: Tensor;
  /** The teacher's logits, or null when no teacher runs. */
  teacherLogits: Tensor | null;
  /** int32 labels `[batch]`, or null for unlabeled (transfer) batches. */
  labels: Tensor | null;
}

/**
 * A training criterion the `Trainer` sums: named, already-weighted loss
 * terms. `DistillationLoss`, `DKDLoss`, `HintLoss` and
 * `AttentionTransferLoss` implement it; so can user code.
 */
export interface DistillCriterion {
  /** A short name for logs. */
  readonly name: string;
  /**
   * True when the criterion reads the teacher's intermediate features, so the
   * teacher must run on every batch (its logits cannot come from a cache).
   */
  readonly needsTeacherForward?: boolean;
  /**
   * Weighted loss terms by name; the step's loss is their sum. A term that
   * is not finite stops training with an error naming it.
   *
   * @param input Logits and labels of the batch.
   * @returns The terms.
   */
  terms(input: CriterionInput): Record<string, Tensor>;
  /** Trainable tensors the criterion owns (adapters): they must be in the optimizer. */
  parameters?(): Tensor[];
  /** State to checkpoint (adapters' weights), by key. */
  stateDict?(): Record<string, Tensor>;
  /** Restores `stateDict()`. */
  loadStateDict?(dict: Record<string, Tensor>): void;
  /** Told the 0-based epoch before each epoch (for warm-ups). */
  setEpoch?(epoch: number): void;
  /** Releases hooks. */
  dispose?(): void;
}

/**
 * The KD loss as an object, as the tutorial's `DistillationLoss` class.
 * Without a teacher or without labels it degrades to the term that is
 * defined (cross-entropy alone; distillation alone).
 *
 * @example The tutorial's loss and the recommended one
 * ```ts
 * import { distill, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const tutorial = new distill.DistillationLoss({ preset: "tutorial" });
 * assert.equal(tutorial.alpha, 0.25);
 * const rec = new distill.DistillationLoss(); // T = 4, alpha = 0.9, T², batchmean
 * const s = tensor([[1, 0]]);
 * const t = tensor([[0, 1]]);
 * const y = tensor(new Int32Array([0]));
 * assert.ok(rec.call(s, t, y).item() > tutorial.call(s, t, y).item());
 * ```
 */
export class DistillationLoss implements DistillCriterion {
  /** For logs. */
  readonly name = "kd";
  /** The preset the options started from. */
  readonly preset: KdPreset;
  /** Temperature. */
  readonly temperature: number;
  /** Weight of the distillation term. */
  readonly alpha: number;
  /** KL reduction. */
  readonly reduction: KdReduction;
  /** Whether the KL term is scaled by T². */
  readonly scaleByT2: boolean;

  /**
   * A KD criterion with the given (or the preset's) settings.
   *
   * @param options Preset, temperature, alpha, reduction, scaleByT2.
   */
  constructor(options: KdOptions = {}) {
    const o = resolveKdOptions(options);
    this.preset = o.preset;
    this.temperature = o.temperature;
    this.alpha = o.alpha;
    this.reduction = o.reduction;
    this.scaleByT2 = o.scaleByT2;
  }

  /**
   * The settings in use, every default filled in.
   *
   * @returns The resolved options.
   */
  get options(): ResolvedKdOptions {
    return {
      preset: this.preset,
      temperature: this.temperature,
      alpha: this.alpha,
      reduction: this.reduction,
      scaleByT2: this.scaleByT2,
    };
  }

  /**
   * The loss.
   *
   * @param studentLogits `[batch, classes]`.
   * @param teacherLogits `[batch, classes]`.
   * @param labels int32 `[batch]`, or null.
   * @returns The scalar loss.
   */
  call(
    studentLogits: Tensor,
    teacherLogits: Tensor,
    labels: Tensor | null,
  ): Tensor {
    return kdLoss(studentLogits, teacherLogits, labels, this.options);
  }

  /**
   * The weighted terms: `ce` and `kd` (and `kd` alone without labels,
   * `ce` alone without a teacher, unweighted then, as plain training).
   *
   * @param input Logits and labels.
   * @returns The terms.
   */
  terms(input: CriterionInput): Record<string, Tensor> {
    const { studentLogits, teacherLogits, labels } = input;
    if (!teacherLogits) {
      if (!labels) {
        throw new RangeError(
          "Cannot compute the KD loss: a batch with neither labels nor teacher logits",
        );
      }
      return { ce: crossEntropy(studentLogits, labels) };
    }
    const t = kdTerms(studentLogits, teacherLogits, labels, this.options);
    return t.ce ? { ce: t.ce, kd: t.kd } : { kd: t.kd };
  }

  /**
   * The settings in one line, for logs.
   *
   * @returns A one-line description for logs.
   */
  toString(): string {
    return `DistillationLoss(preset=${this.preset}, T=${this.temperature}, alpha=${this.alpha}, reduction=${this.reduction}, scaleByT2=${this.scaleByT2})`;
  }
}

/** Options of `dkdLoss` and `DKDLoss`. */
export interface DkdOptions {
  /** Weight of the target-class term TCKD (default 1). */
  alpha?: number;
  /** Weight of the non-target-class term NCKD (default 8). */
  beta?: number;
  /** Temperature (default 4). */
  temperature?: number;
}

let warnedBinaryDkd = false;

/**
 * Decoupled knowledge distillation (Zhao et al., CVPR 2022,
 * https://arxiv.org/abs/2203.08679), as mdistiller's `dkd_loss`:
 * `alpha * TCKD + beta * NCKD`, each a batch-mean KL times T². TCKD
 * compares the binary "target vs the rest" probabilities; NCKD compares the
 * distributions among the non-target classes.
 *
 * With 2 classes there is one non-target class, so NCKD is 0 and DKD equals
 * `alpha` times plain KD (batchmean, T²); kdeno warns once when that
 * happens.
 *
 * @param studentLogits `[batch, classes]`.
 * @param teacherLogits `[batch, classes]`.
 * @param labels int32 `[batch]`.
 * @param options alpha, beta, temperature.
 * @returns The scalar DKD loss (without any cross-entropy).
 */
export function dkdLoss(
  studentLogits: Tensor,
  teacherLogits: Tensor,
  labels: Tensor,
  options: DkdOptions = {},
): Tensor {
  checkLogits("dkdLoss", studentLogits, teacherLogits, labels);
  const alpha = options.alpha ?? 1;
  const beta = options.beta ?? 8;
  const t = options.temperature ?? 4;
  const [b, c] = studentLogits.shape;
  if (c === 2 && !warnedBinaryDkd) {
    warnedBinaryDkd = true;
    console.warn(
      "DKD on a 2-class task: there is only one non-target class, so NCKD is 0 and DKD reduces to alpha x KD (batchmean, T^2)",
    );
  }
  const teacher = frozen(teacherLogits);
  // one-hot mask of the target class, float32 [b, c]
  const gt = cast(arange(c).eq(unsqueeze(labels, 1)), "float32");
  const other = sub(1, gt);
  const s = div(studentLogits, t);
  const tt = div(teacher, t);
  const ps = softmax(s, 1);
  const pt = softmax(tt, 1);
  // [b, 2]: probability of the target class, and of all the others
  const binary = (p: Tensor) =>
    cat([
      sum(mul(p, gt), 1, { keepdim: true }),
      sum(mul(p, other), 1, { keepdim: true }),
    ], 1);
  const bs = binary(ps);
  const bt = binary(pt);
  const tckd = klDiv(log(bs), bt, { reduction: "sum" });
  const masked = (x: Tensor) => sub(x, mul(gt, 1000));
  const nckd = klDiv(logSoftmax(masked(s), 1), softmax(masked(tt), 1), {
    reduction: "sum",
  });
  const scale = (t * t) / b;
  return mul(tckd, alpha * scale).add(mul(nckd, beta * scale));
}

/** Options of `DKDLoss`. */
export interface DkdLossOptions extends DkdOptions {
  /** Weight of the cross-entropy on labels (default 1, mdistiller's). */
  ceWeight?: number;
  /** Epochs over which the DKD term ramps in linearly (default 20; 0: none). */
  warmup?: number;
}

/**
 * DKD as a trainer criterion: `ceWeight * CE + min(epoch / warmup, 1) *
 * DKD`, mdistiller's defaults (CE weight 1, alpha 1, beta 8, T 4,
 * warm-up 20 epochs). Warns once on 2-class tasks, where DKD is just
 * `alpha` times KD.
 */
export class DKDLoss implements DistillCriterion {
  /** For logs. */
  readonly name = "dkd";
  /** The options. */
  readonly options: Required<DkdLossOptions>;
  #epoch = 0;

  /**
   * A DKD criterion with the given settings.
   *
   * @param options ceWeight, alpha, beta, temperature, warmup.
   */
  constructor(options: DkdLossOptions = {}) {
    this.options = {
      alpha: options.alpha ?? 1,
      beta: options.beta ?? 8,
      temperature: options.temperature ?? 4,
      ceWeight: options.ceWeight ?? 1,
      warmup: options.warmup ?? 20,
    };
  }

  /**
   * Tells the criterion the epoch, for the warm-up of the KD weight.
   *
   * @param epoch The 0-based epoch about to run.
   */
  setEpoch(epoch: number): void {
    this.#epoch = epoch;
  }

  /**
   * `ce` and `dkd` (the ramped DKD term); `ce` alone without a teacher.
   *
   * @param input Logits and labels.
   * @returns The terms.
   */
  terms(input: CriterionInput): Record<string, Tensor> {
    const { studentLogits, teacherLogits, labels } = input;
    if (!labels) {
      throw new RangeError(
        "Cannot compute DKD: it needs labels (use DistillationLoss for unlabeled transfer data)",
      );
    }
    const ce = mul(crossEntropy(studentLogits, labels), this.options.ceWeight);
    if (!teacherLogits) return { ce };
    const w = this.options.warmup > 0
      ? Math.min((this.#epoch + 1) / this.options.warmup, 1)
      : 1;
    const dkd = mul(
      dkdLoss(studentLogits, teacherLogits, labels, this.options),
      w,
    );
    return { ce, dkd };
  }
}

/**
 * Cross-entropy alone, as a criterion (the student trained without a
 * teacher).
 */
export class CrossEntropyCriterion implements DistillCriterion {
  /** For logs. */
  readonly name = "ce";
  /**
   * The loss as named terms (here one: cross-entropy).
   *
   * @param input Logits and labels.
   * @returns `{ ce }`.
   */
  terms(input: CriterionInput): Record<string, Tensor> {
    if (!input.labels) {
      throw new RangeError(
        "Cannot compute cross-entropy: the batch has no labels",
      );
    }
    return { ce: crossEntropy(input.studentLogits, input.labels) };
  }
}
