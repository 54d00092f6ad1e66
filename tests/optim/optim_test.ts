// Optimizers and LR schedulers against PyTorch 1.13 (tests/golden/optim.json,
// made by tests/golden/generate.py): the recorded gradients are assigned to
// `.grad` directly, and the parameters are compared after each of five steps.
import assert from "node:assert/strict";
import { CheckpointError } from "../../src/errors.ts";
import { tensor } from "../../src/ops/creation.ts";
import { memory, type Tensor, tidy } from "../../src/tensor.ts";
import { setBackend } from "../../src/backend/registry.ts";
import {
  Adam,
  AdamW,
  CosineAnnealingLR,
  type LRScheduler,
  type Optimizer,
  ReduceLROnPlateau,
  SGD,
  StepLR,
} from "../../src/optim/mod.ts";
import {
  assertClose,
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

const golden = await loadGolden<OptimizerCase | SchedulerCase>("optim");
const optimizerCases = golden.cases.filter((c): c is OptimizerCase =>
  "optimizer" in c
);
const schedulerCases = golden.cases.filter((c): c is SchedulerCase =>
  "scheduler" in c
);

const TOL = { rtol: 1e-5, atol: 1e-6 };

function makeOptimizer(c: OptimizerCase, params: Tensor[]): Optimizer {
  switch (c.optimizer) {
    case "SGD":
      return new SGD(params, c.options as { lr: number });
    case "Adam":
      return new Adam(params, c.options);
    case "AdamW":
      return new AdamW(params, c.options);
  }
}

function leaves(c: OptimizerCase): Tensor[] {
  return c.params.map((p) => fromGolden(p, { requiresGrad: true }));
}

function feed(params: Tensor[], grads: GoldenTensor[]): void {
  params.forEach((p, j) => p.grad = fromGolden(grads[j]));
}

function checkStep(params: Tensor[], c: OptimizerCase, step: number): void {
  params.forEach((p, j) =>
    assertClose(p.data(), c.steps[step][j].data, {
      ...TOL,
      msg: `${c.name}: parameter ${j} after step ${step + 1}`,
    })
  );
}

function makeScheduler(
  c: SchedulerCase,
  opt: Optimizer,
): LRScheduler | ReduceLROnPlateau {
  switch (c.scheduler) {
    case "StepLR":
      return new StepLR(opt, c.options as { stepSize: number });
    case "CosineAnnealingLR":
      return new CosineAnnealingLR(opt, c.options as { tMax: number });
    case "ReduceLROnPlateau":
      return new ReduceLROnPlateau(opt, c.options);
  }
}

function stepScheduler(
  s: LRScheduler | ReduceLROnPlateau,
  c: SchedulerCase,
  i: number,
): void {
  if (s instanceof ReduceLROnPlateau) s.step(c.metrics![i]);
  else s.step();
}

for (const backend of availableBackends()) {
  Deno.test(`[${backend}] optimizers match PyTorch`, async (t) => {
    setBackend(backend);
    for (const c of optimizerCases) {
      await t.step(`optim.${c.optimizer} matches PyTorch: ${c.name}`, () => {
        const params = leaves(c);
        const opt = makeOptimizer(c, params);
        c.grads.forEach((grads, step) => {
          opt.zeroGrad();
          feed(params, grads);
          opt.step();
          checkStep(params, c, step);
        });
      });
    }
  });

  Deno.test(`[${backend}] optimizers step inside tidy() keep their state`, () => {
    setBackend(backend);
    const c = optimizerCases.find((c) => c.name === "Adam amsgrad")!;
    const params = leaves(c);
    const opt = makeOptimizer(c, params);
    c.grads.forEach((grads, step) => {
      tidy(() => {
        opt.zeroGrad();
        feed(params, grads);
        opt.step();
      });
      checkStep(params, c, step);
    });
    const before = memory().tensors;
    tidy(() => {
      opt.zeroGrad();
      feed(params, c.grads[0]);
      opt.step();
    });
    assert.equal(memory().tensors, before, "a tidy step leaks no tensors");
  });

  Deno.test(
    `[${backend}] loadStateDict() resumes an optimizer exactly`,
    async (t) => {
      setBackend(backend);
      for (const c of optimizerCases) {
        await t.step(`${c.optimizer}: ${c.name}`, () => {
          const params = leaves(c);
          const opt = makeOptimizer(c, params);
          for (let step = 0; step < 2; step++) {
            opt.zeroGrad();
            feed(params, c.grads[step]);
            opt.step();
          }
          const sd = opt.stateDict();
          // A fresh optimizer over copies of the parameters, built with a
          // different learning rate: loadStateDict() restores the saved one.
          const copies = params.map((p) =>
            tensor(p.data(), { shape: p.shape, requiresGrad: true })
          );
          const fresh = makeOptimizer(
            { ...c, options: { ...c.options, lr: 123 } },
            copies,
          );
          fresh.loadStateDict(sd);
          assert.equal(fresh.paramGroups[0].lr, c.options.lr);
          for (let step = 2; step < c.grads.length; step++) {
            for (const [o, ps] of [[opt, params], [fresh, copies]] as const) {
              o.zeroGrad();
              feed(ps, c.grads[step]);
              o.step();
            }
            checkStep(copies, c, step);
            copies.forEach((p, j) =>
              assert.deepEqual(
                p.data(),
                params[j].data(),
                `resumed parameter ${j} after step ${step + 1}`,
              )
            );
          }
          // The loaded state is a copy: the original's buffers are separate.
          const a = opt.stateDict().state[0] ?? {};
          const b = fresh.stateDict().state[0] ?? {};
          assert.deepEqual(Object.keys(a), Object.keys(b));
          for (const [k, v] of Object.entries(a)) {
            if (typeof v !== "number") assert.notEqual(v, b[k], k);
          }
          opt.dispose();
          fresh.dispose();
        });
      }
    },
  );

  Deno.test(`[${backend}] stateDict() has PyTorch's layout`, () => {
    setBackend(backend);
    const a = tensor([1, 2], { requiresGrad: true });
    const b = tensor([[1], [2]], { requiresGrad: true });
    const c = tensor([3], { requiresGrad: true });
    const opt = new Adam([{ params: [a, b] }, { params: [c], lr: 0.5 }], {
      lr: 0.1,
      amsgrad: true,
    });
    a.grad = tensor([1, 1]);
    c.grad = tensor([1]);
    opt.step();
    const sd = opt.stateDict();
    assert.deepEqual(Object.keys(sd.state), ["0", "2"]);
    assert.equal(sd.state[0].step, 1);
    assert.deepEqual(
      Object.keys(sd.state[2]).sort(),
      ["expAvg", "expAvgSq", "maxExpAvgSq", "step"],
    );
    assert.deepEqual((sd.state[2].expAvg as Tensor).shape, [1]);
    assert.deepEqual(sd.paramGroups, [
      {
        lr: 0.1,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weightDecay: 0,
        amsgrad: true,
        params: [0, 1],
      },
      {
        lr: 0.5,
        betas: [0.9, 0.999],
        eps: 1e-8,
        weightDecay: 0,
        amsgrad: true,
        params: [2],
      },
    ]);
  });

  Deno.test(`[${backend}] loadStateDict() rejects state that does not fit`, async (t) => {
    setBackend(backend);
    const make = () => {
      const p = tensor([1, 2, 3], { requiresGrad: true });
      const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
      p.grad = tensor([1, 1, 1]);
      opt.step();
      return opt;
    };
    const sd = make().stateDict();
    await t.step("a different number of groups", () => {
      assert.throws(
        () => make().loadStateDict({ ...sd, paramGroups: [] }),
        (e) =>
          e instanceof CheckpointError && /0 parameter groups/.test(e.message),
      );
    });
    await t.step("a buffer of the wrong shape", () => {
      const bad = { ...sd, state: { 0: { momentumBuffer: tensor([1, 2]) } } };
      assert.throws(
        () => make().loadStateDict(bad),
        (e) =>
          e instanceof CheckpointError &&
          /state\[0\]\.momentumBuffer has shape \[2\]/.test(e.message),
      );
    });
    await t.step("an unexpected key", () => {
      const bad = { ...sd, state: { 0: { expAvg: tensor([1, 2, 3]) } } };
      assert.throws(
        () => make().loadStateDict(bad),
        (e) =>
          e instanceof CheckpointError &&
          /unexpected keys expAvg/.test(e.message),
      );
    });
    await t.step("a missing Adam buffer", () => {
      const p = tensor([1, 2, 3], { requiresGrad: true });
      const adam = new Adam([p]);
      const bad = {
        state: { 0: { step: 3, expAvg: tensor([0, 0, 0]) } },
        paramGroups: adam.stateDict().paramGroups,
      };
      assert.throws(
        () => adam.loadStateDict(bad),
        (e) =>
          e instanceof CheckpointError &&
          /missing keys expAvgSq/.test(e.message),
      );
    });
    await t.step("a state index naming no parameter", () => {
      const bad = { ...sd, state: { 7: {} } };
      assert.throws(
        () => make().loadStateDict(bad),
        (e) => e instanceof CheckpointError && /state\[7\]/.test(e.message),
      );
    });
    await t.step("an invalid hyperparameter", () => {
      const bad = { ...sd, paramGroups: [{ ...sd.paramGroups[0], lr: -1 }] };
      assert.throws(
        () => make().loadStateDict(bad),
        (e) => e instanceof CheckpointError && /lr is -1/.test(e.message),
      );
    });
    await t.step("another optimizer's state, changing nothing", () => {
      // plain SGD keeps no state: only its hyperparameters tell it apart
      const p = tensor([1, 2, 3], { requiresGrad: true });
      const sgd = new SGD([p], { lr: 0.5 });
      p.grad = tensor([1, 1, 1]);
      sgd.step();
      const adam = new Adam([p], { lr: 0.01 });
      adam.step();
      const before = adam.stateDict();
      const kept = (before.state[0].expAvg as Tensor).toArray();
      assert.throws(
        () => adam.loadStateDict(sgd.stateDict()),
        (e) =>
          e instanceof CheckpointError &&
          /paramGroups\[0\] has momentum, dampening, nesterov, which Adam does not have/
            .test(e.message),
      );
      assert.throws(() => sgd.loadStateDict(before), CheckpointError);
      assert.deepEqual(adam.stateDict().paramGroups, before.paramGroups);
      assert.deepEqual(
        (adam.stateDict().state[0].expAvg as Tensor).toArray(),
        kept,
      );
      assert.equal(sgd.paramGroups[0].lr, 0.5);
      assert.equal("betas" in sgd.paramGroups[0], false);
    });
    await t.step("a negative step count", () => {
      const p = tensor([1, 2, 3], { requiresGrad: true });
      const adam = new Adam([p]);
      p.grad = tensor([1, 1, 1]);
      adam.step();
      const sd = adam.stateDict();
      const bad = { ...sd, state: { 0: { ...sd.state[0], step: -3 } } };
      assert.throws(
        () => new Adam([p]).loadStateDict(bad),
        (e) =>
          e instanceof CheckpointError &&
          /state\[0\]\.step is -3, not a finite count/.test(e.message),
      );
    });
  });

  Deno.test(`[${backend}] step() skips frozen parameters and missing gradients`, () => {
    setBackend(backend);
    const makers = [
      (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9 }),
      (ps: Tensor[]) => new Adam(ps, { lr: 0.1 }),
      (ps: Tensor[]) => new AdamW(ps, { lr: 0.1 }),
    ];
    for (const make of makers) {
      const frozen = tensor([1, 2]);
      const noGrad = tensor([3, 4], { requiresGrad: true });
      const live = tensor([5, 6], { requiresGrad: true });
      const opt = make([frozen, noGrad, live]);
      const name = opt.constructor.name;
      frozen.grad = tensor([1, 1]);
      live.grad = tensor([1, 1]);
      opt.step();
      assert.deepEqual(frozen.toArray(), [1, 2], `${name} frozen`);
      assert.deepEqual(noGrad.toArray(), [3, 4], `${name} no grad`);
      assert.notDeepEqual(live.toArray(), [5, 6], `${name} live`);
      assert.equal(opt.state.has(frozen), false);
      assert.equal(opt.state.has(noGrad), false);
    }
  });

  Deno.test(`[${backend}] zeroGrad() clears gradients`, async (t) => {
    setBackend(backend);
    const p = tensor([1, 2], { requiresGrad: true });
    const q = tensor([3], { requiresGrad: true });
    const opt = new SGD([p, q], { lr: 0.1 });
    await t.step("setToNone (the default) disposes them", () => {
      const g = p.grad = tensor([1, 1]);
      opt.zeroGrad();
      assert.equal(p.grad, null);
      assert.equal(q.grad, null);
      assert.ok(g.isDisposed);
    });
    await t.step("setToNone false zeroes them in place", () => {
      const g = p.grad = tensor([1, 1]);
      opt.zeroGrad({ setToNone: false });
      assert.equal(p.grad, g);
      assert.deepEqual(g.toArray(), [0, 0]);
      opt.step();
      assert.deepEqual(p.toArray(), [1, 2]);
    });
  });

  Deno.test(`[${backend}] parameter groups keep their own options`, () => {
    setBackend(backend);
    const a = tensor([1], { requiresGrad: true });
    const b = tensor([1], { requiresGrad: true });
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 1 }], { lr: 0.5 });
    assert.equal(opt.paramGroups[0].lr, 0.5);
    assert.equal(opt.paramGroups[1].lr, 1);
    a.grad = tensor([1]);
    b.grad = tensor([1]);
    opt.step();
    assert.deepEqual([a.item(), b.item()], [0.5, 0]);
    const sched = new StepLR(opt, { stepSize: 1, gamma: 0.5 });
    sched.step();
    assert.deepEqual(sched.getLastLr(), [0.25, 0.5]);
  });

  Deno.test(`[${backend}] optimizers accept any iterable of tensors`, () => {
    setBackend(backend);
    const a = tensor([1], { requiresGrad: true });
    function* gen() {
      yield a;
    }
    const opt = new SGD(gen(), { lr: 1 });
    assert.equal(opt.paramGroups[0].params[0], a);
    assert.equal(new SGD(new Set([a]), { lr: 1 }).paramGroups.length, 1);
  });
}

