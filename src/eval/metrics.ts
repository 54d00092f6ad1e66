/**
 * Classification metrics from predicted probabilities and labels: accuracy,
 * balanced accuracy, the confusion matrix, per-class precision / recall /
 * specificity / F1, sensitivity and specificity, ROC-AUC (2 classes),
 * expected calibration error, NLL and Brier score; `evaluate(model,
 * loader)`, which runs a model over a loader in evaluation mode and
 * computes them; and what a reader of imbalanced results needs beside
 * them: the majority-class baseline (`majorityBaseline`) and how much of
 * the test set a model gives to one class (`dominantPrediction`).
 *
 * @module
 */

import { noGrad } from "../autograd.ts";
import type { Module } from "../nn/module.ts";
import { crossEntropy, softmax } from "../ops/mod.ts";
import { tidy } from "../tensor.ts";
import type { DeviceName } from "../backend/backend.ts";
import type { Tensor } from "../tensor.ts";
import { type Loader, moveBatch } from "../data/batch.ts";

/** Precision, recall, F1 and support of one class. */
export interface ClassMetrics {
  /** TP / (TP + FP); 0 when the class is never predicted. */
  precision: number;
  /** TP / (TP + FN) (sensitivity); 0 when the class never occurs. */
  recall: number;
  /**
   * TN / (TN + FP), the class against the rest (specificity); 0 when
   * every sample is of this class.
   */
  specificity: number;
  /** Harmonic mean of precision and recall. */
  f1: number;
  /** Number of samples of the class. */
  support: number;
}

/** Every metric `classificationMetrics` computes. */
export interface ClassificationMetrics {
  /** Number of samples. */
  n: number;
  /** Number of classes. */
  numClasses: number;
  /** Fraction correct. */
  accuracy: number;
  /** Mean recall over the classes present. */
  balancedAccuracy: number;
  /** `confusion[true][predicted]` counts. */
  confusion: number[][];
  /** Per class, in class order. */
  perClass: ClassMetrics[];
  /** Mean F1 over classes. */
  macroF1: number;
  /** The class counted as positive for sensitivity / specificity / AUC. */
  positiveClass: number;
  /** Recall of the positive class (2 classes only, else undefined). */
  sensitivity?: number;
  /** Recall of the negative class (2 classes only). */
  specificity?: number;
  /** Area under the ROC curve of the positive class's probability (2 classes). */
  rocAuc?: number;
  /** Expected calibration error of the top-class confidence (15 bins). */
  ece: number;
  /** Mean negative log-likelihood of the true class. */
  nll: number;
  /** Mean Brier score (squared error of the probability vector). */
  brier: number;
}

/**
 * The confusion matrix.
 *
 * @param predictions Predicted classes.
 * @param labels True classes.
 * @param numClasses Number of classes.
 * @returns `m[true][predicted]` counts.
 *
 * @example
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const m = evaluation.confusionMatrix([0, 1, 1, 1], [0, 0, 1, 1], 2);
 * assert.deepEqual(m, [[1, 1], [0, 2]]);
 * ```
 */
export function confusionMatrix(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (predictions.length !== labels.length) {
    throw new RangeError(
      `Cannot build a confusion matrix: ${predictions.length} predictions and ${labels.length} labels`,
    );
  }
  const m = Array.from({ length: numClasses }, () => Array(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    const p = predictions[i];
    if (y < 0 || y >= numClasses || p < 0 || p >= numClasses) {
      throw new RangeError(
        `Cannot build a confusion matrix: sample ${i} has label ${y}, prediction ${p}, outside ${numClasses} classes`,
      );
    }
    m[y][p]++;
  }
  return m;
}

/**
 * Area under the ROC curve: the probability that a random positive scores
 * above a random negative (ties count half), via ranks.
 *
 * @param scores Scores of the positive class.
 * @param positives Per sample, whether it is positive.
 * @returns The AUC, or NaN when one class is absent.
 *
 * @example
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.equal(evaluation.rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
 * ```
 */
export function rocAuc(
  scores: ArrayLike<number>,
  positives: ArrayLike<boolean | number>,
): number {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    scores[a] - scores[b]
  );
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]] = r;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (positives[i]) {
      nPos++;
      rankSum += ranks[i];
    }
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** A ROC curve: `fpr[i]`, `tpr[i]` is the point of threshold `thresholds[i]`. */
export interface RocCurve {
  /** False-positive rate of each point, from 0 up to 1. */
  fpr: number[];
  /** True-positive rate of each point, from 0 up to 1. */
  tpr: number[];
  /**
   * The threshold of each point: a sample is called positive when its score
   * is ≥ the threshold. The first is `Infinity` (nothing positive: the point
   * (0, 0)), then every distinct score from the highest down.
   */
  thresholds: number[];
  /** Area under the curve by the trapezoid rule (equals `rocAuc`). */
  auc: number;
  /** Number of positive samples. */
  positives: number;
  /** Number of negative samples. */
  negatives: number;
}

