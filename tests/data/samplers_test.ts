// WeightedRandomSampler (PyTorch's semantics, checked statistically with a
// fixed seed), its use in a DataLoader, and the "balanced" class weights
// against PyTorch (samplers_fixtures/generate.py).
import assert from "node:assert/strict";
import { data, Generator, nn, tensor } from "../../mod.ts";

const { WeightedRandomSampler } = data;

/** Pearson's chi-square statistic of `counts` against `expected`. */
function chiSquare(counts: number[], expected: number[]): number {
  return counts.reduce(
    (s, c, i) => s + (c - expected[i]) ** 2 / expected[i],
    0,
  );
}

function histogram(xs: number[], k: number): number[] {
  const h = Array(k).fill(0);
  for (const x of xs) h[x]++;
  return h;
}

// 99.9% quantiles of chi-square with 3 and 4 degrees of freedom
const CHI2_999 = { 3: 16.27, 4: 18.47 };

Deno.test("WeightedRandomSampler with replacement: draws follow the weights (chi-square), uniform draws would not", () => {
  const weights = [1, 2, 3, 4, 10];
  const n = 20000;
  const drawn = new WeightedRandomSampler(weights, n).sample(new Generator(7));
  assert.equal(drawn.length, n);
  const counts = histogram(drawn, weights.length);
  const total = weights.reduce((a, b) => a + b, 0);
  const expected = weights.map((w) => (n * w) / total);
  const stat = chiSquare(counts, expected);
  assert.ok(stat < CHI2_999[4], `chi-square ${stat.toFixed(2)}: ${counts}`);
  // the same counts are far from what uniform draws would give
  const uniform = chiSquare(counts, weights.map(() => n / weights.length));
  assert.ok(uniform > 100 * CHI2_999[4], `uniform chi-square ${uniform}`);
  // the same seed, the same draws; a sampler's own generator wins
  assert.deepEqual(
    new WeightedRandomSampler(weights, n).sample(new Generator(7)),
    drawn,
  );
  const own = new WeightedRandomSampler(weights, 50, {
    generator: new Generator(3),
  });
  const again = new WeightedRandomSampler(weights, 50, {
    generator: new Generator(3),
  });
  assert.deepEqual(own.sample(new Generator(99)), again.sample());
});

Deno.test("WeightedRandomSampler: items of weight 0 are never drawn", () => {
  const drawn = new WeightedRandomSampler([0, 5, 0, 1, 0], 5000).sample(
    new Generator(1),
  );
  assert.deepEqual(new Set(drawn), new Set([1, 3]));
  const nr = new WeightedRandomSampler([0, 5, 0, 1, 0], 2, {
    replacement: false,
  }).sample(new Generator(1));
  assert.deepEqual([...nr].sort(), [1, 3]);
});

Deno.test("WeightedRandomSampler without replacement: no repeats, and the first draw is proportional to the weights", () => {
  const weights = [1, 2, 3, 4];
  const trials = 8000;
  const first = Array(4).fill(0);
  // the chance that item i is among 2 draws, exactly (sequential draws
  // proportional to the remaining weights, as torch.multinomial)
  const total = 10;
  const inTwo = weights.map((wi, i) =>
    wi / total +
    weights.reduce(
      (s, wj, j) => j === i ? s : s + (wj / total) * (wi / (total - wj)),
      0,
    )
  );
  const inTwoCounts = Array(4).fill(0);
  const g = new Generator(11);
  const sampler = new WeightedRandomSampler(weights, 2, { replacement: false });
  for (let t = 0; t < trials; t++) {
    const d = sampler.sample(g);
    assert.equal(new Set(d).size, 2);
    first[d[0]]++;
    for (const i of d) inTwoCounts[i]++;
  }
  const stat = chiSquare(first, weights.map((w) => (trials * w) / total));
  assert.ok(stat < CHI2_999[3], `first draw chi-square ${stat}: ${first}`);
  for (let i = 0; i < 4; i++) {
    const p = inTwo[i];
    const sd = Math.sqrt(trials * p * (1 - p));
    assert.ok(
      Math.abs(inTwoCounts[i] - trials * p) < 4 * sd,
      `item ${i}: ${inTwoCounts[i]} of ${trials}, expected ${trials * p}`,
    );
  }
  // all of them: a permutation
  const all = new WeightedRandomSampler(weights, 4, { replacement: false })
    .sample(new Generator(2));
  assert.deepEqual([...all].sort(), [0, 1, 2, 3]);
});

Deno.test("WeightedRandomSampler: bad weights and sizes are refused, naming the value", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => new WeightedRandomSampler([1, -1], 2), /weight 1 is -1/],
    [() => new WeightedRandomSampler([1, NaN], 2), /weight 1 is NaN/],
    [() => new WeightedRandomSampler([Infinity], 2), /weight 0 is Infinity/],
    [() => new WeightedRandomSampler([0, 0, 0], 2), /all 3 weights are zero/],
    [() => new WeightedRandomSampler([], 2), /weights is empty/],
    [
      () => new WeightedRandomSampler([1, 2], 0),
      /numSamples must be a positive integer, got 0/,
    ],
    [
      () => new WeightedRandomSampler([1, 2], -3),
      /numSamples must be a positive integer, got -3/,
    ],
    [
      () => new WeightedRandomSampler([1, 2], 1.5),
      /numSamples must be a positive integer, got 1.5/,
    ],
    [
      () => new WeightedRandomSampler([1, 0, 2], 3, { replacement: false }),
      /cannot draw 3 without replacement from 2 items of non-zero weight/,
    ],
  ];
  for (const [make, message] of cases) {
    assert.throws(
      make,
      (e: Error) => e instanceof RangeError && message.test(e.message),
    );
  }
  // with replacement, more draws than items is fine
  assert.equal(new WeightedRandomSampler([1, 0, 2], 30).length, 30);
});