Deno.test("optimizers validate their options", async (t) => {
  const p = () => [tensor([1], { requiresGrad: true })];
  const cases: [string, () => unknown, RegExp][] = [
    ["negative lr", () => new SGD(p(), { lr: -0.1 }), /lr is -0\.1/],
    ["missing lr", () => new SGD(p(), {} as { lr: number }), /lr is undefined/],
    [
      "nesterov without momentum",
      () => new SGD(p(), { lr: 0.1, nesterov: true }),
      /nesterov/,
    ],
    [
      "negative momentum",
      () => new SGD(p(), { lr: 0.1, momentum: -1 }),
      /momentum is -1/,
    ],
    [
      "negative weightDecay",
      () => new AdamW(p(), { weightDecay: -1 }),
      /weightDecay is -1/,
    ],
    [
      "beta1 of 1",
      () => new Adam(p(), { betas: [1, 0.999] }),
      /betas\[0\] is 1/,
    ],
    ["negative eps", () => new Adam(p(), { eps: -1 }), /eps is -1/],
    [
      "a PyTorch spelling",
      () => new Adam(p(), { weight_decay: 1 } as never),
      /unknown option weight_decay \(did you mean weightDecay\?\)/,
    ],
    [
      "a bad group lr",
      () => new SGD([{ params: p(), lr: -1 }], { lr: 0.1 }),
      /parameter group 0: lr is -1/,
    ],
    ["an empty list", () => new SGD([], { lr: 0.1 }), /empty/],
  ];
  for (const [name, fn, re] of cases) {
    await t.step(name, () => {
      assert.throws(fn, (e) => e instanceof RangeError && re.test(e.message));
    });
  }
  await t.step("a tensor instead of a list", () => {
    assert.throws(
      () => new SGD(tensor([1]) as never, { lr: 0.1 }),
      (e) =>
        e instanceof TypeError && /one tensor of shape \[1\]/.test(e.message),
    );
  });
});

