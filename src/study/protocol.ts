/**
 * The paired comparison of a distillation study, as plain functions over
 * evaluation results: per-arm summaries over seeds, the KD − no-KD
 * difference with its t-interval and McNemar's test per seed, the verdict
 * sentence, and the results table. `runDistillationStudy` trains the models
 * and calls these; they are separate so that they can be read and tested
 * on their own.
 *
 * @module
 */

import {
  dominantPrediction,
  type EvaluateResult,
  type MajorityBaseline,
} from "../eval/metrics.ts";
import { mcnemar, meanConfidenceInterval } from "../eval/stats.ts";
import type { FitResult } from "../train/trainer.ts";

/** One trained and evaluated model of an arm. */
export interface StudyRun {
  /** The seed of the run (initial weights; data order is `1000 + seed`). */
  seed: number;
  /** Its evaluation on the test set (an unshuffled loader). */
  result: EvaluateResult;
  /** Its training history. */
  fit: FitResult;
}

/** A model's cost, from `evaluation.countMacs`, `measureSpeed` and `modelSizeBytes`. */
export interface ModelCost {
  /** Parameter elements. */
  params: number;
  /** Multiply-accumulates per image. */
  macs: number;
  /** Bytes of parameters and buffers. */
  sizeBytes: number;
  /** Median latency at batch 1, milliseconds. */
  latencyMs: number;
  /** 10th-90th percentile of the batch-1 latencies, milliseconds. */
  latencyRangeMs: [number, number];
  /** Images per second at batch 32. */
  throughput: number;
}

/** An arm (the student without or with KD) over its seeds. */
export interface ArmSummary extends ModelCost {
  /** Mean test accuracy over seeds. */
  accuracy: number;
  /** 95% t-interval of the mean accuracy; null with one seed. */
  accuracyCI95: [number, number] | null;
  /** Half-width of that interval; null with one seed. */
  accuracyHalfWidth95: number | null;
  /** Test accuracy of each seed, in run order. */
  accuracyPerSeed: number[];
  /** The seeds, in run order. */
  seeds: number[];
  /** Mean sensitivity (recall of class 1) over seeds; NaN if undefined. */
  sensitivity: number;
  /** Mean specificity over seeds. */
  specificity: number;
  /** Mean balanced accuracy over seeds. */
  balancedAccuracy: number;
  /** Mean recall (sensitivity) of each class over seeds, in class order. */
  perClassSensitivity: number[];
  /** Mean specificity of each class (against the rest) over seeds. */
  perClassSpecificity: number[];
  /**
   * Per seed, the class predicted most often on the test set and its share
   * of the predictions (1: the model answered one class for every image).
   */
  dominantPrediction: { classIndex: number; share: number }[];
  /** Mean ROC AUC over seeds. */
  rocAuc: number;
  /** Mean expected calibration error over seeds. */
  ece: number;
  /** Mean macro F1 over seeds. */
  macroF1: number;
  /** The first seed's confusion matrix (rows: true class). */
  confusion: number[][];
  /** The best epoch (1-based) of each seed. */
  bestEpochs: number[];
  /** Mean training seconds per seed. */
  trainSeconds: number;
  /** Teacher latency over this arm's latency at batch 1. */
  speedup: number;
}

/** The teacher: one run, with a Wilson interval over test images. */
export interface TeacherSummary extends ModelCost {
  /** Test accuracy. */
  accuracy: number;
  /** Wilson 95% interval of the accuracy over the test images. */
  accuracyCI95: [number, number];
  /** How the interval was computed. */
  accuracyCIMethod: string;
  /** Sensitivity (recall of class 1), undefined with one class. */
  sensitivity: number | undefined;
  /** Specificity. */
  specificity: number | undefined;
  /** Balanced accuracy. */
  balancedAccuracy: number | undefined;
  /** Recall (sensitivity) of each class, in class order. */
  perClassSensitivity: number[];
  /** Specificity of each class against the rest. */
  perClassSpecificity: number[];
  /** The class predicted most often on the test set, and its share. */
  dominantPrediction: { classIndex: number; share: number };
  /** ROC AUC. */
  rocAuc: number | undefined;
  /** Expected calibration error. */
  ece: number | undefined;
  /** Macro F1. */
  macroF1: number | undefined;
  /** Confusion matrix (rows: true class). */
  confusion: number[][];
  /** Training seconds (0 when it was not trained). */
  trainSeconds: number;
  /** Training epochs. */
  epochs: number;
  /** Always 1. */
  speedup: number;
}

