/**
 * The backend contract's shared parts: the registry's device names and the
 * one place (`src/backend/fused.ts`) that falls back from an optional fused
 * entry point to the unfused composition.
 */

import assert from "node:assert/strict";
import type {
  Backend,
  BatchNormGeometry,
  BatchNormParams,
} from "../../src/backend/backend.ts";
import { CpuBackend } from "../../src/backend/cpu/mod.ts";
import * as fused from "../../src/backend/fused.ts";
import {
  deviceNames,
  getBackend,
  isDeviceName,
} from "../../src/backend/registry.ts";
import { BackendUnavailableError } from "../../ffi/find_library.ts";

Deno.test("deviceNames() and isDeviceName() come from the registry's map", () => {
  assert.deepEqual(deviceNames(), ["cpu", "cuda"]);
  for (const name of deviceNames()) assert.ok(isDeviceName(name));
  for (const name of ["gpu", "", "toString", "__proto__"]) {
    assert.equal(isDeviceName(name), false, name);
  }
});

Deno.test("getBackend() names the known devices for an unknown one", () => {
  assert.throws(
    () => getBackend("tpu" as "cpu"),
    (e: unknown) =>
      e instanceof BackendUnavailableError &&
      e.message.includes('Known devices are "cpu" and "cuda"'),
  );
});

/** The CPU backend without its optional fused entry points. */
function unfused(be: CpuBackend): Backend {
  return {
    name: be.name,
    unary: be.unary.bind(be),
    binary: be.binary.bind(be),
    free: be.free.bind(be),
    batchNormTrain: (x, p, g) => be.batchNormTrain(x, p, g),
    batchNormEval: (x, p, g) => be.batchNormEval(x, p, g),
    batchNormBackward: be.batchNormBackward.bind(be),
  } as Partial<Backend> as Backend;
}

Deno.test("fused.ts: the unfused composition equals the fused kernels", async (t) => {
  const cpu = new CpuBackend();
  const plain = unfused(cpu);
  assert.equal(plain.batchNormTrainRelu, undefined);
  const [n, c, hw] = [3, 4, 5];
  const data = Float32Array.from(
    { length: n * c * hw },
    (_, i) => Math.sin(i * 1.7) * 2 + (i % 3 === 0 ? -0.5 : 0.25),
  );
  const params = (): BatchNormParams => ({
    weight: cpu.upload(Float32Array.from([1, 0.5, -2, 1.5])),
    bias: cpu.upload(Float32Array.from([0.1, -0.3, 0, 0.2])),
    runningMean: cpu.upload(Float32Array.from([0.1, 0.2, -0.1, 0])),
    runningVar: cpu.upload(Float32Array.from([1, 2, 0.5, 1.5])),
  });
  const dl = (s: Parameters<Backend["download"]>[0]) => [...cpu.download(s)];
  for (const activation of ["none", "relu"] as const) {
    const g: BatchNormGeometry = {
      n,
      c,
      hw,
      eps: 1e-5,
      momentum: 0.1,
      activation,
    };
    await t.step(`train, activation ${activation}, with backward`, () => {
      const x = cpu.upload(data);
      const [pa, pb] = [params(), params()];
      const a = fused.batchNormTrain(cpu, x, pa, g);
      const b = fused.batchNormTrain(plain, x, pb, g);
      assert.deepEqual(dl(b.y), dl(a.y));
      assert.deepEqual(dl(b.mean), dl(a.mean));
      assert.deepEqual(dl(b.invStd), dl(a.invStd));
      assert.deepEqual(dl(pb.runningVar!), dl(pa.runningVar!));
      if (activation === "relu") {
        assert.ok(dl(a.y).some((v) => v === 0), "the ReLU clipped nothing");
        assert.ok(dl(a.y).every((v) => v >= 0));
      }
      const dy = cpu.upload(data.map((v) => v * 0.3 - 0.1));
      const ga = fused.batchNormBackward(cpu, x, dy, a.y, pa.weight, a, g);
      const gb = fused.batchNormBackward(plain, x, dy, b.y, pb.weight, b, g);
      assert.deepEqual(dl(gb.dx), dl(ga.dx));
      assert.deepEqual(dl(gb.dweight), dl(ga.dweight));
      assert.deepEqual(dl(gb.dbias), dl(ga.dbias));
    });
    await t.step(`eval, activation ${activation}`, () => {
      const x = cpu.upload(data);
      const a = fused.batchNormEval(cpu, x, params(), g);
      const b = fused.batchNormEval(plain, x, params(), g);
      assert.deepEqual(dl(b), dl(a));
    });
  }
});