Deno.test("optimizers refuse the same tensor twice", async (t) => {
  const a = tensor([1], { requiresGrad: true });
  const b = tensor([2], { requiresGrad: true });
  await t.step("in one list", () => {
    assert.throws(
      () => new SGD([a, b, a], { lr: 0.1 }),
      (e) =>
        e instanceof RangeError &&
        /parameter 2 of shape \[1\] appears more than once/.test(e.message) &&
        /also parameter 0/.test(e.message),
    );
  });
  await t.step("across groups", () => {
    assert.throws(
      () => new Adam([{ params: [a] }, { params: [b, a] }]),
      (e) =>
        e instanceof RangeError && /appears more than once/.test(e.message),
    );
  });
  await t.step("through addParamGroup()", () => {
    const opt = new SGD([a], { lr: 0.1 });
    assert.throws(
      () => opt.addParamGroup({ params: [a] }),
      (e) =>
        e instanceof RangeError && /appears more than once/.test(e.message),
    );
    opt.addParamGroup({ params: [b], momentum: 0.9 });
    assert.equal(opt.paramGroups[1].momentum, 0.9);
    assert.equal(opt.paramGroups[1].lr, 0.1);
  });
});

Deno.test("LR schedulers match PyTorch", async (t) => {
  for (const c of schedulerCases) {
    await t.step(`optim.${c.scheduler} matches PyTorch: ${c.name}`, () => {
      const opt = new SGD([tensor([0], { requiresGrad: true })], { lr: c.lr });
      const sched = makeScheduler(c, opt);
      const lrs = c.lrs.map((_, i) => {
        opt.step();
        stepScheduler(sched, c, i);
        assert.equal(sched.getLastLr()[0], opt.paramGroups[0].lr);
        return sched.getLastLr()[0];
      });
      assertClose(lrs, c.lrs, { rtol: 1e-12, atol: 0, msg: "learning rates" });
    });
  }
});

