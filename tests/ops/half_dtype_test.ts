/**
 * float16 and bfloat16 tensors against PyTorch 1.13 on the CPU
 * (`tests/amp/fixtures/half_ops.json`, written by
 * `tests/amp/generate_half_ops.py`), on every backend (the CUDA conformance
 * test runs this folder on the emulated device and on a GPU): casts,
 * elementwise ops computed in float32 and rounded back, dtype promotion,
 * reductions, matmul/linear, and the refusals of every other op.
 *
 * Arithmetic, comparisons, clamp and max are exact (one float32 operation
 * rounded once, as PyTorch's kernels do). Results that depend on float32
 * library functions or summation order (exp, log, sqrt, rsqrt, sigmoid,
 * tanh, sum, mean, matmul, linear) may differ by one unit in the last
 * place of the half type.
 */

import assert from "node:assert/strict";
import {
  DTypeError,
  matmul,
  mean,
  memory,
  setBackend,
  softmax,
  sum,
  type Tensor,
  tensor,
} from "../../mod.ts";
import * as ops from "../../src/ops/mod.ts";
import { availableBackends, missingBackends } from "../_helpers.ts";

type HalfName = "float16" | "bfloat16";
interface Fixture {
  inputs: Record<string, number[]>;
  shapes: Record<string, number[]>;
  cases: Record<HalfName, Record<string, number[]>>;
  cross: { float16_plus_bfloat16: number[] };
  fallbacks: string[];
}
const fx = JSON.parse(
  await Deno.readTextFile(
    new URL("../amp/fixtures/half_ops.json", import.meta.url),
  ),
) as Fixture;

const f32 = (name: string, shape = fx.shapes[name] ?? fx.shapes.a) =>
  tensor(fx.inputs[name], { shape });

/** One unit in the last place of `v` in `dtype`. */
function ulp(v: number, dtype: HalfName): number {
  const mant = dtype === "float16" ? 10 : 7;
  const minExp = dtype === "float16" ? -14 : -126;
  const a = Math.abs(v);
  const e = a === 0 ? minExp : Math.max(Math.floor(Math.log2(a)), minExp);
  return 2 ** (e - mant);
}

function flat(t: Tensor): number[] {
  return Array.from(t.toArray() as unknown as number[]).flat(8) as number[];
}

function check(
  what: string,
  got: Tensor,
  want: number[],
  dtype: HalfName,
  ulps: number,
  gotDtype: string = dtype,
): void {
  assert.equal(got.dtype, gotDtype, `${what}: dtype`);
  const g = typeof got.toArray() === "number"
    ? [got.toArray() as number]
    : flat(got);
  assert.equal(g.length, want.length, `${what}: length`);
  for (let i = 0; i < g.length; i++) {
    const tol = ulps * ulp(want[i], dtype);
    if (!(Math.abs(g[i] - want[i]) <= tol)) {
      assert.fail(
        `${what} (${dtype}) at ${i}: got ${g[i]}, PyTorch ${want[i]} ` +
          `(allowed ${ulps} ulp = ${tol})`,
      );
    }
  }
}

