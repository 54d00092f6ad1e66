import assert from "node:assert/strict";
import { evaluation, study, type train } from "../../mod.ts";

const cost: study.ModelCost = {
  params: 1234,
  macs: 5e6,
  sizeBytes: 4936,
  latencyMs: 0.5,
  latencyRangeMs: [0.4, 0.6],
  throughput: 20000,
};

/** A run whose test predictions are `correct` (1 right, 0 wrong). */
function run(seed: number, correct: number[]): study.StudyRun {
  const right = correct.reduce((a, b) => a + b, 0);
  return {
    seed,
    result: {
      accuracy: right / correct.length,
      correct: Uint8Array.from(correct),
      sensitivity: 0.5,
      specificity: seed === 0 ? undefined : 1,
      balancedAccuracy: 0.75,
      rocAuc: 0.8,
      ece: 0.1,
      macroF1: 0.7,
      confusion: [[seed, 1], [0, 2]],
    } as unknown as evaluation.EvaluateResult,
    fit: {
      bestEpoch: seed + 1,
      seconds: 2 * (seed + 1),
      history: [],
    } as unknown as train.FitResult,
  };
}

const ones = (n: number, right: number) =>
  Array.from({ length: n }, (_, i) => (i < right ? 1 : 0));

Deno.test("summarizeArm: mean and t-interval over seeds, means of the metrics, the first confusion matrix, the speed-up", () => {
  const runs = [run(0, ones(10, 8)), run(1, ones(10, 9)), run(2, ones(10, 7))];
  const s = study.summarizeArm(runs, cost, { ...cost, latencyMs: 40 });
  const ci = evaluation.meanConfidenceInterval([0.8, 0.9, 0.7]);
  assert.ok(Math.abs(s.accuracy - 0.8) < 1e-12);
  assert.deepEqual(s.accuracyCI95, [ci.lo, ci.hi]);
  assert.equal(s.accuracyHalfWidth95, ci.halfWidth);
  assert.deepEqual(s.accuracyPerSeed, [0.8, 0.9, 0.7]);
  assert.deepEqual(s.seeds, [0, 1, 2]);
  assert.equal(s.sensitivity, 0.5);
  assert.ok(Number.isNaN(s.specificity), "a missing metric makes the mean NaN");
  assert.deepEqual(s.confusion, [[0, 1], [0, 2]]);
  assert.deepEqual(s.bestEpochs, [1, 2, 3]);
  assert.equal(s.trainSeconds, 4);
  assert.equal(s.params, 1234);
  assert.equal(s.speedup, 80);
  // one seed: no interval
  const one = study.summarizeArm([run(0, ones(4, 3))], cost, cost);
  assert.equal(one.accuracyCI95, null);
  assert.equal(one.accuracyHalfWidth95, null);
  assert.equal(one.speedup, 1);
});

