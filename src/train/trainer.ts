/**
 * `Trainer`: the tutorial's training loop, for a model trained alone or
 * distilled from a teacher. Each epoch has a `train` phase and a `val`
 * phase printing, as the tutorial does,
 *
 * ```
 * Epoch 3/30
 * ----------
 * train Loss: 0.2345 Acc: 0.9012
 * val Loss: 0.3456 Acc: 0.8750
 * ```
 *
 * with a progress bar on a terminal (plain lines otherwise). Beyond the
 * tutorial: the best epoch on the validation set is tracked (never on the
 * test set) and restored at the end, early stopping, a checkpoint after
 * every epoch written atomically, `resume`, seeded determinism (a resumed
 * run is bit-identical to an uninterrupted one on the CPU backend), a
 * teacher-output cache, unlabeled transfer data, a clear error on a NaN or
 * infinite loss, Ctrl-C stopping after the current batch with a
 * checkpoint written, and (with `report: { dir }`) `metrics.jsonl`, one
 * line per epoch and phase flushed as training goes, and `report.html`,
 * the training curves of every fit of the trainer.
 *
 * The teacher runs in evaluation mode under `noGrad` and must not be in the
 * optimizer: the trainer checks both, says so, and checks after training
 * that the teacher's parameters and BatchNorm statistics did not change.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import { noGrad } from "../autograd.ts";
import { manualSeed } from "../random.ts";
import type { Module } from "../nn/module.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { LRScheduler, ReduceLROnPlateau } from "../optim/lr_scheduler.ts";
import { crossEntropy, tensor } from "../ops/mod.ts";
import { globalGenerator } from "../random.ts";
import { type Tensor, tidy } from "../tensor.ts";
import { MemoryWatch } from "../memory.ts";
import { join } from "node:path";
import {
  parseSafetensors,
  parseSafetensorsHeader,
  saveSafetensors,
} from "../io/safetensors.ts";
import {
  probeWritableDir,
  removeOrphanedTemps,
  writeFileAtomic,
} from "../io/_atomic.ts";
import { CheckpointError, DataError } from "../errors.ts";
import {
  applyCheckpoint,
  checkCheckpoint,
  type Checkpoint,
  disposeCheckpoint,
  isGeneratorState,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import {
  CrossEntropyCriterion,
  DistillationLoss,
  type DistillCriterion,
} from "../distill/losses.ts";
import { type Batch, type Loader, moveBatch } from "../data/batch.ts";
import { Progress, type ProgressMode } from "./progress.ts";
// distributed: rank awareness under mpirun (see src/distributed/_trainer.ts)
import {
  distributeFit,
  isMainRank,
  type TrainerGroup,
  trainerGroup,
} from "../distributed/_trainer.ts";
import {
  TeacherCache,
  type TeacherCacheStats,
} from "../distill/teacher_cache.ts";
import {
  appendMetricsLines,
  type EpochRecord,
  metricsLines,
  type PhaseRecord,
  type ReportModel,
  writeReport,
} from "../eval/report.ts";

/** A loss term became NaN or infinite: training stopped. */
export class NonFiniteLossError extends Error {
  /** The 1-based epoch. */
  readonly epoch: number;
  /** The 1-based batch within the epoch. */
  readonly batch: number;
  /** The loss term's name (`ce`, `kd`, `hint`, ...). */
  readonly term: string;
  /** Its value. */
  readonly value: number;
  /**
   * The error for a loss that is NaN or infinite at `epoch`, `batch`.
   *
   * @param epoch 1-based epoch.
   * @param batch 1-based batch.
   * @param term The term's name.
   * @param value Its value.
   * @param checkpoint Where the last good checkpoint is, if any.
   */
  constructor(
    epoch: number,
    batch: number,
    term: string,
    value: number,
    checkpoint?: string,
  ) {
    super(
      `Training stopped: loss term "${term}" is ${value} at epoch ${epoch}, batch ${batch}; ${
        checkpoint
          ? `the last good checkpoint is left at ${checkpoint}`
          : "no checkpoint was written"
      } (lower the learning rate, or check the data)`,
    );
    this.name = "NonFiniteLossError";
    this.epoch = epoch;
    this.batch = batch;
    this.term = term;
    this.value = value;
  }
}

/** Early stopping. */
export interface EarlyStoppingOptions {
  /** Epochs without improvement on the validation set before stopping. */
  patience: number;
  /** The smallest change that counts as an improvement (default 0). */
  minDelta?: number;
}

/** Where and what `Trainer` reports (see `TrainerOptions.report`). */
export interface TrainerReportOptions {
  /**
   * The folder (created with its parents if missing, and checked writable
   * before the first epoch) for `metrics.jsonl`, to which every epoch
   * appends one line per phase (flushed to disk), and `report.html`,
   * rewritten atomically after every epoch with the curves of every fit of
   * this trainer so far. `metrics.jsonl` is appended to, never truncated,
   * except that a resumed fit drops this model's and run's lines for the
   * epochs after its checkpoint (which it trains again), and a last line a
   * kill cut short is dropped.
   */
  dir: string;
  /** The page's title (default `"kdeno training report"`). */
  title?: string;
  /** The configuration shown on the page. */
  config?: Record<string, unknown>;
  /** Write `report.html` too (default true); false: `metrics.jsonl` only. */
  html?: boolean;
}

/** Options that apply to every `fit` of a `Trainer`. */
export interface TrainerOptions {
  /**
   * Folder for `last.safetensors` (written after every epoch) and
   * `best.safetensors` (the best epoch's model); none: no files. Created
   * with its parents if missing and checked writable before the first
   * epoch; temporary files a killed run left in it are removed.
   */
  checkpointDir?: string;
  /** Where lines go (default `console.log`). */
  log?: (line: string) => void;
  /** Progress display (default `"auto"`: a bar on a terminal, lines otherwise). */
  progress?: ProgressMode;
  /** Stop when the validation metric stops improving. */
  earlyStopping?: EarlyStoppingOptions;
  /** The validation metric for the best epoch (default `"accuracy"`). */
  monitor?: "accuracy" | "loss";
  /** Seed the process-wide generator before training (not when resuming). */
  seed?: number;
  /**
   * Cache the teacher's logits (default true; feature losses turn it off):
   * `true`, `false`, or a `TeacherCache` to use (e.g. precomputed).
   */
  teacherCache?: boolean | TeacherCache;
  /** Load the best epoch's weights into the model at the end (default true). */
  restoreBest?: boolean;
  /** Write `metrics.jsonl` and `report.html` into a folder as training goes. */
  report?: TrainerReportOptions;
}

