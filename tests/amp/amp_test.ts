/**
 * `amp.autocast` scopes and `amp.GradScaler` with PyTorch's semantics
 * (torch.cuda.amp.GradScaler, torch 1.13: growth 2.0 every 2000 clean
 * steps, backoff 0.5, skipped steps on inf/NaN gradients, unscale_ once per
 * update, state_dict keys). PyTorch 1.13 has no CPU kernels for the scaler
 * (`_amp_update_scale_`), so the expected values follow its documented
 * rules; `bench/gpu_check.sh` compares the scale sequence with PyTorch's on
 * a GPU.
 */

import assert from "node:assert/strict";
import {
  amp,
  currentDevice,
  manualSeed,
  matmul,
  nn,
  optim,
  randn,
  tensor,
  TensorStateError,
} from "../../mod.ts";

function model() {
  manualSeed(1);
  const m = new nn.Linear(3, 2);
  const x = randn([4, 3]);
  const y = tensor([0, 1, 1, 0], { dtype: "int32" });
  return { m, x, y };
}

Deno.test("GradScaler: defaults, scaled loss, exact unscaled gradients", () => {
  const s = new amp.GradScaler();
  assert.equal(s.getScale(), 65536);
  assert.ok(s.isEnabled());
  const { m, x, y } = model();
  const loss = nn.functional.crossEntropy(m.call(x), y);
  const scaled = s.scale(loss);
  assert.equal(scaled.item(), Math.fround(loss.item() * 65536));
  scaled.backward({ retainGraph: true });
  const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
  s.unscale_(opt);
  const unscaled = m.parameters().map((p) => [...p.grad!.data()]);
  opt.zeroGrad();
  loss.backward();
  const plain = m.parameters().map((p) => [...p.grad!.data()]);
  assert.deepEqual(unscaled, plain, "a power-of-two scale is exact");
});

Deno.test("GradScaler: a float32 loop with it equals the loop without it", () => {
  const run = (withScaler: boolean) => {
    const { m, x, y } = model();
    const opt = new optim.SGD(m.parameters(), { lr: 0.5, momentum: 0.9 });
    const s = new amp.GradScaler({ enabled: withScaler, growthInterval: 2 });
    for (let i = 0; i < 5; i++) {
      opt.zeroGrad();
      s.scale(nn.functional.crossEntropy(m.call(x), y)).backward();
      assert.equal(s.step(opt), true);
      s.update();
    }
    return { w: [...m.weight.data()], scale: s.getScale() };
  };
  const a = run(true), b = run(false);
  assert.deepEqual(a.w, b.w);
  assert.equal(a.scale, 65536 * 4, "grew after steps 2 and 4");
  assert.equal(b.scale, 1, "disabled: scale 1");
});

Deno.test("GradScaler: inf/NaN gradients skip the step and halve the scale", () => {
  const { m, x, y } = model();
  const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
  const s = new amp.GradScaler({ growthInterval: 3 });
  const clean = () => {
    opt.zeroGrad();
    s.scale(nn.functional.crossEntropy(m.call(x), y)).backward();
    assert.equal(s.step(opt), true);
    s.update();
  };
  clean();
  clean();
  assert.deepEqual(s.stateDict(), {
    scale: 65536,
    growth_factor: 2,
    backoff_factor: 0.5,
    growth_interval: 3,
    _growth_tracker: 2,
  });
  for (const bad of [Infinity, NaN]) {
    opt.zeroGrad();
    s.scale(nn.functional.crossEntropy(m.call(x), y)).backward();
    m.bias!.grad = tensor([bad, 0]);
    const before = [...m.weight.data()];
    assert.equal(s.step(opt), false, `${bad}: skipped`);
    assert.deepEqual([...m.weight.data()], before, "parameters unchanged");
    s.update();
  }
  assert.equal(s.getScale(), 65536 / 4);
  assert.equal(s.stateDict()._growth_tracker, 0);
  clean();
  clean();
  clean();
  assert.equal(s.getScale(), 65536 / 2, "three clean steps: grew once");
  // update(newScale) sets the scale
  s.update(1024);
  assert.equal(s.getScale(), 1024);
});

