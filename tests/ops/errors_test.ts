// Bad input throws a typed error whose message names the shapes, dims or
// dtypes involved.
import assert from "node:assert/strict";
import {
  arange,
  cat,
  DTypeError,
  full,
  nn,
  ones,
  rand,
  randint,
  randn,
  ShapeError,
  stack,
  tensor,
  zeros,
} from "../../mod.ts";
import { checkShape, MAX_ELEMENTS } from "../../src/ops/_util.ts";

const F = nn.functional;

function assertThrowsWith(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => Error,
  ...fragments: string[]
): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught !== undefined,
    `expected ${ErrorClass.name}, nothing thrown`,
  );
  assert.ok(
    caught instanceof ErrorClass,
    `expected ${ErrorClass.name}, got ${
      (caught as Error)?.constructor?.name
    }: ${(caught as Error)?.message}`,
  );
  for (const f of fragments) {
    assert.ok(
      caught.message.includes(f),
      `message should contain ${JSON.stringify(f)}: ${
        JSON.stringify(caught.message)
      }`,
    );
  }
}

const floats = (shape: number[]) => zeros(shape);
const ints = (shape: number[]) => zeros(shape, { dtype: "int32" });

Deno.test("ShapeError and DTypeError subclass the closest built-ins", () => {
  assert.ok(new ShapeError("x") instanceof RangeError);
  assert.ok(new DTypeError("x") instanceof TypeError);
});

Deno.test("elementwise ops throw ShapeError for shapes that do not broadcast", async (t) => {
  await t.step("add() [2, 3] and [4]", () =>
    assertThrowsWith(
      () => floats([2, 3]).add(floats([4])),
      ShapeError,
      "[2, 3]",
      "[4]",
    ));
  await t.step("mul() [2, 3] and [3, 2]", () =>
    assertThrowsWith(
      () => floats([2, 3]).mul(floats([3, 2])),
      ShapeError,
      "[2, 3]",
      "[3, 2]",
    ));
  await t.step("mseLoss() [2, 3] and [3, 2]", () =>
    assertThrowsWith(
      () => F.mseLoss(floats([2, 3]), floats([3, 2])),
      ShapeError,
      "[2, 3]",
      "[3, 2]",
    ));
});

Deno.test("matmul() throws ShapeError naming both shapes", async (t) => {
  await t.step("[2, 3] @ [4, 5]", () =>
    assertThrowsWith(
      () => floats([2, 3]).matmul(floats([4, 5])),
      ShapeError,
      "[2, 3]",
      "[4, 5]",
    ));
  await t.step("[3] @ [4]", () =>
    assertThrowsWith(
      () => floats([3]).matmul(floats([4])),
      ShapeError,
      "[3]",
      "[4]",
    ));
  await t.step(
    "batch dims [2] and [3] do not broadcast",
    () =>
      assertThrowsWith(
        () => floats([2, 3, 4]).matmul(floats([3, 4, 5])),
        ShapeError,
        "[2, 3, 4]",
        "[3, 4, 5]",
      ),
  );
  await t.step("linear() [2, 3] with weight [4, 5]", () =>
    assertThrowsWith(
      () => F.linear(floats([2, 3]), floats([4, 5])),
      ShapeError,
      "[2, 3]",
      "[4, 5]",
    ));
});

Deno.test("ops throw ShapeError for a dim out of range", async (t) => {
  await t.step(
    "sum(5) of [2, 3]",
    () => assertThrowsWith(() => floats([2, 3]).sum(5), ShapeError, "5"),
  );
  await t.step(
    "softmax(-3) of [2, 3]",
    () => assertThrowsWith(() => floats([2, 3]).softmax(-3), ShapeError, "-3"),
  );
  await t.step(
    "transpose(0, 4) of [2, 3]",
    () =>
      assertThrowsWith(() => floats([2, 3]).transpose(0, 4), ShapeError, "4"),
  );
  await t.step(
    "unsqueeze(4) of [2, 3]",
    () => assertThrowsWith(() => floats([2, 3]).unsqueeze(4), ShapeError, "4"),
  );
  await t.step("cat() along dim 2 of 2-D tensors", () =>
    assertThrowsWith(
      () => cat([floats([2, 3]), floats([2, 3])], 2),
      ShapeError,
      "2",
    ));
});