/** What `fit` trains on. */
export interface FitOptions extends TrainerOptions {
  /** The model to train (the student). */
  model: Module;
  /** The teacher, if distilling: run in eval mode under `noGrad`. */
  teacher?: Module | null;
  /** Training batches `[images, labels]`. */
  train: Loader;
  /** Validation batches, for the best epoch and early stopping. */
  val?: Loader | null;
  /** Number of epochs (in total, counting resumed ones). */
  epochs: number;
  /** The optimizer, over the model's parameters (and adapters'), not the teacher's. */
  optimizer: Optimizer;
  /** Stepped once per epoch (`ReduceLROnPlateau` with the validation loss). */
  scheduler?: LRScheduler | ReduceLROnPlateau | null;
  /**
   * The loss: a criterion or several, summed (default: `DistillationLoss`
   * with the recommended preset when a teacher is given, cross-entropy
   * otherwise).
   */
  loss?: DistillCriterion | readonly DistillCriterion[];
  /** Device the batches are moved to; the models must already be there. */
  device?: DeviceName;
  /**
   * Unlabeled images (labels ignored): the student also learns the
   * teacher's soft labels on them (needs a teacher). Their batches are
   * interleaved with the labeled ones.
   */
  transfer?: Loader | null;
  /**
   * Resume from a checkpoint file, or `true` for
   * `checkpointDir/last.safetensors`. All or nothing: the checkpoint is
   * checked against the model, optimizer, scheduler, losses and `epochs`
   * before anything is loaded.
   */
  resume?: string | boolean;
  /**
   * The model's name in `metrics.jsonl` and the report (default its class
   * name); fits with the same name are runs of one model in the report.
   */
  name?: string;
  /** This run's label within its model, e.g. `"seed 0"` (default none). */
  runLabel?: string;
}

/** What `fit` returns. */
export interface FitResult {
  /** Every epoch, resumed ones included. */
  history: EpochRecord[];
  /** The best epoch on the validation set (1-based), or the last without one. */
  bestEpoch: number;
  /** Whether early stopping ended the run. */
  stoppedEarly: boolean;
  /** Whether Ctrl-C (or `stop()`) ended the run. */
  interrupted: boolean;
  /** The last checkpoint written, if any. */
  checkpoint?: string;
  /** The best model's weights, if written. */
  bestCheckpoint?: string;
  /** The teacher cache's counters, when one was used. */
  cache?: TeacherCacheStats;
  /** Whether the teacher's parameters and buffers were unchanged (null: no teacher). */
  teacherUnchanged: boolean | null;
  /** Wall-clock seconds of the whole run. */
  seconds: number;
}

interface BestState {
  epoch: number;
  acc: number;
  loss: number;
}

/** FNV-1a over the bits of every parameter and buffer. */
function fingerprint(m: Module): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const all = [...m.parameters(), ...m.buffers()];
  for (const t of all) {
    const d = t.data();
    const w = new Uint32Array(d.buffer, d.byteOffset, d.length);
    for (let i = 0; i < w.length; i++) {
      h1 = Math.imul(h1 ^ w[i], 0x01000193);
      h2 = Math.imul(h2 ^ w[i], 0x5bd1e995) ^ (h2 >>> 13);
    }
  }
  return `${all.length}:${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}`;
}

function hostCopy(m: Module): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(m.stateDict())) {
    out[k] = tensor(t.data().slice(), {
      shape: t.shape,
      dtype: t.dtype,
      device: "cpu",
    });
  }
  return out;
}

function disposeAll(d: Record<string, Tensor> | null): void {
  if (d) { for (const t of Object.values(d)) t.dispose(); }
}

function describe(c: DistillCriterion): string {
  const s = String(c);
  return s === "[object Object]" ? c.name : s;
}

function fmt4(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : String(x);
}

/**
 * Makes an output folder ready before anything changes: creates it with
 * its parents when missing, checks that files can be created in it (by
 * making and removing a temporary file), and removes the temporary files a
 * killed run left there.
 *
 * @param dir The folder.
 * @param option The option that named it, for messages.
 * @param log Where the note about removed files goes.
 * @throws CheckpointError (`checkpointDir`) or DataError (`report.dir`)
 *   naming the folder when it cannot be created or written.
 */
async function prepareOutputDir(
  dir: string,
  option: "checkpointDir" | "report.dir",
  log: (line: string) => void,
): Promise<void> {
  let removed: string[];
  try {
    await probeWritableDir(dir);
    removed = await removeOrphanedTemps(dir);
  } catch (e) {
    const Err = option === "checkpointDir" ? CheckpointError : DataError;
    const err = new Err(
      `Cannot write to ${option} ${dir}: ${(e as Error).message}`,
    );
    err.cause = e;
    throw err;
  }
  if (removed.length) {
    log(
      `Removed ${removed.length} temporary file(s) an interrupted run left in ${dir}: ${
        removed.join(", ")
      }`,
    );
  }
}

/** What a resumed run starts from. */
interface ResumeState {
  history: EpochRecord[];
  best: BestState | null;
  sinceBest: number;
  startEpoch: number;
  skipBatches: number;
  bestWeights: Record<string, Tensor> | null;
}

/**
 * Resumes from a checkpoint, all or nothing: reads it, checks the
 * trainer's state in it, the best weights beside it and its fit to the
 * model, optimizer, scheduler and losses, and only then loads it.
 *
 * @param path The checkpoint file.
 * @param into The live objects, the fit's epochs and batches per epoch,
 *   where the best weights are, and the log.
 * @returns Where the run carries on from.
 * @throws CheckpointError naming the file and what does not fit.
 */
