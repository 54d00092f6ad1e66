/**
 * The tutorial's models on the CUDA backend equal the CPU backend: logits,
 * loss, every parameter gradient and BatchNorm's running statistics, in
 * train and eval mode. Ignored, with the reason, where no GPU answers.
 */
import assert from "node:assert/strict";
import { backendStatus, models, nn, tensor } from "../../mod.ts";
import type { DeviceName } from "../../mod.ts";
import { initFormula, inputFormula } from "../nn/_formula.ts";

const cuda = backendStatus("cuda");

function maxRelErr(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  floor = 1e-12,
) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, floor);
}

function run(
  model: nn.Module,
  device: DeviceName,
  shape: number[],
  labels: number[],
) {
  model.to(device);
  const x = inputFormula(shape).to(device).requiresGrad_();
  const logits = model.call(x);
  const loss = nn.functional.crossEntropy(
    logits,
    tensor(labels, { dtype: "int32", device }),
  );
  loss.backward();
  return {
    logits: logits.data(),
    loss: loss.item(),
    grads: Object.fromEntries(
      model.namedParameters().map(([k, p]) => [k, p.grad!.data()]),
    ),
    buffers: Object.fromEntries(
      model.namedBuffers().map(([k, b]) => [k, b.data()]),
    ),
  };
}

const cases = [
  { name: "resnet18 64x64", shape: [4, 3, 64, 64], labels: [0, 1, 1, 0] },
  { name: "StudentNet 224x224", shape: [4, 3, 224, 224], labels: [1, 0, 0, 1] },
];

for (const mode of ["train", "eval"] as const) {
  for (const c of cases) {
    Deno.test({
      name:
        `[cuda] ${c.name} ${mode}: logits, gradients and running stats equal the CPU backend`,
      ignore: !cuda.available,
      fn() {
        const build = () =>
          c.name.startsWith("resnet")
            ? models.resnet18({ numClasses: 2 })
            : new models.StudentNet();
        const a = build(), b = build();
        initFormula(a);
        initFormula(b);
        a.train(mode === "train");
        b.train(mode === "train");
        const cpu = run(a, "cpu", c.shape, c.labels);
        const gpu = run(b, "cuda", c.shape, c.labels);
        assert.ok(maxRelErr(gpu.logits, cpu.logits) < 1e-4, "logits");
        assert.ok(
          Math.abs(gpu.loss - cpu.loss) < 1e-4 * Math.abs(cpu.loss) + 1e-6,
        );
        // cuDNN's Find may pick FFT or Winograd algorithms, whose fp32 sums
        // differ from the CPU's by up to about 0.6% of a weight gradient's
        // largest value on an H100 (PyTorch with cudnn.benchmark does too)
        const tol = 1e-2;
        // gradients that are mathematically zero (a conv bias before batch
        // norm) are rounding noise: measure them against the largest gradient
        const floor = 1e-4 *
          Math.max(
            ...Object.values(cpu.grads).map((g) =>
              Array.from(g).reduce((m, v) => Math.max(m, Math.abs(v)), 0)
            ),
          );
        for (const [k, g] of Object.entries(cpu.grads)) {
          const e = maxRelErr(gpu.grads[k], g, floor);
          assert.ok(e < tol, `${k}.grad: max error ${e} of the largest value`);
        }
        for (const [k, v] of Object.entries(cpu.buffers)) {
          const e = maxRelErr(gpu.buffers[k], v);
          assert.ok(e < 1e-4, `${k}: max error ${e}`);
        }
      },
    });
  }
}
if (!cuda.available) {
  Deno.test({
    name: `[cuda] models skipped: ${cuda.reason?.split("\n")[0]}`,
    ignore: true,
    fn() {},
  });
}
