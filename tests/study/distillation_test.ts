import assert from "node:assert/strict";
import { join } from "node:path";
import { manualSeed, models, study } from "../../mod.ts";
import { loaders } from "../train/_data.ts";

/** A study on the generated two-class task: 2 seeds, 2 epochs, 8×8 images. */
async function smallStudy(
  out: string,
  extra: Partial<study.DistillationStudyOptions> = {},
) {
  manualSeed(5);
  const { train, val } = loaders(64);
  const { val: test } = loaders(16);
  const lines: string[] = [];
  const done = await study.runDistillationStudy({
    teacher: new models.StudentNet({ inputSize: 8 }),
    teacherEpochs: 2,
    teacherName: "Teacher (StudentNet)",
    student: () => new models.StudentNet({ inputSize: 8 }),
    loaders: { train, val, test },
    dataset: {
      source: "generated halves",
      classes: ["left", "right"],
      train: 64,
      val: 32,
      valSource: "32 generated images",
      test: 32,
      // halves() alternates the classes
      trainTargets: Array.from({ length: 64 }, (_, i) => i % 2),
    },
    inputShape: [3, 8, 8],
    epochs: 2,
    lr: 0.01,
    batchSize: 16,
    kd: { preset: "recommended" },
    seed: 3,
    seeds: 2,
    outDir: out,
    config: { purpose: "test" },
    log: (l) => lines.push(l),
    ...extra,
  });
  return { done, lines };
}

