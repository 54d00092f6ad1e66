import assert from "node:assert/strict";
import { distill, nn, ShapeError, tensor } from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { assertClose, fromGolden, type GoldenTensor } from "../_helpers.ts";

interface LossCase {
  name: string;
  student?: GoldenTensor;
  teacher?: GoldenTensor;
  labels?: GoldenTensor;
  fs?: GoldenTensor;
  ft?: GoldenTensor;
  weight?: GoldenTensor;
  gradWeight?: GoldenTensor;
  classWeight?: GoldenTensor;
  loss: number;
  grad: GoldenTensor;
}

const golden = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/losses.json", import.meta.url),
  ),
) as { torch: string; cases: LossCase[] };
const byName = (name: string): LossCase => {
  const c = golden.cases.find((c) => c.name === name);
  if (!c) throw new Error(`fixture case "${name}" is missing`);
  return c;
};

function logitCase(
  name: string,
  fn: (s: Tensor, t: Tensor, y: Tensor | null) => Tensor,
) {
  const c = byName(name);
  const s = fromGolden(c.student!, { requiresGrad: true });
  const t = fromGolden(c.teacher!);
  const y = c.labels ? fromGolden(c.labels) : null;
  const loss = fn(s, t, y);
  assertClose(loss.item(), c.loss, { msg: `${name} value` });
  loss.backward();
  assertClose(s.grad!, fromGolden(c.grad), {
    msg: `${name} gradient`,
    atol: 1e-6,
  });
}

Deno.test("kdLoss() tutorial preset matches PyTorch's tutorial loss", async (t) => {
  for (const name of ["tutorial b8 c2", "tutorial b5 c10"]) {
    await t.step(name, () =>
      logitCase(
        name,
        (s, te, y) => distill.kdLoss(s, te, y, { preset: "tutorial" }),
      ));
  }
  await t.step(
    "DistillationLoss class gives the same",
    () =>
      logitCase(
        "tutorial b8 c2",
        (s, te, y) =>
          new distill.DistillationLoss({ preset: "tutorial" }).call(s, te, y),
      ),
  );
});

Deno.test("kdLoss() recommended preset matches PyTorch (batchmean, T²)", async (t) => {
  for (const name of ["recommended b8 c2", "recommended b6 c10"]) {
    await t.step(
      name,
      () => logitCase(name, (s, te, y) => distill.kdLoss(s, te, y)),
    );
  }
  await t.step("unlabeled: the distillation term alone", () =>
    logitCase(
      "recommended unlabeled b6 c5",
      (s, te) => distill.kdLoss(s, te, null, { preset: "recommended" }),
    ));
  await t.step(
    "explicit options equal the preset",
    () =>
      logitCase("recommended b8 c2", (s, te, y) =>
        distill.kdLoss(s, te, y, {
          preset: "tutorial",
          temperature: 4,
          alpha: 0.9,
          reduction: "batchmean",
          scaleByT2: true,
        })),
  );
});

/** The case's class weights as a plain array. */
function classWeightOf(name: string): number[] {
  const c = byName(name);
  if (!c.classWeight) throw new Error(`fixture case "${name}" has no weights`);
  return [...fromGolden(c.classWeight).toArray() as number[]];
}

/** Sums a criterion's terms into one loss. */
function summed(terms: Record<string, Tensor>): Tensor {
  return Object.values(terms).reduce((a, b) => a.add(b));
}