async function resumeRun(
  path: string,
  into: {
    model: Module;
    optimizer: Optimizer;
    scheduler?: LRScheduler | ReduceLROnPlateau | null;
    criteria: DistillCriterion[];
    epochs: number;
    batchesPerEpoch: number;
    bestPath?: string;
    log: (line: string) => void;
  },
): Promise<ResumeState> {
  const ckpt: Checkpoint = await loadCheckpoint(path);
  let state: ReturnType<typeof readTrainerState>;
  let bestWeights: Record<string, Tensor> | null = null;
  try {
    state = readTrainerState(ckpt, into);
    checkCheckpoint(ckpt, into);
    if (state.best && into.bestPath) {
      bestWeights = await loadBestWeights(
        into.bestPath,
        state.best.epoch,
        into.model,
        into.log,
      );
      if (!bestWeights) state.best = null;
    }
  } catch (e) {
    disposeCheckpoint(ckpt);
    throw e;
  }
  try {
    applyCheckpoint(ckpt, into);
  } catch (e) {
    disposeAll(bestWeights);
    throw e;
  }
  const { partial } = state;
  if (partial) globalGenerator.setState(partial.rng);
  into.log(
    `Resumed from ${path}: ${ckpt.epoch} epoch(s) done${
      partial ? `, plus ${partial.batches} batch(es) of the next` : ""
    }${
      ckpt.epoch === into.epochs && !partial
        ? `; nothing left to train (epochs is ${into.epochs})`
        : ""
    }`,
  );
  return {
    history: state.history,
    best: state.best,
    sinceBest: state.sinceBest,
    startEpoch: ckpt.epoch,
    skipBatches: partial?.batches ?? 0,
    bestWeights,
  };
}

/**
 * Checks the trainer's state in a checkpoint (types and ranges), changing
 * nothing: the epoch within the fit's `epochs`, one history record per
 * epoch done, the best epoch among them, the epochs since the best, and a
 * partial epoch's batch count and RNG state.
 *
 * @param ckpt From `loadCheckpoint`.
 * @param fit The fit's `epochs` and batches per epoch.
 * @returns The state, checked.
 * @throws CheckpointError naming the file and the field.
 */
function readTrainerState(
  ckpt: Checkpoint,
  fit: { epochs: number; batchesPerEpoch: number },
): {
  history: EpochRecord[];
  best: BestState | null;
  sinceBest: number;
  partial: { batches: number; rng: number[] } | null;
} {
  const fail = (msg: string): never => {
    throw new CheckpointError(`Cannot resume from ${ckpt.path}: ${msg}`);
  };
  const done = ckpt.epoch;
  if (done > fit.epochs) {
    fail(
      `it has ${done} epoch(s) done, more than this fit's epochs (${fit.epochs})`,
    );
  }
  const t = ckpt.trainer;
  const isNum = (v: unknown) => typeof v === "number";
  const isCount = (v: unknown, max: number) =>
    Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;
  const isRecord = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === "object" && !Array.isArray(v);
  const isPhase = (p: unknown) =>
    isRecord(p) && isNum(p.loss) && isNum(p.acc) && isNum(p.seconds) &&
    isCount(p.n, Number.MAX_SAFE_INTEGER) && isRecord(p.terms) &&
    Object.values(p.terms).every(isNum);
  const history = t.history ?? [];
  if (!Array.isArray(history) || history.length !== done) {
    fail(
      `trainer.history has ${
        Array.isArray(history) ? `${history.length} records` : "no list"
      }, expected one per epoch done (${done})`,
    );
  }
  (history as unknown[]).forEach((r, i) => {
    if (
      !isRecord(r) || r.epoch !== i + 1 || !isPhase(r.train) ||
      (r.val !== undefined && !isPhase(r.val)) ||
      (r.transfer !== undefined && !isPhase(r.transfer)) ||
      !Array.isArray(r.lr) || !r.lr.every(isNum) ||
      typeof r.best !== "boolean"
    ) {
      fail(`trainer.history[${i}] is not the record of epoch ${i + 1}`);
    }
  });
  const best = t.best ?? null;
  if (
    best !== null &&
    !(isRecord(best) && isCount(best.epoch, done) && best.epoch !== 0 &&
      isNum(best.acc) && isNum(best.loss))
  ) {
    fail(`trainer.best is not { epoch, acc, loss } with epoch 1 to ${done}`);
  }
  const sinceBest = t.sinceBest ?? 0;
  if (!isCount(sinceBest, done)) {
    fail(`trainer.sinceBest is ${String(sinceBest)}, expected 0 to ${done}`);
  }
  const partial = t.partial ?? null;
  if (
    partial !== null &&
    !(isRecord(partial) && isCount(partial.batches, fit.batchesPerEpoch) &&
      isGeneratorState(partial.rng))
  ) {
    fail(
      `trainer.partial is not { batches, rng } with batches 0 to ${fit.batchesPerEpoch} (batches per epoch) and a generator state`,
    );
  }
  if (partial !== null && done === fit.epochs) {
    fail(
      `it stopped inside epoch ${
        done + 1
      }, beyond this fit's epochs (${fit.epochs})`,
    );
  }
  return {
    history: history as EpochRecord[],
    best: best as BestState | null,
    sinceBest: sinceBest as number,
    partial: partial as { batches: number; rng: number[] } | null,
  };
}

/**
 * Reads the best epoch's weights written beside a checkpoint, on the CPU.
 * A missing file, or one of another epoch (a run killed after writing it
 * and before its checkpoint), is noted and the best restarts.
 *
 * @param path `best.safetensors`.
 * @param epoch The checkpoint's best epoch.
 * @param model The model they must fit.
 * @param log Where the note goes.
 * @returns The weights, or null.
 * @throws CheckpointError naming the file when it is malformed or does not
 *   fit the model.
 */
async function loadBestWeights(
  path: string,
  epoch: number,
  model: Module,
  log: (line: string) => void,
): Promise<Record<string, Tensor> | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    log(`Note: ${path} is missing; the best weights restart here`);
    return null;
  }
  const saved = parseSafetensorsHeader(bytes, path).metadata.epoch;
  if (saved !== undefined && saved !== String(epoch)) {
    log(
      `Note: ${path} holds epoch ${saved}, not the checkpoint's best (${epoch}); the best weights restart here`,
    );
    return null;
  }
  const weights = parseSafetensors(bytes, path, { device: "cpu" });
  try {
    model.checkStateDict(weights);
  } catch (e) {
    disposeAll(weights);
    throw new CheckpointError(
      `Cannot resume with the best weights ${path}: ${(e as Error).message}`,
    );
  }
  return weights;
}

/**
 * Makes `metrics.jsonl` safe to append to: drops a last line a kill cut
 * short and, when resuming, the lines of this model and run for epochs
 * after `after` (the run redoes them). Rewritten atomically, only when
 * something is dropped; other models' and runs' lines are kept.
 *
 * @param path The file (nothing happens when it does not exist).
 * @param run The model's name, the run's label, and the last epoch kept
 *   (null: keep every epoch).
 */
