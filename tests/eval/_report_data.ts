/**
 * Hand-made report data for the report tests: training histories with a
 * transfer phase, a run stopped early, non-finite values, a model with no
 * history, test predictions with tied scores, and names that are HTML; plus
 * what a page drawn from it must show, counted straight from the data.
 *
 * @module
 */

import { evaluation } from "../../mod.ts";

/** A name, label and config value that would be markup if not escaped. */
export const HOSTILE = `<script>alert("x")</script> & <b>'bold'</b>`;

/** A small seeded generator (an LCG), independent of kdeno's. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function phase(
  loss: number,
  acc: number,
  n: number,
): evaluation.PhaseRecord {
  return { loss, acc, n, terms: { ce: loss }, seconds: 0.25 };
}

/**
 * A history of `epochs` epochs with decreasing loss and rising accuracy.
 *
 * @param rand The generator.
 * @param epochs Number of epochs.
 * @param options `transfer`: add a transfer phase (accuracy NaN);
 *   `nanValLossAt`: the 1-based epoch whose val loss is NaN.
 * @returns The records.
 */
export function history(
  rand: () => number,
  epochs: number,
  options: { transfer?: boolean; nanValLossAt?: number } = {},
): evaluation.EpochRecord[] {
  const out: evaluation.EpochRecord[] = [];
  for (let e = 1; e <= epochs; e++) {
    const loss = 0.7 / e + 0.05 * rand();
    const acc = Math.min(0.99, 0.5 + 0.07 * e + 0.03 * rand());
    const rec: evaluation.EpochRecord = {
      epoch: e,
      train: phase(loss, acc, 96),
      val: phase(
        e === options.nanValLossAt ? NaN : loss + 0.05,
        acc - 0.02,
        32,
      ),
      lr: [0.01 * (1 - (e - 1) / epochs)],
      best: e === epochs,
    };
    if (options.transfer) rec.transfer = phase(loss * 0.5, NaN, 64);
    out.push(rec);
  }
  return out;
}

/**
 * A test-set evaluation: `n` samples, alternating labels, scores rounded to
 * two decimals (so some tie), predicted positive at 0.5.
 *
 * @param rand The generator.
 * @param n Samples.
 * @param skill How far apart the two classes' scores are.
 * @returns The evaluation, with scores and labels.
 */
export function binaryTest(
  rand: () => number,
  n: number,
  skill: number,
): evaluation.ReportEvaluation {
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  const scores = Float64Array.from(
    labels,
    (l) =>
      Math.round(100 * Math.min(1, (1 - skill) * rand() + skill * l)) /
      100,
  );
  const preds = Array.from(scores, (s) => (s >= 0.5 ? 1 : 0));
  return {
    confusion: evaluation.confusionMatrix(preds, labels, 2),
    scores,
    labels,
  };
}

/**
 * The report of a 2-class run: a teacher, two student arms over three
 * seeds (one stopped early, one KD run with transfer data and a NaN val
 * loss), and a model with an HTML name.
 *
 * @returns The data.
 */
export function binaryReport(): evaluation.ReportData {
  const rand = lcg(7);
  const seeds = [0, 1, 2];
  return {
    title: `Report ${HOSTILE}`,
    summary: `KD did not reliably beat the student ${HOSTILE}`,
    classes: ["shirt", `t<shirt>`],
    positiveClass: 1,
    models: [
      {
        name: "Teacher (ResNet-18)",
        runs: [{ history: history(rand, 6), test: binaryTest(rand, 80, 0.5) }],
      },
      {
        name: "Student, no KD",
        runs: seeds.map((s) => ({
          label: `seed ${s}`,
          // seed 2 stopped early after 4 epochs
          history: history(rand, s === 2 ? 4 : 6),
          test: binaryTest(rand, 80, 0.3),
        })),
      },
      {
        name: "Student, KD",
        runs: seeds.map((s) => ({
          label: `seed ${s}`,
          history: history(rand, 6, {
            transfer: true,
            nanValLossAt: s === 1 ? 3 : undefined,
          }),
          test: binaryTest(rand, 80, 0.4),
        })),
      },
      {
        name: HOSTILE,
        runs: [{
          label: `seed <9>`,
          history: history(rand, 3),
          test: binaryTest(rand, 40, 0.2),
        }],
      },
    ],
    tables: [{
      caption: "Test accuracy",
      columns: ["Model", "Test accuracy %", "McNemar p"],
      rows: [
        ["Teacher (ResNet-18)", "84.8 (80.9–87.9)", ""],
        ["Student, no KD", "86.0 ± 2.2", ""],
        ["Student, KD", "84.6 ± 3.2", "0.041"],
        [HOSTILE, "50.0", "1.0"],
      ],
    }],
    notes: [`KD − no KD: −1.4 points ${HOSTILE}`],
    config: {
      data: `/data/${HOSTILE}`,
      epochs: 6,
      kd: { preset: "recommended", temperature: 4, alpha: 0.9 },
      transfer: null,
    },
    seeds,
    version: "0.1.0",
    device: "cpu",
    date: "2026-01-02T03:04:05.000Z",
  };
}

