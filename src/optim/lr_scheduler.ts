/**
 * Learning-rate schedulers, as `torch.optim.lr_scheduler` in PyTorch 1.13
 * (https://pytorch.org/docs/1.13/optim.html#how-to-adjust-learning-rate).
 * A scheduler changes `lr` in each of its optimizer's parameter groups; call
 * its `step()` after `optimizer.step()`, once per epoch (or per iteration,
 * as the schedule is meant).
 *
 * @module
 */

import { CheckpointError } from "../errors.ts";
import { Tensor } from "../tensor.ts";
import { checkKeys, checkNumber } from "./_util.ts";
import type { GroupOptions, Optimizer } from "./optimizer.ts";

/** A scheduler's state: counters, base rates and its options. */
export type SchedulerStateDict = Record<string, number | string | number[]>;

function fail(kind: string, msg: string): never {
  throw new CheckpointError(`Cannot load ${kind} state: ${msg}`);
}

function readNumber(
  kind: string,
  sd: SchedulerStateDict,
  key: string,
  allowInfinite = false,
): number {
  const v = sd[key];
  if (
    typeof v !== "number" || Number.isNaN(v) ||
    (!allowInfinite && !Number.isFinite(v))
  ) {
    fail(
      kind,
      `${key} is ${JSON.stringify(v) ?? String(v)}, expected a number`,
    );
  }
  return v;
}

function readList(
  kind: string,
  sd: SchedulerStateDict,
  key: string,
  length: number,
): number[] {
  const v = sd[key];
  if (
    !Array.isArray(v) || v.length !== length ||
    !v.every((x) => typeof x === "number" && Number.isFinite(x))
  ) {
    fail(
      kind,
      `${key} is ${
        JSON.stringify(v) ?? String(v)
      }, expected ${length} numbers (one per parameter group)`,
    );
  }
  return [...v];
}

function checkDict(kind: string, sd: unknown): SchedulerStateDict {
  if (sd === null || typeof sd !== "object" || Array.isArray(sd)) {
    fail(kind, "expected an object");
  }
  return sd as SchedulerStateDict;
}

/**
 * Base class of the epoch-indexed schedulers (`StepLR`,
 * `CosineAnnealingLR`), as PyTorch's `_LRScheduler`: constructing one takes
 * an initial step that sets `lastEpoch` to 0 and records the base rates.
 */
export abstract class LRScheduler {
  /** The optimizer whose groups' `lr` this scheduler sets. */
  readonly optimizer: Optimizer<GroupOptions>;
  /** Each group's learning rate when the scheduler was made. */
  baseLrs: number[];
  /** The number of `step()` calls since construction (0 after it). */
  lastEpoch: number = -1;
  /** Steps taken, the constructor's included. */
  protected stepCount: number = 0;
  /** The learning rates the last step set. */
  protected lastLr: number[] = [];
  /** The class name, for messages. */
  protected readonly kind: string;

  /**
   * Records the optimizer's current learning rates as the base rates.
   *
   * @param optimizer The optimizer to schedule.
   * @param kind The scheduler's name, for messages.
   */
  constructor(optimizer: Optimizer<GroupOptions>, kind: string) {
    this.kind = kind;
    if (
      optimizer === null || typeof optimizer !== "object" ||
      !Array.isArray(optimizer.paramGroups)
    ) {
      throw new TypeError(`Cannot create ${kind}: expected an optimizer`);
    }
    this.optimizer = optimizer;
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
  }

  /**
   * The learning rate of each group for `lastEpoch`, given the current
   * ones (PyTorch's chainable `get_lr`).
   *
   * @returns One rate per group.
   */
  protected abstract computeLr(): number[];

