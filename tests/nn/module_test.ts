import assert from "node:assert/strict";
import {
  CheckpointError,
  manualSeed,
  memory,
  models,
  nn,
  noGrad,
  randn,
  type Tensor,
  tensor,
  tidy,
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

Deno.test("freeze() trains only the named submodules; batchNorm: eval keeps frozen BatchNorm in eval mode through train()", () => {
  manualSeed(3);
  const net = new nn.Sequential(
    new nn.Conv2d(3, 4, 3, { padding: 1 }),
    new nn.BatchNorm2d(4),
    new nn.ReLU(),
    new nn.Flatten(),
    new nn.Linear(64, 2),
  );
  const bn = net[1] as nn.BatchNorm2d;
  assert.equal(net.freeze({ except: ["4"], batchNorm: "eval" }), net);
  const trainable = net.namedParameters().filter(([, p]) => p.requiresGrad);
  assert.deepEqual(trainable.map(([n]) => n), ["4.weight", "4.bias"]);
  assert.equal(bn.training, false);
  net.train();
  assert.equal(bn.training, false);
  assert.equal(net[4].training, true);
  const before = Array.from(bn.runningMean!.data());
  tidy(() => net.call(randn([2, 3, 4, 4]).mul(3).add(1)));
  assert.deepEqual(Array.from(bn.runningMean!.data()), before);
  assert.equal(bn.numBatchesTracked!.item(), 0);
  net.eval();
  assert.equal(net[4].training, false);
  // batchNorm: "train" lets BatchNorm follow train() and update its statistics
  net.freeze({ except: ["4"], batchNorm: "train" }).train();
  assert.equal(bn.training, true);
  tidy(() => net.call(randn([2, 3, 4, 4]).mul(3).add(1)));
  assert.equal(bn.numBatchesTracked!.item(), 1);
  assert.ok(bn.parameters().every((p) => !p.requiresGrad));
  assert.throws(
    () => net.freeze({ except: ["fc"], batchNorm: "eval" }),
    /no submodule named "fc"/,
  );
});

Deno.test("freeze() on a ResNet-18 backbone: the tutorial's intent", () => {
  const net = models.resnet18({ numClasses: 2 });
  net.freeze({ except: ["fc"], batchNorm: "eval" }).train();
  const trainable = net.namedParameters().filter(([, p]) => p.requiresGrad);
  assert.deepEqual(trainable.map(([n]) => n), ["fc.weight", "fc.bias"]);
  const bns = net.modules().filter((m) => m instanceof nn.BatchNorm2d);
  assert.equal(bns.length, 20);
  assert.ok(bns.every((m) => !m.training));
  net.dispose();
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

Deno.test("inference frees each intermediate once consumed, unless gradients or hooks may need it", () => {
  manualSeed(4);
  const net = models.resnet18({ numClasses: 2 });
  net.eval();
  const x = randn([1, 3, 64, 64]);
  const before = memory().bytes;
  const ref = noGrad(() => tidy(() => net.call(x)));
  // with no graph and no hooks the activations (the stem's alone is 256 KB)
  // are gone before tidy ends: what is left is the output and the classifier's
  // views of its 512 features
  const during = noGrad(() =>
    tidy(() => {
      const y = net.call(x);
      return { y, live: memory().bytes - before };
    })
  );
  assert.ok(during.live <= 8192, `${during.live} bytes live after forward`);
  assert.ok(!x.isDisposed, "the input stays");
  assertNear(during.y.data(), ref.data());
  // a hook may keep what it sees: nothing is freed early then
  const kept: nn.Module[] = [];
  let captured: Tensor | null = null;
  const h = net.layer1.registerForwardHook((m, _i, out) => {
    kept.push(m);
    captured = out;
  });
  const y2 = noGrad(() =>
    tidy(() => {
      const y = net.call(x);
      assert.ok(captured !== null && !(captured as Tensor).isDisposed);
      return y;
    })
  );
  h.remove();
  assertNear(y2.data(), ref.data());
  // with gradients on, the graph keeps the activations for backward
  const y3 = tidy(() => {
    const y = net.call(x.clone().requiresGrad_(true));
    y.sum().backward();
    return y.detach();
  });
  // (oneDNN may pick other code paths for other buffers: equal to ~1e-6)
  assertNear(y3.data(), ref.data());
  // Identity layers pass their input through; it must survive
  const seq = new nn.Sequential(
    new nn.Identity(),
    new nn.ReLU(),
    new nn.Identity(),
  );
  const z = noGrad(() => seq.call(tensor([[-1, 2]])));
  assert.deepEqual(z.toArray(), [[0, 2]]);
});

function assertNear(a: ArrayLike<number>, b: ArrayLike<number>): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i])), `${i}`);
  }
}

