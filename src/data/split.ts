/**
 * Splitting a dataset: `randomSplit` (PyTorch's `random_split`) and
 * `stratifiedSplit` (class proportions kept in every part, optionally with
 * whole groups, e.g. patients, kept on one side).
 *
 * @module
 */

import { Generator, globalGenerator } from "../random.ts";
import { type Dataset, Subset } from "./dataset.ts";
import { randperm } from "./_randperm.ts";

/** Options shared by the split functions. */
export interface SplitOptions {
  /** The generator to draw from (default: the process-wide one). */
  generator?: Generator;
  /** Shorthand for `generator: new Generator(seed)`. */
  seed?: number;
}

function pickGen(o: SplitOptions): Generator {
  return o.generator ??
    (o.seed !== undefined ? new Generator(o.seed) : globalGenerator);
}

/**
 * Turns lengths or fractions into counts summing to `n`, as PyTorch does:
 * fractions (summing to 1) are floored, then the remainder goes one by one to
 * the parts in order.
 */
function counts(lengths: readonly number[], n: number, fn: string): number[] {
  if (lengths.length === 0) throw new RangeError(`${fn}: no lengths given`);
  if (lengths.some((l) => !(l >= 0))) {
    throw new RangeError(
      `${fn}: lengths must be non-negative, got ${JSON.stringify(lengths)}`,
    );
  }
  const total = lengths.reduce((a, b) => a + b, 0);
  const fractional = Math.abs(total - 1) < 1e-6 &&
    lengths.every((l) => l <= 1) &&
    lengths.some((l) => !Number.isInteger(l));
  if (fractional) {
    const c = lengths.map((f) => Math.floor(n * f));
    let rem = n - c.reduce((a, b) => a + b, 0);
    for (let i = 0; rem > 0; i = (i + 1) % c.length, rem--) c[i]++;
    return c;
  }
  if (!lengths.every(Number.isInteger) || total !== n) {
    throw new RangeError(
      `${fn}: lengths ${
        JSON.stringify(lengths)
      } must be integers summing to the dataset's length ${n}, or fractions summing to 1`,
    );
  }
  return [...lengths];
}

/**
 * Splits a dataset into non-overlapping random parts, as PyTorch's
 * `random_split`.
 *
 * @param dataset The dataset.
 * @param lengths Part sizes summing to `dataset.length`, or fractions
 * summing to 1.
 * @param options `generator` or `seed`.
 * @returns One `Subset` per part.
 *
 * @example 80/20
 * ```ts
 * import { data } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const ds = { length: 10, get: (i: number) => i };
 * const [a, b] = data.randomSplit(ds, [0.8, 0.2], { seed: 0 });
 * assert.deepEqual([a.length, b.length], [8, 2]);
 * ```
 */
export function randomSplit<T>(
  dataset: Dataset<T>,
  lengths: readonly number[],
  options: SplitOptions = {},
): Subset<T>[] {
  const c = counts(lengths, dataset.length, "randomSplit");
  const perm = randperm(dataset.length, pickGen(options));
  const out: Subset<T>[] = [];
  let off = 0;
  for (const k of c) {
    out.push(new Subset(dataset, perm.slice(off, off + k)));
    off += k;
  }
  return out;
}

/** Options of {@linkcode stratifiedSplit}. */
export interface StratifiedSplitOptions extends SplitOptions {
  /** Each item's label (default: `dataset.targets`). */
  targets?: readonly number[];
  /**
   * Each item's group (e.g. patient id), as a list or a function of the
   * index. Every group lands in exactly one part.
   */
  groups?: readonly (string | number)[] | ((index: number) => string | number);
}

