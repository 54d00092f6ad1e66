/**
 * Training checkpoints in one safetensors file, written atomically (a
 * temporary file in the same folder, flushed, then renamed over the old
 * one), so a crash or SIGKILL while writing leaves the previous checkpoint
 * whole.
 *
 * Layout: tensors `model.<key>` (the model's state dict),
 * `optimizer.<index>.<name>` (optimizer buffers) and `criterion.<i>.<key>`
 * (learnable adapters of the losses); the metadata entry `kdeno.checkpoint`
 * holds JSON: the epoch, the optimizer's hyperparameters and counters, the
 * scheduler's state, the RNG state and the trainer's own state.
 *
 * @module
 */

import { CheckpointError } from "../errors.ts";
import {
  parseSafetensors,
  parseSafetensorsHeader,
  saveSafetensors,
} from "../io/safetensors.ts";
import type { Module } from "../nn/module.ts";
import { checkStateDict } from "../nn/_state.ts";
import type {
  Optimizer,
  OptimizerStateDict,
  ParamState,
} from "../optim/optimizer.ts";
import type {
  LRScheduler,
  ReduceLROnPlateau,
  SchedulerStateDict,
} from "../optim/lr_scheduler.ts";
import { globalGenerator } from "../random.ts";
import { Tensor } from "../tensor.ts";
import type { DistillCriterion } from "../distill/losses.ts";

/** The checkpoint format version. */
export const CHECKPOINT_FORMAT = 1;
const META_KEY = "kdeno.checkpoint";

/** What a checkpoint saves. */
export interface CheckpointParts {
  /** Completed epochs. */
  epoch: number;
  /** The model. */
  model: Module;
  /** Its optimizer. */
  optimizer?: Optimizer | null;
  /** Its scheduler. */
  scheduler?: LRScheduler | ReduceLROnPlateau | null;
  /** Losses with state (adapters). */
  criteria?: readonly DistillCriterion[];
  /** The RNG state (default: the process-wide generator's, now). */
  rng?: readonly number[];
  /** Anything else, JSON-serialisable (NaN and ±Infinity are kept). */
  trainer?: Record<string, unknown>;
}

/** A checkpoint read back. */
export interface Checkpoint {
  /** Completed epochs. */
  epoch: number;
  /** The model's state dict. */
  model: Record<string, Tensor>;
  /** The optimizer's state dict, when one was saved. */
  optimizer: OptimizerStateDict | null;
  /** The optimizer's class name (`"Adam"`), when the file records it. */
  optimizerKind: string | null;
  /** The scheduler's state, when one was saved. */
  scheduler: SchedulerStateDict | null;
  /** The scheduler's class name, when the file records it. */
  schedulerKind: string | null;
  /** Each criterion's state (empty objects for those without). */
  criteria: Record<string, Tensor>[];
  /** The RNG state. */
  rng: number[];
  /** The trainer's state. */
  trainer: Record<string, unknown>;
  /** The file. */
  path: string;
}

/**
 * The most losses a checkpoint may record (a run has a handful): the count
 * comes from the file, so it is bounded before anything is made from it.
 */
export const MAX_CHECKPOINT_CRITERIA = 1024;

/**
 * Whether `state` is a state of kdeno's generator, as `getState()` gives
 * it: four 32-bit unsigned integers, not all zero, then the spare normal
 * draw (a number, NaN when there is none).
 *
 * @param state The value to check.
 * @returns True when `globalGenerator.setState(state)` would be sound.
 */
export function isGeneratorState(state: unknown): state is number[] {
  return Array.isArray(state) && state.length === 5 &&
    state.slice(0, 4).every((x) =>
      Number.isInteger(x) && x >= 0 && x < 2 ** 32
    ) &&
    state.slice(0, 4).some((x) => x !== 0) &&
    typeof state[4] === "number" && state[4] !== Infinity &&
    state[4] !== -Infinity;
}

/**
 * JSON with NaN and ±Infinity kept (as `{"$nf": "NaN"}` etc.).
 *
 * @param value The value.
 * @returns The JSON text.
 */
export function encodeJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      typeof v === "number" && !Number.isFinite(v) ? { $nf: String(v) } : v,
  );
}

/**
 * Reads `encodeJson`'s output.
 *
 * @param text The JSON text.
 * @returns The value.
 */