/** KD against no KD on the same seeds and test images. */
export interface ArmComparison {
  /** KD − no-KD test accuracy: mean, 95% t-interval (null with one seed), per seed. */
  kdMinusStudent: {
    mean: number;
    ci95: [number, number] | null;
    perSeed: number[];
  };
  /** McNemar's exact test per seed on the paired test predictions. */
  mcnemar: {
    seed: number;
    pValue: number;
    onlyKdRight: number;
    onlyStudentRight: number;
  }[];
  /** Seeds where KD scored higher. */
  kdBetterSeeds: number;
  /** One sentence: did KD beat the student trained alone? */
  verdict: string;
}

const mean = (xs: number[]): number =>
  xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * A count with its noun, singular or plural: `1 epoch`, `6 epochs`.
 *
 * @param n The count.
 * @param word The singular noun.
 * @param pluralWord The plural (default `word + "s"`).
 * @returns `"<n> <word>"`.
 *
 * @example
 * ```ts
 * import { study } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.equal(study.plural(1, "epoch"), "1 epoch");
 * assert.equal(study.plural(3, "seed"), "3 seeds");
 * ```
 */
export function plural(n: number, word: string, pluralWord?: string): string {
  return `${n} ${n === 1 ? word : pluralWord ?? `${word}s`}`;
}

/**
 * A difference of accuracies in percentage points, signed: `+1.5`, `-6.0`.
 *
 * @param x A difference of fractions (0.015).
 * @returns The points with one decimal and a sign.
 */