const steps: [string, () => void][] = [];
for (const dt of ["float16", "bfloat16"] as const) {
  const c = fx.cases[dt];
  steps.push([
    `${dt}: casts round as PyTorch and keep the dtype through views`,
    () => {
      const a = f32("a").to(dt);
      check("to()", a, c.cast, dt, 0);
      check(
        dt === "float16" ? "half()" : "bfloat16()",
        dt === "float16" ? f32("a").half() : f32("a").bfloat16(),
        c.cast,
        dt,
        0,
      );
      assert.equal(a.data().constructor, Uint16Array);
      const src = f32("a");
      const before = memory().bytes;
      const z = src.to(dt);
      assert.equal(memory().bytes - before, 2 * 24, "2 bytes a value");
      z.dispose();
      src.dispose();
      assert.equal(a.data().length, 24);
      const v = a.reshape([6, 4]);
      assert.equal(v.dtype, dt);
      check("reshape", v, c.cast, dt, 0);
      const back = a.float();
      assert.equal(back.dtype, "float32");
      assert.deepEqual(Array.from(back.data()), c.cast);
      assert.equal(a.to(dt), a);
      assert.equal(a.toDtype("int32").dtype, "int32");
      assert.deepEqual(
        Array.from(a.toDtype("int32").data()),
        c.cast.map((x) => Math.trunc(x) | 0),
      );
      assert.match(a.toString(), new RegExp(`dtype=${dt}`));
      assert.equal(tensor([2.5]).to(dt).item(), 2.5);
    },
  ]);

  steps.push([
    `${dt}: elementwise ops compute in float32 and round back`,
    () => {
      const a = f32("a").to(dt), b = f32("b").to(dt), pos = f32("pos").to(dt);
      const row = f32("row").to(dt);
      check("add", a.add(b), c.add, dt, 0);
      check("sub", a.sub(b), c.sub, dt, 0);
      check("mul", a.mul(b), c.mul, dt, 0);
      check("div", a.div(pos), c.div, dt, 0);
      check("add broadcast row", a.add(row), c.add_row, dt, 0);
      check("add scalar", a.add(0.3), c.add_scalar, dt, 0);
      check("mul scalar", a.mul(1.7), c.mul_scalar, dt, 0);
      check("rsub scalar", ops.sub(2.5, a), c.rsub_scalar, dt, 0);
      check("neg", ops.neg(a), c.neg, dt, 0);
      check("abs", ops.abs(a), c.abs, dt, 0);
      check("relu", ops.relu(a), c.relu, dt, 0);
      check("square", ops.square(a), c.square, dt, 0);
      check("clamp", ops.clamp(a, -1.5, 2.25), c.clamp, dt, 0);
      check("maximum", ops.maximum(a, b), c.maximum, dt, 0);
      check("exp", ops.exp(a), c.exp, dt, 1);
      check("log", ops.log(pos), c.log, dt, 1);
      check("sqrt", ops.sqrt(pos), c.sqrt, dt, 1);
      check("rsqrt", ops.rsqrt(pos), c.rsqrt, dt, 1);
      check("sigmoid", ops.sigmoid(a), c.sigmoid, dt, 1);
      check("tanh", ops.tanh(a), c.tanh, dt, 1);
      const gt = a.gt(b);
      assert.equal(gt.dtype, "int32");
      assert.deepEqual(Array.from(gt.data()), c.gt);
    },
  ]);

  steps.push([`${dt}: promotion follows torch.promote_types`, () => {
    const a = f32("a").to(dt);
    const i = tensor(fx.inputs.i, { shape: [4, 6], dtype: "int32" });
    check("half + int32", a.add(i), c.add_int, dt, 0);
    check("half + float32", a.add(f32("b")), c.add_float32, dt, 0, "float32");
  }]);

  steps.push([`${dt}: reductions accumulate in float32 and round once`, () => {
    const a = f32("a").to(dt);
    check("sum()", sum(a), c.sum_all, dt, 1);
    check("sum(1)", sum(a, 1), c.sum_dim1, dt, 1);
    check("mean(0)", mean(a, 0), c.mean_dim0, dt, 1);
    check("mean()", mean(a), c.mean_all, dt, 1);
    check("max(1)", ops.max(a, 1), c.max_dim1, dt, 0);
    const am = ops.argmax(a, 1);
    assert.equal(am.dtype, "int32");
    assert.deepEqual(Array.from(am.data()), c.argmax_dim1);
  }]);

  steps.push([
    `${dt}: matmul and linear compute in float32 and round once`,
    () => {
      const a = f32("a").to(dt), m = f32("m").to(dt);
      const y = matmul(a, m);
      check("matmul", y, c.matmul, dt, 1);
      if (c.matmul_torch) {
        // within PyTorch 1.13's own bfloat16 product's distance of the
        // reference, plus one ulp
        const slack = c.matmul_torch_maxdiff[0];
        const got = flat(y);
        got.forEach((v, i) => {
          const want = c.matmul_torch[i];
          assert.ok(
            Math.abs(v - want) <= slack + ulp(want, dt),
            `matmul vs PyTorch's bfloat16 product at ${i}: ${v} and ${want}`,
          );
        });
      }
      const w = f32("w").to(dt), bias = f32("bias").to(dt);
      check("linear", ops.linear(a, w, { bias }), c.linear, dt, 1);
      assert.throws(
        () => matmul(a, f32("m")),
        (e: Error) =>
          e instanceof DTypeError && /matmul/.test(e.message) &&
          e.message.includes(dt) && e.message.includes("float32"),
      );
    },
  ]);

  steps.push([`${dt}: copying shape ops move the 16-bit patterns`, () => {
    const x = f32("a");
    const a = x.to(dt);
    // each op on the half tensor gives the half of the op on float32
    for (
      const [what, f] of [
        ["permute", (t: Tensor) => t.permute([1, 0])],
        ["transpose", (t: Tensor) => ops.transpose(t, 0, 1)],
        ["slice", (t: Tensor) => ops.slice(t, 1, 1, 5, 2)],
        ["expand", (t: Tensor) => ops.expand(t.reshape([1, 4, 6]), [3, 4, 6])],
        ["cat", (t: Tensor) => ops.cat([t, t.mul(2)], 1)],
        ["stack", (t: Tensor) => ops.stack([t, t], 0)],
        ["clone", (t: Tensor) => ops.clone(t)],
      ] as const
    ) {
      const got = f(a);
      assert.equal(got.dtype, dt, what);
      const want = f(x).to(dt);
      assert.deepEqual(got.shape, want.shape, what);
      assert.deepEqual(got.data(), want.data(), what);
    }
    // cat refuses mixed dtypes (half patterns never land in float32 storage)
    assert.throws(() => ops.cat([a, x], 0), /dtypes/);
  }]);

  steps.push([
    `${dt}: other ops refuse with a DTypeError naming op and dtype`,
    () => {
      const a = f32("a").to(dt);
      const idx = tensor([0], { dtype: "int32" });
      for (
        const [op, f] of [
          ["softmax", () => softmax(a, 1)],
          ["logSoftmax", () => ops.logSoftmax(a, 1)],
          [
            "conv2d",
            () => ops.conv2d(a.reshape([1, 1, 4, 6]), tensor([[[[1]]]])),
          ],
          ["indexSelect", () => ops.indexSelect(a, 0, idx)],
          [
            "gather",
            () =>
              ops.gather(
                a,
                1,
                tensor([[0]], { dtype: "int32" }).expand([4, 6]),
              ),
          ],
        ] as const
      ) {
        assert.throws(
          f,
          (e: Error) =>
            e instanceof DTypeError && e.message.includes(op) &&
            e.message.includes(dt),
          op,
        );
      }
      assert.throws(() => a.requiresGrad_(true), DTypeError);
      assert.throws(
        () => tensor([1, 2], { dtype: dt }),
        (e: Error) => e instanceof DTypeError && e.message.includes(dt),
      );
    },
  ]);
}

steps.push(["float16 + bfloat16 gives float32, as torch.promote_types", () => {
  const a = f32("a").half(), b = f32("b").bfloat16();
  const y = a.add(b);
  assert.equal(y.dtype, "float32");
  assert.deepEqual(Array.from(y.data()), fx.cross.float16_plus_bfloat16);
}]);

for (const backend of availableBackends()) {
  Deno.test(`[${backend}] float16 and bfloat16 tensors follow PyTorch`, async (t) => {
    setBackend(backend);
    try {
      for (const [name, check] of steps) await t.step(name, check);
    } finally {
      setBackend("cpu");
    }
  });
}
for (const [backend, reason] of missingBackends()) {
  Deno.test({
    name: `[${backend}] float16 and bfloat16 tensors skipped: ${reason}`,
    ignore: true,
    fn() {},
  });
}