async function tidyMetrics(
  path: string,
  run: { model: string; run: string | null; after: number | null },
): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new DataError(`Cannot read ${path}: ${(e as Error).message}`);
  }
  const lines = text.split("\n");
  const torn = lines.pop() !== "";
  const kept = lines.filter((line) => {
    let m: unknown;
    try {
      m = JSON.parse(line);
    } catch {
      return true; // not ours to judge
    }
    const r = m as { model?: unknown; run?: unknown; epoch?: unknown };
    return !(run.after !== null && r?.model === run.model &&
      (r?.run ?? null) === run.run && typeof r?.epoch === "number" &&
      r.epoch > run.after);
  });
  if (!torn && kept.length === lines.length) return;
  await writeFileAtomic(
    path,
    new TextEncoder().encode(kept.map((l) => l + "\n").join("")),
  );
}

/** A fit's options, resolved and checked by `checkFit`. */
interface CheckedFit {
  teacher: Module | null;
  val: Loader | null;
  transfer: Loader | null;
  criteria: DistillCriterion[];
  /** The teacher's fingerprint before training (null: no teacher). */
  teacherPrint: string | null;
}

/**
 * Checks a fit's options before anything changes: `epochs`, transfer
 * images only with a teacher, the losses' learnable parameters in the
 * optimizer and the teacher's not, no parameter shared by student and
 * teacher, the model on `device`. Puts the teacher in eval mode and takes
 * its fingerprint.
 *
 * @param o The fit's options.
 * @param log Where the teacher's line goes.
 * @returns The loaders, the losses and the teacher's fingerprint.
 * @throws RangeError naming what does not fit.
 */
function checkFit(o: FitOptions, log: (line: string) => void): CheckedFit {
  const { model, optimizer } = o;
  const teacher = o.teacher ?? null;
  const val = o.val ?? null;
  const transfer = o.transfer ?? null;
  if (!Number.isInteger(o.epochs) || o.epochs < 1) {
    throw new RangeError(`Cannot fit: epochs ${o.epochs} must be ≥ 1`);
  }
  const criteria: DistillCriterion[] = o.loss
    ? (Array.isArray(o.loss) ? [...o.loss] : [o.loss as DistillCriterion])
    : [teacher ? new DistillationLoss() : new CrossEntropyCriterion()];
  if (transfer && !teacher) {
    throw new RangeError(
      "Cannot fit with transfer images: they have no labels, so a teacher is needed",
    );
  }
  const inOptimizer = new Set<Tensor>();
  for (const g of optimizer.paramGroups) {
    for (const p of g.params) inOptimizer.add(p);
  }
  for (const c of criteria) {
    const missing = (c.parameters?.() ?? []).filter((p) => !inOptimizer.has(p));
    if (missing.length) {
      throw new RangeError(
        `Cannot fit: ${missing.length} learnable parameter(s) of the "${c.name}" loss are not in the optimizer; build it from [...model.parameters(), ...loss.parameters()]`,
      );
    }
  }
  let teacherPrint: string | null = null;
  if (teacher) {
    const named = teacher.namedParameters();
    const leaked = named.filter(([, p]) => inOptimizer.has(p));
    if (leaked.length) {
      throw new RangeError(
        `Cannot fit: the optimizer holds ${leaked.length} of the teacher's parameters (${
          leaked.slice(0, 3).map(([n]) => n).join(", ")
        }${
          leaked.length > 3 ? ", ..." : ""
        }); build it from the student's parameters only`,
      );
    }
    const shared = named.filter(([, p]) => model.parameters().includes(p));
    if (shared.length) {
      throw new RangeError(
        `Cannot fit: the student and the teacher share ${shared.length} parameter(s) (${
          shared[0][0]
        })`,
      );
    }
    teacher.eval();
    teacherPrint = fingerprint(teacher);
    log(
      `Teacher: ${teacher.constructor.name}, ${teacher.numParameters()} parameters, eval mode, run under noGrad; 0 of its ${named.length} parameter tensors are in the optimizer`,
    );
  }
  if (o.device) {
    const off = model.parameters().find((p) => p.device !== o.device);
    if (off) {
      throw new RangeError(
        `Cannot fit on ${o.device}: the model's parameters are on ${off.device}; call model.to("${o.device}") before creating the optimizer`,
      );
    }
  }
  return { teacher, val, transfer, criteria, teacherPrint };
}

/**
 * The teacher cache a fit uses: none without a teacher, when
 * `teacherCache` is false or when a loss needs the teacher's intermediate
 * outputs; else the given cache or a new one.
 *
 * @param o The fit's options.
 * @param fit The checked fit.
 * @param log Where the note goes.
 * @returns The cache, or null.
 * @throws RangeError when the given cache belongs to another teacher.
 */
function teacherCacheFor(
  o: FitOptions,
  fit: CheckedFit,
  log: (line: string) => void,
): TeacherCache | null {
  const { teacher, criteria } = fit;
  if (!teacher || o.teacherCache === false) return null;
  if (criteria.some((c) => c.needsTeacherForward)) {
    log(
      "Teacher cache: off (feature losses need the teacher's intermediate outputs on every batch)",
    );
    return null;
  }
  const cache = o.teacherCache instanceof TeacherCache
    ? o.teacherCache
    : new TeacherCache(teacher, { log });
  if (cache.teacher !== teacher) {
    throw new RangeError(
      "Cannot fit: the given TeacherCache belongs to another teacher",
    );
  }
  return cache;
}

/** Where a fit starts, and where its checkpoints go. */
interface RunStart extends ResumeState {
  /** `checkpointDir/last.safetensors`, when there is a folder. */
  lastPath?: string;
  /** `checkpointDir/best.safetensors`, when there is a folder. */
  bestPath?: string;
  /** The checkpoint resumed from, if any. */
  resumedFrom?: string;
}

/**
 * Starts a run: makes the output folders ready, then resumes from a
 * checkpoint (all or nothing) or seeds the generator.
 *
 * @param o The fit's options.
 * @param fit The checked fit.
 * @param log Where notes go.
 * @returns The state the run starts from.
 * @throws CheckpointError or DataError naming a folder or checkpoint.
 */