export function formatPoints(x: number): string {
  return `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
}

function perClassMean(
  runs: readonly StudyRun[],
  key: "recall" | "specificity",
): number[] {
  const k = runs[0]?.result.perClass?.length ?? 0;
  return Array.from(
    { length: k },
    (_, c) => mean(runs.map((r) => r.result.perClass?.[c]?.[key] ?? NaN)),
  );
}

/**
 * Summarises an arm over its seeds: the mean accuracy with its 95%
 * t-interval (with two seeds or more), the mean of the other metrics, and
 * the arm's cost with its speed-up over the teacher.
 *
 * @param runs The arm's runs, at least one.
 * @param cost The cost of the arm's model.
 * @param teacherCost The teacher's cost, for the speed-up.
 * @returns The summary, as written to `results.json`.
 *
 * @example Two seeds
 * ```ts
 * import { study } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const cost = { params: 10, macs: 100, sizeBytes: 40, latencyMs: 1, latencyRangeMs: [1, 1] as [number, number], throughput: 1000 };
 * const run = (seed: number, accuracy: number) => ({
 *   seed,
 *   result: { accuracy, confusion: [[1, 0], [0, 1]] },
 *   fit: { bestEpoch: 1, seconds: 2, history: [] },
 * }) as unknown as study.StudyRun;
 * const s = study.summarizeArm([run(0, 0.8), run(1, 0.9)], cost, { ...cost, latencyMs: 4 });
 * assert.ok(Math.abs(s.accuracy - 0.85) < 1e-12);
 * assert.equal(s.accuracyCI95?.length, 2);
 * assert.equal(s.speedup, 4);
 * ```
 */
export function summarizeArm(
  runs: readonly StudyRun[],
  cost: ModelCost,
  teacherCost: ModelCost,
): ArmSummary {
  const accs = runs.map((r) => r.result.accuracy);
  const many = runs.length > 1;
  const ci = meanConfidenceInterval(accs);
  const pick = (f: (r: EvaluateResult) => number | undefined) =>
    mean(runs.map((r) => f(r.result) ?? NaN));
  return {
    accuracy: ci.mean,
    accuracyCI95: many ? [ci.lo, ci.hi] : null,
    accuracyHalfWidth95: many ? ci.halfWidth : null,
    accuracyPerSeed: accs,
    seeds: runs.map((r) => r.seed),
    sensitivity: pick((r) => r.sensitivity),
    specificity: pick((r) => r.specificity),
    balancedAccuracy: pick((r) => r.balancedAccuracy),
    perClassSensitivity: perClassMean(runs, "recall"),
    perClassSpecificity: perClassMean(runs, "specificity"),
    dominantPrediction: runs.map((r) => dominantPrediction(r.result.confusion)),
    rocAuc: pick((r) => r.rocAuc),
    ece: pick((r) => r.ece),
    macroF1: pick((r) => r.macroF1),
    confusion: runs[0].result.confusion,
    bestEpochs: runs.map((r) => r.fit.bestEpoch),
    trainSeconds: mean(runs.map((r) => r.fit.seconds)),
    ...cost,
    speedup: teacherCost.latencyMs / cost.latencyMs,
  };
}

/**
 * Pairs the KD arm with the no-KD arm seed by seed (the same initial
 * weights, data order and test images): the accuracy differences with
 * their 95% t-interval over seeds, McNemar's exact test per seed, and the
 * verdict. With several seeds KD "beat" the student when the interval lies
 * above zero; with one seed, when it scored higher and McNemar's p < 0.05.
 *
 * @param kd The KD runs, at least one.
 * @param plain The no-KD runs, in the same seed order.
 * @returns The comparison, as written to `results.json`.
 *
 * @example One seed, a difference McNemar's test cannot tell from chance
 * ```ts
 * import { study } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const run = (correct: number[]) => ({
 *   seed: 0,
 *   result: {
 *     accuracy: correct.reduce((a, b) => a + b, 0) / correct.length,
 *     correct: Uint8Array.from(correct),
 *   },
 * });
 * const c = study.compareArms([run([1, 1, 1, 0])], [run([1, 1, 0, 0])]);
 * assert.equal(c.kdBetterSeeds, 1);
 * assert.match(c.verdict, /^KD did not beat the student trained alone: \+25\.0 points/);
 * ```
 */
export function compareArms(
  kd: readonly {
    seed: number;
    result: Pick<EvaluateResult, "accuracy" | "correct">;
  }[],
  plain: readonly { result: Pick<EvaluateResult, "accuracy" | "correct"> }[],
): ArmComparison {
  if (kd.length === 0 || kd.length !== plain.length) {
    throw new RangeError(
      `compareArms: needs the same number (≥ 1) of KD and no-KD runs, got ${kd.length} and ${plain.length}`,
    );
  }
  const n = kd.length;
  const diffs = kd.map((r, i) => r.result.accuracy - plain[i].result.accuracy);
  const diffCI = meanConfidenceInterval(diffs);
  const tests = kd.map((r, i) => {
    const m = mcnemar(r.result.correct, plain[i].result.correct);
    return {
      seed: r.seed,
      pValue: m.pValue,
      onlyKdRight: m.onlyA,
      onlyStudentRight: m.onlyB,
    };
  });
  const pts = formatPoints;
  let verdict: string;
  if (n > 1) {
    const range = `95% CI ${pts(diffCI.lo)} to ${
      pts(diffCI.hi)
    } points over ${n} seeds`;
    verdict = diffCI.lo > 0
      ? `KD beat the student trained alone: ${
        pts(diffCI.mean)
      } points (${range}).`
      : diffCI.mean > 0
      ? `KD did not reliably beat the student trained alone: ${
        pts(diffCI.mean)
      } points, but the ${range} includes zero.`
      : `KD did not beat the student trained alone: ${
        pts(diffCI.mean)
      } points (${range}).`;
  } else {
    const p = tests[0].pValue;
    verdict = diffs[0] > 0 && p < 0.05
      ? `KD beat the student trained alone: ${
        pts(diffs[0])
      } points (McNemar p = ${p.toPrecision(2)}, one seed).`
      : `KD did not beat the student trained alone: ${
        pts(diffs[0])
      } points (McNemar p = ${p.toPrecision(2)}, one seed).`;
  }
  return {
    kdMinusStudent: {
      mean: diffCI.mean,
      ci95: n > 1 ? [diffCI.lo, diffCI.hi] : null,
      perSeed: diffs,
    },
    mcnemar: tests,
    kdBetterSeeds: diffs.filter((d) => d > 0).length,
    verdict,
  };
}

/**
 * The columns of the results table, in order, for 2 classes. With more
 * classes the third column is "Recall per class %" (`resultColumns`).
 */
export const RESULT_COLUMNS: readonly string[] = [
  "Model",
  "Test accuracy %",
  "Balanced acc. %",
  "Sens. / spec. %",
  "Params",
  "MACs/image",
  "Size",
  "Latency b=1 (ms)",
  "Throughput b=32 (img/s)",
  "Speedup",
];

/**
 * The columns of the results table for `numClasses` classes: with 2, the
 * sensitivity and specificity of the positive class; with more, each
 * class's recall.
 *
 * @param numClasses Number of classes.
 * @returns The header cells.
 */
export function resultColumns(numClasses: number): string[] {
  return RESULT_COLUMNS.map((c) =>
    c === "Sens. / spec. %" && numClasses > 2 ? "Recall per class %" : c
  );
}

const pct = (x: number | undefined) =>
  x === undefined || Number.isNaN(x) ? "–" : (100 * x).toFixed(1);
const human = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} G`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(2)} M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)} k`
    : String(n);
const bytes = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`;

