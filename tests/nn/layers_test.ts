// Layer constructors check their hyper-parameters as PyTorch's do: a bad
// value fails where it is written, with a typed error naming the layer, the
// argument and the value (sizes: ShapeError; p, eps, momentum: RangeError).
import assert from "node:assert/strict";
import { nn, ShapeError, zeros } from "../../mod.ts";

function assertRefused(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => Error,
  ...fragments: string[]
): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(
      e instanceof ErrorClass,
      `expected ${ErrorClass.name}, got ${(e as Error)?.name}: ${
        (e as Error)?.message
      }`,
    );
    for (const f of fragments) {
      assert.ok(
        e.message.includes(f),
        `message should contain ${JSON.stringify(f)}: ${e.message}`,
      );
    }
    return true;
  });
}

// a JavaScript caller (or a config read from JSON) can pass anything
const any = (v: unknown) => v as number;

Deno.test("Dropout() refuses p outside [0, 1], as torch.nn.Dropout", async (t) => {
  for (const p of [2, -0.1, NaN, Infinity, any("0.5"), any(null)]) {
    await t.step(`p ${String(p)}`, () =>
      assertRefused(
        () => new nn.Dropout(p),
        RangeError,
        "Cannot create Dropout",
        "must be in [0, 1]",
      ));
  }
  await t.step("p 0, 1 and the default are fine", () => {
    assert.equal(new nn.Dropout(0).p, 0);
    assert.equal(new nn.Dropout(1).p, 1);
    assert.equal(new nn.Dropout().p, 0.5);
  });
});

Deno.test("Linear() refuses sizes that are not non-negative integers", async (t) => {
  await t.step("inFeatures -1", () =>
    assertRefused(
      () => new nn.Linear(-1, 3),
      ShapeError,
      "Cannot create Linear: inFeatures -1 must be a non-negative integer",
    ));
  await t.step(
    "outFeatures 2.5",
    () =>
      assertRefused(() => new nn.Linear(3, 2.5), ShapeError, "outFeatures 2.5"),
  );
  await t.step(
    'outFeatures "4"',
    () => assertRefused(() => new nn.Linear(3, any("4")), ShapeError, '"4"'),
  );
  await t.step("0 features, as PyTorch allows", () => {
    assert.deepEqual(new nn.Linear(0, 3).weight.shape, [3, 0]);
  });
});

Deno.test("Conv2d() refuses bad sizes, stride, padding, dilation and groups", async (t) => {
  const cases: [string, () => unknown, string][] = [
    ["inChannels -3", () => new nn.Conv2d(-3, 4, 3), "inChannels -3"],
    ["outChannels 1.5", () => new nn.Conv2d(3, 1.5, 3), "outChannels 1.5"],
    ["kernelSize 0", () => new nn.Conv2d(3, 4, 0), "kernelSize 0"],
    [
      "kernelSize [3, -1]",
      () => new nn.Conv2d(3, 4, [3, -1]),
      "kernelSize [3,-1]",
    ],
    [
      "kernelSize [3]",
      () => new nn.Conv2d(3, 4, [3] as unknown as [number, number]),
      "kernelSize [3] must be a positive integer or a pair",
    ],
    ["stride 0", () => new nn.Conv2d(3, 4, 3, { stride: 0 }), "stride 0"],
    [
      "padding -1",
      () => new nn.Conv2d(3, 4, 3, { padding: -1 }),
      "padding -1 must be a non-negative",
    ],
    [
      "dilation 0",
      () => new nn.Conv2d(3, 4, 3, { dilation: [1, 0] }),
      "dilation [1,0]",
    ],
    ["groups 0", () => new nn.Conv2d(3, 3, 3, { groups: 0 }), "groups 0"],
    [
      "inChannels 3, groups 2",
      () => new nn.Conv2d(3, 4, 3, { groups: 2 }),
      "inChannels 3 is not divisible by groups 2",
    ],
    [
      "outChannels 3, groups 2",
      () => new nn.Conv2d(4, 3, 3, { groups: 2 }),
      "outChannels 3 is not divisible by groups 2",
    ],
  ];
  for (const [name, fn, fragment] of cases) {
    await t.step(
      name,
      () => assertRefused(fn, ShapeError, "Cannot create Conv2d", fragment),
    );
  }
  await t.step("valid geometry still builds and runs", () => {
    const conv = new nn.Conv2d(4, 6, [3, 1], {
      stride: [2, 1],
      padding: [1, 0],
      dilation: 1,
      groups: 2,
    });
    assert.deepEqual(conv.weight.shape, [6, 2, 3, 1]);
    assert.deepEqual(conv.call(zeros([1, 4, 5, 5])).shape, [1, 6, 3, 5]);
  });
});