async function startRun(
  o: FitOptions,
  fit: CheckedFit,
  log: (line: string) => void,
  dist: TrainerGroup | null = null,
): Promise<RunStart> {
  const dir = o.checkpointDir;
  // distributed: only rank 0 writes into (and tidies) the folder
  if (dir && isMainRank()) await prepareOutputDir(dir, "checkpointDir", log);
  if (o.report) await prepareOutputDir(o.report.dir, "report.dir", log);
  const lastPath = dir ? join(dir, "last.safetensors") : undefined;
  const bestPath = dir ? join(dir, "best.safetensors") : undefined;
  const resumedFrom = o.resume === true
    ? lastPath
    : typeof o.resume === "string"
    ? o.resume
    : undefined;
  if (o.resume === true && !lastPath) {
    throw new RangeError("Cannot resume: no checkpointDir given");
  }
  let state: ResumeState = {
    history: [],
    best: null,
    sinceBest: 0,
    startEpoch: 0,
    skipBatches: 0,
    bestWeights: null,
  };
  if (resumedFrom) {
    state = await resumeRun(resumedFrom, {
      model: o.model,
      optimizer: o.optimizer,
      scheduler: o.scheduler,
      criteria: fit.criteria,
      epochs: o.epochs,
      // distributed: partial epochs count batches over all ranks
      batchesPerEpoch: (o.train.length + (fit.transfer?.length ?? 0)) *
        (dist?.worldSize ?? 1),
      bestPath,
      log,
    });
    if (dist) {
      state.skipBatches = Math.floor(state.skipBatches / dist.worldSize);
    }
  } else if (o.seed !== undefined) {
    manualSeed(o.seed);
  }
  if (!fit.val) {
    log(
      "No validation loader: no best-epoch selection and no early stopping (the test set is never used for selection)",
    );
  }
  return { ...state, lastPath, bestPath, resumedFrom };
}

/**
 * The best epoch on the validation set: compares each epoch's accuracy
 * (ties: the lower loss) or loss with the best so far, keeps the best
 * weights on the host (and in `best.safetensors`), counts the epochs since
 * the best for early stopping, and restores the weights at the end.
 */
class BestEpoch {
  /** The best epoch so far, or null. */
  best: BestState | null;
  /** Epochs since the best. */
  sinceBest: number;
  #weights: Record<string, Tensor> | null;
  readonly #monitor: "accuracy" | "loss";
  readonly #minDelta: number;

  constructor(
    start: Pick<ResumeState, "best" | "sinceBest" | "bestWeights">,
    monitor: "accuracy" | "loss",
    minDelta: number,
  ) {
    this.best = start.best;
    this.sinceBest = start.sinceBest;
    this.#weights = start.bestWeights;
    this.#monitor = monitor;
    this.#minDelta = minDelta;
  }

  #better(acc: number, loss: number): boolean {
    const best = this.best;
    if (!best) return true;
    const minDelta = this.#minDelta;
    if (this.#monitor === "loss") return loss < best.loss - minDelta;
    if (acc > best.acc + minDelta) return true;
    return Math.abs(acc - best.acc) <= minDelta && acc >= best.acc &&
      loss < best.loss;
  }

