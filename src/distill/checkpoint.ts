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
import type { DistillCriterion } from "./losses.ts";

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
  /** The scheduler's state, when one was saved. */
  scheduler: SchedulerStateDict | null;
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
    criteria: (parts.criteria ?? []).length,
    rng: [...(parts.rng ?? globalGenerator.getState())],
    trainer: parts.trainer ?? {},
  };
  await saveSafetensors(path, tensors, { [META_KEY]: encodeJson(meta) });
}

/**
 * Reads a checkpoint written by `saveCheckpoint`.
 *
 * @param path The file.
 * @returns Its parts (tensors on the current device).
 * @throws CheckpointError when the file is missing, truncated or not a
 * kdeno checkpoint.
 */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
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
    throw new CheckpointError(
      `Cannot resume from ${path}: it has no "${META_KEY}" metadata (not a kdeno training checkpoint)`,
    );
  }
  let meta: Record<string, unknown>;
  try {
    meta = decodeJson(raw) as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(
      `Cannot resume from ${path}: its metadata is not valid JSON (${
        (e as Error).message
      })`,
    );
  }
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(
      `Cannot resume from ${path}: checkpoint format ${meta.format}, this kdeno reads ${CHECKPOINT_FORMAT}`,
    );
  }
  const tensors = parseSafetensors(bytes, path);
  const model: Record<string, Tensor> = {};
  const criteria: Record<string, Tensor>[] = Array.from(
    { length: Number(meta.criteria ?? 0) },
    () => ({}),
  );
  const optState: Record<number, ParamState> = {};
  for (const [key, t] of Object.entries(tensors)) {
    const dot = key.indexOf(".");
    const head = key.slice(0, dot);
    const rest = key.slice(dot + 1);
    if (head === "model") model[rest] = t;
    else if (head === "optimizer") {
      const d = rest.indexOf(".");
      const idx = Number(rest.slice(0, d));
      (optState[idx] ??= {})[rest.slice(d + 1)] = t;
    } else if (head === "criterion") {
      const d = rest.indexOf(".");
      const i = Number(rest.slice(0, d));
      (criteria[i] ??= {})[rest.slice(d + 1)] = t;
    }
  }
  let optimizer: OptimizerStateDict | null = null;
  const om = meta.optimizer as
    | {
      paramGroups: OptimizerStateDict["paramGroups"];
      numbers: Record<string, Record<string, number>>;
    }
    | null;
  if (om) {
    for (const [idx, nums] of Object.entries(om.numbers ?? {})) {
      Object.assign(optState[Number(idx)] ??= {}, nums);
    }
    optimizer = { state: optState, paramGroups: om.paramGroups };
  }
  return {
    epoch: Number(meta.epoch),
    model,
    optimizer,
    scheduler: (meta.scheduler as SchedulerStateDict | null) ?? null,
    criteria,
    rng: meta.rng as number[],
    trainer: (meta.trainer as Record<string, unknown>) ?? {},
    path,
  };
}

/**
 * Puts a checkpoint's state into live objects: the model's weights and
 * buffers, the optimizer's state, the scheduler's, the criteria's and the
 * process-wide RNG. The checkpoint's tensors are disposed afterwards.
 *
 * @param ckpt From `loadCheckpoint`.
 * @param into The objects to restore.
 */
export function applyCheckpoint(
  ckpt: Checkpoint,
  into: Omit<CheckpointParts, "epoch" | "rng" | "trainer">,
): void {
  try {
    into.model.loadStateDict(ckpt.model);
    if (into.optimizer) {
      if (!ckpt.optimizer) {
        throw new CheckpointError(
          `Cannot resume from ${ckpt.path}: it holds no optimizer state`,
        );
      }
      into.optimizer.loadStateDict(ckpt.optimizer);
    }
    if (into.scheduler && ckpt.scheduler) {
      into.scheduler.loadStateDict(ckpt.scheduler);
    }
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