/**
 * One row of the results table (`RESULT_COLUMNS`): accuracy in percent as
 * `mean ± half-width` over seeds, or `value (lo–hi)` with an interval
 * only, balanced accuracy, then sensitivity / specificity (2 classes) or
 * the recall of each class, cost and speed-up. A metric that is not
 * defined shows as `–`.
 *
 * @param name The model's name.
 * @param e The teacher's or an arm's summary.
 * @returns The cells.
 *
 * @example
 * ```ts
 * import { study } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const row = study.resultRow("Student", {
 *   accuracy: 0.9, accuracyHalfWidth95: 0.02, balancedAccuracy: 0.85,
 *   sensitivity: 0.8, specificity: 1,
 *   params: 1500, macs: 2e6, sizeBytes: 6000, latencyMs: 0.5, throughput: 9000, speedup: 4,
 * });
 * assert.deepEqual(row, ["Student", "90.0 ± 2.0", "85.0", "80.0 / 100.0", "1.5 k", "2.00 M", "6.0 kB", "0.50", "9000", "4.0×"]);
 * ```
 */
export function resultRow(
  name: string,
  e: {
    accuracy: number;
    accuracyHalfWidth95?: number | null;
    accuracyCI95?: readonly number[] | null;
    balancedAccuracy?: number;
    sensitivity?: number;
    specificity?: number;
    perClassSensitivity?: readonly number[];
    params: number;
    macs: number;
    sizeBytes: number;
    latencyMs: number;
    throughput: number;
    speedup: number;
  },
): string[] {
  const acc = e.accuracyHalfWidth95 != null
    ? `${pct(e.accuracy)} ± ${pct(e.accuracyHalfWidth95)}`
    : e.accuracyCI95
    ? `${pct(e.accuracy)} (${pct(e.accuracyCI95[0])}–${pct(e.accuracyCI95[1])})`
    : pct(e.accuracy);
  const perClass = e.perClassSensitivity;
  return [
    name,
    acc,
    pct(e.balancedAccuracy),
    perClass && perClass.length > 2
      ? perClass.map(pct).join(" / ")
      : `${pct(e.sensitivity)} / ${pct(e.specificity)}`,
    human(e.params),
    human(e.macs),
    bytes(e.sizeBytes),
    e.latencyMs.toFixed(2),
    e.throughput.toFixed(0),
    `${e.speedup.toFixed(1)}×`,
  ];
}