/**
 * The ROC curve of a score: one point per distinct score (scikit-learn's
 * `roc_curve` with `drop_intermediate=False`), from (0, 0) at threshold
 * `Infinity` to (1, 1) at the lowest score. When one class is absent its
 * rate is NaN throughout and `auc` is NaN.
 *
 * @param scores Scores of the positive class (higher: more positive).
 * @param positives Per sample, whether it is positive.
 * @returns The points, their thresholds and the area under the curve.
 * @throws RangeError when the lengths differ or a score is NaN.
 *
 * @example scikit-learn's documented case
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const roc = evaluation.rocCurve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]);
 * assert.deepEqual(roc.fpr, [0, 0, 0.5, 0.5, 1]);
 * assert.deepEqual(roc.tpr, [0, 0.5, 0.5, 1, 1]);
 * assert.deepEqual(roc.thresholds, [Infinity, 0.8, 0.4, 0.35, 0.1]);
 * assert.equal(roc.auc, 0.75);
 * ```
 */
export function rocCurve(
  scores: ArrayLike<number>,
  positives: ArrayLike<boolean | number>,
): RocCurve {
  const n = scores.length;
  if (positives.length !== n) {
    throw new RangeError(
      `Cannot compute a ROC curve: ${n} scores and ${positives.length} labels`,
    );
  }
  const idx = Array.from({ length: n }, (_, i) => i);
  for (const i of idx) {
    if (Number.isNaN(scores[i])) {
      throw new RangeError(
        `Cannot compute a ROC curve: the score of sample ${i} is NaN`,
      );
    }
  }
  idx.sort((a, b) => scores[b] - scores[a]);
  let nPos = 0;
  for (let i = 0; i < n; i++) if (positives[i]) nPos++;
  const nNeg = n - nPos;
  const fpr = [0];
  const tpr = [0];
  const thresholds = [Infinity];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < n;) {
    const s = scores[idx[i]];
    while (i < n && scores[idx[i]] === s) {
      if (positives[idx[i]]) tp++;
      else fp++;
      i++;
    }
    fpr.push(fp / nNeg);
    tpr.push(tp / nPos);
    thresholds.push(s);
  }
  if (nPos === 0) tpr.fill(NaN);
  if (nNeg === 0) fpr.fill(NaN);
  let auc = 0;
  for (let i = 1; i < fpr.length; i++) {
    auc += (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2;
  }
  return {
    fpr,
    tpr,
    thresholds,
    auc: nPos && nNeg ? auc : NaN,
    positives: nPos,
    negatives: nNeg,
  };
}

/**
 * Expected calibration error of the top-class confidence: bins of equal
 * width on [0, 1], the sample-weighted mean of |accuracy - confidence|.
 *
 * @param probabilities Row-major `[n, c]` probabilities.
 * @param labels True classes `[n]`.
 * @param numClasses c.
 * @param bins Number of bins (default 15).
 * @returns The ECE.
 */
export function expectedCalibrationError(
  probabilities: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
  bins = 15,
): number {
  const n = labels.length;
  const conf = new Float64Array(bins);
  const acc = new Float64Array(bins);
  const count = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) {
      if (
        probabilities[i * numClasses + c] > probabilities[i * numClasses + best]
      ) best = c;
    }
    const p = probabilities[i * numClasses + best];
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(p * bins) - 1));
    conf[b] += p;
    acc[b] += best === labels[i] ? 1 : 0;
    count[b]++;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    if (count[b] > 0) ece += Math.abs(acc[b] - conf[b]) / n;
  }
  return ece;
}

/** Options of `classificationMetrics` and `evaluate`. */
export interface MetricsOptions {
  /** The positive class for sensitivity, specificity and AUC (default 1). */
  positiveClass?: number;
  /** Calibration bins (default 15). */
  bins?: number;
}

/**
 * Every metric from predicted probabilities.
 *
 * @param probabilities Row-major `[n, c]` probabilities (softmax outputs).
 * @param labels True classes `[n]`.
 * @param numClasses c.
 * @param options positiveClass (default 1), bins (default 15).
 * @returns The metrics.
 *
 * @example A 2-class example
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const probs = [0.9, 0.1, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7];
 * const m = evaluation.classificationMetrics(probs, [0, 1, 1, 1], 2);
 * assert.equal(m.accuracy, 0.75);
 * assert.equal(m.sensitivity, 2 / 3);
 * assert.equal(m.specificity, 1);
 * ```
 */