Deno.test("compareArms: several seeds: the verdict follows the 95% interval of the differences", () => {
  const plain = [
    run(0, ones(100, 70)),
    run(1, ones(100, 72)),
    run(2, ones(100, 71)),
  ];
  const better = [
    run(0, ones(100, 80)),
    run(1, ones(100, 81)),
    run(2, ones(100, 83)),
  ];
  const c = study.compareArms(better, plain);
  assert.deepEqual(
    c.kdMinusStudent.perSeed.map((d) => Math.round(d * 100)),
    [10, 9, 12],
  );
  assert.equal(c.kdBetterSeeds, 3);
  assert.equal(c.kdMinusStudent.ci95?.length, 2);
  assert.match(
    c.verdict,
    /^KD beat the student trained alone: \+10\.3 points \(95% CI \+\d+\.\d to \+\d+\.\d points over 3 seeds\)\.$/,
  );
  // KD right on 10 more images in every seed, nobody only-no-KD right
  assert.deepEqual(
    c.mcnemar.map((m) => [m.seed, m.onlyKdRight, m.onlyStudentRight]),
    [[0, 10, 0], [1, 9, 0], [2, 12, 0]],
  );
  assert.ok(c.mcnemar.every((m) => m.pValue < 0.01));

  const mixed = [
    run(0, ones(100, 80)),
    run(1, ones(100, 65)),
    run(2, ones(100, 72)),
  ];
  assert.match(
    study.compareArms(mixed, plain).verdict,
    /^KD did not reliably beat the student trained alone: \+1\.3 points, but the 95% CI -\d+\.\d to \+\d+\.\d points over 3 seeds includes zero\.$/,
  );
  const worse = [
    run(0, ones(100, 60)),
    run(1, ones(100, 61)),
    run(2, ones(100, 62)),
  ];
  assert.match(
    study.compareArms(worse, plain).verdict,
    /^KD did not beat the student trained alone: -10\.0 points \(95% CI/,
  );
});

Deno.test("compareArms: one seed: McNemar's exact test decides", () => {
  const plain = [run(0, ones(200, 100))];
  const c = study.compareArms([run(0, ones(200, 130))], plain);
  assert.equal(c.kdMinusStudent.ci95, null);
  assert.match(
    c.verdict,
    /^KD beat the student trained alone: \+15\.0 points \(McNemar p = \S+, one seed\)\.$/,
  );
  const close = study.compareArms([run(0, ones(200, 102))], plain);
  assert.match(
    close.verdict,
    /^KD did not beat the student trained alone: \+1\.0 points \(McNemar p = 0\.50, one seed\)\.$/,
  );
  assert.throws(() => study.compareArms([], []), RangeError);
  assert.throws(() => study.compareArms([run(0, [1])], []), RangeError);
});

Deno.test("resultRow and markdownTable: the results table", () => {
  const teacher = {
    ...cost,
    params: 11177538,
    macs: 34.24e6,
    sizeBytes: 44.8e6,
    latencyMs: 4.125,
    throughput: 2334.4,
    accuracy: 0.775,
    accuracyCI95: [0.732, 0.813],
    balancedAccuracy: 0.775,
    sensitivity: 0.79,
    specificity: 0.76,
    speedup: 1,
  };
  const rows = [
    study.resultRow("Teacher", teacher),
    study.resultRow("Student", {
      ...cost,
      accuracy: 0.779,
      accuracyHalfWidth95: 0.016,
      speedup: 8.25,
    }),
  ];
  assert.deepEqual(rows[0], [
    "Teacher",
    "77.5 (73.2–81.3)",
    "77.5",
    "79.0 / 76.0",
    "11.18 M",
    "34.24 M",
    "44.8 MB",
    "4.13",
    "2334",
    "1.0×",
  ]);
  // metrics that are not defined show as a dash, not NaN
  assert.deepEqual(rows[1].slice(1, 4), ["77.9 ± 1.6", "–", "– / –"]);
  assert.deepEqual(rows[1].slice(4, 7), ["1.2 k", "5.00 M", "4.9 kB"]);
  const table = study.markdownTable(study.RESULT_COLUMNS, rows).split("\n");
  assert.equal(table.length, 4);
  assert.equal(table[0], `| ${study.RESULT_COLUMNS.join(" | ")} |`);
  assert.equal(table[1], "|---|---|---|---|---|---|---|---|---|---|");
  assert.match(table[2], /^\| Teacher \| 77\.5 \(73\.2–81\.3\) \|/);
  assert.equal(study.formatPoints(0.0151), "+1.5");
  assert.equal(study.formatPoints(-0.06), "-6.0");
});

Deno.test("resultRow with 3 classes: each class's recall; resultColumns names the column", () => {
  const row = study.resultRow("M", {
    ...cost,
    accuracy: 0.5,
    balancedAccuracy: 0.4,
    perClassSensitivity: [1, 0.2, 0],
    speedup: 1,
  });
  assert.equal(row[3], "100.0 / 20.0 / 0.0");
  assert.equal(study.resultColumns(3)[3], "Recall per class %");
  assert.equal(study.resultColumns(2)[3], "Sens. / spec. %");
  assert.deepEqual(study.resultColumns(2), [...study.RESULT_COLUMNS]);
});

Deno.test("baselineRow: always the training split's majority class", () => {
  // training 1:3, test 3:5: always class 1 scores 5/8
  const b = evaluation.majorityBaseline([0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]);
  assert.deepEqual(study.baselineRow(b, ["NORMAL", "PNEUMONIA"]), [
    "Majority class (always PNEUMONIA)",
    "62.5",
    "50.0",
    "100.0 / 0.0",
    "–",
    "–",
    "–",
    "–",
    "–",
    "–",
  ]);
  const three = evaluation.majorityBaseline([2, 2, 0, 1], [0, 1, 2, 2]);
  assert.deepEqual(study.baselineRow(three, ["a", "b", "c"]).slice(0, 4), [
    "Majority class (always c)",
    "50.0",
    "33.3",
    "0.0 / 0.0 / 100.0",
  ]);
});

/** An arm summary with the fields studyWarnings reads. */
function arm(
  accuracyPerSeed: number[],
  shares: number[] = accuracyPerSeed.map(() => 0.6),
  classIndex = 1,
): study.ArmSummary {
  const acc = accuracyPerSeed.reduce((a, b) => a + b, 0) /
    accuracyPerSeed.length;
  return {
    accuracy: acc,
    accuracyPerSeed,
    accuracyHalfWidth95: 0.02,
    seeds: accuracyPerSeed.map((_, i) => i),
    dominantPrediction: shares.map((share) => ({ classIndex, share })),
  } as unknown as study.ArmSummary;
}

function teacherOf(accuracy: number, share = 0.6): study.TeacherSummary {
  return {
    accuracy,
    dominantPrediction: { classIndex: 1, share },
  } as unknown as study.TeacherSummary;
}

Deno.test("studyWarnings: below the majority baseline, one class for nearly every image, a teacher worse than the student", () => {
  const classes = ["NORMAL", "PNEUMONIA"];
  // an X-ray-shaped case: training 1:3, test 234 / 390 (62.5% pneumonia)
  const train = [...Array(100).fill(0), ...Array(300).fill(1)];
  const test = [...Array(234).fill(0), ...Array(390).fill(1)];
  const baseline = evaluation.majorityBaseline(train, test);
  assert.equal(baseline.accuracy, 0.625);
  // students at 58.7% with two of three seeds predicting pneumonia throughout
  const w = study.studyWarnings({
    classes,
    baseline,
    teacher: { name: "Teacher", summary: teacherOf(0.8) },
    student: {
      name: "Student, no KD",
      summary: arm([0.625, 0.625, 0.51], [1, 1, 0.7]),
    },
    others: [{ name: "Student, KD", summary: arm([0.7, 0.6, 0.7]) }],
  });
  assert.equal(w.length, 3, w.join("\n"));
  assert.match(
    w[0],
    /^Student, no KD: test accuracy 58\.7% does not beat the majority-class baseline of 62\.5% \(always answering "PNEUMONIA", the most frequent class in training\)/,
  );
  assert.match(
    w[1],
    /^Student, KD: 1 of 3 seeds scores at or below the majority-class baseline of 62\.5%/,
  );
  assert.match(
    w[2],
    /^Student, no KD predicts "PNEUMONIA" for 100% of the test images \(2 of 3 seeds: 0, 1\): it answers \(nearly\) one class/,
  );
  // a teacher worse than the student trained alone; a teacher at the baseline
  const t = study.studyWarnings({
    classes,
    baseline,
    teacher: { name: "Teacher", summary: teacherOf(0.62, 0.97) },
    student: { name: "Student", summary: arm([0.7, 0.72]) },
  });
  assert.equal(t.length, 3, t.join("\n"));
  assert.match(t[0], /^Teacher: test accuracy 62\.0% does not beat/);
  assert.match(
    t[1],
    /^Teacher predicts "PNEUMONIA" for 97% of the test images: /,
  );
  assert.match(
    t[2],
    /^The teacher is less accurate on the test set \(62\.0%\) than the student trained alone \(71\.0% ± 2\.0\)/,
  );
  // nothing to say: models well above the baseline, varied predictions
  assert.deepEqual(
    study.studyWarnings({
      classes,
      baseline,
      teacher: { name: "Teacher", summary: teacherOf(0.9) },
      student: { name: "Student", summary: arm([0.8, 0.82]) },
    }),
    [],
  );
  // a test set of one class: answering it is no warning sign
  const oneClass = evaluation.majorityBaseline([1, 1, 0], [1, 1, 1]);
  assert.deepEqual(
    study.studyWarnings({
      classes,
      baseline: oneClass,
      student: { name: "Student", summary: arm([1.0], [1]) },
    }).filter((x) => /predicts/.test(x)),
    [],
  );
});

Deno.test("plural: one epoch, two epochs", () => {
  assert.equal(study.plural(1, "epoch"), "1 epoch");
  assert.equal(study.plural(0, "seed"), "0 seeds");
  assert.equal(study.plural(2, "match", "matches"), "2 matches");
});
