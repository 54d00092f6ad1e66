// The run report without a browser: rocCurve, escaping, the page's
// structure, metrics.jsonl lines, and the Trainer's report option.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  evaluation,
  manualSeed,
  models,
  optim,
  train as training,
  VERSION,
} from "../../mod.ts";
import {
  binaryReport,
  binaryTest,
  expectedCharts,
  history,
  HOSTILE,
  lcg,
  threeClassReport,
} from "./_report_data.ts";
import { loaders } from "../train/_data.ts";

Deno.test("rocCurve() gives a point per distinct score, ties included", () => {
  // sorted by score: 0.9 (pos), 0.5 (pos), 0.5 (neg), 0.2 (neg)
  const roc = evaluation.rocCurve([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]);
  assert.deepEqual(roc.thresholds, [Infinity, 0.9, 0.5, 0.2]);
  assert.deepEqual(roc.fpr, [0, 0, 0.5, 1]);
  assert.deepEqual(roc.tpr, [0, 0.5, 1, 1]);
  // trapezoids: 0.5 * (0.5 + 1) / 2 + 0.5 * 1
  assert.equal(roc.auc, 0.875);
  assert.equal(roc.positives, 2);
  assert.equal(roc.negatives, 2);
  // scikit-learn's documented example (roc_curve, drop_intermediate=False)
  const sk = evaluation.rocCurve([0.1, 0.4, 0.35, 0.8], [
    false,
    false,
    true,
    true,
  ]);
  assert.deepEqual(sk.fpr, [0, 0, 0.5, 0.5, 1]);
  assert.deepEqual(sk.tpr, [0, 0.5, 0.5, 1, 1]);
  assert.deepEqual(sk.thresholds, [Infinity, 0.8, 0.4, 0.35, 0.1]);
});

Deno.test("rocCurve()'s area equals rocAuc() on random scores with ties", () => {
  const rand = lcg(3);
  for (let trial = 0; trial < 20; trial++) {
    const n = 5 + Math.floor(rand() * 200);
    const scores = Array.from(
      { length: n },
      () => Math.round(rand() * 20) / 20,
    );
    const pos = scores.map((s) => (rand() < 0.3 + 0.4 * s ? 1 : 0));
    if (!pos.includes(1) || !pos.includes(0)) continue;
    const roc = evaluation.rocCurve(scores, pos);
    assert.ok(Math.abs(roc.auc - evaluation.rocAuc(scores, pos)) < 1e-12);
    assert.equal(roc.fpr.length, new Set(scores).size + 1);
    assert.deepEqual([roc.fpr.at(-1), roc.tpr.at(-1)], [1, 1]);
    for (let i = 1; i < roc.fpr.length; i++) {
      assert.ok(roc.fpr[i] >= roc.fpr[i - 1] && roc.tpr[i] >= roc.tpr[i - 1]);
      assert.ok(roc.thresholds[i] < roc.thresholds[i - 1]);
    }
  }
});

Deno.test("rocCurve() with one class absent, and bad input", () => {
  const roc = evaluation.rocCurve([0.2, 0.7], [1, 1]);
  assert.ok(Number.isNaN(roc.auc));
  assert.ok(roc.fpr.every(Number.isNaN));
  assert.deepEqual(roc.tpr, [0, 0.5, 1]);
  assert.throws(
    () => evaluation.rocCurve([0.1], [1, 0]),
    /1 scores and 2 labels/,
  );
  assert.throws(
    () => evaluation.rocCurve([0.1, NaN], [1, 0]),
    /sample 1 is NaN/,
  );
});

Deno.test("escapeHtml() escapes the five HTML characters", () => {
  assert.equal(
    evaluation.escapeHtml(`<a href="x" title='y'>&</a>`),
    "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
  );
});

/** Every `<g class="series" ...>...</g>` of one `<svg data-chart>`. */
function chartsOf(
  html: string,
): Map<
  string,
  { name: string; circles: number; declared: number; polyline: number }[]
