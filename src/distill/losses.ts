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
 * Class weights for imbalanced data: every criterion here takes a `weight`
 * option, one weight per class, applied to the hard-label cross-entropy as
 * PyTorch's `CrossEntropyLoss(weight=...)` does (a weighted mean: each
 * sample's loss times its class's weight, divided by the sum of those
 * weights). The distillation term is never weighted: soft targets carry no
 * single class. `data.balancedClassWeights` computes balanced weights
 * (scikit-learn's `"balanced"`, n / (classes × count)) from a training split.
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
  tensor,
  unsqueeze,
} from "../ops/mod.ts";
import { ShapeError } from "../errors.ts";
import { Tensor } from "../tensor.ts";

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
  /**
   * Class weights on the cross-entropy term, one per class (a `[classes]`
   * tensor or an array), as PyTorch's `CrossEntropyLoss(weight=...)`: the
   * weighted mean of the per-sample losses. The KL term is not weighted.
   * Absent: every class weighs 1.
   */
  weight?: Tensor | readonly number[];
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
  /** Class weights on the cross-entropy term; absent when none were given. */
  weight?: readonly number[];
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
  if (options.weight !== undefined) {
    out.weight = resolveClassWeight("configure KD loss", options.weight);
  }
  return out;
}

/**
 * Reads class weights given as a tensor or an array into a plain array and
 * checks them: a 1-D list of finite, non-negative numbers, not all zero.
 */
function resolveClassWeight(
  op: string,
  weight: Tensor | readonly number[],
): readonly number[] {
  let values: number[];
  if (weight instanceof Tensor) {
    if (weight.ndim !== 1) {
      throw new ShapeError(
        `Cannot ${op}: class weight of shape [${
          weight.shape.join(", ")
        }] must be 1-D [classes]`,
      );
    }
    values = (weight.toArray() as number[]).map(Number);
  } else if (Array.isArray(weight)) {
    values = weight.map(Number);
  } else {
    throw new TypeError(
      `Cannot ${op}: class weight must be a Tensor or an array of numbers`,
    );
  }
  if (values.length === 0) {
    throw new ShapeError(`Cannot ${op}: class weight is empty`);
  }
  values.forEach((v, i) => {
    if (!(Number.isFinite(v) && v >= 0)) {
      throw new RangeError(
        `Cannot ${op}: class weight ${i} is ${v}; weights must be finite and non-negative`,
      );
    }
  });
  if (values.every((v) => v === 0)) {
    throw new RangeError(`Cannot ${op}: every class weight is 0`);
  }
  return Object.freeze(values);
}

/**
 * Cross-entropy with optional class weights (a weighted mean, as
 * PyTorch's `CrossEntropyLoss(weight=...)`).
 */
function hardLabelLoss(
  op: string,
  logits: Tensor,
  labels: Tensor,
  weight: readonly number[] | null | undefined,
): Tensor {
  if (!weight) return crossEntropy(logits, labels);
  const k = logits.shape[1];
  if (weight.length !== k) {
    throw new ShapeError(
      `Cannot ${op}: ${weight.length} class weights for logits of ${k} classes`,
    );
  }
  const w = tensor(weight as number[], { shape: [k], device: logits.device });
  return crossEntropy(logits, labels, { weight: w });
}

