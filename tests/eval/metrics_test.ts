import assert from "node:assert/strict";
import { data, evaluation, manualSeed, models, nn, tensor } from "../../mod.ts";
import { assertClose } from "../_helpers.ts";

Deno.test("classificationMetrics() computes every metric of a hand-checked case", () => {
  // labels:      0    0    1    1    1    0
  // p(class 1): .2   .6   .7   .4   .9   .1
  const p1 = [0.2, 0.6, 0.7, 0.4, 0.9, 0.1];
  const probs = p1.flatMap((p) => [1 - p, p]);
  const labels = [0, 0, 1, 1, 1, 0];
  const m = evaluation.classificationMetrics(probs, labels, 2);
  assert.deepEqual(m.confusion, [[2, 1], [1, 2]]);
  assertClose(m.accuracy, 4 / 6);
  assertClose(m.sensitivity!, 2 / 3);
  assertClose(m.specificity!, 2 / 3);
  assertClose(m.perClass[1].precision, 2 / 3);
  assertClose(m.perClass[1].f1, 2 / 3);
  // pairs (pos, neg) ranked right: 8 of 9
  assertClose(m.rocAuc!, 8 / 9);
  // NLL and Brier by hand
  const nll =
    -[0.8, 0.4, 0.7, 0.4, 0.9, 0.9].reduce((a, p) => a + Math.log(p), 0) / 6;
  assertClose(m.nll, nll);
  const brier =
    [0.2, 0.6, 0.3, 0.6, 0.1, 0.1].reduce((a, e) => a + 2 * e * e, 0) / 6;
  assertClose(m.brier, brier);
});

Deno.test("expectedCalibrationError() bins the top-class confidence", () => {
  // confidences .9 (right), .9 (wrong), .6 (right): bins (.8667,.9333] and (.6-.0667, .6]
  const probs = [0.9, 0.1, 0.1, 0.9, 0.6, 0.4];
  const ece = evaluation.expectedCalibrationError(probs, [0, 0, 0], 2);
  assertClose(ece, (2 / 3) * Math.abs(0.5 - 0.9) + (1 / 3) * Math.abs(1 - 0.6));
});

Deno.test("rocAuc() counts ties as one half", () => {
  assert.equal(evaluation.rocAuc([0.5, 0.5], [0, 1]), 0.5);
  assert.ok(Number.isNaN(evaluation.rocAuc([0.1, 0.2], [1, 1])));
});

Deno.test("meanConfidenceInterval() uses Student's t", () => {
  // t(0.975) for df 1, 4, 9: 12.706, 2.776, 2.262
  assertClose(evaluation.studentTQuantile(0.975, 1), 12.7062, { rtol: 1e-4 });
  assertClose(evaluation.studentTQuantile(0.975, 4), 2.7764, { rtol: 1e-4 });
  assertClose(evaluation.studentTQuantile(0.975, 9), 2.2622, { rtol: 1e-4 });
  assertClose(evaluation.normalQuantile(0.975), 1.95996, { rtol: 1e-5 });
  const ci = evaluation.meanConfidenceInterval([1, 2, 3, 4, 5]);
  assertClose(ci.halfWidth, 2.7764 * Math.sqrt(2.5) / Math.sqrt(5), {
    rtol: 1e-4,
  });
  assert.ok(Number.isNaN(evaluation.meanConfidenceInterval([1]).halfWidth));
});

Deno.test("mcnemar() gives the exact binomial p-value", () => {
  // 6 discordant, split 5/1: p = 2 * (1 + 6) / 64
  const a = [1, 1, 1, 1, 1, 0, 1, 0];
  const b = [0, 0, 0, 0, 0, 1, 1, 0];
  const r = evaluation.mcnemar(a, b);
  assert.deepEqual([r.onlyA, r.onlyB, r.both, r.neither], [5, 1, 1, 1]);
  assertClose(r.pValue, 14 / 64);
  assert.equal(evaluation.mcnemar([1, 0], [1, 0]).pValue, 1);
  assert.throws(() => evaluation.mcnemar([1], [1, 0]), /same test images/);
});