Deno.test("WeightedRandomSampler in a DataLoader: balanced batches from a 9-to-1 data set", async () => {
  const n = 200;
  const targets = Array.from({ length: n }, (_, i) => (i % 10 === 0 ? 1 : 0));
  const ds = {
    length: n,
    targets,
    get: (i: number) =>
      [tensor([i], { shape: [1] }), targets[i]] as [
        ReturnType<typeof tensor>,
        number,
      ],
  };
  const sampler = new WeightedRandomSampler(
    data.balancedSampleWeights(targets),
    400,
  );
  const loader = new data.DataLoader(ds, { batchSize: 50, sampler, seed: 5 });
  const seen: number[] = [];
  let batches = 0;
  for await (const [x, y] of loader) {
    batches++;
    const xi = x.data();
    const yi = y.data();
    for (let k = 0; k < yi.length; k++) {
      assert.equal(targets[xi[k]], yi[k]); // the label of the drawn item
      seen.push(yi[k]);
    }
    x.dispose();
    y.dispose();
  }
  assert.equal(batches, 8);
  assert.equal(seen.length, 400);
  const ones = seen.filter((t) => t === 1).length;
  // balanced: about 200 of 400 (binomial sd 10); unweighted would give ~40
  assert.ok(ones > 160 && ones < 240, `${ones} of 400 from the rare class`);
  assert.throws(
    () => new data.DataLoader(ds, { batchSize: 4, sampler, shuffle: true }),
    /mutually exclusive/,
  );
});

Deno.test("classCounts, balancedClassWeights, balancedSampleWeights: counts and refusals", () => {
  assert.deepEqual(data.classCounts([2, 0, 2, 2]), [1, 0, 3]);
  assert.deepEqual(data.classCounts([1], 3), [0, 1, 0]);
  assert.deepEqual(data.balancedClassWeights([0, 1, 1, 1]), [2, 2 / 3]);
  assert.deepEqual(data.balancedClassWeights([0, 1, 0, 1]), [1, 1]);
  assert.deepEqual(data.balancedSampleWeights([0, 1, 1]), [1, 0.5, 0.5]);
  assert.throws(
    () => data.balancedClassWeights([0, 2, 2]),
    /class 1 has no item among the 3 targets/,
  );
  assert.throws(
    () => data.balancedClassWeights([0, 1], 3),
    /class 2 has no item/,
  );
  assert.throws(() => data.classCounts([]), /targets is empty/);
  assert.throws(() => data.classCounts([0, 1.5]), /target 1 is 1.5/);
  assert.throws(() => data.classCounts([0, -1]), /target 1 is -1/);
  assert.throws(
    () => data.classCounts([0, 3], 2),
    /target 1 is 3, outside 2 classes/,
  );
});

interface WeightCase {
  name: string;
  targets: number[];
  weight: number[];
  logits: number[];
  loss: number;
  unweightedLoss: number;
  grad: number[];
}

const fixture: { cases: WeightCase[] } = JSON.parse(
  await Deno.readTextFile(
    new URL("./samplers_fixtures/class_weights.json", import.meta.url),
  ),
);

Deno.test("balanced class weights and crossEntropy({ weight }) match PyTorch's CrossEntropyLoss(weight=...)", () => {
  assert.equal(fixture.cases.length, 3);
  for (const c of fixture.cases) {
    const k = c.weight.length;
    const w = data.balancedClassWeights(c.targets, k);
    w.forEach((v, i) =>
      assert.ok(Math.abs(v - c.weight[i]) < 1e-12, `${c.name}: weight ${i}`)
    );
    const n = c.targets.length;
    const logits = tensor(c.logits, { shape: [n, k], requiresGrad: true });
    const t = tensor(Int32Array.from(c.targets), { shape: [n] });
    const loss = nn.functional.crossEntropy(logits, t, {
      weight: tensor(w, { shape: [k] }),
    });
    assert.ok(
      Math.abs(loss.item() - c.loss) < 1e-5,
      `${c.name}: ${loss.item()} vs PyTorch ${c.loss}`,
    );
    loss.backward();
    const g = logits.grad!.data();
    c.grad.forEach((v, i) =>
      assert.ok(
        Math.abs(g[i] - v) < 1e-6,
        `${c.name}: grad ${i} ${g[i]} vs ${v}`,
      )
    );
    // the weighting matters: the plain mean differs (except when balanced)
    const plain = nn.functional.crossEntropy(logits, t).item();
    assert.ok(Math.abs(plain - c.unweightedLoss) < 1e-5);
    if (c.name !== "balanced") assert.ok(Math.abs(plain - c.loss) > 1e-3);
  }
});