  /** Called at the end of each subclass constructor: PyTorch's initial step. */
  protected initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** Advances one epoch and sets each group's learning rate. */
  step(): void {
    this.stepCount++;
    this.lastEpoch++;
    const lrs = this.computeLr();
    this.optimizer.paramGroups.forEach((g, i) => g.lr = lrs[i]);
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /**
   * The learning rates the last step set, as PyTorch's `get_last_lr()`.
   *
   * @returns One rate per parameter group.
   */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /**
   * The scheduler's options, for the state dict.
   *
   * @returns The options by name.
   */
  protected abstract options(): SchedulerStateDict;

  /**
   * The scheduler's state: `lastEpoch`, `stepCount`, `baseLrs`, `lastLr`
   * and its options. Plain numbers, safe to serialise as JSON.
   *
   * @returns The state.
   */
  stateDict(): SchedulerStateDict {
    return {
      ...this.options(),
      lastEpoch: this.lastEpoch,
      stepCount: this.stepCount,
      baseLrs: [...this.baseLrs],
      lastLr: [...this.lastLr],
    };
  }

  /**
   * Checks a state dict as `loadStateDict` does before it changes anything,
   * and changes nothing: the counters are integers (`lastEpoch` ≥ -1,
   * `stepCount` ≥ 0), one base and one last rate per parameter group, and
   * this scheduler's options within the ranges its constructor accepts (a
   * scheduler of another kind has other options).
   *
   * @param stateDict The saved state.
   * @throws CheckpointError naming the key that does not fit.
   */
  checkStateDict(stateDict: SchedulerStateDict): void {
    this.#read(stateDict);
  }

  /**
   * Restores state saved by `stateDict()`. The optimizer's learning rates
   * are not changed (they come back with the optimizer's own state dict).
   * All or nothing: everything is checked (see `checkStateDict`) first.
   *
   * @param stateDict The saved state.
   * @throws CheckpointError naming the key that does not fit.
   */
  loadStateDict(stateDict: SchedulerStateDict): void {
    Object.assign(this, this.#read(stateDict));
  }

  #read(stateDict: SchedulerStateDict): Record<string, unknown> {
    const sd = checkDict(this.kind, stateDict);
    const n = this.optimizer.paramGroups.length;
    const counters = {
      lastEpoch: readNumber(this.kind, sd, "lastEpoch"),
      stepCount: readNumber(this.kind, sd, "stepCount"),
    };
    for (const [key, v] of Object.entries(counters)) {
      const min = key === "lastEpoch" ? -1 : 0;
      if (!Number.isSafeInteger(v) || v < min) {
        fail(this.kind, `${key} is ${v}, expected an integer ≥ ${min}`);
      }
    }
    const options = this.readOptions(sd);
    try {
      this.checkOptions(options, `Cannot load ${this.kind} state`);
    } catch (e) {
      throw new CheckpointError((e as Error).message);
    }
    return {
      ...options,
      ...counters,
      baseLrs: readList(this.kind, sd, "baseLrs", n),
      lastLr: readList(this.kind, sd, "lastLr", n),
    };
  }

  /**
   * Reads the options from a state dict, changing nothing.
   *
   * @param sd The saved state.
   * @returns The options by property name.
   */
  protected abstract readOptions(
    sd: SchedulerStateDict,
  ): Record<string, number>;

  /**
   * Checks options as the constructor does, throwing a `RangeError`.
   *
   * @param options The options by property name.
   * @param action What is being done, for the message.
   */
  protected abstract checkOptions(
    options: Record<string, number>,
    action: string,
  ): void;
}

/** Options of `StepLR`. */
export interface StepLrOptions {
  /** Epochs between decays. */
  stepSize: number;
  /** Factor of each decay (default 0.1). */
  gamma?: number;
}

/**
 * Multiplies each group's learning rate by `gamma` every `stepSize` epochs,
 * as `torch.optim.lr_scheduler.StepLR`.
 *
 * @example Halve every two epochs
 * ```ts
 * import { optim, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const opt = new optim.SGD([tensor([0], { requiresGrad: true })], { lr: 1 });
 * const sched = new optim.StepLR(opt, { stepSize: 2, gamma: 0.5 });
 * const lrs = [];
 * for (let epoch = 0; epoch < 5; epoch++) {
 *   opt.step();
 *   sched.step();
 *   lrs.push(sched.getLastLr()[0]);
 * }
 * assert.deepEqual(lrs, [1, 0.5, 0.5, 0.25, 0.25]);
 * ```
 */
export class StepLR extends LRScheduler {
  /** Epochs between decays. */
  stepSize: number;
  /** Factor of each decay. */
  gamma: number;