export function classificationMetrics(
  probabilities: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
  options: MetricsOptions = {},
): ClassificationMetrics {
  const n = labels.length;
  if (probabilities.length !== n * numClasses) {
    throw new RangeError(
      `Cannot compute metrics: ${probabilities.length} probabilities for ${n} samples of ${numClasses} classes`,
    );
  }
  const positiveClass = options.positiveClass ?? 1;
  const preds = new Int32Array(n);
  let nll = 0;
  let brier = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 0; c < numClasses; c++) {
      const p = probabilities[i * numClasses + c];
      if (p > probabilities[i * numClasses + best]) best = c;
      brier += (p - (c === labels[i] ? 1 : 0)) ** 2;
    }
    preds[i] = best;
    nll -= Math.log(Math.max(probabilities[i * numClasses + labels[i]], 1e-12));
  }
  const confusion = confusionMatrix(preds, labels, numClasses);
  const perClass: ClassMetrics[] = [];
  let correct = 0;
  for (let c = 0; c < numClasses; c++) {
    const tp = confusion[c][c];
    correct += tp;
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c], 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const negatives = n - support;
    const specificity = negatives
      ? (negatives - (predicted - tp)) / negatives
      : 0;
    const f1 = precision + recall
      ? (2 * precision * recall) / (precision + recall)
      : 0;
    perClass.push({ precision, recall, specificity, f1, support });
  }
  const present = perClass.filter((c) => c.support > 0);
  const out: ClassificationMetrics = {
    n,
    numClasses,
    accuracy: n ? correct / n : NaN,
    balancedAccuracy: present.length
      ? present.reduce((a, c) => a + c.recall, 0) / present.length
      : NaN,
    confusion,
    perClass,
    macroF1: perClass.reduce((a, c) => a + c.f1, 0) / numClasses,
    positiveClass,
    ece: n
      ? expectedCalibrationError(
        probabilities,
        labels,
        numClasses,
        options.bins ?? 15,
      )
      : NaN,
    nll: n ? nll / n : NaN,
    brier: n ? brier / n : NaN,
  };
  if (numClasses === 2) {
    const neg = 1 - positiveClass;
    out.sensitivity = perClass[positiveClass].recall;
    out.specificity = perClass[neg].recall;
    const scores = new Float64Array(n);
    const pos = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      scores[i] = probabilities[i * 2 + positiveClass];
      pos[i] = labels[i] === positiveClass ? 1 : 0;
    }
    out.rocAuc = rocAuc(scores, pos);
  }
  return out;
}

/** What `evaluate` returns: the metrics and the raw predictions. */
export interface EvaluateResult extends ClassificationMetrics {
  /** Mean cross-entropy over samples. */
  loss: number;
  /** Predicted class per sample, in loader order. */
  predictions: Int32Array;
  /** True class per sample, in loader order. */
  labels: Int32Array;
  /** Row-major `[n, c]` softmax probabilities. */
  probabilities: Float32Array;
  /** Per sample, 1 when the prediction is right (for McNemar's test). */
  correct: Uint8Array;
}

/** Options of `evaluate`. */
export interface EvaluateOptions extends MetricsOptions {
  /** Device to run on (the batches are moved there). */
  device?: DeviceName;
}

/**
 * Runs a model over a loader in evaluation mode without gradients, and
 * computes every metric. The model's training flag is restored afterwards.
 * Each batch is disposed once used. For paired comparisons (McNemar) the
 * loader must not shuffle.
 *
 * @param model The classifier.
 * @param loader Yields `[images, labels]` batches.
 * @param options positiveClass, bins, device.
 * @returns The metrics, the loss and the per-sample predictions.
 */
export async function evaluate(
  model: Module,
  loader: Loader,
  options: EvaluateOptions = {},
): Promise<EvaluateResult> {
  const wasTraining = model.training;
  model.eval();
  const probs: Float32Array[] = [];
  const labels: Int32Array[] = [];
  let lossSum = 0;
  let numClasses = 0;
  try {
    for await (const batch of loader) {
      const [x, y] = moveBatch(batch, options.device);
      try {
        const [p, l] = noGrad(() =>
          tidy(() => {
            const logits = model.call(x);
            numClasses = logits.shape[1];
            const loss = crossEntropy(logits, y, { reduction: "sum" });
            return [softmax(logits, 1), loss] as [Tensor, Tensor];
          })
        );
        probs.push(p.data() as Float32Array);
        labels.push(y.data() as Int32Array);
        lossSum += l.item();
        p.dispose();
        l.dispose();
      } finally {
        x.dispose();
        y.dispose();
        if (batch[0] !== x) batch[0].dispose();
        if (batch[1] !== y) batch[1].dispose();
      }
    }
  } finally {
    model.train(wasTraining);
  }
  const n = labels.reduce((a, l) => a + l.length, 0);
  const allProbs = new Float32Array(n * numClasses);
  const allLabels = new Int32Array(n);
  let at = 0;
  for (let i = 0; i < labels.length; i++) {
    allProbs.set(probs[i], at * numClasses);
    allLabels.set(labels[i], at);
    at += labels[i].length;
  }
  const m = classificationMetrics(allProbs, allLabels, numClasses, options);
  const predictions = new Int32Array(n);
  const correct = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) {
      if (allProbs[i * numClasses + c] > allProbs[i * numClasses + best]) {
        best = c;
      }
    }
    predictions[i] = best;
    correct[i] = best === allLabels[i] ? 1 : 0;
  }
  return {
    ...m,
    loss: n ? lossSum / n : NaN,
    predictions,
    labels: allLabels,
    probabilities: allProbs,
    correct,
  };
}

