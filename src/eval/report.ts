/**
 * The run report: one self-contained HTML page (inline SVG charts and CSS,
 * no scripts, no network requests) with the training curves of every model
 * and run, a confusion matrix per model, ROC curves for 2-class tasks, the
 * results tables and the run's configuration; and `metrics.jsonl`, one JSON
 * line per epoch and phase.
 *
 * `renderReport` is a pure function (data in, HTML out); `writeReport`
 * writes the page atomically. `Trainer` writes both files as it trains when
 * given `report: { dir }`.
 *
 * Every chart is an `<svg data-chart="...">` holding one
 * `<g data-series="..." data-points="N">` per series: a `<polyline>` through
 * its points and one `<circle>` per point (its `<title>` gives the value).
 *
 * @module
 */

import { writeFileAtomic } from "../io/_atomic.ts";
import { VERSION } from "../version.ts";
import { rocCurve } from "./metrics.ts";

/** One phase of an epoch (train, transfer or val): its figures. */
export interface PhaseRecord {
  /** Mean loss per sample. */
  loss: number;
  /** Accuracy (NaN for transfer batches, which have no labels). */
  acc: number;
  /** Samples. */
  n: number;
  /** Mean of each loss term per sample. */
  terms: Record<string, number>;
  /** Wall-clock seconds. */
  seconds: number;
}

/**
 * One epoch of training, as `Trainer.fit` records it in its history: the
 * plain data the report and `metrics.jsonl` are made from.
 */
export interface EpochRecord {
  /** 1-based epoch. */
  epoch: number;
  /** The labeled training batches. */
  train: PhaseRecord;
  /** The unlabeled transfer batches, when given. */
  transfer?: PhaseRecord;
  /** The validation phase, when a loader was given. */
  val?: PhaseRecord;
  /** Learning rate of each parameter group during the epoch. */
  lr: number[];
  /** Whether this epoch is the best so far. */
  best: boolean;
}

/** A model's predictions on the test set, for its confusion matrix and ROC curve. */
export interface ReportEvaluation {
  /** `confusion[true][predicted]` counts. */
  confusion: number[][];
  /** Per test sample, the score (probability) of the positive class: for the ROC curve (2 classes). */
  scores?: ArrayLike<number>;
  /** Per test sample, its true class (with `scores`). */
  labels?: ArrayLike<number>;
}

/** One training run of a model (e.g. one seed). */
export interface ReportRun {
  /** The run's label within its model, e.g. `"seed 0"` (none: the model's only run). */
  label?: string;
  /** Its epochs, as `Trainer.fit` returns them (none: not trained in this run). */
  history?: readonly EpochRecord[];
  /** Its evaluation on the test set. */
  test?: ReportEvaluation;
}

/** A model of the report (the teacher, the student, the KD student, ...). */
export interface ReportModel {
  /** Its name, e.g. `"Student, KD"`. */
  name: string;
  /** Its runs (seeds); their test confusion matrices are summed. */
  runs: ReportRun[];
}

/** A table of the report, cells as text. */
export interface ReportTable {
  /** A caption above the table. */
  caption?: string;
  /** Column headers. */
  columns: string[];
  /** Rows of cells, as many as columns. */
  rows: string[][];
}

/** Everything `renderReport` shows. Every string is escaped. */
export interface ReportData {
  /** The page's title (default `"kdeno run report"`). */
  title?: string;
  /** A sentence shown in bold under the title (e.g. the verdict). */
  summary?: string;
  /**
   * What a reader must know before trusting the numbers (a model below the
   * majority-class baseline, one that predicts a single class, ...): shown
   * under the summary in a highlighted list, a sentence each.
   */
  warnings?: string[];
  /** Class names, in class order (default `0`, `1`, ...). */
  classes?: string[];
  /** The positive class of the ROC curves (default 1). */
  positiveClass?: number;
  /** The models, in display order. */
  models: ReportModel[];
  /** Results tables (accuracy with its intervals, McNemar's p-values, ...). */
  tables?: ReportTable[];
  /** Paragraphs under the tables. */
  notes?: string[];
  /** The run's configuration; nested objects are shown as dotted keys. */
  config?: Record<string, unknown>;
  /** The seeds of the run. */
  seeds?: number[];
  /** kdeno's version (default this module's `VERSION`). */
  version?: string;
  /** The device the run used. */
  device?: string;
  /** When the run was made (default now, ISO 8601). */
  date?: string;
}