  /**
   * Scores an epoch's validation phase.
   *
   * @param val The validation phase.
   * @param epoch The 1-based epoch.
   * @param model The model, copied to the host when best.
   * @param bestPath Where the best weights are written, if anywhere.
   * @returns Whether the epoch is the best so far.
   */
  async update(
    val: PhaseRecord,
    epoch: number,
    model: Module,
    bestPath?: string,
  ): Promise<boolean> {
    if (!this.#better(val.acc, val.loss)) {
      this.sinceBest++;
      return false;
    }
    this.best = { epoch, acc: val.acc, loss: val.loss };
    this.sinceBest = 0;
    disposeAll(this.#weights);
    this.#weights = hostCopy(model);
    if (bestPath && isMainRank()) { // distributed: rank 0 writes
      await saveSafetensors(bestPath, model.stateDict(), {
        epoch: String(epoch),
      });
    }
    return true;
  }

  /**
   * Loads the best weights into the model unless they are the last epoch's
   * of an uninterrupted run, then frees them.
   *
   * @param model The model.
   * @param lastEpoch The last epoch trained (1-based), if any.
   * @param interrupted Whether the run was interrupted.
   * @param restore Whether to load them at all (`restoreBest`).
   * @param log Where the note goes.
   */
  finish(
    model: Module,
    lastEpoch: number | undefined,
    interrupted: boolean,
    restore: boolean,
    log: (line: string) => void,
  ): void {
    const best = this.best;
    if (best && restore && this.#weights) {
      if (best.epoch !== lastEpoch || interrupted) {
        model.loadStateDict(this.#weights);
        log(
          `Restored the best epoch's weights (epoch ${best.epoch}, val Acc ${
            fmt4(best.acc)
          })`,
        );
      }
    }
    disposeAll(this.#weights);
    this.#weights = null;
  }
}

/**
 * After training: whether the teacher's parameters and buffers are
 * unchanged (its fingerprint), and the teacher cache's counters, logged.
 *
 * @param fit The checked fit (the teacher and its first fingerprint).
 * @param cache The teacher cache, if one was used.
 * @param log Where the lines go.
 * @returns Whether the teacher is unchanged (null: no teacher).
 */
function checkTeacher(
  fit: CheckedFit,
  cache: TeacherCache | null,
  log: (line: string) => void,
): boolean | null {
  let unchanged: boolean | null = null;
  if (fit.teacher) {
    unchanged = fingerprint(fit.teacher) === fit.teacherPrint;
    log(
      unchanged
        ? "Teacher check: parameters and BatchNorm statistics unchanged"
        : "Teacher check FAILED: the teacher's parameters or buffers changed during training",
    );
  }
  if (cache) {
    const s = cache.stats;
    log(
      `Teacher cache: ${s.entries} entries, ${s.hits} hits, ${s.misses} misses, teacher time ${
        (s.teacherMs / 1000).toFixed(1)
      } s`,
    );
  }
  return unchanged;
}

/**
 * Listens for Ctrl-C: the first asks the fit to stop after the current
 * batch, a second exits at once (status 130).
 *
 * @param stop Asks the fit to stop.
 * @param log Where the note goes.
 * @returns A function that stops listening.
 */
function onInterrupt(
  stop: () => void,
  log: (line: string) => void,
): () => void {
  let signals = 0;
  const onSigint = () => {
    signals++;
    if (signals > 1) Deno.exit(130);
    stop();
    log(
      "\nInterrupted: stopping after the current batch (Ctrl-C again to quit now)",
    );
  };
  try {
    Deno.addSignalListener("SIGINT", onSigint);
  } catch {
    return () => {}; // no signal support here (e.g. a Worker)
  }
  return () => Deno.removeSignalListener("SIGINT", onSigint);
}

/** What one epoch needs: the checked fit and the live objects. */
interface EpochRun extends CheckedFit {
  model: Module;
  optimizer: Optimizer;
  train: Loader;
  scheduler?: LRScheduler | ReduceLROnPlateau | null;
  device?: DeviceName;
  epochs: number;
  cache: TeacherCache | null;
  progress: ProgressMode;
  log: (line: string) => void;
  /** distributed: the process group, or null in a world of one. */
  dist?: TrainerGroup | null;
}

/** An epoch stopped inside its training phase (Ctrl-C or `stop()`). */
interface PartialEpoch {
  /** Batches done, skipped ones included. */
  batches: number;
  /** Batches per epoch. */
  total: number;
  /** The generator's state at the start of the epoch. */
  rng: number[];
}

/**
 * Trains a model, alone or distilled from a teacher.
 *
 * @example Distil a tiny student for one epoch
 * ```ts
 * import { data, manualSeed, models, nn, optim, randn, tensor, train } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * manualSeed(0);
 * const x = randn([16, 3, 4, 4]);
 * const y = tensor(Int32Array.from({ length: 16 }, (_, i) => i % 2));
 * const loader = new data.TensorLoader(x, y, { batchSize: 8, shuffle: true });
 * const teacher = new models.StudentNet({ inputSize: 4 }).eval();
 * const student = new models.StudentNet({ inputSize: 4 });
 * const result = await new train.Trainer({ progress: "none", log: () => {} })
 *   .fit({
 *     model: student,
 *     teacher,
 *     train: loader,
 *     epochs: 1,
 *     optimizer: new optim.SGD(student.parameters(), { lr: 0.01 }),
 *   });
 * assert.equal(result.history.length, 1);
 * assert.equal(result.teacherUnchanged, true);
 * ```
 */
export class Trainer {
  /** Defaults for every `fit`. */
  readonly options: TrainerOptions;
  #stopRequested = false;
  #reportModels: ReportModel[] = [];
  #reportSeeds: number[] = [];

  /**
   * A trainer with the given model, loss, optimizer and settings.
   *
   * @param options Defaults for every `fit`.
   */
  constructor(options: TrainerOptions = {}) {
    this.options = options;
  }

  /** Asks the running `fit` to stop after the current batch (as Ctrl-C does). */
  stop(): void {
    this.#stopRequested = true;
  }

  /**
   * Trains for `epochs` epochs (or until early stopping or Ctrl-C).
   *
   * @param fitOptions Model, teacher, loaders, epochs, optimizer, scheduler,
   *   loss, device, transfer, resume, and any `TrainerOptions`.
   * @returns The history, the best epoch and what ended the run.
   * @throws NonFiniteLossError when a loss term is NaN or infinite.
   * @throws CheckpointError, before the first epoch and before anything
   *   changes, when `checkpointDir` cannot be created or written, or the
   *   checkpoint to resume from is malformed or was made for another
   *   model, optimizer, scheduler, losses or a shorter run (naming the file).
   * @throws DataError, before the first epoch, when `report.dir` cannot be
   *   created or written.
   * @throws RangeError when the teacher's parameters are in the optimizer,
   *   or a loss's adapters are not.
   */
  async fit(fitOptions: FitOptions): Promise<FitResult> {
    // the parts: checkFit (options), teacherCacheFor, startRun (folders,
    // resume), #openReport (report sink), BestEpoch (best-epoch tracker),
    // onInterrupt (stop signal), #epoch (one epoch), checkTeacher
    // distributed: under mpirun the loaders are sharded, and only rank 0
    // prints, reports and writes checkpoints
    const dist = trainerGroup(fitOptions.model);
    const merged = { ...this.options, ...fitOptions };
    const o = dist ? distributeFit(merged, dist) : merged;
    const log = o.log ?? ((l: string) => console.log(l));
    // warns once when live tensors keep growing from epoch to epoch
    const memoryWatch = new MemoryWatch();
    const started = performance.now();
    const { model, optimizer } = o;
    const fit = checkFit(o, log);
    const { criteria } = fit;
    const cache = teacherCacheFor(o, fit, log);
    log(`Loss: ${criteria.map(describe).join(" + ")}`);
    const start = await startRun(o, fit, log, dist);
    // distributed: rank 0's weights everywhere, gradients averaged
    const detachGroup = dist?.attach(
      model,
      fit.criteria.flatMap((c) => c.parameters?.() ?? []),
    );
    const { history, lastPath, bestPath } = start;
    const report = await this.#openReport(
      o,
      history,
      start.resumedFrom ? start.startEpoch : null,
    );
    const tracker = new BestEpoch(
      start,
      o.monitor ?? "accuracy",
      o.earlyStopping?.minDelta ?? 0,
    );
    this.#stopRequested = false;
    const stopListening = onInterrupt(() => {
      this.#stopRequested = true;
    }, log);
    const run: EpochRun = {
      ...fit,
      model,
      optimizer,
      train: o.train,
      scheduler: o.scheduler,
      device: o.device,
      epochs: o.epochs,
      cache,
      progress: o.progress ?? "auto",
      log,
      dist,
    };
    const checkpointParts = (epoch: number, trainerExtra: object) => ({
      epoch,
      model,
      optimizer,
      scheduler: o.scheduler,
      criteria,
      trainer: {
        history,
        best: tracker.best,
        sinceBest: tracker.sinceBest,
        ...trainerExtra,
      },
    });
    let lastWritten = start.resumedFrom;
    let skipBatches = start.skipBatches;
    let stoppedEarly = false;
    let interrupted = false;
    try {
      for (let epoch = start.startEpoch; epoch < o.epochs; epoch++) {
        if (this.#stopRequested) {
          // Ctrl-C between epochs: the epoch's checkpoint is already written
          interrupted = true;
          break;
        }
        const done = await this.#epoch(run, epoch, skipBatches, lastWritten);
        skipBatches = 0;
        if ("rng" in done) {
          interrupted = true;
          if (lastPath) {
            // distributed: batches over all ranks, so that a resume with
            // another number of ranks skips as many samples
            const batches = done.batches * (dist?.worldSize ?? 1);
            if (isMainRank()) {
              await saveCheckpoint(
                lastPath,
                checkpointParts(epoch, {
                  partial: { batches, rng: done.rng },
                }),
              );
            }
            dist?.barrier();
            lastWritten = lastPath;
            log(
              `Checkpoint written to ${lastPath} (epoch ${
                epoch + 1
              }, after ${done.batches} of ${done.total} batches); resume with resume: true`,
            );
          }
          break;
        }
        const record = done;
        if (record.val) {
          record.best = await tracker.update(
            record.val,
            record.epoch,
            model,
            bestPath,
          );
        }
        history.push(record);
        const leak = await memoryWatch.check(`epoch ${epoch + 1}`);
        if (leak) console.warn(`Trainer: ${leak}`);
        await report?.(record);
        if (lastPath) {
          // distributed: rank 0 writes, the others wait for it
          if (isMainRank()) {
            await saveCheckpoint(lastPath, checkpointParts(epoch + 1, {}));
          }
          dist?.barrier();
          lastWritten = lastPath;
        }
        if (
          o.earlyStopping && record.val &&
          tracker.sinceBest >= o.earlyStopping.patience
        ) {
          stoppedEarly = true;
          log(
            `Early stopping: no improvement on val for ${tracker.sinceBest} epoch(s) (best: epoch ${tracker.best?.epoch})`,
          );
          break;
        }
      }
    } finally {
      stopListening();
      detachGroup?.();
    }

    // ---- the end ----
    const best = tracker.best;
    const bestEpoch = best?.epoch ?? history.length;
    tracker.finish(
      model,
      history.at(-1)?.epoch,
      interrupted,
      o.restoreBest ?? true,
      log,
    );
    dist?.syncBuffers(model); // distributed: every rank ends with rank 0's model
    const teacherUnchanged = checkTeacher(fit, cache, log);
    return {
      history,
      bestEpoch,
      stoppedEarly,
      interrupted,
      checkpoint: lastWritten,
      bestCheckpoint: best && bestPath ? bestPath : undefined,
      cache: cache?.stats,
      teacherUnchanged,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /**
   * The report sink: with `report: { dir }`, tidies `metrics.jsonl`,
   * registers this fit as a run of its model in the page, and returns what
   * writes one epoch (its lines, then the page); null without a report.
   */
  async #openReport(
    o: FitOptions,
    history: EpochRecord[],
    resumedAfter: number | null,
  ): Promise<((record: EpochRecord) => Promise<void>) | null> {
    const report = o.report;
    if (!report) return null;
    const model = o.model;
    const modelName = o.name ?? model.constructor.name;
    const runLabel = o.runLabel ?? null;
    const metricsPath = join(report.dir, "metrics.jsonl");
    // a resumed run redoes the epochs after its checkpoint: drop their
    // lines (written before a kill), so no epoch appears twice
    await tidyMetrics(metricsPath, {
      model: modelName,
      run: runLabel,
      after: resumedAfter,
    });
    const reportPath = (report.html ?? true)
      ? join(report.dir, "report.html")
      : undefined;
    let entry = this.#reportModels.find((m) => m.name === modelName);
    if (!entry) {
      entry = { name: modelName, runs: [] };
      this.#reportModels.push(entry);
    }
    entry.runs.push({ label: runLabel ?? undefined, history });
    if (o.seed !== undefined && !this.#reportSeeds.includes(o.seed)) {
      this.#reportSeeds.push(o.seed);
    }
    return async (record) => {
      await appendMetricsLines(
        metricsPath,
        metricsLines(record, { model: modelName, run: runLabel }),
      );
      if (!reportPath) return;
      await writeReport(reportPath, {
        title: report.title ?? "kdeno training report",
        models: this.#reportModels,
        config: report.config,
        seeds: this.#reportSeeds.length ? this.#reportSeeds : undefined,
        device: o.device ?? model.parameters()[0]?.device,
      });
    };
  }

  /**
   * One epoch: the training phase (labeled batches interleaved with
   * transfer batches, the first `skip` passed over when resuming), the
   * validation phase, the cache's and the scheduler's step.
   *
   * @returns The epoch's record (`best` still false), or where it stopped
   *   when a stop was asked for during the training phase.
   */
  async #epoch(
    run: EpochRun,
    epoch: number,
    skip: number,
    lastGood: string | undefined,
  ): Promise<EpochRecord | PartialEpoch> {
    const { model, teacher, optimizer, train, transfer, val, log } = run;
    log(`Epoch ${epoch + 1}/${run.epochs}`);
    log("-".repeat(10));
    for (const c of run.criteria) c.setEpoch?.(epoch);
    const rngAtStart = globalGenerator.getState();
    const lr = optimizer.paramGroups.map((g) => g.lr);

    // ---- train phase ----
    model.train();
    teacher?.eval();
    const sums = {
      train: {
        loss: 0,
        correct: 0,
        n: 0,
        terms: {} as Record<string, number>,
      },
      transfer: {
        loss: 0,
        correct: 0,
        n: 0,
        terms: {} as Record<string, number>,
      },
    };
    const total = train.length + (transfer?.length ?? 0);
    const bar = new Progress("train", total, {
      mode: run.progress,
      write: log,
    });
    const t0 = performance.now();
    const its: [AsyncIterator<Batch>, "train" | "transfer"][] = [[
      train[Symbol.asyncIterator](),
      "train",
    ]];
    if (transfer) {
      its.push([transfer[Symbol.asyncIterator](), "transfer"]);
    }
    let batchNo = 0;
    let lastYield = performance.now();
    let toSkip = skip;
    try {
      while (its.length) {
        for (let k = 0; k < its.length;) {
          const [it, kind] = its[k];
          const next = await it.next();
          if (next.done) {
            its.splice(k, 1);
            continue;
          }
          k++;
          batchNo++;
          const batch = next.value;
          if (toSkip > 0) {
            // resuming mid-epoch: these batches were trained on already
            toSkip--;
            batch[0].dispose();
            batch[1].dispose();
            bar.tick();
            continue;
          }
          const r = this.#step({
            batch,
            labeled: kind === "train",
            model,
            teacher,
            cache: run.cache,
            criteria: run.criteria,
            optimizer,
            device: run.device,
            epoch,
            batchNo,
            lastGood,
          });
          const s = sums[kind];
          s.loss += r.loss * r.n;
          s.correct += r.correct;
          s.n += r.n;
          for (const [name, v] of Object.entries(r.terms)) {
            s.terms[name] = (s.terms[name] ?? 0) + v * r.n;
          }
          const st = sums.train;
          bar.tick({
            loss: st.n ? st.loss / st.n : undefined,
            acc: st.n ? st.correct / st.n : undefined,
            items: r.n,
          });
          // let signal handlers run even when the loader never waits
          if (performance.now() - lastYield > 50) {
            await new Promise((r) => setTimeout(r, 0));
            lastYield = performance.now();
          }
          // distributed: every rank stops after the same batch
          if (run.dist?.anyStop(this.#stopRequested)) {
            this.#stopRequested = true;
          }
          if (this.#stopRequested) break;
        }
        if (this.#stopRequested) break;
      }
    } finally {
      // close the loaders' iterators (workers) when leaving early
      for (const [it] of its) await it.return?.();
    }
    bar.done();
    const seconds = (performance.now() - t0) / 1000;
    if (run.dist && !this.#stopRequested) {
      // distributed: loss sums, correct counts and sizes over all ranks
      for (const s of [sums.train, sums.transfer]) {
        const keys = Object.keys(s.terms).sort();
        const v = run.dist.sum([
          s.loss,
          s.correct,
          s.n,
          ...keys.map((k) => s.terms[k]),
        ]);
        [s.loss, s.correct, s.n] = v;
        keys.forEach((k, i) => s.terms[k] = v[3 + i]);
      }
    }
    const phase = (s: typeof sums.train): PhaseRecord => ({
      loss: s.n ? s.loss / s.n : NaN,
      acc: s.n ? s.correct / s.n : NaN,
      n: s.n,
      terms: Object.fromEntries(
        Object.entries(s.terms).map(([k, v]) => [k, v / (s.n || 1)]),
      ),
      seconds,
    });
    if (this.#stopRequested) {
      return { batches: batchNo, total, rng: rngAtStart };
    }

    const trainRec = phase(sums.train);
    const termText = Object.entries(trainRec.terms).map(([k, v]) =>
      `${k} ${fmt4(v)}`
    ).join(", ");
    log(
      `train Loss: ${fmt4(trainRec.loss)} Acc: ${fmt4(trainRec.acc)}${
        Object.keys(trainRec.terms).length > 1 ? ` (${termText})` : ""
      }`,
    );
    const record: EpochRecord = {
      epoch: epoch + 1,
      train: trainRec,
      lr,
      best: false,
    };
    if (transfer) {
      record.transfer = phase(sums.transfer);
      log(
        `transfer Loss: ${
          fmt4(record.transfer.loss)
        } (${record.transfer.n} unlabeled images)`,
      );
    }

    // ---- val phase ----
    if (val) {
      run.dist?.syncBuffers(model); // distributed: rank 0's BatchNorm statistics
      record.val = await this.#validate(
        model,
        val,
        run.device,
        run.progress,
        log,
        run.dist,
      );
      log(
        `val Loss: ${fmt4(record.val.loss)} Acc: ${fmt4(record.val.acc)}`,
      );
    }
    run.cache?.endEpoch(epoch);

    // ---- scheduler ----
    if (run.scheduler instanceof ReduceLROnPlateau) {
      run.scheduler.step(record.val?.loss ?? trainRec.loss);
    } else if (run.scheduler instanceof LRScheduler) {
      run.scheduler.step();
    }
    return record;
  }

  #step(a: {
    batch: Batch;
    labeled: boolean;
    model: Module;
    teacher: Module | null;
    cache: TeacherCache | null;
    criteria: DistillCriterion[];
    optimizer: Optimizer;
    device?: DeviceName;
    epoch: number;
    batchNo: number;
    lastGood?: string;
  }): {
    loss: number;
    correct: number;
    n: number;
    terms: Record<string, number>;
  } {
    const { batch, model, teacher, cache, criteria, optimizer } = a;
    const info = batch[2];
    const [x, y] = moveBatch(batch, a.device);
    try {
      return tidy(() => {
        optimizer.zeroGrad();
        const studentLogits = model.call(x);
        let teacherLogits: Tensor | null = null;
        if (teacher) {
          // Training and transfer indices must not share cache entries: a
          // loader that does not name its source gets one per phase.
          const source = info?.source ?? (a.labeled ? "train" : "transfer");
          teacherLogits = cache
            ? cache.logits(x, info && { ...info, source })
            : noGrad(() => teacher.call(x));
        }
        const labels = a.labeled ? y : null;
        const terms: Record<string, Tensor> = {};
        for (const c of criteria) {
          for (
            const [k, t] of Object.entries(
              c.terms({ studentLogits, teacherLogits, labels }),
            )
          ) {
            terms[k in terms ? `${c.name}.${k}` : k] = t;
          }
        }
        const values: Record<string, number> = {};
        let totalLoss: Tensor | null = null;
        for (const [k, t] of Object.entries(terms)) {
          const v = t.item();
          if (!Number.isFinite(v)) {
            throw new NonFiniteLossError(
              a.epoch + 1,
              a.batchNo,
              k,
              v,
              a.lastGood,
            );
          }
          values[k] = v;
          totalLoss = totalLoss ? totalLoss.add(t) : t;
        }
        totalLoss!.backward();
        optimizer.step();
        const correct = labels
          ? studentLogits.argmax(1).eq(labels).sum().item()
          : 0;
        return {
          loss: Object.values(values).reduce((s, v) => s + v, 0),
          correct,
          n: x.shape[0],
          terms: values,
        };
      });
    } finally {
      if (x !== batch[0]) x.dispose();
      if (y !== batch[1]) y.dispose();
      batch[0].dispose();
      batch[1].dispose();
    }
  }

