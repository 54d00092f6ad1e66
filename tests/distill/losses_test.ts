import assert from "node:assert/strict";
import { distill, nn, tensor } from "../../mod.ts";
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