Deno.test("runDistillationStudy: teacher, two arms over two seeds, paired verdict and every file", async () => {
  const out = await Deno.makeTempDir();
  const { done, lines } = await smallStudy(out);
  assert.ok(done);
  const r = done.results;
  assert.equal(r.tutorial, "kdeno examples/distill.ts");
  assert.deepEqual(r.config, { purpose: "test" });
  assert.equal(r.dataset.positiveClass, "right");
  assert.deepEqual(r.student.seeds, [3, 4]);
  assert.deepEqual(r.studentKd.seeds, [3, 4]);
  assert.equal(r.comparison.mcnemar.length, 2);
  assert.equal(r.comparison.kdMinusStudent.ci95?.length, 2);
  assert.equal(r.teacher.epochs, 2);
  assert.equal(r.teacher.params, r.student.params);
  for (const e of [r.teacher, r.student, r.studentKd]) {
    assert.ok(e.accuracy >= 0 && e.accuracy <= 1);
    assert.ok(e.latencyMs > 0 && Number.isFinite(e.macs));
  }
  assert.ok(r.timing.teacherCache.misses > 0);
  // the returned write-up is what was written
  const json = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
  assert.deepEqual(json, JSON.parse(JSON.stringify(r)));
  const md = await Deno.readTextFile(join(out, "results.md"));
  assert.equal(md, done.markdown);
  assert.ok(md.includes(done.table));
  assert.match(md, /\| Teacher \(StudentNet\) \|/);
  assert.ok(md.includes(`**${r.comparison.verdict}**`));
  assert.match(md, /8×8, train 64, test 32; validation: 32 generated images\./);
  // the baseline: a tie in training goes to class 0, half of test
  assert.deepEqual(r.majorityBaseline, {
    classIndex: 0,
    className: "left",
    trainShare: 0.5,
    tied: true,
    accuracy: 0.5,
    balancedAccuracy: 0.5,
    n: 32,
  });
  assert.match(
    md,
    /\| Majority class \(always left\) \| 50\.0 \| 50\.0 \| 0\.0 \/ 100\.0 \|/,
  );
  assert.equal(done.summary.length, 7 + r.warnings.length);
  // where the time went: one line, and the same figures in results.json
  assert.match(
    done.summary[done.summary.length - 2],
    /^Time: setup [\d.]+ s; teacher training [\d.]+ s \(data [\d.]+ s\); students without KD [\d.]+ s/,
  );
  const ph = r.timing.phases!;
  assert.ok(ph.teacher!.seconds > 0 && ph.student.seconds > 0);
  assert.ok(ph.studentKd.seconds > 0 && ph.evaluation.seconds > 0);
  assert.ok(ph.dataSeconds > 0);
  assert.ok(
    Math.abs(
      ph.dataSeconds -
        (ph.teacher!.dataSeconds + ph.student.dataSeconds +
          ph.studentKd.dataSeconds + ph.evaluation.dataSeconds),
    ) < 1e-9,
  );
  assert.ok(
    ph.setupSeconds + ph.teacher!.seconds + ph.student.seconds +
        ph.studentKd.seconds + ph.evaluation.seconds + ph.costSeconds <=
      r.timing.totalSeconds + 1e-6,
  );
  assert.match(
    done.summary[1],
    /^Majority-class baseline: always answering "left"/,
  );
  assert.equal(done.summary[2], r.comparison.verdict);
  assert.deepEqual(
    done.summary.slice(3, 3 + r.warnings.length),
    r.warnings.map((w) => `Warning: ${w}`),
  );
  assert.match(
    done.summary[done.summary.length - 1],
    /^Wrote .*results\.json, .*metrics\.jsonl/,
  );
  assert.match(md, /^Students: 2 seeds \(3, 4\)/m);
  assert.match(md, /2 epochs, Adam lr 0\.01 .* teacher 2 epochs\./);
  // metrics.jsonl: teacher 2 epochs + 2 arms × 2 seeds × 2 epochs, train and val
  const metrics = (await Deno.readTextFile(join(out, "metrics.jsonl")))
    .trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(metrics.length, 2 * 2 + 2 * 2 * 2 * 2);
  assert.deepEqual(
    [...new Set(metrics.map((l) => `${l.model}/${l.run}`))],
    [
      "Teacher (StudentNet)/null",
      "Student, no KD/seed 3",
      "Student, KD/seed 3",
      "Student, no KD/seed 4",
      "Student, KD/seed 4",
    ],
  );
  const html = await Deno.readTextFile(join(out, "report.html"));
  assert.equal((html.match(/<table class="confusion"/g) ?? []).length, 3);
  assert.match(html, /<th scope="col">McNemar p<\/th>/);
  for (const f of ["teacher.safetensors", "student.safetensors"]) {
    assert.ok((await Deno.stat(join(out, f))).size > 0, f);
  }
  assert.ok(lines.some((l) => l.startsWith("\n== Teacher: StudentNet (")));
  assert.ok(lines.some((l) => /^\n== StudentNet with KD, seed 4 /.test(l)));

  // the same seeds give the same results, and a fresh run restarts metrics.jsonl
  const again = await smallStudy(out);
  const strip = (x: study.StudyResults) => [
    x.teacher.accuracy,
    x.student.accuracyPerSeed,
    x.studentKd.accuracyPerSeed,
    x.comparison.kdMinusStudent.perSeed,
    x.comparison.mcnemar,
  ];
  assert.deepEqual(strip(again.done!.results), strip(r));
  const metrics2 = (await Deno.readTextFile(join(out, "metrics.jsonl")))
    .trimEnd().split("\n");
  assert.equal(metrics2.length, metrics.length);
  await Deno.remove(out, { recursive: true });
});

Deno.test("runDistillationStudy with class weights: weighted cross-entropy for the teacher and both arms, said in the write-up", async () => {
  const out = await Deno.makeTempDir();
  const { done, lines } = await smallStudy(out, {
    classWeights: { teacher: [1.5, 0.75], student: [2, 0.5] },
    seeds: 1,
  });
  assert.ok(done);
  assert.ok(lines.includes("Loss: CrossEntropy(weight=[1.5, 0.75])"));
  assert.ok(lines.includes("Loss: CrossEntropy(weight=[2, 0.5])"));
  assert.ok(
    lines.some((l) =>
      /^Loss: DistillationLoss\(preset=recommended, .*, weight=\[2, 0\.5\]\)$/
        .test(l)
    ),
    lines.filter((l) => l.startsWith("Loss:")).join("\n"),
  );
  assert.match(
    done.markdown,
    /Class weights on the cross-entropy \(n \/ \(classes × count\) from the training split\): teacher 1\.500 \/ 0\.750, students 2\.000 \/ 0\.500/,
  );
  // one seed: "1 seed", not "1 seeds"
  assert.match(done.markdown, /^Students: 1 seed \(3\)/m);
  await Deno.remove(out, { recursive: true });
});