Deno.test("LR schedulers resume from stateDict()", async (t) => {
  for (const c of schedulerCases) {
    await t.step(`${c.scheduler}: ${c.name}`, () => {
      const half = Math.floor(c.lrs.length / 2);
      const opt = new SGD([tensor([0], { requiresGrad: true })], { lr: c.lr });
      const sched = makeScheduler(c, opt);
      for (let i = 0; i < half; i++) stepScheduler(sched, c, i);
      // Through JSON, as a checkpoint would store it.
      const saved = JSON.parse(JSON.stringify({
        opt: opt.stateDict(),
        sched: sched.stateDict(),
      }));
      const opt2 = new SGD([tensor([0], { requiresGrad: true })], { lr: 9 });
      const sched2 = makeScheduler(c, opt2);
      opt2.loadStateDict(saved.opt);
      sched2.loadStateDict(saved.sched);
      assert.deepEqual(sched2.getLastLr(), sched.getLastLr());
      const lrs: number[] = [];
      for (let i = half; i < c.lrs.length; i++) {
        stepScheduler(sched2, c, i);
        lrs.push(sched2.getLastLr()[0]);
      }
      assertClose(lrs, c.lrs.slice(half), { rtol: 1e-12, atol: 0 });
    });
  }
});

Deno.test("LR schedulers validate their options", async (t) => {
  const opt = () => new SGD([tensor([0], { requiresGrad: true })], { lr: 1 });
  const cases: [string, () => unknown, RegExp][] = [
    [
      "StepLR stepSize 0",
      () => new StepLR(opt(), { stepSize: 0 }),
      /stepSize is 0/,
    ],
    [
      "StepLR stepSize 1.5",
      () => new StepLR(opt(), { stepSize: 1.5 }),
      /stepSize is 1\.5, expected an integer/,
    ],
    [
      "CosineAnnealingLR tMax 0",
      () => new CosineAnnealingLR(opt(), { tMax: 0 }),
      /tMax is 0/,
    ],
    [
      "ReduceLROnPlateau factor 1",
      () => new ReduceLROnPlateau(opt(), { factor: 1 }),
      /factor is 1/,
    ],
    [
      "ReduceLROnPlateau mode",
      () => new ReduceLROnPlateau(opt(), { mode: "up" as "min" }),
      /mode is "up"/,
    ],
    [
      "ReduceLROnPlateau minLr list length",
      () => new ReduceLROnPlateau(opt(), { minLr: [0, 0] }),
      /minLr has 2 values/,
    ],
  ];
  for (const [name, fn, re] of cases) {
    await t.step(name, () => {
      assert.throws(fn, (e) => e instanceof RangeError && re.test(e.message));
    });
  }
  await t.step("loadStateDict() with a wrong key", () => {
    const s = new StepLR(opt(), { stepSize: 2 });
    assert.throws(
      () => s.loadStateDict({ ...s.stateDict(), baseLrs: [1, 2] }),
      (e) => e instanceof CheckpointError && /baseLrs/.test(e.message),
    );
  });
});