> {
  const out = new Map();
  for (
    const m of html.matchAll(
      /<svg data-chart="([^"]*)"[^>]*>([\s\S]*?)<\/svg>/g,
    )
  ) {
    const series = [
      ...m[2].matchAll(
        /<g class="series" data-series="([^"]*)" data-points="(\d+)"[^>]*>([\s\S]*?)<\/g>/g,
      ),
    ]
      .map((g) => ({
        name: g[1],
        declared: Number(g[2]),
        circles: (g[3].match(/<circle /g) ?? []).length,
        polyline:
          (/points="([^"]*)"/.exec(g[3])?.[1] ?? "").split(" ").filter(Boolean)
            .length,
      }));
    out.set(m[1], series);
  }
  return out;
}

Deno.test("renderReport(): a self-contained page with every chart, series and point", () => {
  const data = binaryReport();
  const html = evaluation.renderReport(data);
  // nothing to fetch: no scripts, links, sources or URLs, and a CSP forbidding requests
  assert.match(html, /^<!doctype html>/);
  assert.match(
    html,
    /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/,
  );
  assert.doesNotMatch(
    html,
    /<script|<link|<img|<iframe|src=|href=|@import|url\(/i,
  );
  assert.doesNotMatch(html, /https?:\/\//);
  // every user string is escaped
  assert.ok(!html.includes(HOSTILE));
  assert.ok(html.includes(evaluation.escapeHtml(HOSTILE)));
  assert.ok(html.includes("t&lt;shirt&gt;"));
  assert.ok(html.includes("seed &lt;9&gt;"));
  // charts: series and points as counted from the data
  const charts = chartsOf(html);
  const expected = expectedCharts(data);
  assert.equal(charts.size, expected.length);
  // 4 models × (loss, accuracy) + ROC
  assert.equal(expected.length, 9);
  const labels = [
    ...html.matchAll(/<svg data-chart="[^"]*"[^>]*aria-label="([^"]*)"/g),
  ].map((m) => m[1]);
  for (const e of expected) {
    const i = labels.indexOf(evaluation.escapeHtml(e.label));
    assert.ok(i >= 0, `chart "${e.label}" is missing`);
    const got = [...charts.values()][i];
    const names = got.map((s) =>
      [s.name.replace(/ \(AUC [\d.]+\)$/, ""), s.circles] as [string, number]
    ).sort();
    assert.deepEqual(
      names,
      e.series.map(([n, c]) => [evaluation.escapeHtml(n), c]).sort(),
      e.label,
    );
    for (const s of got) {
      assert.equal(s.declared, s.circles);
      assert.equal(s.polyline, s.circles);
    }
  }
  // the KD runs: train, transfer and val in the loss chart, no transfer accuracy
  assert.equal(charts.get("loss-student-kd")!.length, 9);
  assert.equal(charts.get("accuracy-student-kd")!.length, 6);
  // seed 1's NaN val loss at epoch 3 is left out; seed 2 of no-KD stopped at 4
  assert.equal(
    charts.get("loss-student-kd")!.find((s) => s.name === "seed 1 · val")!
      .circles,
    5,
  );
  assert.equal(
    charts.get("loss-student-no-kd")!.find((s) => s.name === "seed 2 · train")!
      .circles,
    4,
  );
  // confusion matrices: one per model, summed over runs
  const matrices = [
    ...html.matchAll(
      /<table class="confusion" data-confusion="([^"]*)">([\s\S]*?)<\/table>/g,
    ),
  ];
  assert.equal(matrices.length, 4);
  const noKd = matrices.find((m) => m[1] === "Student, no KD")!;
  const counts = [...noKd[2].matchAll(/data-count="(\d+)"/g)].map((m) =>
    Number(m[1])
  );
  const sum = [[0, 0], [0, 0]];
  for (const r of data.models[1].runs) {
    r.test!.confusion.forEach((row, i) =>
      row.forEach((v, j) => sum[i][j] += v)
    );
  }
  assert.deepEqual(counts, sum.flat());
  assert.match(noKd[2], /summed over 3 runs/);
  // tables, notes, the run's facts
  assert.match(html, /<th scope="col">McNemar p<\/th>/);
  assert.match(html, /<td>84\.6 ± 3\.2<\/td>/);
  assert.match(html, /<th scope="row">kdeno version<\/th><td>0\.1\.0<\/td>/);
  assert.match(html, /<th scope="row">device<\/th><td>cpu<\/td>/);
  assert.match(html, /<th scope="row">seeds<\/th><td>0, 1, 2<\/td>/);
  assert.match(html, /<th scope="row">kd\.temperature<\/th><td>4<\/td>/);
  assert.match(html, /<th scope="row">transfer<\/th><td>—<\/td>/);
});

Deno.test("renderReport(): 3 classes have confusion matrices but no ROC; an untrained model says so", () => {
  const data = threeClassReport();
  const html = evaluation.renderReport(data);
  const charts = chartsOf(html);
  assert.deepEqual([...charts.keys()], ["loss-student", "accuracy-student"]);
  assert.equal(expectedCharts(data).length, 2);
  assert.match(
    html,
    /<h3>Teacher<\/h3><p>Not trained in this run \(no training history\)/,
  );
  assert.equal((html.match(/<td data-count=/g) ?? []).length, 18);
  assert.doesNotMatch(html, /id="roc"/);
  // the version defaults to kdeno's own
  assert.match(html, new RegExp(`<td>${VERSION.replaceAll(".", "\\.")}</td>`));
  assert.throws(
    () =>
      evaluation.renderReport({
        models: [{
          name: "m",
          runs: [{ test: { confusion: [[1]] } }, {
            test: { confusion: [[1, 0], [0, 1]] },
          }],
        }],
      }),
    /confusion matrices of "m" differ in size/,
  );
});

// Markup that would act if it reached the page raw: a redirect, a script,
// a comment that hides the rest, and a quote that leaves an attribute.
const ATTACK =
  `"'><meta http-equiv=refresh content="0;url=//evil.example"><script>alert(1)</script><!--`;

/** Asserts that no user-supplied markup reached `html` raw. */
function assertInert(html: string): void {
  // the page's own three <meta> tags (charset, CSP, viewport) and no other
  assert.equal(html.match(/<meta/gi)?.length, 3);
  assert.doesNotMatch(html, /<meta http-equiv=refresh|<script|<!--/i);
  assert.ok(!html.includes(`"'>`), "a quote left an attribute");
}

Deno.test("renderReport() escapes hostile strings in every field", () => {
  const rand = lcg(11);
  const hist = history(rand, 3);
  // epochs and metrics that arrive as strings (JSON read back) are numbers
  const stringy: object[] = [1, 2].map((e) => ({
    ...hist[e - 1],
    epoch: String(e),
    train: { ...hist[e - 1].train, loss: String(0.5 / e) },
  }));
  stringy.push({ ...hist[2], epoch: ATTACK }); // not a number: left out
  const test = binaryTest(rand, 20, 0.5);
  const data = {
    title: ATTACK,
    summary: ATTACK,
    warnings: [ATTACK],
    classes: [ATTACK, `${ATTACK}1`],
    positiveClass: 1,
    models: [
      {
        name: ATTACK,
        runs: [
          {
            label: ATTACK,
            history: hist,
            test: { ...test, confusion: [["3", ATTACK], [1, "2"]] },
          },
          { label: `${ATTACK}2`, test: { confusion: [[1, 2], [3, 4]] } },
        ],
      },
      { name: `${ATTACK}b`, runs: [{ history: stringy }] },
    ],
    tables: [{ caption: ATTACK, columns: [ATTACK], rows: [[ATTACK]] }],
    notes: [ATTACK],
    config: { [ATTACK]: ATTACK, nested: { [ATTACK]: [ATTACK] } },
    seeds: [ATTACK],
    version: ATTACK,
    device: ATTACK,
    date: ATTACK,
  } as unknown as evaluation.ReportData;
  const html = evaluation.renderReport(data);
  assertInert(html);
  const e = evaluation.escapeHtml(ATTACK);
  assert.ok(html.includes(`<title>${e}</title>`));
  assert.ok(html.includes(`<p class="summary">${e}</p>`));
  assert.ok(html.includes(`<li>${e}</li>`));
  assert.ok(html.includes(`<th scope="col">${e}1</th>`));
  assert.ok(html.includes(`<caption>${e}</caption>`));
  assert.ok(html.includes(`<p>${e}</p>`));
  assert.ok(html.includes(`<th scope="row">${e}</th><td>${e}</td>`));
  assert.ok(html.includes(`<th scope="row">device</th><td>${e}</td>`));
  assert.ok(html.includes(`Positive class: ${e}1;`));
  // the matrix summed over both runs; the hostile cell is not a number
  const matrix = html.match(
    /<table class="confusion" data-confusion="([^"]*)">([\s\S]*?)<\/table>/,
  )!;
  assert.equal(matrix[1], e);
  assert.deepEqual(
    [...matrix[2].matchAll(/data-count="([^"]*)"/g)].map((m) => m[1]),
    ["4", "NaN", "4", "6"],
  );
  // the ROC series and the curves carry the escaped names
  const charts = chartsOf(html);
  assert.equal(charts.get("roc")![0].name.startsWith(`${e} · ${e}`), true);
  const stringyLoss =
    [...charts.entries()].find(([id]) =>
      id.startsWith("loss-") && id.endsWith("-b")
    )![1];
  assert.deepEqual(
    stringyLoss.map((s) => [s.name, s.circles]),
    [["train", 2], ["val", 2]],
  );
});