  /**
   * Creates the scheduler and takes its initial step.
   *
   * @param optimizer The optimizer to schedule.
   * @param options `stepSize` (required) and `gamma` (default 0.1).
   */
  constructor(optimizer: Optimizer<GroupOptions>, options: StepLrOptions) {
    super(optimizer, "StepLR");
    const action = "Cannot create StepLR";
    checkKeys(action, options, ["stepSize", "gamma"]);
    this.stepSize = options?.stepSize;
    this.gamma = options?.gamma ?? 0.1;
    this.checkOptions({ stepSize: this.stepSize, gamma: this.gamma }, action);
    this.initialStep();
  }

  /**
   * StepLR's chainable rule.
   *
   * @returns The decayed rates at a multiple of `stepSize`, else the current ones.
   */
  protected computeLr(): number[] {
    const groups = this.optimizer.paramGroups;
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) {
      return groups.map((g) => g.lr);
    }
    return groups.map((g) => g.lr * this.gamma);
  }

  /**
   * StepLR's options.
   *
   * @returns `stepSize` and `gamma`.
   */
  protected options(): SchedulerStateDict {
    return { stepSize: this.stepSize, gamma: this.gamma };
  }

  /**
   * Reads the options from a state dict.
   *
   * @param sd The saved state.
   * @returns `stepSize` and `gamma`.
   */
  protected readOptions(sd: SchedulerStateDict): Record<string, number> {
    return {
      stepSize: readNumber(this.kind, sd, "stepSize"),
      gamma: readNumber(this.kind, sd, "gamma"),
    };
  }

  /**
   * Checks the options as the constructor does.
   *
   * @param o `stepSize` and `gamma`.
   * @param action What is being done, for the message.
   */
  protected checkOptions(o: Record<string, number>, action: string): void {
    checkNumber(action, "stepSize", o.stepSize, { min: 1, integer: true });
    checkNumber(action, "gamma", o.gamma, { min: 0 });
  }
}

/** Options of `CosineAnnealingLR`. */
export interface CosineAnnealingLrOptions {
  /** Epochs of half a cosine period. */
  tMax: number;
  /** The lowest learning rate (default 0). */
  etaMin?: number;
}

/**
 * Anneals each group's learning rate from its base value to `etaMin` along
 * half a cosine over `tMax` epochs, as
 * `torch.optim.lr_scheduler.CosineAnnealingLR` (SGDR without restarts,
 * https://arxiv.org/abs/1608.03983). Uses PyTorch 1.13's recursive form, so
 * an `lr` changed by hand between steps carries on from there.
 *
 * @example Reaches etaMin after tMax epochs
 * ```ts
 * import { optim, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const opt = new optim.SGD([tensor([0], { requiresGrad: true })], { lr: 1 });
 * const sched = new optim.CosineAnnealingLR(opt, { tMax: 2 });
 * opt.step();
 * sched.step();
 * assert.ok(Math.abs(sched.getLastLr()[0] - 0.5) < 1e-12);
 * opt.step();
 * sched.step();
 * assert.ok(Math.abs(sched.getLastLr()[0]) < 1e-12);
 * ```
 */
export class CosineAnnealingLR extends LRScheduler {
  /** Epochs of half a cosine period. */
  tMax: number;
  /** The lowest learning rate. */
  etaMin: number;

  /**
   * Creates the scheduler and takes its initial step.
   *
   * @param optimizer The optimizer to schedule.
   * @param options `tMax` (required) and `etaMin` (default 0).
   */
  constructor(
    optimizer: Optimizer<GroupOptions>,
    options: CosineAnnealingLrOptions,
  ) {
    super(optimizer, "CosineAnnealingLR");
    const action = "Cannot create CosineAnnealingLR";
    checkKeys(action, options, ["tMax", "etaMin"]);
    this.tMax = options?.tMax;
    this.etaMin = options?.etaMin ?? 0;
    this.checkOptions({ tMax: this.tMax, etaMin: this.etaMin }, action);
    this.initialStep();
  }