Deno.test("LR schedulers' loadStateDict() checks every value and changes nothing on a refusal", async (t) => {
  const opt = () => new SGD([tensor([0], { requiresGrad: true })], { lr: 1 });
  const refuses = (
    sched: LRScheduler | ReduceLROnPlateau,
    bad: Record<string, unknown>,
    re: RegExp,
  ) => {
    const before = sched.stateDict();
    const sd = { ...before, ...bad } as ReturnType<typeof sched.stateDict>;
    assert.throws(
      () => sched.checkStateDict(sd),
      (e) => e instanceof CheckpointError && re.test(e.message),
    );
    assert.throws(
      () => sched.loadStateDict(sd),
      (e) => e instanceof CheckpointError && re.test(e.message),
    );
    assert.deepEqual(sched.stateDict(), before);
  };
  await t.step("StepLR with stepSize 0", () => {
    const s = new StepLR(opt(), { stepSize: 2 });
    s.step();
    refuses(s, { stepSize: 0 }, /Cannot load StepLR state: stepSize is 0/);
  });
  await t.step("StepLR with a fractional lastEpoch", () => {
    refuses(
      new StepLR(opt(), { stepSize: 2 }),
      { lastEpoch: 1.5 },
      /lastEpoch is 1\.5, expected an integer/,
    );
  });
  await t.step("CosineAnnealingLR's state into StepLR", () => {
    const cos = new CosineAnnealingLR(opt(), { tMax: 4 });
    const step = new StepLR(opt(), { stepSize: 2 });
    const before = step.stateDict();
    assert.throws(
      () => step.loadStateDict(cos.stateDict()),
      (e) => e instanceof CheckpointError && /stepSize/.test(e.message),
    );
    assert.deepEqual(step.stateDict(), before);
  });
  await t.step("ReduceLROnPlateau with factor 2 or patience -1", () => {
    const r = new ReduceLROnPlateau(opt(), { patience: 1 });
    r.step(1);
    refuses(r, { factor: 2 }, /factor is 2/);
    refuses(r, { patience: -1 }, /patience is -1/);
    refuses(r, { numBadEpochs: 0.5 }, /numBadEpochs is 0\.5/);
  });
});

for (const [backend, reason] of missingBackends()) {
  Deno.test({
    name: `[${backend}] optim skipped: ${reason}`,
    ignore: true,
    fn() {},
  });
}
