/**
 * Statistics for honest comparisons: a mean with its Student-t confidence
 * interval over seeds, the Wilson interval of one accuracy, and McNemar's
 * exact test for two classifiers scored on the same test images.
 *
 * @module
 */

/** A mean and its confidence interval. */
export interface MeanCI {
  /** Number of values. */
  n: number;
  /** The sample mean. */
  mean: number;
  /** Sample standard deviation (n - 1); 0 for one value. */
  std: number;
  /** Half-width of the interval (NaN for one value: no interval). */
  halfWidth: number;
  /** Lower end. */
  lo: number;
  /** Upper end. */
  hi: number;
  /** The confidence level, e.g. 0.95. */
  level: number;
}

const GAMMA_COF = [
  57.1562356658629235,
  -59.5979603554754912,
  14.1360979747417471,
  -0.491913816097620199,
  0.339946499848118887e-4,
  0.465236289270485756e-4,
  -0.983744753048795646e-4,
  0.158088703224912494e-3,
  -0.210264441724104883e-3,
  0.217439618115212643e-3,
  -0.164318106536763890e-3,
  0.844182239838527433e-4,
  -0.261908384015814087e-4,
  0.368991826595316234e-5,
];

/**
 * ln Γ(x) for x > 0 (Numerical Recipes' 3rd edition `gammln`, Lanczos with
 * g = 671/128 and 14 terms, relative error near 1e-15).
 *
 * @param x A positive number.
 * @returns ln Γ(x).
 */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`logGamma(${x}): x must be positive`);
  let y = x;
  let tmp = x + 5.2421875;
  tmp = (x + 0.5) * Math.log(tmp) - tmp;
  let ser = 0.999999999999997092;
  for (const c of GAMMA_COF) ser += c / ++y;
  return tmp + Math.log((2.5066282746310005 * ser) / x);
}

/** Continued fraction of the incomplete beta (Numerical Recipes' betacf). */
function betacf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/**
 * The regularised incomplete beta function I_x(a, b).
 *
 * @param x In [0, 1].
 * @param a Positive.
 * @param b Positive.
 * @returns I_x(a, b).
 */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lbt = logGamma(a + b) - logGamma(a) - logGamma(b) +
    a * Math.log(x) + b * Math.log(1 - x);
  const bt = Math.exp(lbt);
  if (x < (a + 1) / (a + b + 2)) return (bt * betacf(a, b, x)) / a;
  return 1 - (bt * betacf(b, a, 1 - x)) / b;
}