/** One line of `metrics.jsonl`: a phase of one epoch of one run. */
export interface MetricsLine {
  /** The model's name. */
  model: string;
  /** The run's label (e.g. `"seed 0"`), or null. */
  run: string | null;
  /** 1-based epoch. */
  epoch: number;
  /** `train` (labeled batches), `transfer` (unlabeled batches) or `val`. */
  phase: "train" | "transfer" | "val";
  /** Mean loss per sample (null when not finite). */
  loss: number | null;
  /** Accuracy (null for transfer batches, which have no labels). */
  acc: number | null;
  /** Samples. */
  n: number;
  /** Mean of each loss term per sample. */
  terms: Record<string, number | null>;
  /** Learning rate of the first parameter group during the epoch. */
  lr: number | null;
  /** Learning rate of every parameter group. */
  lrGroups: number[];
  /** Wall-clock seconds of the phase. */
  seconds: number;
  /** Whether the epoch is the best so far on the validation set. */
  best: boolean;
  /** When the line was written (ISO 8601). */
  time: string;
}

const PHASES = ["train", "transfer", "val"] as const;

function finiteOrNull(x: number | undefined): number | null {
  return x !== undefined && Number.isFinite(x) ? x : null;
}

/**
 * The `metrics.jsonl` lines of one epoch: one per phase present (`train`,
 * then `transfer`, then `val`).
 *
 * @param record The epoch, as in `FitResult.history`.
 * @param info The model's name, the run's label, and the time to stamp
 *   (default now).
 * @returns The lines, as objects (`JSON.stringify` each for the file).
 *
 * @example
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const phase = { loss: 0.5, acc: 0.75, n: 8, terms: { ce: 0.5 }, seconds: 1 };
 * const lines = evaluation.metricsLines(
 *   { epoch: 1, train: phase, val: phase, lr: [0.01], best: true },
 *   { model: "student", run: "seed 0" },
 * );
 * assert.deepEqual(lines.map((l) => l.phase), ["train", "val"]);
 * assert.equal(lines[0].lr, 0.01);
 * ```
 */
export function metricsLines(
  record: EpochRecord,
  info: { model: string; run?: string | null; time?: string },
): MetricsLine[] {
  const time = info.time ?? new Date().toISOString();
  const out: MetricsLine[] = [];
  for (const phase of PHASES) {
    const p: PhaseRecord | undefined = record[phase];
    if (!p) continue;
    out.push({
      model: info.model,
      run: info.run ?? null,
      epoch: record.epoch,
      phase,
      loss: finiteOrNull(p.loss),
      acc: finiteOrNull(p.acc),
      n: p.n,
      terms: Object.fromEntries(
        Object.entries(p.terms).map(([k, v]) => [k, finiteOrNull(v)]),
      ),
      lr: finiteOrNull(record.lr[0]),
      lrGroups: [...record.lr],
      seconds: p.seconds,
      best: record.best,
      time,
    });
  }
  return out;
}

/**
 * Appends lines to a JSON-lines file (created if missing), one
 * `JSON.stringify` per line, and flushes them to disk, so a run that
 * crashes later keeps them.
 *
 * @param path The file, e.g. `out/metrics.jsonl`.
 * @param lines The objects to append.
 */
export async function appendMetricsLines(
  path: string,
  lines: readonly object[],
): Promise<void> {
  if (!lines.length) return;
  const data = new TextEncoder().encode(
    lines.map((l) => JSON.stringify(l) + "\n").join(""),
  );
  const file = await Deno.open(path, {
    append: true,
    create: true,
    write: true,
  });
  try {
    let written = 0;
    while (written < data.length) {
      written += await file.write(data.subarray(written));
    }
    await file.syncData();
  } finally {
    file.close();
  }
}

/**
 * A test-set evaluation as the report wants it: the confusion matrix and,
 * with 2 classes, the positive class's probability per sample.
 *
 * @param result What `evaluate` returns (or any object with its fields).
 * @param positiveClass The positive class of the ROC curve (default 1).
 * @returns The report's evaluation.
 */