Deno.test("renderReport() turns values of any type into text without throwing", () => {
  const cyclic: Record<string, unknown> = { lr: 0.1 };
  cyclic.self = cyclic;
  const nullProto = Object.assign(Object.create(null), { x: "<meta>" });
  const throwingJson = {
    toJSON() {
      throw new Error("no JSON");
    },
    toString: () => ATTACK,
  };
  const data = {
    title: throwingJson,
    classes: [nullProto, Symbol(ATTACK)],
    models: [{
      name: nullProto,
      runs: [{
        label: Symbol(ATTACK),
        history: history(lcg(1), 2),
        test: { confusion: [[2n, true], [null, { n: ATTACK }]] },
      }],
    }],
    tables: [{ columns: [1, null], rows: [[throwingJson, 2n]] }],
    config: { big: 10n, list: [1n, ATTACK], cyclic },
    seeds: [nullProto, 7],
    device: 42,
  } as unknown as evaluation.ReportData;
  const html = evaluation.renderReport(data);
  assertInert(html);
  assert.ok(html.includes(`<title>${evaluation.escapeHtml(ATTACK)}</title>`));
  assert.match(html, /<th scope="row">big<\/th><td>10<\/td>/);
  assert.match(html, /<th scope="row">list<\/th><td>\[&quot;1&quot;,/);
  assert.match(html, /<th scope="row">cyclic\.self<\/th><td>\[circular\]/);
  assert.match(html, /<th scope="row">device<\/th><td>42<\/td>/);
  assert.match(html, /<th scope="row">seeds<\/th><td>\{&quot;x&quot;/);
  assert.ok(html.includes(`Symbol(${evaluation.escapeHtml(ATTACK)})`));
  assert.deepEqual(
    [...html.matchAll(/data-count="([^"]*)"/g)].map((m) => m[1]),
    ["2", "1", "NaN", "NaN"],
  );
  assert.equal(evaluation.escapeHtml(5), "5");
  assert.equal(evaluation.escapeHtml(null), "—");
  assert.equal(
    evaluation.escapeHtml({ a: "<" }),
    "{&quot;a&quot;:&quot;&lt;&quot;}",
  );
});

Deno.test("metricsLines(): one line per phase, NaN as null, and appendMetricsLines() appends", async () => {
  const [rec] = history(lcg(1), 1, { transfer: true, nanValLossAt: 1 });
  const lines = evaluation.metricsLines(rec, {
    model: "Student, KD",
    run: "seed 0",
    time: "2026-01-01T00:00:00.000Z",
  });
  assert.deepEqual(lines.map((l) => l.phase), ["train", "transfer", "val"]);
  assert.equal(lines[1].acc, null);
  assert.equal(lines[2].loss, null);
  assert.equal(lines[0].lr, 0.01);
  assert.deepEqual(lines[0].lrGroups, [0.01]);
  assert.equal(lines[0].run, "seed 0");
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "metrics.jsonl");
    await evaluation.appendMetricsLines(path, lines);
    await evaluation.appendMetricsLines(path, lines.slice(0, 1));
    const text = await Deno.readTextFile(path);
    assert.ok(text.endsWith("\n"));
    const back = text.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.equal(back.length, 4);
    assert.deepEqual(back[1], lines[1]);
    assert.equal(back[3].phase, "train");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reportEvaluation() keeps the positive class's probability for 2 classes", () => {
  const probs = [0.9, 0.1, 0.3, 0.7, 0.6, 0.4];
  const labels = [0, 1, 1];
  const m = evaluation.classificationMetrics(probs, labels, 2);
  const e = evaluation.reportEvaluation({ ...m, labels, probabilities: probs });
  assert.deepEqual(Array.from(e.scores!), [0.1, 0.7, 0.4]);
  assert.deepEqual(Array.from(e.labels!), labels);
  assert.deepEqual(e.confusion, [[1, 0], [1, 1]]);
  const e0 = evaluation.reportEvaluation(
    { ...m, labels, probabilities: probs },
    0,
  );
  assert.deepEqual(Array.from(e0.scores!), [0.9, 0.3, 0.6]);
});

Deno.test("Trainer with report: metrics.jsonl grows every epoch and report.html shows every fit", async () => {
  manualSeed(4);
  const { train, val } = loaders(32);
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "metrics.jsonl");
    const seenAtEpochStart: number[] = [];
    const trainer = new training.Trainer({
      progress: "none",
      log: (l) => {
        if (/^Epoch \d+\/\d+$/.test(l)) {
          let text = "";
          try {
            text = Deno.readTextFileSync(path);
          } catch {
            // not written yet
          }
          seenAtEpochStart.push(text.split("\n").filter(Boolean).length);
        }
      },
      report: { dir, title: "unit", config: { lr: 0.01 } },
    });
    for (const s of [0, 1]) {
      const model = new models.StudentNet({ inputSize: 8 });
      await trainer.fit({
        model,
        train,
        val,
        epochs: 3,
        optimizer: new optim.Adam(model.parameters(), { lr: 0.01 }),
        name: "Student",
        runLabel: `seed ${s}`,
        seed: s,
      });
    }
    // two lines (train, val) per epoch, on disk before the next epoch starts
    assert.deepEqual(seenAtEpochStart, [0, 2, 4, 6, 8, 10]);
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n").map(
      (l) => JSON.parse(l),
    );
    assert.equal(lines.length, 12);
    assert.deepEqual(
      lines.slice(0, 2).map((l) => [l.model, l.run, l.epoch, l.phase]),
      [["Student", "seed 0", 1, "train"], ["Student", "seed 0", 1, "val"]],
    );
    assert.equal(lines[11].run, "seed 1");
    assert.equal(lines[11].epoch, 3);
    for (const l of lines) {
      assert.equal(typeof l.loss, "number");
      assert.equal(typeof l.seconds, "number");
      assert.equal(l.lr, 0.01);
    }
    const html = await Deno.readTextFile(join(dir, "report.html"));
    const charts = chartsOf(html);
    assert.deepEqual([...charts.keys()], ["loss-student", "accuracy-student"]);
    assert.deepEqual(
      charts.get("loss-student")!.map((s) => [s.name, s.circles]),
      [["seed 0 · train", 3], ["seed 0 · val", 3], ["seed 1 · train", 3], [
        "seed 1 · val",
        3,
      ]],
    );
    assert.match(html, /<title>unit<\/title>/);
    assert.match(html, /<th scope="row">lr<\/th><td>0\.01<\/td>/);
    assert.match(html, /<th scope="row">device<\/th><td>cpu<\/td>/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("VERSION is deno.json's version", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  );
  assert.equal(VERSION, config.version);
});

Deno.test("renderReport(): warnings under the summary, a sentence each; none, no section", () => {
  const data = binaryReport();
  const plain = evaluation.renderReport(data);
  assert.doesNotMatch(plain, /id="warnings"/);
  const warned = evaluation.renderReport({
    ...data,
    summary: "KD did not beat the student trained alone",
    warnings: [
      'Student predicts "b" for 100% of the test images',
      "Teacher: test accuracy 60.0% does not beat the majority-class baseline of 62.5%",
    ],
  });
  const m = warned.match(
    /<p class="summary">KD did not beat the student trained alone<\/p><section id="warnings" class="warnings" role="note"><h2>Warnings<\/h2><ul>(.*?)<\/ul><\/section><\/header>/,
  );
  assert.ok(m, "the warnings follow the summary, inside the header");
  assert.deepEqual([...m[1].matchAll(/<li>(.*?)<\/li>/g)].map((x) => x[1]), [
    "Student predicts &quot;b&quot; for 100% of the test images",
    "Teacher: test accuracy 60.0% does not beat the majority-class baseline of 62.5%",
  ]);
});
