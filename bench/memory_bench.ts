/**
 * What each way of freeing memory costs: a StudentNet training step (64 px,
 * batch 32) written with `tidy`, with `using` and as a plain PyTorch-style
 * step that disposes nothing, and a small tensor made and freed by
 * `dispose()`, `using`, `tidy` or the garbage collector. The plain step
 * yields to the event loop once, as the `DataLoader` does between batches.
 *
 * Uses only API that predates garbage-collected tensors, so the same file
 * measures an older checkout for a before/after comparison.
 *
 * Run: deno bench -A bench/memory_bench.ts
 */
import { setImmediate } from "node:timers";
import {
  manualSeed,
  models,
  nn,
  optim,
  randint,
  randn,
  tensor,
  tidy,
} from "../mod.ts";

const F = nn.functional;
manualSeed(0);
const size = 64;
const model = new models.StudentNet({ inputSize: size });
const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const x = randn([32, 3, size, size]);
const y = randint(0, 2, [32]);
const turn = () => new Promise<void>((r) => setImmediate(r));

const step = "StudentNet train step 64 b32";
Deno.bench({
  group: step,
  name: "tidy",
  baseline: true,
  fn: () => {
    tidy(() => {
      opt.zeroGrad();
      F.crossEntropy(model.call(x), y).backward();
      opt.step();
    });
  },
});
Deno.bench({
  group: step,
  name: "using",
  fn: () => {
    opt.zeroGrad();
    using out = model.call(x);
    using loss = F.crossEntropy(out, y);
    loss.backward();
    opt.step();
  },
});
Deno.bench({
  group: step,
  name: "plain (garbage-collected)",
  fn: async () => {
    opt.zeroGrad();
    F.crossEntropy(model.call(x), y).backward();
    opt.step();
    await turn();
  },
});

const small = "tensor([1024 floats]).relu(), then freed";
const data = new Float32Array(1024).fill(-1);
Deno.bench({
  group: small,
  name: "dispose()",
  baseline: true,
  fn: () => {
    const t = tensor(data);
    const r = t.relu();
    t.dispose();
    r.dispose();
  },
});
Deno.bench({
  group: small,
  name: "using",
  fn: () => {
    using t = tensor(data);
    using _r = t.relu();
  },
});
Deno.bench({
  group: small,
  name: "tidy",
  fn: () => {
    tidy(() => {
      tensor(data).relu();
    });
  },
});
Deno.bench({
  group: small,
  name: "dropped (garbage-collected)",
  fn: () => {
    tensor(data).relu();
  },
});
