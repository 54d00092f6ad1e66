import assert from "node:assert/strict";
import {
  manualSeed,
  memory,
  models,
  nn,
  noGrad,
  optim,
  randn,
  ShapeError,
  tensor,
  TensorStateError,
  tidy,
  zeros,
} from "../mod.ts";

Deno.test("tensor() infers shape and prints readably", () => {
  const t = tensor([[1, 2.5], [3, -4]]);
  assert.deepEqual(t.shape, [2, 2]);
  assert.deepEqual(t.toArray(), [[1, 2.5], [3, -4]]);
  assert.equal(
    t.toString(),
    "tensor([[ 1.0000,  2.5000],\n        [ 3.0000, -4.0000]])",
  );
  assert.equal(
    tensor([1, 2], { dtype: "int32" }).toString(),
    "tensor([1, 2], dtype=int32)",
  );
  assert.equal(tensor(3).item(), 3);
  assert.deepEqual(tensor(3).shape, []);
  assert.throws(() => tensor([[1, 2], [3]]), ShapeError);
  assert.throws(() => tensor([1, 2]).item(), /2 elements/);
});

Deno.test("manualSeed() makes random tensors repeatable", () => {
  manualSeed(7);
  const a = randn([5]).data();
  manualSeed(7);
  const b = randn([5]).data();
  assert.deepEqual(a, b);
  manualSeed(8);
  assert.notDeepEqual(randn([5]).data(), a);
});

Deno.test("backward() accumulates gradients until cleared", () => {
  const w = tensor([1, 2, 3], { requiresGrad: true });
  w.mul(w).sum().backward();
  assert.deepEqual(w.grad!.toArray(), [2, 4, 6]);
  w.mul(3).sum().backward();
  assert.deepEqual(w.grad!.toArray(), [5, 7, 9]);
  // a tensor used twice gets both contributions
  const x = tensor([2], { requiresGrad: true });
  x.mul(x).add(x).sum().backward();
  assert.deepEqual(x.grad!.toArray(), [5]);
});

Deno.test("noGrad() and detach() stop recording", () => {
  const w = tensor([1, 2], { requiresGrad: true });
  const y = noGrad(() => w.mul(2));
  assert.equal(y.requiresGrad, false);
  assert.equal(w.mul(2).detach().requiresGrad, false);
  assert.throws(() => y.sum().backward(), /does not require gradients/);
});

Deno.test("a frozen parameter gets no gradient and the optimizer skips it", () => {
  const net = new nn.Linear(3, 2);
  net.weight.requiresGrad = false;
  const before = net.weight.data();
  const opt = new optim.SGD(net.parameters(), { lr: 0.5 });
  net.call(randn([4, 3])).sum().backward();
  assert.equal(net.weight.grad, null);
  assert.notEqual(net.bias!.grad, null);
  opt.step();
  assert.deepEqual(net.weight.data(), before);
});

Deno.test("dispose() frees a tensor and later use fails clearly", () => {
  const t = zeros([2, 3]);
  const n = memory().tensors;
  t.dispose();
  assert.equal(memory().tensors, n - 1);
  assert.throws(() => t.add(1), TensorStateError);
  assert.throws(() => t.add(1), /shape \[2, 3\].*disposed/);
  {
    using u = zeros([1]);
    assert.equal(u.isDisposed, false);
  }
});

Deno.test("a training step inside tidy() leaves only parameters, gradients and optimizer state", () => {
  manualSeed(0);
  const model = new models.StudentNet({ inputSize: 8, numClasses: 2 });
  const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const x = randn([4, 3, 8, 8]);
  const y = tensor([0, 1, 1, 0], { dtype: "int32" });
  const step = () =>
    tidy(() => {
      opt.zeroGrad();
      const loss = nn.functional.crossEntropy(model.call(x), y);
      loss.backward();
      opt.step();
      return loss.item();
    });
  step(); // creates gradients and momentum buffers
  const after1 = memory();
  for (let i = 0; i < 3; i++) step();
  const after4 = memory();
  assert.equal(after4.tensors, after1.tensors);
  assert.equal(after4.bytes, after1.bytes);
  const params = model.parameters().length;
  const buffers = model.buffers().length;
  // parameters + buffers + one gradient and one momentum buffer per parameter
  // + the two inputs made above
  const live = params + buffers + params * 2 + 2;
  const globalBase = after4.tensors - live;
  assert.ok(
    globalBase >= 0,
    `fewer live tensors than expected: ${after4.tensors}`,
  );
  // nothing else was created by the steps
  const tidyOnly = tidy(() => {
    model.call(x);
    return 0;
  });
  assert.equal(tidyOnly, 0);
  assert.equal(memory().tensors, after4.tensors);
});