Deno.test("BatchNorm2d → ReLU runs as one pass in inference and equals the two layers", () => {
  manualSeed(5);
  const seq = new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
  );
  // non-trivial statistics
  seq.train();
  seq.call(randn([4, 3, 8, 8]).mul(3).add(1));
  seq.eval();
  const xs = randn([2, 3, 8, 8]).data() as Float32Array;
  xs[5] = NaN;
  const x = tensor(Array.from(xs), { shape: [2, 3, 8, 8] });
  const fused = noGrad(() => seq.call(x)).data() as Float32Array;
  // a hook turns the shortcut off: layer by layer
  const h = seq[2].registerForwardHook(() => {});
  const plain = noGrad(() => seq.call(x)).data() as Float32Array;
  h.remove();
  assert.equal(fused.length, plain.length);
  let nans = 0;
  for (let i = 0; i < fused.length; i++) {
    if (Number.isNaN(plain[i])) {
      nans++;
      assert.ok(Number.isNaN(fused[i]), `NaN lost at ${i}`);
    } else {
      assert.ok(Math.abs(fused[i] - plain[i]) <= 1e-6, `${i}`);
      assert.ok(fused[i] >= 0 && !Object.is(fused[i], -0), `${i}`);
    }
  }
  assert.ok(nans > 0, "the NaN reached the output");
  // with gradients the layers run one by one and backward works
  const y = seq.call(x.detach().requiresGrad_(true));
  assert.ok(y.gradNode !== null);
});

Deno.test("loadStateDict() writes nothing when a later value is a disposed tensor", () => {
  manualSeed(11);
  const fc = new nn.Linear(2, 3);
  const before = Array.from(fc.weight.data());
  const bias = zeros([3]);
  bias.dispose();
  const dict = { weight: zeros([3, 2]), bias };
  assert.throws(
    () => fc.loadStateDict(dict),
    (e) => e instanceof CheckpointError && /bias was disposed/.test(e.message),
  );
  // `weight` comes first: it must not have been written before the refusal
  assert.deepEqual(Array.from(fc.weight.data()), before);
  assert.throws(
    () => fc.loadStateDict(dict, { strict: false }),
    CheckpointError,
  );
  assert.deepEqual(Array.from(fc.weight.data()), before);
});

Deno.test("loadStateDict() refuses a key whose value is not a tensor, strict or not", () => {
  manualSeed(12);
  const fc = new nn.Linear(2, 3);
  const before = Array.from(fc.bias!.data());
  const dict = { weight: undefined, bias: zeros([3]) } as unknown as Record<
    string,
    Tensor
  >;
  for (const strict of [true, false]) {
    assert.throws(
      () => fc.loadStateDict(dict, { strict }),
      (e) =>
        e instanceof CheckpointError &&
        /weight is undefined, not a tensor/.test(e.message),
    );
  }
  assert.deepEqual(Array.from(fc.bias!.data()), before);
});

Deno.test("loadStateDict() converts int32 into float32 but refuses float32 into an int32 buffer", () => {
  const bn = new nn.BatchNorm2d(2);
  const good = bn.stateDict();
  const asFloat = { ...good, num_batches_tracked: zeros([]) };
  assert.throws(
    () => bn.loadStateDict(asFloat),
    (e) =>
      e instanceof CheckpointError &&
      /num_batches_tracked is float32 but the model's is int32/.test(
        e.message,
      ),
  );
  const fc = new nn.Linear(2, 1);
  fc.loadStateDict({
    weight: tensor(Int32Array.from([3, -4]), { shape: [1, 2] }),
    bias: tensor(Int32Array.from([7])),
  });
  assert.deepEqual(fc.weight.toArray(), [[3, -4]]);
  assert.equal(fc.weight.dtype, "float32");
  assert.deepEqual(fc.bias!.toArray(), [7]);
});

Deno.test("checkStateDict() reports what loadStateDict() would refuse and changes nothing", () => {
  manualSeed(13);
  const fc = new nn.Linear(2, 3);
  const before = Array.from(fc.weight.data());
  const r = fc.checkStateDict({ weight: zeros([3, 2]) }, { strict: false });
  assert.deepEqual(r.missingKeys, ["bias"]);
  assert.deepEqual(Array.from(fc.weight.data()), before);
  assert.throws(
    () => fc.checkStateDict({ weight: zeros([2, 3]), bias: zeros([3]) }),
    /weight: checkpoint \[2, 3\], model \[3, 2\]/,
  );
});