/**
 * The majority-class baseline's row of the results table: always
 * answering the training split's most frequent class. Its sensitivity is
 * 100% when that class is the positive one (else 0%), its specificity the
 * reverse; the cost columns are empty (`–`).
 *
 * @param baseline From `evaluation.majorityBaseline`.
 * @param classes Class names, in class order.
 * @param positiveClass The positive class for sensitivity (default 1).
 * @returns The cells, named `Majority class (always <name>)`.
 *
 * @example
 * ```ts
 * import { evaluation, study } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const b = evaluation.majorityBaseline([1, 1, 0], [0, 1, 1, 1]);
 * assert.deepEqual(
 *   study.baselineRow(b, ["NORMAL", "PNEUMONIA"]).slice(0, 4),
 *   ["Majority class (always PNEUMONIA)", "75.0", "50.0", "100.0 / 0.0"],
 * );
 * ```
 */
export function baselineRow(
  baseline: MajorityBaseline,
  classes: readonly string[],
  positiveClass = 1,
): string[] {
  const c = baseline.classIndex;
  const k = classes.length;
  const recall = Array.from({ length: k }, (_, i) => (i === c ? 1 : 0));
  return [
    `Majority class (always ${classes[c] ?? c})`,
    pct(baseline.accuracy),
    pct(baseline.balancedAccuracy),
    k > 2
      ? recall.map(pct).join(" / ")
      : `${pct(recall[positiveClass])} / ${pct(recall[1 - positiveClass])}`,
    ...Array(6).fill("–"),
  ];
}

/** What `studyWarnings` reads. */
export interface StudyWarningsInput {
  /** Class names, in class order. */
  classes: readonly string[];
  /** The majority-class baseline (training split's class, scored on test). */
  baseline: MajorityBaseline | null;
  /** The teacher, by name (none: not part of the study). */
  teacher?: { name: string; summary: TeacherSummary } | null;
  /** The student trained alone. */
  student: { name: string; summary: ArmSummary };
  /** The other arms (the KD student). */
  others?: { name: string; summary: ArmSummary }[];
  /**
   * The share of the test images given to one class above which a model
   * "predicts a single class" (default 0.95).
   */
  nearlyAll?: number;
}

/**
 * The warnings a reader of a study's results must see, one sentence each:
 * a model whose test accuracy does not beat the majority-class baseline
 * (the mean over seeds, or some seeds), a model that predicts one class for
 * (nearly) all test images, and a teacher less accurate than the student
 * trained alone.
 *
 * @param input The classes, the baseline, the teacher and the arms.
 * @returns The warnings, in that order; empty when there is nothing to say.
 *
 * @example A student that answers one class
 * ```ts
 * import { evaluation, study } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const baseline = evaluation.majorityBaseline([1, 1, 0], [0, 0, 1, 1, 1]);
 * const arm = {
 *   accuracy: 0.6, accuracyCI95: null, accuracyHalfWidth95: null, accuracyPerSeed: [0.6],
 *   dominantPrediction: [{ classIndex: 1, share: 1 }],
 * } as unknown as study.ArmSummary;
 * const w = study.studyWarnings({ classes: ["a", "b"], baseline, student: { name: "Student", summary: arm } });
 * assert.equal(w.length, 2);
 * assert.match(w[0], /^Student: test accuracy 60\.0% does not beat the majority-class baseline of 60\.0%/);
 * assert.match(w[1], /^Student predicts "b" for 100% of the test images/);
 * ```
 */