Deno.test("GradScaler: the order of calls is checked as PyTorch checks it", () => {
  const { m, x, y } = model();
  const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
  const s = new amp.GradScaler();
  assert.throws(() => s.update(), TensorStateError);
  s.scale(nn.functional.crossEntropy(m.call(x), y)).backward();
  s.unscale_(opt);
  assert.throws(() => s.unscale_(opt), /already called/);
  s.step(opt);
  assert.throws(() => s.step(opt), /already called/);
  assert.throws(() => s.unscale_(opt), /step\(\) was already called/);
  s.update();
  s.unscale_(opt); // a new iteration
  assert.throws(() => new amp.GradScaler({ growthFactor: 1 }), RangeError);
  assert.throws(() => new amp.GradScaler({ backoffFactor: 1 }), RangeError);
  assert.throws(() => new amp.GradScaler({ initScale: 0 }), RangeError);
  assert.throws(() => new amp.GradScaler({ growthInterval: 0.5 }), RangeError);
});

Deno.test("GradScaler: stateDict round trip; a bad state names its key", () => {
  const s = new amp.GradScaler({ initScale: 128, growthInterval: 7 });
  const t = new amp.GradScaler();
  t.loadStateDict(s.stateDict());
  assert.deepEqual(t.stateDict(), s.stateDict());
  assert.throws(
    () => t.loadStateDict({ scale: 1, growth_factor: 2, backoff_factor: 0.5 }),
    (e: unknown) =>
      e instanceof TensorStateError &&
      /"growth_interval" is missing/.test(e.message),
  );
  assert.throws(() => t.loadStateDict({}), /empty/);
  assert.deepEqual(new amp.GradScaler({ enabled: false }).stateDict(), {});
  // growth never overflows float32
  const big = new amp.GradScaler({ initScale: 2 ** 127, growthInterval: 1 });
  const { m, x, y } = model();
  const opt = new optim.SGD(m.parameters(), { lr: 0 });
  big.scale(nn.functional.crossEntropy(m.call(x), y).mul(0)).backward();
  big.step(opt);
  big.update();
  assert.equal(big.getScale(), 2 ** 127);
});

Deno.test("autocast: scopes nest, restore on throw and on settle", async () => {
  const dev = currentDevice();
  assert.equal(amp.isAutocastEnabled(), false);
  assert.equal(amp.autocastDtype(), null);
  amp.autocast({ dtype: "float16" }, () => {
    assert.equal(amp.autocastDtype(), "float16");
    amp.autocast({ enabled: false }, () => {
      assert.equal(amp.isAutocastEnabled(), false);
    });
    amp.autocast({ dtype: "bfloat16" }, () => {
      assert.equal(amp.autocastDtype(dev), "bfloat16");
    });
    assert.equal(amp.autocastDtype(), "float16");
  });
  assert.throws(() =>
    amp.autocast({}, () => {
      throw new Error("boom");
    }), /boom/);
  assert.equal(amp.isAutocastEnabled(), false);
  const p = amp.autocast({ dtype: "bfloat16" }, async () => {
    await Promise.resolve();
    return amp.autocastDtype();
  });
  assert.equal(await p, "bfloat16");
  assert.equal(amp.isAutocastEnabled(), false);
  // PyTorch's default dtypes
  amp.autocast(
    { device: "cpu" },
    () => assert.equal(amp.autocastDtype("cpu"), "bfloat16"),
  );
  amp.autocast(
    { device: "cuda" },
    () => assert.equal(amp.autocastDtype("cuda"), "float16"),
  );
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => amp.autocast({ dtype: "float64" as any }, () => 0),
    /dtype "float64" is not "float16" or "bfloat16"/,
  );
});

Deno.test("autocast on the CPU computes in float32, bit for bit", () => {
  manualSeed(3);
  const a = randn([5, 7]), b = randn([7, 3]);
  const plain = [...matmul(a, b).data()];
  for (const dtype of ["float16", "bfloat16"] as const) {
    const y = amp.autocast({ device: "cpu", dtype }, () => matmul(a, b));
    assert.equal(y.dtype, "float32");
    assert.deepEqual([...y.data()], plain);
  }
});