export function reportEvaluation(
  result: {
    confusion: number[][];
    labels: ArrayLike<number>;
    probabilities: ArrayLike<number>;
    numClasses: number;
  },
  positiveClass = 1,
): ReportEvaluation {
  const out: ReportEvaluation = {
    confusion: result.confusion.map((r) => [...r]),
  };
  if (result.numClasses === 2) {
    const n = result.labels.length;
    const scores = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      scores[i] = result.probabilities[i * 2 + positiveClass];
    }
    out.scores = scores;
    out.labels = Int32Array.from(result.labels);
  }
  return out;
}

// ---- HTML -----------------------------------------------------------------------

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Any value as display text, never throwing: a string as it is; a number,
 * bigint, boolean or symbol by `String`; null and undefined as `—`; any
 * other object as JSON (bigints as digits), or by `String` when JSON fails
 * (a cycle, a throwing `toJSON`).
 */
function text(v: unknown): string {
  switch (typeof v) {
    case "string":
      return v;
    case "number":
    case "bigint":
    case "boolean":
    case "symbol":
      return String(v);
    case "undefined":
      return "—";
  }
  if (v === null) return "—";
  try {
    const json = JSON.stringify(
      v,
      (_k, x) => typeof x === "bigint" ? String(x) : x,
    );
    if (json !== undefined) return json;
  } catch {
    // a cycle, a throwing toJSON or getter: fall back to String
  }
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/**
 * A value that should be a number (a count, an epoch, a metric) as a
 * number: numbers as they are, numeric strings (JSON read back), bigints
 * and booleans by `Number`, anything else NaN.
 */
function toNumber(v: unknown): number {
  switch (typeof v) {
    case "number":
      return v;
    case "string":
    case "bigint":
    case "boolean":
      return Number(v);
  }
  return NaN;
}

/**
 * Escapes a value for HTML content and attribute values (always
 * double-quoted here). Every value the report puts in its page goes
 * through it, whatever its type: a string is escaped as it is, anything
 * else first becomes text (null and undefined as `—`, objects as JSON).
 *
 * @param s Any value.
 * @returns Its text with `& < > " '` escaped.
 *
 * @example
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.equal(evaluation.escapeHtml(`<a href="x">`), "&lt;a href=&quot;x&quot;&gt;");
 * ```
 */
export function escapeHtml(s: unknown): string {
  return text(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}
const esc = escapeHtml;

interface Series {
  name: string;
  points: [number, number][];
  color: string;
  dash: string;
  /** Text of each point's tooltip. */
  label: (x: number, y: number) => string;
}

interface ChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xDomain: [number, number];
  yDomain: [number, number];
  xTicks: number[];
  yTicks: number[];
  diagonal?: boolean;
  radius?: number;
}

const PHASE_COLORS: Record<string, string> = {
  train: "#1f77b4",
  transfer: "#2ca02c",
  val: "#ff7f0e",
};
const MODEL_COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#8c564b",
  "#e377c2",
  "#17becf",
];
const DASHES = ["", "6 3", "2 2", "8 3 2 3", "1 3", "10 4"];

/** Round, readable ticks covering [lo, hi]; the domain becomes [first, last]. */
function niceTicks(lo: number, hi: number, count = 5, integer = false) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (!(hi > lo)) {
    const d = Math.abs(lo) * 0.1 || 0.5;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  let step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(lo / step + 1e-9) * step;
  const last = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) {
    ticks.push(+(first + i * step).toPrecision(12));
  }
  return { ticks, domain: [first, last] as [number, number], step };
}

function tickText(v: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(decimals, 6));
}

function num(x: number): string {
  return String(Math.round(x * 100) / 100);
}

const W = 520;
const H = 300;
const M = { left: 58, right: 16, top: 30, bottom: 46 };