export function decodeJson(text: string): unknown {
  return JSON.parse(
    text,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v) &&
        Object.keys(v).length === 1 && typeof v.$nf === "string"
        ? Number(v.$nf)
        : v,
  );
}

/**
 * Writes a checkpoint atomically.
 *
 * @param path The file (`.safetensors`).
 * @param parts The epoch, model, optimizer, scheduler, criteria, RNG state
 *   and trainer state.
 * @throws CheckpointError naming the file when it cannot be written.
 */
export async function saveCheckpoint(
  path: string,
  parts: CheckpointParts,
): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(parts.model.stateDict())) {
    tensors[`model.${k}`] = t;
  }
  let optimizer: unknown = null;
  if (parts.optimizer) {
    const sd = parts.optimizer.stateDict();
    const numbers: Record<string, Record<string, number>> = {};
    for (const [idx, st] of Object.entries(sd.state)) {
      for (const [name, v] of Object.entries(st)) {
        if (v instanceof Tensor) tensors[`optimizer.${idx}.${name}`] = v;
        else (numbers[idx] ??= {})[name] = v;
      }
    }
    optimizer = {
      kind: parts.optimizer.constructor.name,
      paramGroups: sd.paramGroups,
      numbers,
      tensorKeys: Object.fromEntries(
        Object.entries(sd.state).map(([idx, st]) => [
          idx,
          Object.keys(st).filter((n) => st[n] instanceof Tensor),
        ]),
      ),
    };
  }
  (parts.criteria ?? []).forEach((c, i) => {
    for (const [k, t] of Object.entries(c.stateDict?.() ?? {})) {
      tensors[`criterion.${i}.${k}`] = t;
    }
  });
  const meta = {
    format: CHECKPOINT_FORMAT,
    epoch: parts.epoch,
    optimizer,
    scheduler: parts.scheduler?.stateDict() ?? null,
    schedulerKind: parts.scheduler?.constructor.name ?? null,
    criteria: (parts.criteria ?? []).length,
    rng: [...(parts.rng ?? globalGenerator.getState())],
    trainer: parts.trainer ?? {},
  };
  await saveSafetensors(path, tensors, { [META_KEY]: encodeJson(meta) });
}

/**
 * Reads a checkpoint written by `saveCheckpoint`, checking everything that
 * does not depend on what it will be loaded into: the safetensors file
 * itself, the metadata's types and ranges (format, epoch, the optimizer's
 * groups and counters, the scheduler's state, the RNG state, the trainer's
 * state), and every tensor's key. `applyCheckpoint` checks the rest
 * against the live model, optimizer, scheduler and losses.
 *
 * Limits: the safetensors header is at most 100 MB (see
 * `parseSafetensorsHeader`); a checkpoint records at most
 * `MAX_CHECKPOINT_CRITERIA` (1024) losses. Neither has an option.
 *
 * @param path The file.
 * @returns Its parts (tensors on the current device).
 * @throws CheckpointError naming the file when it is missing, truncated,
 * not a kdeno checkpoint, or its metadata or keys are malformed.
 */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  const fail = (msg: string): never => {
    throw new CheckpointError(`Cannot resume from ${path}: ${msg}`);
  };
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const err = new CheckpointError(
      `Cannot resume from ${path}: ${(e as Error).message}`,
    );
    err.cause = e;
    throw err;
  }
  const raw = parseSafetensorsHeader(bytes, path).metadata[META_KEY];
  if (raw === undefined) {
    fail(`it has no "${META_KEY}" metadata (not a kdeno training checkpoint)`);
  }
  let decoded: unknown;
  try {
    decoded = decodeJson(raw);
  } catch (e) {
    fail(`its metadata is not valid JSON (${(e as Error).message})`);
  }
  const meta = readMeta(decoded, fail);
  const tensors = parseSafetensors(bytes, path);
  const ckpt: Checkpoint = {
    epoch: meta.epoch,
    model: {},
    optimizer: null,
    optimizerKind: meta.optimizer?.kind ?? null,
    scheduler: meta.scheduler,
    schedulerKind: meta.schedulerKind,
    criteria: Array.from({ length: meta.criteria }, () => ({})),
    rng: meta.rng,
    trainer: meta.trainer,
    path,
  };
  const optState: Record<number, ParamState> = {};
  try {
    for (const [key, t] of Object.entries(tensors)) {
      const [, head, rest] = /^(model|optimizer|criterion)\.(.+)$/.exec(key) ??
        [];
      const [, index, name] = /^(\d+)\.(.+)$/.exec(rest ?? "") ?? [];
      const i = Number(index);
      if (head === "model") {
        ckpt.model[rest] = t;
      } else if (head === "optimizer" && name && meta.optimizer) {
        (optState[i] ??= {})[name] = t;
      } else if (head === "criterion" && name && i < meta.criteria) {
        ckpt.criteria[i][name] = t;
      } else {
        fail(
          `tensor "${key}" is none of model.<key>, optimizer.<index>.<name> (with optimizer metadata) or criterion.<i>.<key> (i < ${meta.criteria})`,
        );
      }
    }
  } catch (e) {
    for (const t of Object.values(tensors)) t.dispose();
    throw e;
  }
  if (meta.optimizer) {
    for (const [idx, nums] of Object.entries(meta.optimizer.numbers)) {
      Object.assign(optState[Number(idx)] ??= {}, nums);
    }
    ckpt.optimizer = {
      state: optState,
      paramGroups: meta.optimizer.paramGroups,
    };
  }
  return ckpt;
}

