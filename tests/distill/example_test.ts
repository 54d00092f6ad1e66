import assert from "node:assert/strict";
import { join } from "node:path";

const example = new URL("../../examples/distill.ts", import.meta.url).pathname;
const trainLoop =
  new URL("../../examples/train_loop.ts", import.meta.url).pathname;

Deno.test("examples/train_loop.ts: one epoch of the plain loop prints its loss and a test accuracy above chance", async () => {
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", trainLoop, "--epochs", "1"],
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr) + stdout);
  const m = /^epoch 1: train loss (\d\.\d{4}), test accuracy (\d\.\d{4})$/m
    .exec(stdout);
  assert.ok(m, stdout);
  assert.ok(Number.isFinite(Number(m[1])));
  assert.ok(Number(m[2]) > 0.6, `test accuracy ${m[2]} beats chance`);
});

Deno.test("examples/distill.ts: a short run on the bundled data beats chance and writes well-formed results, metrics.jsonl and report.html", async () => {
  const out = await Deno.makeTempDir();
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      example,
      "--max-train",
      "192",
      "--epochs",
      "2",
      "--teacher-epochs",
      "1",
      "--seeds",
      "2",
      "--out",
      out,
    ],
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr) + stdout);
  assert.match(stdout, /^Epoch 1\/1$/m);
  assert.match(stdout, /^train Loss: \d\.\d{4} Acc: \d\.\d{4}/m);
  assert.match(stdout, /^val Loss: \d\.\d{4} Acc: \d\.\d{4}$/m);
  assert.match(
    stdout,
    /KD (did not beat|did not reliably beat|beat) the student/,
  );
  const results = JSON.parse(
    await Deno.readTextFile(join(out, "results.json")),
  );
  for (const key of ["teacher", "student", "studentKd"]) {
    const e = results[key];
    for (const field of ["accuracy", "params", "latencyMs", "macs"]) {
      assert.equal(typeof e[field], "number", `${key}.${field}`);
      assert.ok(Number.isFinite(e[field]), `${key}.${field} = ${e[field]}`);
    }
    assert.ok(e.accuracy > 0.6, `${key} accuracy ${e.accuracy} beats chance`);
  }
  assert.equal(results.teacher.params, 11177538);
  assert.equal(results.student.accuracyPerSeed.length, 2);
  assert.equal(results.student.accuracyCI95.length, 2);
  assert.equal(results.comparison.mcnemar.length, 2);
  // latencies are measured, not compared (no timing assertions in tests)
  for (const key of ["teacher", "student"]) {
    const ms = results[key].latencyMs;
    assert.ok(Number.isFinite(ms) && ms > 0, `${key}.latencyMs = ${ms}`);
  }
  const md = await Deno.readTextFile(join(out, "results.md"));
  assert.match(md, /\| Teacher \(ResNet-18\) \|/);
  assert.match(md, /\| Student, KD \|/);
  assert.match(
    md,
    /\*\*KD (did not beat|did not reliably beat|beat) the student/,
  );
  // metrics.jsonl: per model, run, epoch and phase (teacher: 1 epoch;
  // 2 arms × 2 seeds × 2 epochs), train then val
  const lines = (await Deno.readTextFile(join(out, "metrics.jsonl")))
    .trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 2 + 2 * 2 * 2 * 2);
  assert.deepEqual(
    lines.slice(0, 4).map((l) => [l.model, l.run, l.epoch, l.phase]),
    [
      ["Teacher (ResNet-18)", null, 1, "train"],
      ["Teacher (ResNet-18)", null, 1, "val"],
      ["Student, no KD", "seed 0", 1, "train"],
      ["Student, no KD", "seed 0", 1, "val"],
    ],
  );
  for (const l of lines) {
    assert.ok(Number.isFinite(l.loss) && Number.isFinite(l.acc));
    assert.equal(typeof l.seconds, "number");
    assert.equal(typeof l.lr, "number");
  }
  // report.html: curves of the 3 models, their confusion matrices, ROC, tables
  const html = await Deno.readTextFile(join(out, "report.html"));
  const charts = [...html.matchAll(/<svg data-chart="([^"]+)"/g)].map((m) =>
    m[1]
  );
  assert.deepEqual(charts, [
    "loss-teacher-resnet-18",
    "accuracy-teacher-resnet-18",
    "loss-student-no-kd",
    "accuracy-student-no-kd",
    "loss-student-kd",
    "accuracy-student-kd",
    "roc",
  ]);
  assert.equal((html.match(/<table class="confusion"/g) ?? []).length, 3);
  assert.match(html, /<th scope="col">McNemar p<\/th>/);
  assert.match(
    html,
    /KD (did not beat|did not reliably beat|beat) the student/,
  );
  assert.match(html, /<th scope="row">kdeno version<\/th>/);
  await Deno.remove(out, { recursive: true });
});
