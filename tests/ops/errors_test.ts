// Bad input throws a typed error whose message names the shapes, dims or
// dtypes involved.
import assert from "node:assert/strict";
import {
  cat,
  DTypeError,
  nn,
  ShapeError,
  stack,
  tensor,
  zeros,
} from "../../mod.ts";

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
