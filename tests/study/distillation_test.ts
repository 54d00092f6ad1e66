import assert from "node:assert/strict";
import { join } from "node:path";
import { manualSeed, models, study } from "../../mod.ts";
import { loaders } from "../train/_data.ts";

/** A study on the generated two-class task: 2 seeds, 2 epochs, 8×8 images. */
async function smallStudy(out: string) {
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
  assert.equal(done.summary.length, 5);
  assert.equal(done.summary[1], r.comparison.verdict);
  assert.match(done.summary[4], /^Wrote .*results\.json, .*metrics\.jsonl/);
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