export function studyWarnings(input: StudyWarningsInput): string[] {
  const { classes, baseline } = input;
  const nearlyAll = input.nearlyAll ?? 0.95;
  const out: string[] = [];
  const cls = (c: number) => `"${classes[c] ?? c}"`;
  const arms = [input.student, ...(input.others ?? [])];
  if (baseline) {
    const base = `the majority-class baseline of ${
      pct(baseline.accuracy)
    }% (always answering ${cls(baseline.classIndex)}, ${
      baseline.tied
        ? "first of the classes tied for most frequent in training"
        : "the most frequent class in training"
    })`;
    const t = input.teacher;
    if (t && !(t.summary.accuracy > baseline.accuracy)) {
      out.push(
        `${t.name}: test accuracy ${
          pct(t.summary.accuracy)
        }% does not beat ${base}: it has learned nothing that counting the classes would not give.`,
      );
    }
    for (const { name, summary: a } of arms) {
      const below = a.accuracyPerSeed.filter((x) => !(x > baseline.accuracy));
      if (!(a.accuracy > baseline.accuracy)) {
        out.push(
          `${name}: test accuracy ${
            pct(a.accuracy)
          }% does not beat ${base}: it has learned nothing that counting the classes would not give.`,
        );
      } else if (below.length) {
        out.push(
          `${name}: ${below.length} of ${
            plural(a.accuracyPerSeed.length, "seed")
          } ${below.length === 1 ? "scores" : "score"} at or below ${base}.`,
        );
      }
    }
  }
  // a single class is only telling when the test set has several
  const several = !baseline || baseline.balancedAccuracy < 1;
  if (several) {
    const one = (
      name: string,
      d: { classIndex: number; share: number }[],
      seeds?: number[],
    ) => {
      const hit = d.map((x, i) => [x, i] as const).filter(([x]) =>
        x.share >= nearlyAll
      );
      if (!hit.length) return;
      const shares = hit.map(([x]) => x.share);
      const lo = Math.min(...shares), hi = Math.max(...shares);
      const range = lo === hi
        ? `${(100 * lo).toFixed(0)}%`
        : `${(100 * lo).toFixed(0)}–${(100 * hi).toFixed(0)}%`;
      const names = [...new Set(hit.map(([x]) => cls(x.classIndex)))];
      const which = names.length === 1
        ? names[0]
        : `one class (${names.join(" or ")}, depending on the seed)`;
      const seedText = seeds
        ? ` (${hit.length} of ${plural(d.length, "seed")}: ${
          hit.map(([, i]) => seeds[i]).join(", ")
        })`
        : "";
      out.push(
        `${name} predicts ${which} for ${range} of the test images${seedText}: it answers (nearly) one class whatever the image, so its accuracy says little; read its sensitivity and specificity.`,
      );
    };
    if (input.teacher) {
      one(input.teacher.name, [input.teacher.summary.dominantPrediction]);
    }
    for (const { name, summary: a } of arms) {
      one(name, a.dominantPrediction ?? [], a.seeds);
    }
  }
  const t = input.teacher;
  const s = input.student.summary;
  if (t && t.summary.accuracy < s.accuracy) {
    out.push(
      `The teacher is less accurate on the test set (${
        pct(t.summary.accuracy)
      }%) than the student trained alone (${pct(s.accuracy)}%${
        s.accuracyHalfWidth95 != null ? ` ± ${pct(s.accuracyHalfWidth95)}` : ""
      }): a teacher no better than its student has little to teach, so KD is not expected to help here.`,
    );
  }
  return out;
}

/**
 * A Markdown table.
 *
 * @param columns The header cells.
 * @param rows The rows, as many cells each.
 * @returns The table, lines joined by `\n`, no final newline.
 */
export function markdownTable(
  columns: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  return [
    `| ${columns.join(" | ")} |`,
    `|${columns.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}