Deno.test("BatchNorm2d() refuses a bad numFeatures, eps or momentum", async (t) => {
  await t.step("numFeatures -2", () =>
    assertRefused(
      () => new nn.BatchNorm2d(-2),
      ShapeError,
      "Cannot create BatchNorm2d: numFeatures -2",
    ));
  for (const eps of [0, -1e-5, NaN, Infinity]) {
    await t.step(`eps ${eps}`, () =>
      assertRefused(
        () => new nn.BatchNorm2d(3, { eps }),
        RangeError,
        `eps ${eps} must be a positive finite number`,
      ));
  }
  for (const momentum of [-0.1, 1.5, NaN]) {
    await t.step(`momentum ${momentum}`, () =>
      assertRefused(
        () => new nn.BatchNorm2d(3, { momentum }),
        RangeError,
        `momentum ${momentum} must be in [0, 1]`,
      ));
  }
  await t.step("momentum null (a cumulative average) is fine", () => {
    assert.equal(new nn.BatchNorm2d(3, { momentum: null }).momentum, null);
  });
});

Deno.test("pooling layers refuse a bad kernel, stride, padding or output size", async (t) => {
  const cases: [string, () => unknown, string][] = [
    ["MaxPool2d kernel 0", () => new nn.MaxPool2d(0), "kernelSize 0"],
    [
      "MaxPool2d stride 0",
      () => new nn.MaxPool2d(2, { stride: 0 }),
      "stride 0",
    ],
    [
      "MaxPool2d padding -1",
      () => new nn.MaxPool2d(3, { padding: -1 }),
      "padding -1",
    ],
    [
      "MaxPool2d dilation 0",
      () => new nn.MaxPool2d(3, { dilation: 0 }),
      "dilation 0",
    ],
    ["AvgPool2d kernel 1.5", () => new nn.AvgPool2d(1.5), "kernelSize 1.5"],
    [
      "AvgPool2d stride [1, 0]",
      () => new nn.AvgPool2d(2, { stride: [1, 0] }),
      "stride [1,0]",
    ],
    [
      "AdaptiveAvgPool2d 0",
      () => new nn.AdaptiveAvgPool2d(0),
      "outputSize 0",
    ],
  ];
  for (const [name, fn, fragment] of cases) {
    await t.step(name, () => assertRefused(fn, ShapeError, fragment));
  }
  await t.step("valid pools still run", () => {
    const x = zeros([1, 1, 4, 4]);
    assert.deepEqual(
      new nn.MaxPool2d(3, { stride: 2, padding: 1 }).call(x).shape,
      [1, 1, 2, 2],
    );
    assert.deepEqual(new nn.AvgPool2d(2).call(x).shape, [1, 1, 2, 2]);
    assert.deepEqual(new nn.AdaptiveAvgPool2d(1).call(x).shape, [1, 1, 1, 1]);
  });
});

Deno.test("Flatten() refuses dims that are not integers", () => {
  assertRefused(
    () => new nn.Flatten(0.5),
    ShapeError,
    "Cannot create Flatten: startDim 0.5 must be an integer",
  );
  assertRefused(() => new nn.Flatten(1, any("x")), ShapeError, 'endDim "x"');
  assert.deepEqual(new nn.Flatten().call(zeros([2, 3, 4])).shape, [2, 12]);
});