Deno.test("evaluate() runs in eval mode and restores the training flag", async () => {
  manualSeed(0);
  const model = new models.StudentNet({ inputSize: 4 });
  const x = tensor(
    Float32Array.from({ length: 6 * 48 }, (_, i) => (i % 7) / 7),
    {
      shape: [6, 3, 4, 4],
    },
  );
  const y = tensor(new Int32Array([0, 1, 0, 1, 1, 0]));
  const loader = new data.TensorLoader(x, y, { batchSize: 4 });
  const r = await evaluation.evaluate(model, loader);
  assert.equal(model.training, true);
  assert.equal(r.n, 6);
  model.eval();
  const logits = model.call(x);
  assertClose(r.loss, nn.functional.crossEntropy(logits, y).item());
  assert.deepEqual(Array.from(r.predictions), logits.argmax(1).toArray());
});

Deno.test("countMacs() matches the known ResNet-18 figure", () => {
  manualSeed(0);
  // 1.814 G multiply-accumulates at 224x224 with a 2-way head (torchvision)
  assert.equal(
    evaluation.countMacs(models.resnet18({ numClasses: 2 }), [3, 224, 224]),
    1813562368,
  );
});

Deno.test("classificationMetrics(): per-class specificity (one class against the rest), 3 classes by hand", () => {
  // confusion[true][pred]: class 0: 2 right, 1 as 1; class 1: 1 right,
  // 1 as 2; class 2: 2 right, 1 as 0
  const labels = [0, 0, 0, 1, 1, 2, 2, 2];
  const preds = [0, 0, 1, 1, 2, 2, 2, 0];
  const probs = preds.flatMap((p) =>
    [0, 1, 2].map((c) => (c === p ? 0.8 : 0.1))
  );
  const m = evaluation.classificationMetrics(probs, labels, 3);
  assert.deepEqual(m.confusion, [[2, 1, 0], [0, 1, 1], [1, 0, 2]]);
  // specificity c = TN / (TN + FP) over the samples not of class c
  assertClose(m.perClass[0].specificity, 4 / 5); // 1 of 5 others called 0
  assertClose(m.perClass[1].specificity, 5 / 6);
  assertClose(m.perClass[2].specificity, 4 / 5);
  assertClose(m.perClass[0].recall, 2 / 3);
  assertClose(m.balancedAccuracy, (2 / 3 + 1 / 2 + 2 / 3) / 3);
  // with 2 classes, each class's specificity is the other's recall
  const two = evaluation.classificationMetrics(
    [0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7],
    [0, 1, 1, 1],
    2,
  );
  assertClose(two.perClass[1].specificity, two.perClass[0].recall);
  assertClose(two.perClass[0].specificity, two.sensitivity!);
});

Deno.test("majorityBaseline(): the training split's most frequent class, scored on test", () => {
  const b = evaluation.majorityBaseline(
    [...Array(1341).fill(0), ...Array(3875).fill(1)],
    [...Array(234).fill(0), ...Array(390).fill(1)],
  );
  assert.equal(b.classIndex, 1);
  assertClose(b.trainShare, 3875 / 5216);
  assertClose(b.accuracy, 390 / 624);
  assert.equal(b.balancedAccuracy, 0.5);
  assert.equal(b.n, 624);
  assert.equal(b.tied, false);
  // the class comes from training, not test: here it is wrong on most of test
  const flipped = evaluation.majorityBaseline([0, 0, 1], [1, 1, 1, 0]);
  assert.equal(flipped.classIndex, 0);
  assert.equal(flipped.accuracy, 0.25);
  // a tie goes to the lower class; a class absent from test scores 0
  const tie = evaluation.majorityBaseline([2, 1, 2, 1], [0]);
  assert.deepEqual([tie.classIndex, tie.tied], [1, true]);
  assert.equal(evaluation.majorityBaseline([3], [0, 1]).accuracy, 0);
  assert.throws(
    () => evaluation.majorityBaseline([], [0]),
    /no training labels/,
  );
  assert.throws(
    () => evaluation.majorityBaseline([0], [0, -1]),
    /test labels 1 is -1/,
  );
});

Deno.test("dominantPrediction(): the class predicted most often and its share", () => {
  assert.deepEqual(evaluation.dominantPrediction([[3, 1], [1, 5]]), {
    classIndex: 1,
    share: 0.6,
  });
  // a tie goes to the lower class
  assert.deepEqual(evaluation.dominantPrediction([[3, 1], [2, 4]]), {
    classIndex: 0,
    share: 0.5,
  });
  assert.deepEqual(
    evaluation.dominantPrediction([[0, 0, 5], [0, 0, 5], [0, 0, 0]]),
    {
      classIndex: 2,
      share: 1,
    },
  );
  assert.ok(
    Number.isNaN(evaluation.dominantPrediction([[0, 0], [0, 0]]).share),
  );
});
