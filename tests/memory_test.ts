import assert from "node:assert/strict";
import {
  collectGarbage,
  full,
  GraphFreedError,
  keep,
  manualSeed,
  memory,
  models,
  nn,
  optim,
  randn,
  type Tensor,
  tensor,
  tidy,
  train as training,
  zeros,
} from "../mod.ts";
import { loaders } from "./train/_data.ts";

const F = nn.functional;

Deno.test("backward() frees the graph: a second backward() throws GraphFreedError", () => {
  const w = tensor([1, 2, 3], { requiresGrad: true });
  const y = w.mul(w).exp().sum();
  y.backward();
  const first = w.grad!.toArray();
  assert.throws(
    () => y.backward(),
    (e: unknown) =>
      e instanceof GraphFreedError && e.freedBy === "backward" &&
      /a second time/.test(e.message) && /retainGraph: true/.test(e.message),
  );
  // nothing was accumulated by the failed call
  assert.deepEqual(w.grad!.toArray(), first);
});

Deno.test("backward({ retainGraph: true }) keeps the graph for another pass", () => {
  const w = tensor([1, -2], { requiresGrad: true });
  const y = w.mul(3).relu().sum();
  y.backward({ retainGraph: true });
  y.backward(undefined, { retainGraph: true });
  y.backward();
  assert.deepEqual(w.grad!.toArray(), [9, 0]);
  assert.throws(() => y.backward(), GraphFreedError);
});

Deno.test("backward() disposes what ops saved only for it (pooling indices, batch statistics)", () => {
  const x = randn([2, 3, 4, 4], { requiresGrad: true });
  const bn = new nn.BatchNorm2d(3);
  const h = bn.call(x);
  const y = F.maxPool2d(h, 2);
  const savedPool = y.gradNode!.saved;
  const savedBn = h.gradNode!.saved;
  assert.equal(savedPool.length, 1);
  assert.equal(savedBn.length, 2);
  y.sum().backward();
  for (const t of [...savedPool, ...savedBn]) assert.ok(t.isDisposed);
  assert.equal(y.gradNode!.freedBy, "backward");
  assert.equal(y.gradNode!.inputs.length, 0);
  // the outputs a user holds stay usable after backward(), as in PyTorch
  assert.equal(y.shape.join(), "2,3,2,2");
  assert.ok(Number.isFinite(y.sum().item()));
});

Deno.test("tidy(() => model.forward(x)).backward() throws GraphFreedError naming the cause", () => {
  manualSeed(0);
  const model = new models.StudentNet({ inputSize: 8 });
  const x = randn([2, 3, 8, 8]);
  const out = tidy(() => model.forward(x));
  assert.throws(
    () => out.sum().backward(),
    (e: unknown) =>
      e instanceof GraphFreedError && e.freedBy === "dispose" &&
      /disposed/.test(e.message) && /inside the tidy\(\)/.test(e.message),
  );
  for (const p of model.parameters()) assert.equal(p.grad, null);
});

Deno.test("backward() inside tidy still trains, and leaves only gradients", () => {
  manualSeed(0);
  const model = new nn.Linear(4, 2);
  const x = randn([3, 4]);
  const before = memory().tensors;
  tidy(() => model.call(x).sum().backward());
  // one gradient per parameter
  assert.equal(memory().tensors, before + 2);
  assert.ok(model.weight.grad && model.bias!.grad);
});

Deno.test("tensors nothing references are reclaimed without dispose()", async () => {
  await collectGarbage();
  const before = memory();
  // 1.2 GB made and dropped in a loop that never awaits
  for (let i = 0; i < 100; i++) full([1000, 1000], -1).relu().mul(2);
  assert.ok(await collectGarbage(), "a full collection could be forced");
  const after = memory();
  assert.equal(after.tensors, before.tensors);
  assert.equal(after.bytes, before.bytes);
  assert.equal(after.devices.cpu.bytes, before.devices.cpu.bytes);
});

Deno.test("a view keeps its storage counted until the last tensor on it goes", async () => {
  await collectGarbage();
  const base = memory();
  const a = randn([256, 256]);
  const v = a.reshape([-1]);
  const d = v.detach();
  assert.equal(memory().tensors, base.tensors + 3);
  assert.equal(memory().bytes, base.bytes + 256 * 256 * 4);
  a.dispose();
  v.dispose();
  assert.equal(memory().bytes, base.bytes + 256 * 256 * 4);
  assert.equal(d.sum().item(), d.sum().item()); // still readable
  d.dispose();
  await collectGarbage();
  assert.equal(memory().bytes, base.bytes);
});

Deno.test("memory() counts bytes per device", () => {
  const before = memory();
  using t = tensor(new Float32Array(1000));
  const m = memory();
  assert.equal(m.devices.cpu.tensors, before.devices.cpu.tensors + 1);
  assert.equal(m.devices.cpu.bytes, before.devices.cpu.bytes + 4000);
  assert.equal(m.bytes, before.bytes + 4000);
  assert.equal(t.numel(), 1000);
});

async function runScript(
  code: string,
  env: Record<string, string>,
): Promise<{ stdout: string; stderr: string; file: string }> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  const mod = new URL("../mod.ts", import.meta.url).href;
  await Deno.writeTextFile(file, code.replaceAll("MOD", mod));
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", file],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(file);
  const dec = new TextDecoder();
  const r = {
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    file,
  };
  assert.ok(out.success, r.stderr);
  return r;
}

Deno.test("KDENO_DEBUG_MEMORY=1: memory({ report: true }) and the exit report name the leaking line", async () => {
  const r = await runScript(
    `import { memory, randn } from "MOD";
const kept = [];
for (let i = 0; i < 20; i++) {
  kept.push(randn([100, 100]).mul(2)); // line 4
}
const m = memory({ report: true, top: 3 });
console.log(JSON.stringify(m.sites[0]));
`,
    { KDENO_DEBUG_MEMORY: "1" },
  );
  const top = JSON.parse(r.stdout);
  assert.match(top.site, new RegExp(`${r.file}:4:`));
  assert.equal(top.tensors, 20);
  assert.equal(top.bytes, 20 * 100 * 100 * 4);
  assert.match(r.stderr, /kdeno memory: \d+ live tensor\(s\)/);
  assert.match(r.stderr, /At exit, kdeno memory/);
  assert.ok(r.stderr.split(r.file + ":4:").length >= 3, r.stderr);
});

Deno.test("without KDENO_DEBUG_MEMORY, memory() records no sites", () => {
  assert.equal(memory().sites, undefined);
});

Deno.test("Trainer.fit() warns once when live memory grows every epoch", async () => {
  manualSeed(0);
  const { train } = loaders(32, { batchSize: 16 });
  const kept: unknown[] = [];
  class Leaky extends nn.Module {
    readonly inner = new models.StudentNet({ inputSize: 8 });
    override forward(x: Tensor): Tensor {
      const y = this.inner.call(x);
      kept.push(keep(zeros([256, 1024]))); // a user keeping 1 MB per step
      return y;
    }
  }
  const model = new Leaky();
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...a: unknown[]) => warnings.push(a.join(" "));
  try {
    await new training.Trainer({ progress: "none", log: () => {} }).fit({
      model,
      train,
      epochs: 6,
      optimizer: new optim.SGD(model.parameters(), { lr: 0.01 }),
    });
  } finally {
    console.warn = warn;
  }
  const leaks = warnings.filter((w) => /live tensor memory grew/.test(w));
  assert.equal(leaks.length, 1, warnings.join("\n"));
  assert.match(leaks[0], /at epoch 4/);
  assert.ok(kept.length > 0);
});