  async #validate(
    model: Module,
    loader: Loader,
    device: DeviceName | undefined,
    mode: ProgressMode,
    log: (l: string) => void,
    dist: TrainerGroup | null = null,
  ): Promise<PhaseRecord> {
    model.eval();
    const t0 = performance.now();
    const bar = new Progress("val", loader.length, { mode, write: log });
    let loss = 0;
    let correct = 0;
    let n = 0;
    let batchSize = 0;
    for await (const batch of loader) {
      const [x, y] = moveBatch(batch, device);
      try {
        const [l, c] = noGrad(() =>
          tidy(() => {
            const logits = model.call(x);
            return [
              crossEntropy(logits, y, { reduction: "sum" }).item(),
              logits.argmax(1).eq(y).sum().item(),
            ];
          })
        );
        loss += l;
        correct += c;
        n += batchSize = x.shape[0];
      } finally {
        if (x !== batch[0]) x.dispose();
        if (y !== batch[1]) y.dispose();
        batch[0].dispose();
        batch[1].dispose();
      }
      bar.tick({ loss: loss / n, acc: correct / n, items: batchSize });
    }
    bar.done();
    model.train();
    // distributed: each rank saw its shard; sums over all ranks
    if (dist) [loss, correct, n] = dist.sum([loss, correct, n]);
    return {
      loss: n ? loss / n : NaN,
      acc: n ? correct / n : NaN,
      n,
      terms: { ce: n ? loss / n : NaN },
      seconds: (performance.now() - t0) / 1000,
    };
  }
}