interface CheckpointMeta {
  epoch: number;
  criteria: number;
  optimizer: {
    kind: string | null;
    paramGroups: OptimizerStateDict["paramGroups"];
    numbers: Record<string, Record<string, number>>;
  } | null;
  scheduler: SchedulerStateDict | null;
  schedulerKind: string | null;
  rng: number[];
  trainer: Record<string, unknown>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

/** Checks the metadata's types and ranges; `fail` names the file. */
function readMeta(
  meta: unknown,
  fail: (msg: string) => never,
): CheckpointMeta {
  if (!isRecord(meta)) fail(`its metadata is ${show(meta)}, not an object`);
  if (meta.format !== CHECKPOINT_FORMAT) {
    fail(
      `checkpoint format ${
        show(meta.format)
      }, this kdeno reads ${CHECKPOINT_FORMAT}`,
    );
  }
  const count = (key: string, v: unknown, max: number): number => {
    if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max) {
      fail(`${key} is ${show(v)}, expected an integer from 0 to ${max}`);
    }
    return v as number;
  };
  const epoch = count("epoch", meta.epoch, Number.MAX_SAFE_INTEGER);
  const criteria = count(
    "criteria",
    meta.criteria ?? 0,
    MAX_CHECKPOINT_CRITERIA,
  );
  const kind = (key: string, v: unknown): string | null => {
    if (v === undefined || v === null) return null;
    if (typeof v !== "string") fail(`${key} is ${show(v)}, not a class name`);
    return v as string;
  };
  let optimizer: CheckpointMeta["optimizer"] = null;
  const om = meta.optimizer;
  if (om !== null && om !== undefined) {
    if (!isRecord(om) || !Array.isArray(om.paramGroups)) {
      fail(`optimizer is ${show(om)}, expected { paramGroups, numbers }`);
    }
    const numbers = om.numbers ?? {};
    if (!isRecord(numbers)) fail(`optimizer.numbers is ${show(numbers)}`);
    for (const [idx, nums] of Object.entries(numbers)) {
      if (
        !/^\d+$/.test(idx) || !isRecord(nums) ||
        !Object.values(nums).every((n) => typeof n === "number")
      ) {
        fail(
          `optimizer.numbers.${idx} is ${
            show(nums)
          }, expected numbers by name under a parameter index`,
        );
      }
    }
    optimizer = {
      kind: kind("optimizer.kind", om.kind),
      paramGroups: om.paramGroups as OptimizerStateDict["paramGroups"],
      numbers: numbers as Record<string, Record<string, number>>,
    };
  }
  const scheduler = meta.scheduler ?? null;
  if (scheduler !== null && !isRecord(scheduler)) {
    fail(`scheduler is ${show(scheduler)}, not an object`);
  }
  if (!isGeneratorState(meta.rng)) {
    fail(
      `rng is ${
        show(meta.rng)
      }, expected the generator's state (4 unsigned 32-bit integers, not all 0, and a number)`,
    );
  }
  const trainer = meta.trainer ?? {};
  if (!isRecord(trainer)) fail(`trainer is ${show(trainer)}, not an object`);
  return {
    epoch,
    criteria,
    optimizer,
    scheduler: scheduler as SchedulerStateDict | null,
    schedulerKind: kind("schedulerKind", meta.schedulerKind),
    rng: meta.rng as number[],
    trainer: trainer as Record<string, unknown>,
  };
}