/**
 * The Student-t cumulative distribution function.
 *
 * @param t The value.
 * @param df Degrees of freedom.
 * @returns P(T ≤ t).
 */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The Student-t quantile (by bisection on the CDF).
 *
 * @param p Probability in (0, 1).
 * @param df Degrees of freedom.
 * @returns t with P(T ≤ t) = p.
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`quantile of p=${p}`);
  let lo = -1e4;
  let hi = 1e4;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * The mean of some values (accuracies over seeds) with a Student-t
 * confidence interval.
 *
 * @param values The values (at least one).
 * @param level Confidence level (default 0.95).
 * @returns Mean, standard deviation and interval.
 *
 * @example Three seeds
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const ci = evaluation.meanConfidenceInterval([0.8, 0.82, 0.84]);
 * assert.ok(Math.abs(ci.mean - 0.82) < 1e-12);
 * assert.ok(Math.abs(ci.halfWidth - 0.0497) < 1e-4); // t(0.975, 2) = 4.303
 * ```
 */
export function meanConfidenceInterval(
  values: readonly number[],
  level = 0.95,
): MeanCI {
  const n = values.length;
  if (n === 0) throw new RangeError("Cannot compute a mean of no values");
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1
    ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1))
    : 0;
  const halfWidth = n > 1
    ? studentTQuantile(1 - (1 - level) / 2, n - 1) * std / Math.sqrt(n)
    : NaN;
  return {
    n,
    mean,
    std,
    halfWidth,
    lo: mean - halfWidth,
    hi: mean + halfWidth,
    level,
  };
}

/**
 * The Wilson score interval of a proportion (one model's accuracy on a test
 * set).
 *
 * @param successes Correct predictions.
 * @param n Test size.
 * @param level Confidence level (default 0.95).
 * @returns `[lo, hi]`.
 */
export function wilsonInterval(
  successes: number,
  n: number,
  level = 0.95,
): [number, number] {
  if (n === 0) return [0, 1];
  const z = normalQuantile(1 - (1 - level) / 2);
  const p = successes / n;
  const d = 1 + (z * z) / n;
  const c = (p + (z * z) / (2 * n)) / d;
  const h = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

/**
 * The standard normal CDF, from `erfc` (Numerical Recipes' Chebyshev fit,
 * relative error below 1.2e-7).
 *
 * @param z The value.
 * @returns Φ(z).
 */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc = t * Math.exp(
    -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                  t *
                    (-0.18628806 +
                      t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                                  t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/**
 * The standard normal quantile, by bisection on `normalCdf`.
 *
 * @param p Probability in (0, 1).
 * @returns z with Φ(z) = p.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`quantile of p=${p}`);
  let lo = -40;
  let hi = 40;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The result of McNemar's test. */
export interface McNemarResult {
  /** Images A got right and B got wrong. */
  onlyA: number;
  /** Images B got right and A got wrong. */
  onlyB: number;
  /** Both right. */
  both: number;
  /** Both wrong. */
  neither: number;
  /** The two-sided exact (binomial) p-value. */
  pValue: number;
  /** The continuity-corrected chi-square statistic (for reference). */
  chi2: number;
}

/**
 * McNemar's exact test: do two classifiers scored on the same test images
 * differ in accuracy? Only the discordant images count; under the null
 * hypothesis each is equally likely to favour either model, so the p-value
 * is a two-sided binomial tail with p = 1/2.
 *
 * @param correctA Per test image, whether model A was right.
 * @param correctB Per test image, whether model B was right (same order).
 * @returns Counts, the exact p-value and the chi-square statistic.
 *
 * @example Ten discordant images, all in A's favour
 * ```ts
 * import { evaluation } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const a = Array(20).fill(true);
 * const b = [...Array(10).fill(false), ...Array(10).fill(true)];
 * const r = evaluation.mcnemar(a, b);
 * assert.equal(r.onlyA, 10);
 * assert.ok(Math.abs(r.pValue - 2 / 1024) < 1e-12);
 * ```
 */
export function mcnemar(
  correctA: ArrayLike<boolean | number>,
  correctB: ArrayLike<boolean | number>,
): McNemarResult {
  if (correctA.length !== correctB.length) {
    throw new RangeError(
      `Cannot run McNemar's test: ${correctA.length} and ${correctB.length} predictions (the same test images are needed)`,
    );
  }
  let onlyA = 0, onlyB = 0, both = 0, neither = 0;
  for (let i = 0; i < correctA.length; i++) {
    const a = Boolean(correctA[i]);
    const b = Boolean(correctB[i]);
    if (a && b) both++;
    else if (a) onlyA++;
    else if (b) onlyB++;
    else neither++;
  }
  const n = onlyA + onlyB;
  const k = Math.min(onlyA, onlyB);
  let pValue = 1;
  if (n > 0) {
    // P(X <= k) for X ~ Binomial(n, 1/2), term by term in log space
    let logPmf = -n * Math.LN2;
    let tail = Math.exp(logPmf);
    for (let i = 0; i < k; i++) {
      logPmf += Math.log(n - i) - Math.log(i + 1);
      tail += Math.exp(logPmf);
    }
    pValue = Math.min(1, 2 * tail);
  }
  const chi2 = n > 0 ? (Math.abs(onlyA - onlyB) - 1) ** 2 / n : 0;
  return { onlyA, onlyB, both, neither, pValue, chi2 };
}