  /**
   * PyTorch 1.13's recursive cosine rule.
   *
   * @returns The next rates, computed from the current ones.
   */
  protected computeLr(): number[] {
    const groups = this.optimizer.paramGroups;
    const { lastEpoch: e, tMax, etaMin } = this;
    if (e === 0) return groups.map((g) => g.lr);
    if (this.stepCount === 1 && e > 0) {
      return this.baseLrs.map((base) =>
        etaMin + (base - etaMin) * (1 + Math.cos(e * Math.PI / tMax)) / 2
      );
    }
    if ((e - 1 - tMax) % (2 * tMax) === 0) {
      return groups.map((g, i) =>
        g.lr +
        (this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / tMax)) / 2
      );
    }
    return groups.map((g) =>
      (1 + Math.cos(Math.PI * e / tMax)) /
        (1 + Math.cos(Math.PI * (e - 1) / tMax)) *
        (g.lr - etaMin) + etaMin
    );
  }

  /**
   * CosineAnnealingLR's options.
   *
   * @returns `tMax` and `etaMin`.
   */
  protected options(): SchedulerStateDict {
    return { tMax: this.tMax, etaMin: this.etaMin };
  }

  /**
   * Reads the options from a state dict.
   *
   * @param sd The saved state.
   * @returns `tMax` and `etaMin`.
   */
  protected readOptions(sd: SchedulerStateDict): Record<string, number> {
    return {
      tMax: readNumber(this.kind, sd, "tMax"),
      etaMin: readNumber(this.kind, sd, "etaMin"),
    };
  }

  /**
   * Checks the options as the constructor does.
   *
   * @param o `tMax` and `etaMin`.
   * @param action What is being done, for the message.
   */
  protected checkOptions(o: Record<string, number>, action: string): void {
    checkNumber(action, "tMax", o.tMax, { min: 0, minExclusive: true });
    checkNumber(action, "etaMin", o.etaMin, { min: 0 });
  }
}

/** Options of `ReduceLROnPlateau`. */
export interface ReduceLrOnPlateauOptions {
  /** `"min"`: the metric should fall (a loss); `"max"`: rise (an accuracy). */
  mode?: "min" | "max";
  /** Factor the learning rate is multiplied by (default 0.1, must be < 1). */
  factor?: number;
  /** Epochs without improvement before reducing (default 10). */
  patience?: number;
  /** Smallest change that counts as an improvement (default 1e-4). */
  threshold?: number;
  /** `"rel"`: relative to the best value; `"abs"`: absolute (default "rel"). */
  thresholdMode?: "rel" | "abs";
  /** Epochs to wait after a reduction before counting again (default 0). */
  cooldown?: number;
  /** Lower bound on the learning rate: one for all groups or one per group. */
  minLr?: number | number[];
  /** Reductions smaller than this are skipped (default 1e-8). */
  eps?: number;
}

/**
 * Reduces the learning rate when a metric stops improving, as
 * `torch.optim.lr_scheduler.ReduceLROnPlateau`. Its `step(metric)` takes
 * the metric (a validation loss, an accuracy).
 *
 * @example Halve after two epochs without improvement
 * ```ts
 * import { optim, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const opt = new optim.SGD([tensor([0], { requiresGrad: true })], { lr: 1 });
 * const sched = new optim.ReduceLROnPlateau(opt, { factor: 0.5, patience: 1 });
 * for (const loss of [1, 0.5, 0.6, 0.7]) sched.step(loss);
 * assert.deepEqual(sched.getLastLr(), [0.5]);
 * ```
 */
export class ReduceLROnPlateau {
  /** The optimizer whose groups' `lr` this scheduler sets. */
  readonly optimizer: Optimizer<GroupOptions>;
  /** Whether lower or higher metrics are better. */
  mode: "min" | "max";
  /** Factor the learning rate is multiplied by. */
  factor: number;
  /** Epochs without improvement before reducing. */
  patience: number;
  /** Smallest change that counts as an improvement. */
  threshold: number;
  /** Whether `threshold` is relative or absolute. */
  thresholdMode: "rel" | "abs";
  /** Epochs to wait after a reduction. */
  cooldown: number;
  /** Lower bound on each group's learning rate. */
  minLrs: number[];
  /** Reductions smaller than this are skipped. */
  eps: number;
  /** The best metric so far (the worst possible before the first step). */
  best: number;
  /** Epochs since the last improvement. */
  numBadEpochs: number = 0;
  /** Epochs of cooldown left. */
  cooldownCounter: number = 0;
  /** Number of `step()` calls. */
  lastEpoch: number = 0;
  #lastLr: number[] | null = null;