Deno.test("shape ops throw ShapeError naming the shapes", async (t) => {
  await t.step("cat() [2, 3] and [2, 4] along dim 0", () =>
    assertThrowsWith(
      () => cat([floats([2, 3]), floats([2, 4])], 0),
      ShapeError,
      "[2, 3]",
      "[2, 4]",
    ));
  await t.step("stack() [2, 3] and [3, 2]", () =>
    assertThrowsWith(
      () => stack([floats([2, 3]), floats([3, 2])]),
      ShapeError,
      "[2, 3]",
      "[3, 2]",
    ));
  await t.step("reshape() [2, 3] to [4]", () =>
    assertThrowsWith(
      () => floats([2, 3]).reshape([4]),
      ShapeError,
      "[2, 3]",
      "[4]",
    ));
  await t.step("expand() [2, 3] to [4, 3]", () =>
    assertThrowsWith(
      () => floats([2, 3]).expand([4, 3]),
      ShapeError,
      "[2, 3]",
      "[4, 3]",
    ));
  await t.step(
    "tensor() with 5 values for shape [2, 3]",
    () =>
      assertThrowsWith(
        () => tensor(new Float32Array(5), { shape: [2, 3] }),
        ShapeError,
        "[2, 3]",
      ),
  );
  await t.step(
    "conv2d() input channels 3, weight expects 2",
    () =>
      assertThrowsWith(
        () => F.conv2d(floats([1, 3, 5, 5]), floats([4, 2, 3, 3])),
        ShapeError,
        "[1, 3, 5, 5]",
        "[4, 2, 3, 3]",
      ),
  );
  await t.step(
    "crossEntropy() logits [4, 3] with target [5]",
    () =>
      assertThrowsWith(
        () => F.crossEntropy(floats([4, 3]), ints([5])),
        ShapeError,
        "[4, 3]",
        "[5]",
      ),
  );
});

Deno.test("ops throw DTypeError for the wrong dtype", async (t) => {
  await t.step("crossEntropy() with float32 labels", () =>
    assertThrowsWith(
      () => F.crossEntropy(floats([4, 3]), floats([4])),
      DTypeError,
      "float32",
    ));
  await t.step("nllLoss() with float32 labels", () =>
    assertThrowsWith(
      () => F.nllLoss(floats([4, 3]), floats([4])),
      DTypeError,
      "float32",
    ));
  await t.step("indexSelect() with a float32 index", () =>
    assertThrowsWith(
      () => floats([4, 3]).indexSelect(0, floats([2])),
      DTypeError,
      "float32",
    ));
  await t.step("gather() with a float32 index", () =>
    assertThrowsWith(
      () => floats([4, 3]).gather(1, floats([4, 1])),
      DTypeError,
      "float32",
    ));
});

Deno.test("tensor() refuses data that is not numbers with DTypeError naming where", async (t) => {
  const cases: [string, unknown, string][] = [
    ['["a"]', ["a"], 'data[0] is a string ("a")'],
    ['"abc"', "abc", 'data is a string ("abc")'],
    ["[[1], [true]]", [[1], [true]], "data[1][0] is a boolean"],
    ["[[1, 2], [3, null]]", [[1, 2], [3, null]], "data[1][1] is null"],
    ["[{}]", [{}], "data[0] is an object (Object)"],
    ["[1n]", [1n], "data[0] is a bigint"],
    ["[new BigInt64Array(1)]", [new BigInt64Array(1)], "BigInt64Array"],
  ];
  for (const [name, data, fragment] of cases) {
    await t.step(name, () =>
      assertThrowsWith(
        () => tensor(data as number[]),
        DTypeError,
        fragment,
      ));
  }
});

Deno.test("tensor() refuses ragged and self-containing data with ShapeError", async (t) => {
  await t.step("ragged", () =>
    assertThrowsWith(
      () => tensor([[1, 2], [3]]),
      ShapeError,
      "data[1] has shape [1] but data[0] has [2]",
    ));
  await t.step("an array that contains itself", () => {
    const a: unknown[] = [];
    a.push(a);
    assertThrowsWith(
      () => tensor(a as number[]),
      ShapeError,
      "nested more than 64 levels",
    );
  });
  await t.step(
    "a number beside an array",
    () =>
      assertThrowsWith(() => tensor([1, [2]] as number[]), ShapeError, "[1]"),
  );
});

Deno.test("tensor() still takes numbers, nested arrays and typed arrays", () => {
  assert.deepEqual(tensor([[1, 2], [3, 4]]).toArray(), [[1, 2], [3, 4]]);
  assert.equal(tensor(new Int32Array([1, 2])).dtype, "int32");
  assert.deepEqual(
    tensor([new Float32Array([1, 2]), new Float32Array([3, 4])]).shape,
    [2, 2],
  );
  // a JavaScript caller may pass any typed array of numbers
  const f64 = Float64Array.of(0.5, 2) as unknown as Float32Array;
  assert.deepEqual(tensor(f64).toArray(), [0.5, 2]);
  assert.equal(tensor(3).item(), 3);
});