Deno.test("class weights on the hard-label term match PyTorch's CrossEntropyLoss(weight=)", async (t) => {
  for (const name of ["tutorial weighted b8 c2", "tutorial weighted b5 c10"]) {
    const w = classWeightOf(name);
    await t.step(
      `${name}: kdLoss, weight as an array`,
      () =>
        logitCase(
          name,
          (s, te, y) =>
            distill.kdLoss(s, te, y, { preset: "tutorial", weight: w }),
        ),
    );
    await t.step(
      `${name}: DistillationLoss, weight as a tensor`,
      () =>
        logitCase(name, (s, te, y) =>
          summed(
            new distill.DistillationLoss({
              preset: "tutorial",
              weight: tensor(w, { shape: [w.length] }),
            }).terms({ studentLogits: s, teacherLogits: te, labels: y }),
          )),
    );
  }
  await t.step(
    "recommended weighted b8 c2 (T², batchmean)",
    () =>
      logitCase("recommended weighted b8 c2", (s, te, y) =>
        summed(
          new distill.DistillationLoss({
            weight: classWeightOf("recommended weighted b8 c2"),
          }).terms({ studentLogits: s, teacherLogits: te, labels: y }),
        )),
  );
  await t.step(
    "CrossEntropyCriterion({ weight })",
    () =>
      logitCase(
        "ce weighted b6 c3",
        (s, _te, y) =>
          new distill.CrossEntropyCriterion({
            weight: classWeightOf("ce weighted b6 c3"),
          }).terms({ studentLogits: s, teacherLogits: null, labels: y }).ce,
      ),
  );
  await t.step(
    "DistillationLoss without a teacher: the weighted CE alone",
    () =>
      logitCase("ce weighted b6 c3", (s, _te, y) =>
        summed(
          new distill.DistillationLoss({
            weight: classWeightOf("ce weighted b6 c3"),
          }).terms({ studentLogits: s, teacherLogits: null, labels: y }),
        )),
  );
  await t.step(
    "DKDLoss({ weight }) weighs its cross-entropy",
    () =>
      logitCase("dkd weighted b6 c10", (s, te, y) =>
        summed(
          new distill.DKDLoss({
            warmup: 0,
            weight: classWeightOf("dkd weighted b6 c10"),
          }).terms({ studentLogits: s, teacherLogits: te, labels: y }),
        )),
  );
  await t.step("unweighted and weighted differ (the test can fail)", () => {
    const c = byName("tutorial weighted b8 c2");
    const s = fromGolden(c.student!);
    const te = fromGolden(c.teacher!);
    const y = fromGolden(c.labels!);
    const plain = distill.kdLoss(s, te, y, { preset: "tutorial" }).item();
    assert.ok(Math.abs(plain - c.loss) > 1e-4);
  });
  await t.step("unlabeled batches: the KL term alone, unweighted", () => {
    const c = byName("recommended unlabeled b6 c5");
    const s = fromGolden(c.student!);
    const te = fromGolden(c.teacher!);
    const terms = new distill.DistillationLoss({ weight: [5, 1, 1, 1, 1] })
      .terms({ studentLogits: s, teacherLogits: te, labels: null });
    assert.deepEqual(Object.keys(terms), ["kd"]);
    assertClose(terms.kd.item(), c.loss);
  });
  await t.step("the settings show the weights", () => {
    assert.match(
      String(new distill.DistillationLoss({ weight: [2, 0.5] })),
      /, weight=\[2, 0\.5\]\)$/,
    );
    assert.deepEqual(
      new distill.DistillationLoss({ weight: [2, 0.5] }).options.weight,
      [2, 0.5],
    );
    assert.equal(
      String(new distill.CrossEntropyCriterion({ weight: [1.5, 0.75] })),
      "CrossEntropy(weight=[1.5, 0.75])",
    );
  });
});

Deno.test("class weights: bad weights are refused with a typed error", () => {
  const s = tensor([[1, 0, 2], [0, 1, 0]]);
  const te = tensor([[0, 1, 0], [1, 0, 0]]);
  const y = tensor(new Int32Array([0, 2]));
  assert.throws(
    () => distill.kdLoss(s, te, y, { weight: [1, 2] }),
    ShapeError,
    "2 class weights for logits of 3 classes",
  );
  assert.throws(
    () =>
      new distill.CrossEntropyCriterion({ weight: [1, 2] }).terms({
        studentLogits: s,
        teacherLogits: null,
        labels: y,
      }),
    ShapeError,
    "2 class weights for logits of 3 classes",
  );
  assert.throws(
    () => new distill.DistillationLoss({ weight: [1, -1, 1] }),
    RangeError,
    "class weight 1 is -1",
  );
  assert.throws(
    () => new distill.DKDLoss({ weight: [0, 0] }),
    RangeError,
    "every class weight is 0",
  );
  assert.throws(
    () => new distill.DistillationLoss({ weight: tensor([[1, 2]]) }),
    ShapeError,
    "class weight of shape [1, 2] must be 1-D",
  );
  assert.throws(
    () => new distill.CrossEntropyCriterion({ weight: [] }),
    ShapeError,
    "class weight is empty",
  );
});