/**
 * Splits a dataset so that every part keeps the class proportions of the
 * whole (scikit-learn's `train_test_split(stratify=...)`), and, with
 * `groups`, so that no group (patient) lands in two parts (like
 * `StratifiedGroupKFold`: whole groups are assigned greedily, largest first,
 * to the part whose class counts they bring closest to its targets; sizes
 * and proportions are then approximate).
 *
 * @param dataset The dataset (with `targets`, or pass them).
 * @param lengths Part sizes summing to `dataset.length`, or fractions
 * summing to 1.
 * @param options `targets`, `groups`, `generator` or `seed`.
 * @returns One `Subset` per part, indices ascending.
 *
 * @example Keep patients on one side
 * ```ts
 * import { data } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const targets = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
 * const patient = ["a", "a", "b", "c", "d", "d", "e", "f", "g", "h"];
 * const ds = { length: 10, get: (i: number) => i, targets };
 * const [train, val] = data.stratifiedSplit(ds, [0.7, 0.3], {
 *   groups: patient, seed: 1,
 * });
 * const side = new Map<string, number>();
 * for (const [k, part] of [train, val].entries()) {
 *   for (const i of part.indices) {
 *     assert.notEqual(side.get(patient[i]), 1 - k);
 *     side.set(patient[i], k);
 *   }
 * }
 * assert.equal(train.length + val.length, 10);
 * ```
 */
export function stratifiedSplit<T>(
  dataset: Dataset<T>,
  lengths: readonly number[],
  options: StratifiedSplitOptions = {},
): Subset<T>[] {
  const n = dataset.length;
  const targets = options.targets ?? dataset.targets;
  if (!targets || targets.length !== n) {
    throw new RangeError(
      `stratifiedSplit: need one target per item (${n}); pass options.targets or use a dataset with targets`,
    );
  }
  const sizes = counts(lengths, n, "stratifiedSplit");
  const g = pickGen(options);
  const classes = [...new Set(targets)].sort((a, b) => a - b);
  const ci = new Map(classes.map((c, i) => [c, i]));
  const nc = classes.map((c) => targets.filter((t) => t === c).length);
  // Target count of class c in part s.
  const T = sizes.map((L) => nc.map((k) => k * L / n));
  const parts: number[][] = sizes.map(() => []);

  if (options.groups === undefined) {
    // Controlled rounding of T: floors, then the largest fractions first.
    const A = T.map((row) => row.map(Math.floor));
    const rowDef = nc.map((k, c) => k - A.reduce((a, r) => a + r[c], 0));
    const colDef = sizes.map((L, s) => L - A[s].reduce((a, b) => a + b, 0));
    const cells: [number, number, number][] = [];
    T.forEach((row, s) =>
      row.forEach((v, c) => cells.push([v - Math.floor(v), s, c]))
    );
    cells.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
    for (let pass = 0; pass < 2; pass++) {
      for (const [, s, c] of cells) {
        while (rowDef[c] > 0 && colDef[s] > 0) {
          A[s][c]++;
          rowDef[c]--;
          colDef[s]--;
          if (pass === 0) break;
        }
      }
    }
    for (const [c, label] of classes.entries()) {
      const idx = targets.flatMap((t, i) => (t === label ? [i] : []));
      const perm = randperm(idx.length, g);
      let off = 0;
      for (let s = 0; s < sizes.length; s++) {
        for (let k = 0; k < A[s][c]; k++) parts[s].push(idx[perm[off++]]);
      }
    }
  } else {
    const groupOf = typeof options.groups === "function"
      ? options.groups
      : (i: number) => (options.groups as readonly (string | number)[])[i];
    const byGroup = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const key = String(groupOf(i));
      let list = byGroup.get(key);
      if (!list) byGroup.set(key, list = []);
      list.push(i);
    }
    const groups = [...byGroup.values()];
    const order = randperm(groups.length, g);
    const shuffled = order.map((k) => groups[k]);
    shuffled.sort((a, b) => b.length - a.length); // stable: ties stay random
    const cnt = sizes.map(() => classes.map(() => 0));
    for (const members of shuffled) {
      const gc = classes.map(() => 0);
      for (const i of members) gc[ci.get(targets[i])!]++;
      let best = 0, bestCost = Infinity;
      for (let s = 0; s < sizes.length; s++) {
        if (sizes[s] === 0) continue;
        let delta = 0;
        for (let c = 0; c < classes.length; c++) {
          const before = cnt[s][c] - T[s][c];
          const after = before + gc[c];
          delta += after * after - before * before;
        }
        if (delta < bestCost) {
          bestCost = delta;
          best = s;
        }
      }
      for (let c = 0; c < classes.length; c++) cnt[best][c] += gc[c];
      parts[best].push(...members);
    }
  }
  return parts.map((p) => new Subset(dataset, p.sort((a, b) => a - b)));
}