function svgChart(c: ChartSpec): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const [x0, x1] = c.xDomain;
  const [y0, y1] = c.yDomain;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0 || 1)) * pw;
  const sy = (y: number) => M.top + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const xStep = c.xTicks.length > 1 ? c.xTicks[1] - c.xTicks[0] : 1;
  const yStep = c.yTicks.length > 1 ? c.yTicks[1] - c.yTicks[0] : 1;
  const parts: string[] = [];
  parts.push(
    `<svg data-chart="${
      esc(c.id)
    }" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${
      esc(c.title)
    }">`,
    `<text class="title" x="${M.left}" y="18">${esc(c.title)}</text>`,
    `<rect class="plot" x="${M.left}" y="${M.top}" width="${pw}" height="${ph}"/>`,
  );
  for (const t of c.yTicks) {
    const y = num(sy(t));
    parts.push(
      `<line class="grid" x1="${M.left}" x2="${
        M.left + pw
      }" y1="${y}" y2="${y}"/>`,
      `<text class="tick" x="${
        M.left - 6
      }" y="${y}" text-anchor="end" dominant-baseline="middle">${
        tickText(t, yStep)
      }</text>`,
    );
  }
  for (const t of c.xTicks) {
    const x = num(sx(t));
    parts.push(
      `<line class="grid" x1="${x}" x2="${x}" y1="${M.top}" y2="${
        M.top + ph
      }"/>`,
      `<text class="tick" x="${x}" y="${
        M.top + ph + 16
      }" text-anchor="middle">${tickText(t, xStep)}</text>`,
    );
  }
  parts.push(
    `<text class="axis" x="${M.left + pw / 2}" y="${
      H - 8
    }" text-anchor="middle">${esc(c.xLabel)}</text>`,
    `<text class="axis" transform="translate(14 ${
      M.top + ph / 2
    }) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`,
  );
  if (c.diagonal) {
    parts.push(
      `<line class="chance" x1="${num(sx(0))}" y1="${num(sy(0))}" x2="${
        num(sx(1))
      }" y2="${num(sy(1))}"/>`,
    );
  }
  const r = c.radius ?? 3;
  for (const s of c.series) {
    const pts = s.points.map(([x, y]) => `${num(sx(x))},${num(sy(y))}`);
    parts.push(
      `<g class="series" data-series="${
        esc(s.name)
      }" data-points="${s.points.length}" stroke="${s.color}" fill="${s.color}">`,
      `<polyline fill="none" points="${pts.join(" ")}"${
        s.dash ? ` stroke-dasharray="${s.dash}"` : ""
      }/>`,
    );
    for (const [x, y] of s.points) {
      parts.push(
        `<circle cx="${num(sx(x))}" cy="${num(sy(y))}" r="${r}"><title>${
          esc(`${s.name}: ${s.label(x, y)}`)
        }</title></circle>`,
      );
    }
    parts.push("</g>");
  }
  parts.push("</svg>");
  const legend = c.series.map((s) =>
    `<li><svg width="30" height="10" aria-hidden="true"><line x1="0" y1="5" x2="30" y2="5" stroke="${s.color}" stroke-width="2"${
      s.dash ? ` stroke-dasharray="${s.dash}"` : ""
    }/></svg>${esc(s.name)}</li>`
  ).join("");
  return `<figure class="chart">${
    parts.join("\n")
  }<ul class="legend">${legend}</ul></figure>`;
}

function runName(model: ReportModel, run: ReportRun, i: number): string {
  return text(
    run.label ?? (model.runs.length > 1 ? `run ${i + 1}` : model.name),
  );
}

/**
 * The series of one model's curve chart: per run and phase, the epochs
 * whose value is finite.
 */
function curveSeries(
  model: ReportModel,
  metric: "loss" | "acc",
): Series[] {
  const out: Series[] = [];
  model.runs.forEach((run, i) => {
    if (!run.history?.length) return;
    for (const phase of PHASES) {
      const points: [number, number][] = [];
      for (const e of run.history!) {
        const x = toNumber(e.epoch), y = toNumber(e[phase]?.[metric]);
        if (Number.isFinite(x) && Number.isFinite(y)) points.push([x, y]);
      }
      if (!points.length) continue;
      const label = model.runs.length > 1 || run.label
        ? `${runName(model, run, i)} · ${phase}`
        : phase;
      out.push({
        name: label,
        points,
        color: PHASE_COLORS[phase],
        dash: DASHES[i % DASHES.length],
        label: (x, y) => `epoch ${x}, ${metric} ${y.toFixed(4)}`,
      });
    }
  });
  return out;
}

function extent(series: Series[], axis: 0 | 1): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const p of s.points) {
      lo = Math.min(lo, p[axis]);
      hi = Math.max(hi, p[axis]);
    }
  }
  return [lo, hi];
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") ||
    "model";
}