Deno.test("the class-weighted KD loss: weights 1 give DistillationLoss; otherwise its CE term is (1 - alpha) × the weighted cross-entropy", async () => {
  const { distill, nn, randn, tensor } = await import("../../mod.ts");
  const WeightedDistillationLoss = (
    kd: import("../../mod.ts").distill.KdOptions,
    weight: number[],
  ) => new distill.DistillationLoss({ ...kd, weight });
  const WeightedCrossEntropy = (weight: number[]) =>
    new distill.CrossEntropyCriterion({ weight });
  manualSeed(2);
  const s = randn([6, 3]);
  const t = randn([6, 3]);
  const y = tensor(Int32Array.from([0, 1, 2, 2, 1, 0]));
  const kd = { preset: "recommended" as const };
  const plain = new distill.DistillationLoss(kd).terms({
    studentLogits: s,
    teacherLogits: t,
    labels: y,
  });
  const ones = WeightedDistillationLoss(kd, [1, 1, 1]).terms({
    studentLogits: s,
    teacherLogits: t,
    labels: y,
  });
  assert.ok(Math.abs(ones.ce.item() - plain.ce.item()) < 1e-6);
  assert.ok(Math.abs(ones.kd.item() - plain.kd.item()) < 1e-6);
  const w = [3, 1, 0.5];
  const weighted = WeightedDistillationLoss(kd, w).terms({
    studentLogits: s,
    teacherLogits: t,
    labels: y,
  });
  const ce = nn.functional.crossEntropy(s, y, {
    weight: tensor(w, { shape: [3] }),
  }).item();
  assert.ok(Math.abs(weighted.ce.item() - 0.1 * ce) < 1e-6);
  assert.ok(Math.abs(weighted.kd.item() - plain.kd.item()) < 1e-6);
  assert.ok(Math.abs(weighted.ce.item() - plain.ce.item()) > 1e-4);
  // transfer batches: the distillation term alone; no teacher: the weighted CE
  assert.deepEqual(
    Object.keys(
      WeightedDistillationLoss(kd, w).terms({
        studentLogits: s,
        teacherLogits: t,
        labels: null,
      }),
    ),
    ["kd"],
  );
  const alone = WeightedCrossEntropy(w).terms({
    studentLogits: s,
    teacherLogits: null,
    labels: y,
  });
  assert.ok(Math.abs(alone.ce.item() - ce) < 1e-6);
  assert.throws(
    () =>
      WeightedCrossEntropy([1, 2]).terms({
        studentLogits: s,
        teacherLogits: null,
        labels: y,
      }),
    /2 class weights for logits of 3 classes/,
  );
});

Deno.test("docs/distillation.md: the default run's tables are written from the committed bench/results/distill_default.json", async () => {
  const { fmtMarkdown, updateDoc, BEGIN, END } = await import(
    "../../bench/distill_tables.ts"
  );
  const root = new URL("../../", import.meta.url);
  const runs = JSON.parse(
    await Deno.readTextFile(
      new URL("bench/results/distill_default.json", root),
    ),
  );
  const doc = await Deno.readTextFile(new URL("docs/distillation.md", root));
  assert.ok(doc.includes(BEGIN) && doc.includes(END));
  // the committed run is the default command's: two runs, one teacher
  assert.equal(runs.command, "deno run -A examples/distill.ts");
  assert.equal(runs.runs.length, 2);
  assert.equal(runs.runs[1].results.teacher.epochs, 0);
  assert.equal(
    runs.runs[1].results.teacher.accuracy,
    runs.runs[0].results.teacher.accuracy,
  );
  assert.equal(
    await fmtMarkdown(updateDoc(doc, runs)),
    doc,
    "docs/distillation.md is out of date: run deno run -A bench/distill_tables.ts",
  );
  // and the generated part is not empty: both verdicts are in the doc
  const flat = doc.replace(/\s+/g, " ");
  for (const r of runs.runs) {
    assert.ok(flat.includes(`**${r.results.comparison.verdict}**`));
  }
});
