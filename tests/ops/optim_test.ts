// Optimizers and LR schedulers against PyTorch: the same initial parameters
// and the same gradient sequence, five steps, parameters compared after each.
//
// The API is PyTorch's: `new optim.SGD(params, { lr, momentum, ... })`,
// `zeroGrad()`, `step()`, and `new optim.StepLR(optimizer, { stepSize, gamma })`
// with `step()` (`step(metric)` for ReduceLROnPlateau). The learning rate is
// read with `currentLr` below.
import assert from "node:assert/strict";
import { optim, setBackend, type Tensor } from "../../mod.ts";
import {
  assertClose,
  assertTensor,
  availableBackends,
  fromGolden,
  type GoldenTensor,
  loadGolden,
  missingBackends,
} from "../_helpers.ts";

interface OptimizerCase {
  name: string;
  optimizer: "SGD" | "Adam" | "AdamW";
  // deno-lint-ignore no-explicit-any
  options: Record<string, any>;
  params: GoldenTensor[];
  grads: GoldenTensor[][];
  steps: GoldenTensor[][];
}

interface SchedulerCase {
  name: string;
  scheduler: "StepLR" | "CosineAnnealingLR" | "ReduceLROnPlateau";
  // deno-lint-ignore no-explicit-any
  options: Record<string, any>;
  lr: number;
  metrics?: number[];
  lrs: number[];
}

type Case = OptimizerCase | SchedulerCase;

const golden = await loadGolden<Case>("optim");
const optimizerCases = golden.cases.filter((c): c is OptimizerCase =>
  "optimizer" in c
);
const schedulerCases = golden.cases.filter((c): c is SchedulerCase =>
  "scheduler" in c
);

interface Optimizer {
  step(): void;
  zeroGrad(): void;
}
interface Scheduler {
  step(metric?: number): void;
}

// deno-lint-ignore no-explicit-any
const optimizers = optim as unknown as Record<string, any>;

function makeOptimizer(c: OptimizerCase, params: Tensor[]): Optimizer {
  const Ctor = optimizers[c.optimizer];
  assert.ok(Ctor, `optim.${c.optimizer} is not exported`);
  return new Ctor(params, c.options);
}

/** The optimizer's learning rate as the scheduler left it. */
function currentLr(opt: unknown, sched: unknown): number {
  // deno-lint-ignore no-explicit-any
  const s = sched as any, o = opt as any;
  if (typeof s.getLastLr === "function") return s.getLastLr()[0];
  if (typeof o.lr === "number") return o.lr;
  if (Array.isArray(o.paramGroups)) return o.paramGroups[0].lr;
  throw new Error(
    "cannot read the learning rate: no getLastLr(), lr or paramGroups",
  );
}

function checkOptimizer(c: OptimizerCase): void {
  const params = c.params.map((p) => fromGolden(p, { requiresGrad: true }));
  const opt = makeOptimizer(c, params);
  c.grads.forEach((grads, step) => {
    opt.zeroGrad();
    // d/dp sum(p * g) = g exactly, so backward() leaves the recorded gradient.
    let loss = params[0].mul(fromGolden(grads[0])).sum();
    for (let j = 1; j < params.length; j++) {
      loss = loss.add(params[j].mul(fromGolden(grads[j])).sum());
    }
    loss.backward();
    opt.step();
    params.forEach((p, j) =>
      assertTensor(p, c.steps[step][j], {
        msg: `parameter ${j} after step ${step + 1}`,
        rtol: 1e-4,
        atol: 1e-6,
      })
    );
  });
}

function checkScheduler(c: SchedulerCase): void {
  const p = fromGolden({ shape: [1], dtype: "float32", data: [0] }, {
    requiresGrad: true,
  });
  const opt = new optimizers.SGD([p], { lr: c.lr });
  const Ctor = optimizers[c.scheduler];
  assert.ok(Ctor, `optim.${c.scheduler} is not exported`);
  const sched: Scheduler = new Ctor(opt, c.options);
  const lrs: number[] = [];
  c.lrs.forEach((_, i) => {
    opt.step();
    if (c.metrics) sched.step(c.metrics[i]);
    else sched.step();
    lrs.push(currentLr(opt, sched));
  });
  assertClose(lrs, c.lrs, { rtol: 1e-6, atol: 1e-9, msg: "learning rates" });
}

for (const backend of availableBackends()) {
  const byKind = new Map<string, OptimizerCase[]>();
  for (const c of optimizerCases) {
    byKind.set(c.optimizer, [...(byKind.get(c.optimizer) ?? []), c]);
  }
  for (const [kind, cases] of byKind) {
    Deno.test(`[${backend}] optim.${kind} matches PyTorch`, async (t) => {
      setBackend(backend);
      for (const c of cases) {
        await t.step(
          `optim.${kind} matches PyTorch: ${c.name}`,
          () => checkOptimizer(c),
        );
      }
    });
  }
  Deno.test(`[${backend}] LR schedulers match PyTorch`, async (t) => {
    setBackend(backend);
    for (const c of schedulerCases) {
      await t.step(
        `optim.${c.scheduler} matches PyTorch: ${c.name}`,
        () => checkScheduler(c),
      );
    }
  });
}
for (const [backend, reason] of missingBackends()) {
  Deno.test({
    name: `[${backend}] optim skipped: ${reason}`,
    ignore: true,
    fn() {},
  });
}
