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

import type { EvaluateResult } from "../eval/metrics.ts";
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
 * A difference of accuracies in percentage points, signed: `+1.5`, `-6.0`.
 *
 * @param x A difference of fractions (0.015).
 * @returns The points with one decimal and a sign.
 */
export function formatPoints(x: number): string {
  return `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
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

/** The columns of the results table, in order. */
export const RESULT_COLUMNS: readonly string[] = [
  "Model",
  "Test accuracy %",
  "Sens. / spec. %",
  "Params",
  "MACs/image",
  "Size",
  "Latency b=1 (ms)",
  "Throughput b=32 (img/s)",
  "Speedup",
];

const pct = (x: number) => (100 * x).toFixed(1);
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
 * only, then sensitivity / specificity, cost and speed-up.
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
 *   accuracy: 0.9, accuracyHalfWidth95: 0.02, sensitivity: 0.8, specificity: 1,
 *   params: 1500, macs: 2e6, sizeBytes: 6000, latencyMs: 0.5, throughput: 9000, speedup: 4,
 * });
 * assert.deepEqual(row, ["Student", "90.0 ± 2.0", "80.0 / 100.0", "1.5 k", "2.00 M", "6.0 kB", "0.50", "9000", "4.0×"]);
 * ```
 */
export function resultRow(
  name: string,
  e: {
    accuracy: number;
    accuracyHalfWidth95?: number | null;
    accuracyCI95?: readonly number[] | null;
    sensitivity?: number;
    specificity?: number;
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
  return [
    name,
    acc,
    `${pct(e.sensitivity ?? NaN)} / ${pct(e.specificity ?? NaN)}`,
    human(e.params),
    human(e.macs),
    bytes(e.sizeBytes),
    e.latencyMs.toFixed(2),
    e.throughput.toFixed(0),
    `${e.speedup.toFixed(1)}×`,
  ];
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