function curvesSection(data: ReportData): string {
  const loss = data.models.map((m) => curveSeries(m, "loss"));
  const acc = data.models.map((m) => curveSeries(m, "acc"));
  const all = data.models.flatMap((m) => m.runs).flatMap((r) =>
    r.history ?? []
  );
  if (!all.length) {
    return `<section id="curves"><h2>Training curves</h2><p>No training history in this run.</p></section>`;
  }
  const maxEpoch = Math.max(
    1,
    ...all.map((e) => toNumber(e.epoch)).filter(Number.isFinite),
  );
  const xt = niceTicks(1, Math.max(2, maxEpoch), Math.min(10, maxEpoch), true);
  const xDomain: [number, number] = [1, Math.max(2, maxEpoch)];
  const xTicks = xt.ticks.filter((t) => t >= 1 && t <= xDomain[1]);
  const [lLo, lHi] = extent(loss.flat(), 1);
  const lt = niceTicks(Math.min(0, lLo), lHi);
  const [aLo, aHi] = extent(acc.flat(), 1);
  const at = niceTicks(Math.max(0, aLo), Math.min(1, aHi));
  const used = new Map<string, number>();
  const blocks = data.models.map((model, i) => {
    const m = { ...model, name: text(model.name) };
    let id = slug(m.name);
    const k = used.get(id) ?? 0;
    used.set(id, k + 1);
    if (k) id += `-${k + 1}`;
    if (!loss[i].length && !acc[i].length) {
      return `<div class="model"><h3>${
        esc(m.name)
      }</h3><p>Not trained in this run (no training history).</p></div>`;
    }
    const charts = [
      loss[i].length
        ? svgChart({
          id: `loss-${id}`,
          title: `${m.name}: loss`,
          xLabel: "epoch",
          yLabel: "loss per sample",
          series: loss[i],
          xDomain,
          yDomain: lt.domain,
          xTicks,
          yTicks: lt.ticks,
        })
        : "",
      acc[i].length
        ? svgChart({
          id: `accuracy-${id}`,
          title: `${m.name}: accuracy`,
          xLabel: "epoch",
          yLabel: "accuracy",
          series: acc[i],
          xDomain,
          yDomain: at.domain,
          xTicks,
          yTicks: at.ticks,
        })
        : "",
    ];
    return `<div class="model"><h3>${esc(m.name)}</h3><div class="charts">${
      charts.join("")
    }</div></div>`;
  });
  return `<section id="curves"><h2>Training curves</h2><p class="note">Per epoch: train (labeled batches, in training mode; its loss is the training loss, for KD the distillation loss), transfer (unlabeled batches: loss only) and val (cross-entropy, evaluation mode); one line style per run.</p>${
    blocks.join("")
  }</section>`;
}

function confusionSection(data: ReportData): string {
  const blocks: string[] = [];
  for (const model of data.models) {
    const m = { ...model, name: text(model.name) };
    const tests = m.runs.filter((r) => r.test).map((r) => r.test!);
    if (!tests.length) continue;
    const k = tests[0].confusion.length;
    const sum = Array.from({ length: k }, () => Array(k).fill(0));
    for (const t of tests) {
      if (t.confusion.length !== k || t.confusion.some((r) => r.length !== k)) {
        throw new RangeError(
          `Cannot render the report: the confusion matrices of "${m.name}" differ in size`,
        );
      }
      t.confusion.forEach((row, i) =>
        row.forEach((v, j) => sum[i][j] += toNumber(v))
      );
    }
    const cls = (i: number) => data.classes?.[i] ?? i;
    const rowTotals = sum.map((r) => r.reduce((a, b) => a + b, 0));
    const head = `<tr><th scope="col">true \\ predicted</th>${
      sum.map((_, j) => `<th scope="col">${esc(cls(j))}</th>`).join("")
    }</tr>`;
    const body = sum.map((row, i) =>
      `<tr><th scope="row">${esc(cls(i))}</th>${
        row.map((v, j) => {
          const f = rowTotals[i] ? v / rowTotals[i] : 0;
          const bg = i === j
            ? `rgba(31,119,180,${(0.1 + 0.7 * f).toFixed(3)})`
            : `rgba(214,39,40,${(0.05 + 0.6 * f).toFixed(3)})`;
          return `<td data-count="${esc(v)}" style="background:${bg}">${
            esc(v)
          }<small>${(100 * f).toFixed(1)}%</small></td>`;
        }).join("")
      }</tr>`
    ).join("");
    const caption = `${m.name}${
      tests.length > 1 ? ` (summed over ${tests.length} runs)` : ""
    }`;
    blocks.push(
      `<table class="confusion" data-confusion="${esc(m.name)}"><caption>${
        esc(caption)
      }</caption><thead>${head}</thead><tbody>${body}</tbody></table>`,
    );
  }
  if (!blocks.length) return "";
  return `<section id="confusion"><h2>Confusion matrices (test)</h2><p class="note">Rows: true class; columns: predicted class; the small figure is the share of the row.</p><div class="matrices">${
    blocks.join("")
  }</div></section>`;
}

