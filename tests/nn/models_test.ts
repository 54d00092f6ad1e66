import assert from "node:assert/strict";
import { models, nn, type Tensor, tensor } from "../../mod.ts";
import { initFormula, inputFormula } from "./_formula.ts";

interface Summary {
  shape: number[];
  sum: number;
  sumsq: number;
  idx: number[];
  values: number[];
}
interface ModelCase {
  name: string;
  mode: "train" | "eval";
  inputShape: number[];
  labels: number[];
  logits: number[];
  logitsShape: number[];
  loss: number;
  inputGrad: Summary;
  grads: Record<string, Summary>;
  buffers: Record<string, Summary>;
}

const golden: { cases: ModelCase[] } = JSON.parse(
  await Deno.readTextFile(
    new URL("../golden/models.json", import.meta.url),
  ),
);

function close(a: number, b: number, rtol: number, atol: number, what: string) {
  assert.ok(
    Math.abs(a - b) <= atol + rtol * Math.abs(b),
    `${what}: got ${a}, PyTorch ${b} (|diff| ${Math.abs(a - b)})`,
  );
}

/**
 * Compares a tensor with a fixture summary. `floor` is an absolute noise
 * floor (the case's largest gradient norm × 1e-7) for gradients that are
 * mathematically zero, such as a convolution bias followed by batch norm.
 * Eval mode runs 18 layers without normalisation, where float32 summation
 * order (oneDNN vs kdeno) shows more: `loose` widens the tolerances there.
 */
function checkSummary(
  t: Tensor,
  s: Summary,
  what: string,
  { floor = 0, loose = false } = {},
) {
  assert.deepEqual([...t.shape], s.shape, `${what}: shape`);
  const d = t.data();
  let sum = 0, sumsq = 0;
  for (let i = 0; i < d.length; i++) {
    sum += d[i];
    sumsq += d[i] * d[i];
  }
  const l2 = Math.sqrt(s.sumsq);
  const rms = l2 / Math.sqrt(Math.max(d.length, 1));
  const k = loose ? 20 : 1;
  close(sumsq, s.sumsq, 1e-3 * k / 4, floor * floor, `${what}: sum of squares`);
  close(sum, s.sum, 1e-4, 1e-3 * k * l2 + floor, `${what}: sum`);
  s.idx.forEach((j, i) =>
    close(d[j], s.values[i], 1e-4, 1e-3 * k * rms + floor, `${what}[${j}]`)
  );
}

function build(name: string): nn.Module {
  if (name.startsWith("resnet18")) return models.resnet18({ numClasses: 2 });
  const size = Number(/(\d+)x\d+/.exec(name)![1]);
  return new models.StudentNet({ inputSize: size });
}

for (const c of golden.cases) {
  Deno.test(`${c.name.split(" ")[0]} matches PyTorch: ${c.name}`, async (t) => {
    const model = build(c.name);
    initFormula(model);
    model.train(c.mode === "train");
    const x = inputFormula(c.inputShape).requiresGrad_();
    const logits = model.call(x);
    const loss = nn.functional.crossEntropy(
      logits,
      tensor(c.labels, { dtype: "int32" }),
    );
    loss.backward();
    await t.step("logits", () => {
      assert.deepEqual([...logits.shape], c.logitsShape);
      const d = logits.data();
      c.logits.forEach((v, i) => close(d[i], v, 1e-4, 1e-5, `logits[${i}]`));
      close(loss.item(), c.loss, 1e-4, 1e-6, "loss");
    });
    const floor = 1e-7 *
      Math.max(...Object.values(c.grads).map((s) => Math.sqrt(s.sumsq)));
    const loose = c.mode === "eval" && c.name.startsWith("resnet");
    await t.step(
      "input gradient",
      () => checkSummary(x.grad!, c.inputGrad, "x.grad", { floor, loose }),
    );
    await t.step("every parameter gradient", () => {
      const params = Object.fromEntries(model.namedParameters());
      assert.deepEqual(Object.keys(params), Object.keys(c.grads));
      for (const [name, s] of Object.entries(c.grads)) {
        checkSummary(params[name].grad!, s, `${name}.grad`, { floor, loose });
      }
    });
    await t.step("buffers (running statistics)", () => {
      const bufs = Object.fromEntries(model.namedBuffers());
      assert.deepEqual(Object.keys(bufs), Object.keys(c.buffers));
      for (const [name, s] of Object.entries(c.buffers)) {
        checkSummary(bufs[name].float(), s, name);
      }
    });
  });
}

Deno.test("resnet18() has torchvision's parameter counts and keys", () => {
  assert.equal(models.resnet18({ numClasses: 2 }).numParameters(), 11177538);
  const net = models.resnet18();
  assert.equal(net.numParameters(), 11689512);
  const keys = Object.keys(net.stateDict());
  assert.equal(keys.length, 122);
  assert.equal(keys[0], "conv1.weight");
  assert.ok(keys.includes("layer1.0.bn1.running_mean"));
  assert.ok(keys.includes("layer2.0.downsample.0.weight"));
  assert.ok(keys.includes("layer4.1.bn2.num_batches_tracked"));
  assert.equal(keys[keys.length - 1], "fc.bias");
});

Deno.test("StudentNet has the tutorial's parameter counts", () => {
  assert.equal(new models.StudentNet().numParameters(), 100474);
  // 4 * 14 * 14 * 2 + 2 + conv 112 + bn 8
  assert.equal(new models.StudentNet({ inputSize: 28 }).numParameters(), 1690);
  assert.deepEqual(
    Object.keys(new models.StudentNet().stateDict()),
    [
      "layer1.0.weight",
      "layer1.0.bias",
      "layer1.1.weight",
      "layer1.1.bias",
      "layer1.1.running_mean",
      "layer1.1.running_var",
      "layer1.1.num_batches_tracked",
      "fc.weight",
      "fc.bias",
    ],
  );
});