Deno.test("creation functions refuse a shape over MAX_ELEMENTS, naming shape, dtype and bytes", async (t) => {
  const huge = [2 ** 20, 2 ** 20];
  const fragments = ["[1048576, 1048576]", "1099511627776 elements", "4 TiB"];
  const cases: [string, () => unknown, string][] = [
    ["zeros()", () => zeros(huge), "float32"],
    ["ones() int32", () => ones(huge, { dtype: "int32" }), "int32"],
    ["full()", () => full(huge, 2), "float32"],
    ["rand()", () => rand(huge), "float32"],
    ["randn()", () => randn(huge), "float32"],
    ["randint()", () => randint(0, 2, huge), "int32"],
    [
      "tensor() with a shape",
      () => tensor(new Float32Array(4), { shape: huge }),
      "float32",
    ],
    ["reshape()", () => zeros([1]).reshape(huge), "float32"],
    ["expand()", () => zeros([1, 1]).expand(huge), "float32"],
  ];
  for (const [name, fn, dtype] of cases) {
    await t.step(
      name,
      () => assertThrowsWith(fn, ShapeError, ...fragments, dtype),
    );
  }
  await t.step("arange(1e12)", () =>
    assertThrowsWith(
      () => arange(1e12),
      ShapeError,
      "[1000000000000]",
      "int32",
      "TiB",
    ));
  await t.step(
    "add() broadcasting [131072, 1] and [1, 65536]",
    () =>
      assertThrowsWith(
        () => zeros([2 ** 17, 1]).add(zeros([1, 2 ** 16])),
        ShapeError,
        "[131072, 1]",
        "[1, 65536]",
        "[131072, 65536]",
        "32 GiB",
      ),
  );
  await t.step("the limit itself is allowed, one more is not", () => {
    checkShape("test", [MAX_ELEMENTS]);
    checkShape("test", [3, 5, 17, 257, 65537]);
    assertThrowsWith(
      () => checkShape("test", [MAX_ELEMENTS + 1]),
      ShapeError,
      "4294967296 elements",
      "16 GiB",
    );
  });
  await t.step("a huge shape with no elements is fine", () => {
    assert.deepEqual(zeros([0, 2 ** 40]).shape, [0, 2 ** 40]);
  });
});

Deno.test("creation functions refuse a shape that is not an array and an unknown dtype", async (t) => {
  await t.step("zeros(5)", () =>
    assertThrowsWith(
      () => zeros(5 as unknown as number[]),
      ShapeError,
      "shape 5 is not an array",
    ));
  await t.step(
    "zeros([2.5])",
    () => assertThrowsWith(() => zeros([2.5]), ShapeError, "[2.5]"),
  );
  for (
    const [name, fn] of [
      ["full()", () => full([2], 1, { dtype: "float64" as "float32" })],
      ["zeros()", () => zeros([2], { dtype: "bool" as "float32" })],
      ["arange()", () => arange(3, undefined, { dtype: "x" as "float32" })],
      ["tensor()", () => tensor([1], { dtype: "uint8" as "float32" })],
    ] as const
  ) {
    await t.step(
      `${name} with an unknown dtype`,
      () => assertThrowsWith(fn, DTypeError, "unknown dtype", "float32"),
    );
  }
});

Deno.test("arange() and dropout() refuse NaN", async (t) => {
  await t.step(
    "arange(NaN)",
    () => assertThrowsWith(() => arange(NaN), RangeError, "end NaN"),
  );
  await t.step("arange(0, 1, { step: Infinity })", () =>
    assertThrowsWith(
      () => arange(0, 1, { step: Infinity }),
      RangeError,
      "step Infinity",
    ));
  await t.step("dropout() with p NaN", () =>
    assertThrowsWith(
      () => F.dropout(zeros([2]), { p: NaN }),
      RangeError,
      "p NaN",
    ));
});

Deno.test("conv2d(), pooling and matmul() refuse bad geometry and outputs over MAX_ELEMENTS before any kernel runs", () => {
  const x = zeros([1, 1, 4, 4]);
  const w = zeros([1, 1, 2, 2]);
  for (
    const [opts, what] of [
      [{ stride: 0 }, /stride 0 must be positive/],
      [{ padding: -1 }, /padding -1 must be non-negative/],
      [{ dilation: [1, 0] }, /dilation \[1,0\] must be positive/],
      [{ groups: 0 }, /groups 0 must be a positive integer/],
    ] as [Parameters<typeof F.conv2d>[2], RegExp][]
  ) {
    assert.throws(
      () => F.conv2d(x, w, opts),
      (e: unknown) => e instanceof ShapeError && what.test(e.message),
    );
  }
  assert.throws(
    () => F.maxPool2d(x, 2, { stride: 0 }),
    (e: unknown) => e instanceof ShapeError && /stride 0/.test(e.message),
  );
  assert.throws(
    () => F.avgPool2d(x, 1.5),
    (e: unknown) => e instanceof ShapeError && /kernelSize 1.5/.test(e.message),
  );
  assert.throws(
    () => zeros([2 ** 17, 1]).matmul(zeros([1, 2 ** 16])),
    (e: unknown) =>
      e instanceof ShapeError && /\[1, 131072, 65536\]/.test(e.message) &&
      /32 GiB of float32/.test(e.message),
  );
});