/** The majority-class baseline: what always answering one class scores. */
export interface MajorityBaseline {
  /** The most frequent class of the training labels (the lower index on a tie). */
  classIndex: number;
  /** Its share of the training labels. */
  trainShare: number;
  /** Whether another class has as many training labels (a tie). */
  tied: boolean;
  /** Accuracy on the test labels of always predicting it. */
  accuracy: number;
  /** Balanced accuracy of always predicting it: 1 / (classes present in test). */
  balancedAccuracy: number;
  /** Number of test labels. */
  n: number;
}

/**
 * The majority-class baseline: the accuracy of always predicting the most
 * frequent class of the training labels (on a tie, the lowest such class
 * index, and `tied` says so), scored on the test labels. A model
 * that does not beat it has learned nothing a class count would not tell;
 * on imbalanced data (the chest X-ray test split is 62.5% pneumonia) it is
 * far above 1 / classes. Its balanced accuracy is 1 / (classes present).
 *
 * @param trainTargets The training split's labels (never the test's).
 * @param testLabels The test split's labels.
 * @returns The class, its training share and its test scores.
 * @throws RangeError when either list is empty or holds a value that is
 *   not a class index.
 *
 * @example 3 to 1 in training, 5 to 3 in test
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const b = evaluation.majorityBaseline([1, 1, 1, 0], [1, 1, 1, 1, 1, 0, 0, 0]);
 * assert.equal(b.classIndex, 1);
 * assert.equal(b.trainShare, 0.75);
 * assert.equal(b.accuracy, 5 / 8);
 * assert.equal(b.balancedAccuracy, 0.5);
 * ```
 */
export function majorityBaseline(
  trainTargets: ArrayLike<number>,
  testLabels: ArrayLike<number>,
): MajorityBaseline {
  const count = (xs: ArrayLike<number>, what: string): Map<number, number> => {
    if (xs.length === 0) {
      throw new RangeError(`Cannot compute the majority baseline: no ${what}`);
    }
    const m = new Map<number, number>();
    for (let i = 0; i < xs.length; i++) {
      const y = xs[i];
      if (!Number.isInteger(y) || y < 0) {
        throw new RangeError(
          `Cannot compute the majority baseline: ${what} ${i} is ${y}, not a class index`,
        );
      }
      m.set(y, (m.get(y) ?? 0) + 1);
    }
    return m;
  };
  const train = count(trainTargets, "training labels");
  const test = count(testLabels, "test labels");
  let classIndex = -1;
  let best = -1;
  for (const [c, k] of train) {
    if (k > best || (k === best && c < classIndex)) [classIndex, best] = [c, k];
  }
  const tied = [...train].some(([c, k]) => c !== classIndex && k === best);
  return {
    classIndex,
    trainShare: best / trainTargets.length,
    tied,
    accuracy: (test.get(classIndex) ?? 0) / testLabels.length,
    balancedAccuracy: 1 / test.size,
    n: testLabels.length,
  };
}

/**
 * The class a model predicts most often, from its confusion matrix, and
 * the share of samples it goes to. A share near 1 on a test set with
 * several classes means the model answers (nearly) one class whatever the
 * image.
 *
 * @param confusion `confusion[true][predicted]` counts.
 * @returns The class and its share of the predictions (NaN with no samples).
 *
 * @example
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const d = evaluation.dominantPrediction([[0, 10], [1, 29]]);
 * assert.deepEqual(d, { classIndex: 1, share: 39 / 40 });
 * ```
 */
export function dominantPrediction(
  confusion: readonly (readonly number[])[],
): { classIndex: number; share: number } {
  const k = confusion.length;
  const predicted = Array.from(
    { length: k },
    (_, c) => confusion.reduce((a, row) => a + (row[c] ?? 0), 0),
  );
  const n = predicted.reduce((a, b) => a + b, 0);
  let classIndex = 0;
  for (let c = 1; c < k; c++) {
    if (predicted[c] > predicted[classIndex]) classIndex = c;
  }
  return { classIndex, share: n ? predicted[classIndex] / n : NaN };
}