/**
 * The report of a 3-class run: confusion matrices, no ROC curves, and a
 * teacher that was loaded rather than trained.
 *
 * @returns The data.
 */
export function threeClassReport(): evaluation.ReportData {
  const rand = lcg(11);
  const confusion = () =>
    [0, 1, 2].map((i) =>
      [0, 1, 2].map((j) => Math.round((i === j ? 20 : 4) * (0.5 + rand())))
    );
  return {
    classes: ["cat", "dog", "bird"],
    models: [
      { name: "Teacher", runs: [{ test: { confusion: confusion() } }] },
      {
        name: "Student",
        runs: [0, 1].map((s) => ({
          label: `seed ${s}`,
          history: history(rand, 5),
          test: { confusion: confusion() },
        })),
      },
    ],
    seeds: [0, 1],
    device: "cpu",
  };
}

/** A chart as the page must show it. */
export interface ExpectedChart {
  /** The chart's accessible label (its title). */
  label: string;
  /** Its series: name and number of points, sorted by name. */
  series: [string, number][];
}

/**
 * The charts a page made from `data` must show, counted from the data
 * alone: per model with a history, a loss and an accuracy chart with one
 * series per run and phase that has a finite value (one point per such
 * epoch); with 2 classes, one ROC chart with one series per run with
 * scores (one point per distinct score, plus (0, 0)).
 *
 * @param data The report data.
 * @returns The charts.
 */
export function expectedCharts(data: evaluation.ReportData): ExpectedChart[] {
  const out: ExpectedChart[] = [];
  for (const m of data.models) {
    for (
      const [metric, key] of [["loss", "loss"], ["accuracy", "acc"]] as const
    ) {
      const series: [string, number][] = [];
      m.runs.forEach((run, i) => {
        for (const ph of ["train", "transfer", "val"] as const) {
          const n = (run.history ?? []).filter((e) =>
            Number.isFinite(e[ph]?.[key] ?? NaN)
          ).length;
          if (!n) {
            continue;
          }
          const runName = run.label ?? `run ${i + 1}`;
          const name = m.runs.length > 1 || run.label
            ? `${runName} · ${ph}`
            : ph;
          series.push([name, n]);
        }
      });
      if (series.length) {
        out.push({ label: `${m.name}: ${metric}`, series: series.sort() });
      }
    }
  }
  const roc: [string, number][] = [];
  const pos = data.positiveClass ?? 1;
  for (const m of data.models) {
    m.runs.forEach((run, i) => {
      const t = run.test;
      if (!t?.scores || !t.labels || t.confusion.length !== 2) return;
      const labels = Array.from(t.labels);
      if (!labels.includes(pos) || labels.every((l) => l === pos)) return;
      const name = m.runs.length > 1 || run.label
        ? `${m.name} · ${run.label ?? `run ${i + 1}`}`
        : m.name;
      roc.push([name, new Set(Array.from(t.scores)).size + 1]);
    });
  }
  if (roc.length) out.push({ label: "ROC", series: roc.sort() });
  return out;
}