/**
 * Checks that a checkpoint fits live objects, changing nothing: the
 * model's keys, shapes and dtypes; the optimizer's kind, groups and state;
 * the scheduler's kind and state; each loss's state (when `criteria` is
 * given). `applyCheckpoint` runs it before it changes anything.
 *
 * @param ckpt From `loadCheckpoint`.
 * @param into The objects it would be loaded into.
 * @throws CheckpointError naming the file and what does not fit.
 */
export function checkCheckpoint(
  ckpt: Checkpoint,
  into: Omit<CheckpointParts, "epoch" | "rng" | "trainer">,
): void {
  const fail = (msg: string): never => {
    throw new CheckpointError(`Cannot resume from ${ckpt.path}: ${msg}`);
  };
  const check = (fn: () => unknown): void => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      const m = e.message;
      fail(m.startsWith("Cannot ") ? "c" + m.slice(1) : m);
    }
  };
  const sameKind = (what: string, saved: string | null, live: object) => {
    const name = live.constructor.name;
    if (saved !== null && saved !== name) {
      fail(`it holds ${saved} state but the ${what} is ${name}`);
    }
  };
  check(() => into.model.checkStateDict(ckpt.model));
  const { optimizer, scheduler } = into;
  if (optimizer) {
    if (!ckpt.optimizer) fail("it holds no optimizer state");
    sameKind("optimizer", ckpt.optimizerKind, optimizer);
    check(() => optimizer.checkStateDict(ckpt.optimizer!));
  }
  if (scheduler) {
    if (!ckpt.scheduler) fail("it holds no scheduler state");
    sameKind("scheduler", ckpt.schedulerKind, scheduler);
    check(() => scheduler.checkStateDict(ckpt.scheduler!));
  }
  const criteria = into.criteria;
  if (!criteria) return;
  ckpt.criteria.forEach((sd, i) => {
    if (i >= criteria.length && Object.keys(sd).length) {
      fail(
        `it holds the state of loss ${i} (${
          Object.keys(sd).join(", ")
        }), this run has ${criteria.length} loss(es)`,
      );
    }
  });
  criteria.forEach((c, i) =>
    check(() =>
      checkStateDict(c.stateDict?.() ?? {}, ckpt.criteria[i] ?? {}, {
        strict: true,
        owner: `the "${c.name}" loss`,
      })
    )
  );
}

/**
 * Puts a checkpoint's state into live objects: the model's weights and
 * buffers, the optimizer's state, the scheduler's, the criteria's and the
 * process-wide RNG. All or nothing: `checkCheckpoint` runs first, so a
 * checkpoint of another model, optimizer, scheduler or loss changes
 * nothing. The checkpoint's tensors are disposed afterwards, in either case.
 *
 * @param ckpt From `loadCheckpoint`.
 * @param into The objects to restore.
 * @throws CheckpointError naming the file and what does not fit.
 */
export function applyCheckpoint(
  ckpt: Checkpoint,
  into: Omit<CheckpointParts, "epoch" | "rng" | "trainer">,
): void {
  try {
    checkCheckpoint(ckpt, into);
    into.model.loadStateDict(ckpt.model);
    if (into.optimizer) into.optimizer.loadStateDict(ckpt.optimizer!);
    if (into.scheduler) into.scheduler.loadStateDict(ckpt.scheduler!);
    (into.criteria ?? []).forEach((c, i) => {
      const sd = ckpt.criteria[i];
      if (c.loadStateDict && sd && Object.keys(sd).length) c.loadStateDict(sd);
    });
    globalGenerator.setState(ckpt.rng);
  } finally {
    disposeCheckpoint(ckpt);
  }
}

/**
 * Frees a loaded checkpoint's tensors.
 *
 * @param ckpt From `loadCheckpoint`.
 */
export function disposeCheckpoint(ckpt: Checkpoint): void {
  for (const t of Object.values(ckpt.model)) t.dispose();
  for (const c of ckpt.criteria) for (const t of Object.values(c)) t.dispose();
  for (const st of Object.values(ckpt.optimizer?.state ?? {})) {
    for (const v of Object.values(st)) if (v instanceof Tensor) v.dispose();
  }
}