function rocSection(data: ReportData): string {
  const series: Series[] = [];
  const pos = toNumber(data.positiveClass ?? 1);
  data.models.forEach((model, mi) => {
    const m = { ...model, name: text(model.name) };
    m.runs.forEach((run, ri) => {
      const t = run.test;
      if (!t?.scores || !t.labels || t.confusion.length !== 2) return;
      const positives = Array.from(t.labels, (l) => l === pos);
      const roc = rocCurve(t.scores, positives);
      if (!Number.isFinite(roc.auc)) return;
      const name = m.runs.length > 1 || run.label
        ? `${m.name} · ${runName(m, run, ri)}`
        : m.name;
      series.push({
        name: `${name} (AUC ${roc.auc.toFixed(3)})`,
        points: roc.fpr.map((f, i) => [f, roc.tpr[i]]),
        color: MODEL_COLORS[mi % MODEL_COLORS.length],
        dash: DASHES[ri % DASHES.length],
        label: (x, y) => `FPR ${x.toFixed(3)}, TPR ${y.toFixed(3)}`,
      });
    });
  });
  if (!series.length) return "";
  const ticks = niceTicks(0, 1, 5);
  const cls = data.classes?.[pos] ?? pos;
  return `<section id="roc"><h2>ROC curves (test)</h2><p class="note">Positive class: ${
    esc(cls)
  }; one point per distinct score; the dashed diagonal is chance.</p>${
    svgChart({
      id: "roc",
      title: "ROC",
      xLabel: "false-positive rate",
      yLabel: "true-positive rate",
      series,
      xDomain: [0, 1],
      yDomain: [0, 1],
      xTicks: ticks.ticks,
      yTicks: ticks.ticks,
      diagonal: true,
      radius: 1.6,
    })
  }</section>`;
}

function warningsSection(data: ReportData): string {
  const w = data.warnings ?? [];
  if (!w.length) return "";
  return `<section id="warnings" class="warnings" role="note"><h2>Warnings</h2><ul>${
    w.map((x) => `<li>${esc(x)}</li>`).join("")
  }</ul></section>`;
}

function tablesSection(data: ReportData): string {
  const parts: string[] = [];
  for (const t of data.tables ?? []) {
    parts.push(
      `<table class="results">${
        t.caption ? `<caption>${esc(t.caption)}</caption>` : ""
      }<thead><tr>${
        t.columns.map((c) => `<th scope="col">${esc(c)}</th>`).join("")
      }</tr></thead><tbody>${
        t.rows.map((r) =>
          `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`
        ).join("")
      }</tbody></table>`,
    );
  }
  for (const n of data.notes ?? []) parts.push(`<p>${esc(n)}</p>`);
  if (!parts.length) return "";
  return `<section id="results"><h2>Results</h2>${parts.join("")}</section>`;
}

/** Nested objects as dotted keys; an object met again on its own path is `[circular]`. */
function flatten(
  obj: Record<string, unknown>,
  prefix = "",
  out: [string, unknown][] = [],
  path: Set<object> = new Set([obj]),
): [string, unknown][] {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) {
      if (path.has(v)) {
        out.push([key, "[circular]"]);
        continue;
      }
      path.add(v);
      flatten(v as Record<string, unknown>, key, out, path);
      path.delete(v);
    } else {
      out.push([key, v]);
    }
  }
  return out;
}