  /**
   * Creates the scheduler; the best metric starts at the worst value.
   *
   * @param optimizer The optimizer to schedule.
   * @param options `mode`, `factor`, `patience`, `threshold`,
   *   `thresholdMode`, `cooldown`, `minLr`, `eps`.
   */
  constructor(
    optimizer: Optimizer<GroupOptions>,
    options: ReduceLrOnPlateauOptions = {},
  ) {
    const action = "Cannot create ReduceLROnPlateau";
    if (
      optimizer === null || typeof optimizer !== "object" ||
      !Array.isArray(optimizer.paramGroups)
    ) {
      throw new TypeError(`${action}: expected an optimizer`);
    }
    checkKeys(action, options, [
      "mode",
      "factor",
      "patience",
      "threshold",
      "thresholdMode",
      "cooldown",
      "minLr",
      "eps",
    ]);
    this.optimizer = optimizer;
    this.mode = options.mode ?? "min";
    this.factor = options.factor ?? 0.1;
    this.patience = options.patience ?? 10;
    this.threshold = options.threshold ?? 1e-4;
    this.thresholdMode = options.thresholdMode ?? "rel";
    this.cooldown = options.cooldown ?? 0;
    this.eps = options.eps ?? 1e-8;
    const n = optimizer.paramGroups.length;
    const minLr = options.minLr ?? 0;
    if (Array.isArray(minLr)) {
      if (minLr.length !== n) {
        throw new RangeError(
          `${action}: minLr has ${minLr.length} values but the optimizer has ${n} parameter groups`,
        );
      }
      this.minLrs = [...minLr];
    } else {
      this.minLrs = new Array(n).fill(minLr);
    }
    this.#validate(action);
    this.best = this.#worst();
  }