Deno.test("kdLoss() alpha weighs the distillation term as the tutorial's code", () => {
  const s = tensor([[1, -1], [0.5, 0.2]]);
  const te = tensor([[-2, 2], [1, 0]]);
  const y = tensor(new Int32Array([0, 1]));
  const ce = nn.functional.crossEntropy(s, y).item();
  assertClose(distill.kdLoss(s, te, y, { alpha: 0 }).item(), ce);
  const kl = distill.kdTerms(s, te, y, { alpha: 1 });
  assert.equal(kl.ce!.item(), 0);
  assertClose(kl.loss.item(), kl.rawKl.item() * 16);
});

Deno.test("kdLoss() never sends a gradient into the teacher's logits", () => {
  const s = tensor([[1, 0]], { requiresGrad: true });
  const te = tensor([[0, 1]], { requiresGrad: true });
  distill.kdLoss(s, te, tensor(new Int32Array([0]))).backward();
  assert.ok(s.grad);
  assert.equal(te.grad, null);
});

Deno.test("resolveKdOptions() refuses bad values", () => {
  assert.throws(() => distill.resolveKdOptions({ alpha: 1.5 }), /alpha/);
  assert.throws(() => distill.resolveKdOptions({ temperature: 0 }), /temp/);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => distill.resolveKdOptions({ preset: "x" as any }),
    /preset "x"/,
  );
});

Deno.test("dkdLoss() matches mdistiller's dkd_loss", async (t) => {
  await t.step(
    "10 classes",
    () => logitCase("dkd b6 c10", (s, te, y) => distill.dkdLoss(s, te, y!)),
  );
  await t.step("2 classes: equals alpha x KD, with a warning", () => {
    const warn = console.warn;
    const seen: string[] = [];
    console.warn = (m: string) => seen.push(m);
    try {
      logitCase("dkd b8 c2", (s, te, y) => distill.dkdLoss(s, te, y!));
      const c = byName("dkd b8 c2");
      const s = fromGolden(c.student!);
      const te = fromGolden(c.teacher!);
      const y = fromGolden(c.labels!);
      const kd = distill.kdTerms(s, te, y, { alpha: 1 }).kd.item();
      assertClose(distill.dkdLoss(s, te, y).item(), kd, { rtol: 1e-4 });
    } finally {
      console.warn = warn;
    }
    assert.ok(seen.some((m) => /2-class/.test(m)), "warned on 2 classes");
  });
});

Deno.test("hintLoss() matches PyTorch's FitNets regressor + MSE", async (t) => {
  for (const name of ["hint same size", "hint teacher larger"]) {
    await t.step(name, () => {
      const c = byName(name);
      const fs = fromGolden(c.fs!, { requiresGrad: true });
      const ft = fromGolden(c.ft!);
      const adapter = new nn.Conv2d(fs.shape[1], ft.shape[1], 1, {
        bias: false,
      });
      adapter.loadStateDict({ weight: fromGolden(c.weight!) });
      const loss = distill.hintLoss(fs, ft, adapter);
      assertClose(loss.item(), c.loss, { msg: "value" });
      loss.backward();
      assertClose(fs.grad!, fromGolden(c.grad), { msg: "grad fs" });
      assertClose(adapter.weight.grad!, fromGolden(c.gradWeight!), {
        msg: "grad adapter",
      });
    });
  }
});

Deno.test("attentionTransferLoss() matches RepDistiller's AT loss", async (t) => {
  for (const name of ["at same size", "at teacher larger"]) {
    await t.step(name, () => {
      const c = byName(name);
      const fs = fromGolden(c.fs!, { requiresGrad: true });
      const loss = distill.attentionTransferLoss(fs, fromGolden(c.ft!));
      assertClose(loss.item(), c.loss, { msg: "value" });
      loss.backward();
      assertClose(fs.grad!, fromGolden(c.grad), { msg: "grad", atol: 1e-7 });
    });
  }
});