function runSection(data: ReportData): string {
  const rows: [string, unknown][] = [
    ["kdeno version", data.version ?? VERSION],
    ["device", data.device],
    ["date", data.date ?? new Date().toISOString()],
  ];
  if (data.seeds?.length) {
    rows.push(["seeds", data.seeds.map(text).join(", ")]);
  }
  if (data.classes?.length) {
    rows.push([
      "classes",
      data.classes.map((c, i) => `${i} = ${text(c)}`).join(", "),
    ]);
  }
  const config = flatten(data.config ?? {});
  const tr = (k: string, v: unknown) =>
    `<tr><th scope="row">${esc(k)}</th><td>${esc(v)}</td></tr>`;
  return `<section id="run"><h2>Run</h2><table class="kv" data-table="run"><tbody>${
    rows.map(([k, v]) => tr(k, v)).join("")
  }</tbody></table>${
    config.length
      ? `<h3>Configuration</h3><table class="kv" data-table="config"><tbody>${
        config.map(([k, v]) => tr(k, v)).join("")
      }</tbody></table>`
      : ""
  }</section>`;
}

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1120px; padding: 0 16px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.summary { font-weight: 600; }
.warnings { background: #fff4e5; border: 1px solid #e0a040; border-radius: 4px; padding: 2px 12px; margin: 10px 0; }
.warnings h2 { border: none; margin: 8px 0 4px; color: #8a4b00; }
.warnings li { margin: 3px 0; }
.note { color: #555; margin: 4px 0 8px; }
table { border-collapse: collapse; margin: 8px 0 14px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f3f3f3; }
table.results td { font-variant-numeric: tabular-nums; }
table.kv th { background: #f7f7f7; font-weight: 500; }
table.confusion td { text-align: center; min-width: 64px; font-variant-numeric: tabular-nums; }
table.confusion small { display: block; color: #333; font-size: 11px; }
.matrices { display: flex; flex-wrap: wrap; gap: 24px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg text.title { font-size: 13px; font-weight: 600; }
svg text.axis { font-size: 12px; }
svg rect.plot { fill: #fcfcfc; stroke: #bbb; }
svg line.grid { stroke: #e6e6e6; }
svg line.chance { stroke: #999; stroke-dasharray: 4 4; }
svg g.series polyline { stroke-width: 1.8; }
svg g.series circle { stroke: none; }
ul.legend { list-style: none; padding: 0; margin: 2px 0 0 58px; display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 12px; }
ul.legend svg { vertical-align: middle; margin-right: 4px; }
`;

/**
 * The report page: a self-contained HTML document (inline CSS and SVG, no
 * scripts, and a Content-Security-Policy that forbids every request).
 *
 * @param data The models with their runs' histories and test evaluations,
 *   the results tables, and the run's configuration.
 * @returns The HTML.
 * @throws RangeError when a model's runs have confusion matrices of
 *   different sizes.
 *
 * @example
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const phase = (loss: number, acc: number) => ({ loss, acc, n: 10, terms: {}, seconds: 1 });
 * const html = evaluation.renderReport({
 *   models: [{
 *     name: "Student",
 *     runs: [{
 *       history: [
 *         { epoch: 1, train: phase(0.7, 0.5), val: phase(0.6, 0.6), lr: [0.01], best: true },
 *         { epoch: 2, train: phase(0.5, 0.7), val: phase(0.5, 0.7), lr: [0.01], best: true },
 *       ],
 *       test: { confusion: [[4, 1], [2, 3]] },
 *     }],
 *   }],
 * });
 * assert.match(html, /<svg data-chart="loss-student"/);
 * assert.equal(html.match(/<g class="series"/g)?.length, 4);
 * ```
 */
export function renderReport(data: ReportData): string {
  const title = data.title ?? "kdeno run report";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${esc(title)}</h1>${
    data.summary ? `<p class="summary">${esc(data.summary)}</p>` : ""
  }${warningsSection(data)}</header>
${tablesSection(data)}
${curvesSection(data)}
${confusionSection(data)}
${rocSection(data)}
${runSection(data)}
</body>
</html>
`;
}

/**
 * Renders the report and writes it atomically (a temporary file in the same
 * folder, flushed, then renamed over `path`).
 *
 * @param path The HTML file, e.g. `out/report.html`.
 * @param data What to show (see `renderReport`).
 */
export async function writeReport(
  path: string,
  data: ReportData,
): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(renderReport(data)));
}