const fmtWeight = (w: readonly number[]): string =>
  `[${w.map((x) => Number(x.toPrecision(4))).join(", ")}]`;

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
  /**
   * `(1 - alpha) * CE(student, labels)` (class-weighted when `weight` is
   * given); absent without labels.
   */
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
 * @param options Preset, temperature, alpha, reduction, scaleByT2, and
 *   class weights on the cross-entropy.
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
  const ce = mul(
    hardLabelLoss("kdLoss", studentLogits, labels, o.weight),
    1 - o.alpha,
  );
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
  /** Class weights on the cross-entropy term, or null (unweighted). */
  readonly weight: readonly number[] | null;

  /**
   * A KD criterion with the given (or the preset's) settings.
   *
   * @param options Preset, temperature, alpha, reduction, scaleByT2, and
   *   class weights on the cross-entropy (`weight`).
   */
  constructor(options: KdOptions = {}) {
    const o = resolveKdOptions(options);
    this.preset = o.preset;
    this.temperature = o.temperature;
    this.alpha = o.alpha;
    this.reduction = o.reduction;
    this.scaleByT2 = o.scaleByT2;
    this.weight = o.weight ?? null;
  }

  /**
   * The settings in use, every default filled in.
   *
   * @returns The resolved options.
   */
  get options(): ResolvedKdOptions {
    const o: ResolvedKdOptions = {
      preset: this.preset,
      temperature: this.temperature,
      alpha: this.alpha,
      reduction: this.reduction,
      scaleByT2: this.scaleByT2,
    };
    if (this.weight) o.weight = this.weight;
    return o;
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
   * `ce` alone without a teacher, not scaled by `1 - alpha` then, as plain
   * training; class weights still apply).
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
      return {
        ce: hardLabelLoss("kdLoss", studentLogits, labels, this.weight),
      };
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
    const w = this.weight ? `, weight=${fmtWeight(this.weight)}` : "";
    return `DistillationLoss(preset=${this.preset}, T=${this.temperature}, alpha=${this.alpha}, reduction=${this.reduction}, scaleByT2=${this.scaleByT2}${w})`;
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
  /**
   * Class weights on the cross-entropy term, one per class, as PyTorch's
   * `CrossEntropyLoss(weight=...)`; the DKD term is not weighted.
   */
  weight?: Tensor | readonly number[];
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
  /** The options (class weights are in `weight`). */
  readonly options: Required<Omit<DkdLossOptions, "weight">>;
  /** Class weights on the cross-entropy term, or null (unweighted). */
  readonly weight: readonly number[] | null;
  #epoch = 0;

  /**
   * A DKD criterion with the given settings.
   *
   * @param options ceWeight, alpha, beta, temperature, warmup, and class
   *   weights on the cross-entropy (`weight`).
   */
  constructor(options: DkdLossOptions = {}) {
    this.options = {
      alpha: options.alpha ?? 1,
      beta: options.beta ?? 8,
      temperature: options.temperature ?? 4,
      ceWeight: options.ceWeight ?? 1,
      warmup: options.warmup ?? 20,
    };
    this.weight = options.weight === undefined
      ? null
      : resolveClassWeight("configure DKD loss", options.weight);
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
    const ce = mul(
      hardLabelLoss("DKDLoss", studentLogits, labels, this.weight),
      this.options.ceWeight,
    );
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

/** Options of `CrossEntropyCriterion`. */
export interface CrossEntropyCriterionOptions {
  /**
   * Class weights, one per class (a `[classes]` tensor or an array), as
   * PyTorch's `CrossEntropyLoss(weight=...)`: the weighted mean of the
   * per-sample losses. Absent: unweighted.
   */
  weight?: Tensor | readonly number[];
}

/**
 * Cross-entropy alone, as a criterion (the student trained without a
 * teacher), optionally with class weights.
 *
 * @example Class weights as PyTorch's CrossEntropyLoss(weight=...)
 * ```ts
 * import { distill, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const ce = new distill.CrossEntropyCriterion({ weight: [3, 1] });
 * const logits = tensor([[0, 0], [0, 0]]);
 * const labels = tensor(new Int32Array([0, 1]));
 * const { ce: loss } = ce.terms({ studentLogits: logits, teacherLogits: null, labels });
 * assert.ok(Math.abs(loss.item() - Math.log(2)) < 1e-6);
 * assert.equal(String(ce), "CrossEntropy(weight=[3, 1])");
 * ```
 */
export class CrossEntropyCriterion implements DistillCriterion {
  /** For logs. */
  readonly name = "ce";
  /** Class weights, or null (unweighted). */
  readonly weight: readonly number[] | null;

  /**
   * A cross-entropy criterion.
   *
   * @param options Class weights (`weight`).
   */
  constructor(options: CrossEntropyCriterionOptions = {}) {
    this.weight = options.weight === undefined
      ? null
      : resolveClassWeight("configure cross-entropy", options.weight);
  }

  /**
   * The settings in one line, for logs.
   *
   * @returns `CrossEntropy()` or `CrossEntropy(weight=[...])`.
   */
  toString(): string {
    return this.weight
      ? `CrossEntropy(weight=${fmtWeight(this.weight)})`
      : "CrossEntropy()";
  }

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
    return {
      ce: hardLabelLoss(
        "cross-entropy",
        input.studentLogits,
        input.labels,
        this.weight,
      ),
    };
  }
}