  #validate(action: string): void {
    checkPlateauOptions(this, action);
  }

  #worst(): number {
    return this.mode === "min" ? Infinity : -Infinity;
  }

  #isBetter(a: number, best: number): boolean {
    const t = this.threshold;
    if (this.mode === "min") {
      return this.thresholdMode === "rel" ? a < best * (1 - t) : a < best - t;
    }
    return this.thresholdMode === "rel" ? a > best * (t + 1) : a > best + t;
  }

  /**
   * Records one epoch's metric, reducing the learning rates after
   * `patience` epochs without improvement.
   *
   * @param metric The metric (a number or a one-element tensor).
   */
  step(metric: number | Tensor): void {
    const current = metric instanceof Tensor ? metric.item() : metric;
    if (typeof current !== "number") {
      throw new TypeError(
        `Cannot step ReduceLROnPlateau: metric is ${
          String(metric)
        }, expected a number`,
      );
    }
    this.lastEpoch++;
    if (this.#isBetter(current, this.best)) {
      this.best = current;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs++;
    }
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.numBadEpochs = 0;
    }
    if (this.numBadEpochs > this.patience) {
      this.optimizer.paramGroups.forEach((g, i) => {
        const old = g.lr;
        const next = Math.max(old * this.factor, this.minLrs[i]);
        if (old - next > this.eps) g.lr = next;
      });
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
    }
    this.#lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /**
   * The learning rates as the last step left them (the current ones
   * before the first step).
   *
   * @returns One rate per parameter group.
   */
  getLastLr(): number[] {
    return this.#lastLr
      ? [...this.#lastLr]
      : this.optimizer.paramGroups.map((g) => g.lr);
  }

  /**
   * The scheduler's state. `best` is `null` while it is still the worst
   * possible value (infinite), so the dict survives JSON.
   *
   * @returns The state.
   */
  stateDict(): SchedulerStateDict {
    const sd: SchedulerStateDict = {
      mode: this.mode,
      factor: this.factor,
      patience: this.patience,
      threshold: this.threshold,
      thresholdMode: this.thresholdMode,
      cooldown: this.cooldown,
      minLrs: [...this.minLrs],
      eps: this.eps,
      numBadEpochs: this.numBadEpochs,
      cooldownCounter: this.cooldownCounter,
      lastEpoch: this.lastEpoch,
      lastLr: this.getLastLr(),
    };
    if (Number.isFinite(this.best)) sd.best = this.best;
    return sd;
  }

  /**
   * Checks a state dict as `loadStateDict` does before it changes anything,
   * and changes nothing: every option within the ranges the constructor
   * accepts, the counters integers ≥ 0, one minimum and one last rate per
   * parameter group.
   *
   * @param stateDict The saved state.
   * @throws CheckpointError naming the key that does not fit.
   */
  checkStateDict(stateDict: SchedulerStateDict): void {
    this.#read(stateDict);
  }

  /**
   * Restores state saved by `stateDict()`. All or nothing: everything is
   * checked (see `checkStateDict`) first.
   *
   * @param stateDict The saved state.
   * @throws CheckpointError naming the key that does not fit.
   */
  loadStateDict(stateDict: SchedulerStateDict): void {
    const { lastLr, ...values } = this.#read(stateDict);
    Object.assign(this, values);
    this.#lastLr = lastLr;
  }

  #read(stateDict: SchedulerStateDict): PlateauOptions & {
    best: number;
    numBadEpochs: number;
    cooldownCounter: number;
    lastEpoch: number;
    lastLr: number[] | null;
  } {
    const kind = "ReduceLROnPlateau";
    const sd = checkDict(kind, stateDict);
    const n = this.optimizer.paramGroups.length;
    const mode = sd.mode;
    const thresholdMode = sd.thresholdMode;
    const values = {
      mode: mode as "min" | "max",
      thresholdMode: thresholdMode as "rel" | "abs",
      factor: readNumber(kind, sd, "factor"),
      patience: readNumber(kind, sd, "patience"),
      threshold: readNumber(kind, sd, "threshold"),
      cooldown: readNumber(kind, sd, "cooldown"),
      eps: readNumber(kind, sd, "eps"),
      minLrs: readList(kind, sd, "minLrs", n),
      numBadEpochs: readNumber(kind, sd, "numBadEpochs"),
      cooldownCounter: readNumber(kind, sd, "cooldownCounter"),
      lastEpoch: readNumber(kind, sd, "lastEpoch"),
    };
    const action = `Cannot load ${kind} state`;
    try {
      checkPlateauOptions(values, action);
      for (const key of ["numBadEpochs", "cooldownCounter", "lastEpoch"]) {
        checkNumber(action, key, values[key as keyof typeof values], {
          min: 0,
          integer: true,
        });
      }
    } catch (e) {
      throw new CheckpointError((e as Error).message);
    }
    const lastLr = "lastLr" in sd ? readList(kind, sd, "lastLr", n) : null;
    const best = sd.best === undefined || sd.best === null
      ? (mode === "min" ? Infinity : -Infinity)
      : readNumber(kind, sd, "best", true);
    return { ...values, best, lastLr };
  }
}

/** The options of `ReduceLROnPlateau`, resolved. */
interface PlateauOptions {
  mode: "min" | "max";
  thresholdMode: "rel" | "abs";
  factor: number;
  patience: number;
  threshold: number;
  cooldown: number;
  eps: number;
  minLrs: number[];
}

/** Checks `ReduceLROnPlateau`'s options, throwing a `RangeError`. */
function checkPlateauOptions(o: PlateauOptions, action: string): void {
  if (o.mode !== "min" && o.mode !== "max") {
    throw new RangeError(
      `${action}: mode is ${JSON.stringify(o.mode)}, expected "min" or "max"`,
    );
  }
  if (o.thresholdMode !== "rel" && o.thresholdMode !== "abs") {
    throw new RangeError(
      `${action}: thresholdMode is ${
        JSON.stringify(o.thresholdMode)
      }, expected "rel" or "abs"`,
    );
  }
  checkNumber(action, "factor", o.factor, {
    min: 0,
    max: 1,
    maxExclusive: true,
  });
  checkNumber(action, "patience", o.patience, { min: 0, integer: true });
  checkNumber(action, "threshold", o.threshold, { min: 0 });
  checkNumber(action, "cooldown", o.cooldown, { min: 0, integer: true });
  checkNumber(action, "eps", o.eps, { min: 0 });
  o.minLrs.forEach((v, i) =>
    checkNumber(action, o.minLrs.length > 1 ? `minLr[${i}]` : "minLr", v, {
      min: 0,
    })
  );
}
