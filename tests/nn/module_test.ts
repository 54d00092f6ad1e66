import assert from "node:assert/strict";
import {
  CheckpointError,
  manualSeed,
  models,
  nn,
  randn,
  tensor,
  zeros,
} from "../../mod.ts";

Deno.test("loadStateDict() copies values and strict mode names every bad key", () => {
  manualSeed(1);
  const a = new models.StudentNet({ inputSize: 8 });
  const b = new models.StudentNet({ inputSize: 8 });
  b.loadStateDict(a.stateDict());
  assert.deepEqual(b.fc.weight.data(), a.fc.weight.data());

  const dict = { ...a.stateDict() };
  delete dict["fc.bias"];
  dict["fc.extra"] = zeros([1]);
  dict["layer1.0.weight"] = zeros([4, 3, 5, 5]);
  const err = assert.throws(() => b.loadStateDict(dict), CheckpointError);
  void err;
  try {
    b.loadStateDict(dict);
  } catch (e) {
    const m = (e as Error).message;
    assert.match(m, /missing keys: fc\.bias/);
    assert.match(m, /unexpected keys: fc\.extra/);
    assert.match(
      m,
      /layer1\.0\.weight: checkpoint \[4, 3, 5, 5\], model \[4, 3, 3, 3\]/,
    );
  }
  // nothing was half-loaded
  assert.deepEqual(b.fc.weight.data(), a.fc.weight.data());

  delete dict["layer1.0.weight"];
  dict["layer1.0.weight"] = a.stateDict()["layer1.0.weight"];
  const r = b.loadStateDict(dict, { strict: false });
  assert.deepEqual(r.missingKeys, ["fc.bias"]);
  assert.deepEqual(r.unexpectedKeys, ["fc.extra"]);
});

Deno.test("requiresGrad(false) freezes a backbone; the tutorial's line would not", () => {
  const net = models.resnet18({ numClasses: 2 });
  net.requiresGrad(false);
  net.fc = new nn.Linear(512, 2);
  const trainable = net.namedParameters().filter(([, p]) => p.requiresGrad);
  assert.deepEqual(trainable.map(([n]) => n), ["fc.weight", "fc.bias"]);
});

Deno.test("train() and eval() switch BatchNorm between batch and running statistics", () => {
  manualSeed(2);
  const bn = new nn.BatchNorm2d(3);
  const x = randn([4, 3, 2, 2]).mul(3).add(1);
  bn.call(x);
  assert.equal(bn.numBatchesTracked!.item(), 1);
  const rm = bn.runningMean!.data();
  assert.ok(rm.some((v) => v !== 0));
  bn.eval();
  const y = bn.call(x);
  bn.call(x);
  assert.equal(bn.numBatchesTracked!.item(), 1);
  assert.deepEqual(bn.runningMean!.data(), rm);
  assert.deepEqual(y.shape, [4, 3, 2, 2]);
});

Deno.test("forward hooks see outputs of named submodules", () => {
  manualSeed(3);
  const net = new models.StudentNet({ inputSize: 8 });
  const seen: number[][] = [];
  const h = net.layer1.registerForwardHook((_m, _i, out) => {
    seen.push([...out.shape]);
  });
  net.call(randn([2, 3, 8, 8]));
  h.remove();
  net.call(randn([2, 3, 8, 8]));
  assert.deepEqual(seen, [[2, 4, 4, 4]]);
});

Deno.test("Module names parameters as PyTorch does", () => {
  const seq = new nn.Sequential(
    new nn.Linear(2, 3),
    new nn.ReLU(),
    new nn.Linear(3, 1),
  );
  assert.deepEqual(seq.namedParameters().map(([n]) => n), [
    "0.weight",
    "0.bias",
    "2.weight",
    "2.bias",
  ]);
  assert.match(
    seq.toString(),
    /\(0\): Linear\(inFeatures=2, outFeatures=3, bias=true\)/,
  );
  const out = seq.call(tensor([[1, 2]]));
  assert.deepEqual(out.shape, [1, 1]);
});
