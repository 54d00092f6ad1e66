/**
 * The optimizer base class: parameter groups, per-parameter state, zeroing
 * gradients, and state dicts in PyTorch's layout.
 *
 * Follows `torch.optim.Optimizer`
 * (https://pytorch.org/docs/1.13/optim.html). Updates run through the
 * backend's fused kernels, in place on each parameter's storage; state
 * tensors (momentum buffers, moment estimates) live on the parameter's device
 * and are marked with `keep()` so `tidy()` never disposes them.
 *
 * @module
 */

import {
  CheckpointError,
  DTypeError,
  fmtShape,
  ShapeError,
  TensorStateError,
} from "../errors.ts";
import { tensor } from "../ops/creation.ts";
import { keep, Tensor } from "../tensor.ts";

/** Hyperparameters every parameter group has. */
export interface GroupOptions {
  /** Learning rate. */
  lr: number;
}

/**
 * A parameter group: its parameters and its hyperparameters (the
 * optimizer's defaults, overridden by what the group was given).
 */
export type ParamGroup<O extends GroupOptions = GroupOptions> = O & {
  /** The parameters this group updates. */
  params: Tensor[];
};

/** A parameter group as passed in: any hyperparameter may be left out. */
export type ParamGroupInput<O extends GroupOptions = GroupOptions> =
  & Partial<O>
  & {
    /** The parameters of this group. */
    params: Iterable<Tensor>;
  };

/** What an optimizer accepts: tensors, or parameter groups. */
export type Params<O extends GroupOptions = GroupOptions> =
  | Iterable<Tensor>
  | Iterable<ParamGroupInput<O>>;

/** One parameter's optimizer state: buffers (tensors) and counters. */
export type ParamState = Record<string, Tensor | number>;

/** A parameter group in a state dict: hyperparameters and parameter indices. */
export type GroupStateDict = Record<string, unknown> & {
  /** Indices of the group's parameters, counted across all groups. */
  params: number[];
};

/**
 * An optimizer's state in PyTorch's layout. Parameters are numbered in group
 * order, across groups; `state` holds an entry only for parameters that
 * have state.
 */
export interface OptimizerStateDict {
  /** Per-parameter state by parameter index. */
  state: Record<number, ParamState>;
  /** The groups' hyperparameters and parameter indices. */
  paramGroups: GroupStateDict[];
}

/** Options of `zeroGrad`. */
export interface ZeroGradOptions {
  /**
   * Dispose each gradient and set `.grad` to null (the default, as PyTorch
   * 2.0); false fills the gradients with zeros in place.
   */
  setToNone?: boolean;
}

/** How a subclass describes one state buffer, for `loadStateDict`. */
export interface StateSpec {
  /** Tensor buffers shaped like the parameter. */
  tensors: string[];
  /** Number-valued entries (step counters). */
  numbers: string[];
  /** Entries that must be present when the state is not empty. */
  required: string[];
}

function isTensorIterable(x: unknown): x is Iterable<unknown> {
  return x !== null && typeof x === "object" &&
    typeof (x as Iterable<unknown>)[Symbol.iterator] === "function";
}

function describe(p: Tensor, index: number): string {
  return `parameter ${index}${p.name ? ` (${p.name})` : ""} of shape ${
    fmtShape(p.shape)
  }`;
}

/**
 * Base class of the optimizers. Subclasses give their defaults, validate a
 * group's options and implement `step()`.
 */
export abstract class Optimizer<O extends GroupOptions = GroupOptions> {
  /** The parameter groups; schedulers change `lr` here. */
  readonly paramGroups: ParamGroup<O>[] = [];
  /** Hyperparameters a group gets when it does not set them. */
  readonly defaults: Readonly<O>;
  /** Per-parameter state (buffers are kept tensors on the parameter's device). */
  readonly state: Map<Tensor, ParamState> = new Map();
  /** The class name, for messages. */
  protected readonly kind: string;

  /**
   * Builds the parameter groups, checking every option and refusing a
   * tensor that appears twice.
   *
   * @param params Tensors, or parameter groups `{ params, ...options }`.
   * @param defaults Every hyperparameter, as given or defaulted.
   * @param kind The optimizer's name, for messages.
   */
  constructor(params: Params<O>, defaults: O, kind: string) {
    this.kind = kind;
    this.validate(defaults, `Cannot create ${kind}`);
    this.defaults = Object.freeze({ ...defaults });
    if (params instanceof Tensor || !isTensorIterable(params)) {
      throw new TypeError(
        `Cannot create ${kind}: params must be an iterable of tensors or of parameter groups, got ${
          params instanceof Tensor
            ? `one tensor of shape ${fmtShape(params.shape)}`
            : String(params)
        }`,
      );
    }
    const list = [...params] as unknown[];
    if (list.length === 0) {
      throw new RangeError(
        `Cannot create ${kind}: the parameter list is empty`,
      );
    }
    if (list.every((x) => x instanceof Tensor)) {
      this.addParamGroup(
        { params: list as Tensor[] } as unknown as ParamGroupInput<O>,
      );
    } else {
      list.forEach((g, i) => {
        if (
          g instanceof Tensor || g === null || typeof g !== "object" ||
          !isTensorIterable((g as { params?: unknown }).params)
        ) {
          throw new TypeError(
            `Cannot create ${kind}: params[${i}] is not a parameter group { params, ...options } (tensors and groups cannot be mixed)`,
          );
        }
        this.addParamGroup(g as ParamGroupInput<O>);
      });
    }
  }

  /**
   * Checks a group's hyperparameters, throwing a `RangeError` that names the
   * offending option.
   *
   * @param options The hyperparameters.
   * @param action What is being done, e.g. `"Cannot create SGD"`.
   */
  protected abstract validate(options: O, action: string): void;

  /**
   * The state entries a parameter of `group` may have.
   *
   * @param group The parameter's group.
   * @returns The spec `loadStateDict` checks against.
   */
  protected abstract stateSpec(group: ParamGroup<O>): StateSpec;

  /** Applies one update to every parameter that has a gradient. */
  abstract step(): void;

  /**
   * Adds a parameter group, as `torch.optim.Optimizer.add_param_group`.
   * Options it leaves out come from the optimizer's defaults.
   *
   * @param group `{ params, ...options }`.
   */
  addParamGroup(group: ParamGroupInput<O>): void {
    const action = `Cannot create ${this.kind}`;
    const { params, ...options } = group;
    if (params instanceof Tensor) {
      throw new TypeError(
        `${action}: a group's params must be an iterable of tensors, not one tensor`,
      );
    }
    const list = [...params];
    const seen = new Map<Tensor, string>();
    let index = 0;
    for (const g of this.paramGroups) {
      g.params.forEach((p, j) =>
        seen.set(
          p,
          `parameter ${index + j} (group ${this.paramGroups.indexOf(g)})`,
        )
      );
      index += g.params.length;
    }
    list.forEach((p, j) => {
      const where = `parameter ${index + j}`;
      if (!(p instanceof Tensor)) {
        throw new TypeError(
          `${action}: ${where} of group ${this.paramGroups.length} is not a tensor (${
            String(p)
          })`,
        );
      }
      if (p.dtype !== "float32") {
        throw new DTypeError(
          `${action}: ${
            describe(p, index + j)
          } is ${p.dtype}; only float32 tensors can be optimized`,
        );
      }
      const other = seen.get(p);
      if (other !== undefined) {
        throw new RangeError(
          `${action}: ${
            describe(p, index + j)
          } appears more than once in the parameter list (also ${other})`,
        );
      }
      seen.set(p, `${where} (group ${this.paramGroups.length})`);
    });
    const defined = Object.fromEntries(
      Object.entries(options).filter(([, v]) => v !== undefined),
    );
    const merged = Object.fromEntries(
      Object.entries({ ...this.defaults, ...defined }).map((
        [k, v],
      ) => [k, Array.isArray(v) ? [...v] : v]),
    ) as O;
    this.validate(
      merged,
      `${action}: parameter group ${this.paramGroups.length}`,
    );
    this.paramGroups.push({ ...merged, params: list });
  }

  /** Iterates over every parameter with its group, in group order. */
  protected *entries(): Generator<[Tensor, ParamGroup<O>, number]> {
    let i = 0;
    for (const g of this.paramGroups) {
      for (const p of g.params) yield [p, g, i++];
    }
  }

  /**
   * The parameters `step()` updates: those that require gradients and have
   * one. Checks the gradient's shape, dtype and device.
   *
   * @returns `[parameter, gradient, group]` triples.
   */
  protected withGrads(): [Tensor, Tensor, ParamGroup<O>][] {
    const out: [Tensor, Tensor, ParamGroup<O>][] = [];
    for (const [p, g, i] of this.entries()) {
      const grad = p.grad;
      if (!p.requiresGrad || grad === null) continue;
      if (grad.shape.join() !== p.shape.join()) {
        throw new ShapeError(
          `Cannot step ${this.kind}: the gradient of ${
            describe(p, i)
          } has shape ${fmtShape(grad.shape)}`,
        );
      }
      if (grad.dtype !== "float32") {
        throw new DTypeError(
          `Cannot step ${this.kind}: the gradient of ${
            describe(p, i)
          } is ${grad.dtype}, not float32`,
        );
      }
      if (grad.backend !== p.backend) {
        throw new TensorStateError(
          `Cannot step ${this.kind}: the gradient of ${
            describe(p, i)
          } is on ${grad.device} but the parameter is on ${p.device}`,
        );
      }
      out.push([p, grad, g]);
    }
    return out;
  }

  /**
   * Clears every parameter's gradient.
   *
   * @param options `setToNone` (default true) disposes the gradients and sets
   *   `.grad` to null; false zeroes them in place.
   */
  zeroGrad(options: ZeroGradOptions = {}): void {
    const setToNone = options.setToNone ?? true;
    for (const [p] of this.entries()) {
      const g = p.grad;
      if (g === null) continue;
      if (setToNone || g.isDisposed) {
        g.dispose();
        p.grad = null;
      } else {
        g.gradNode = null;
        g.backend.fill(g.storage, 0);
      }
    }
  }

  /**
   * The optimizer's state in PyTorch's layout. The tensors are the live
   * buffers, not copies: save them or load them elsewhere, but do not
   * dispose them.
   *
   * @returns `{ state, paramGroups }`.
   */
  stateDict(): OptimizerStateDict {
    const state: Record<number, ParamState> = {};
    for (const [p, , i] of this.entries()) {
      const s = this.state.get(p);
      if (s) state[i] = { ...s };
    }
    let index = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...hyper } = g;
      const copy: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(hyper)) {
        copy[k] = Array.isArray(v) ? [...v] : v;
      }
      const indices = params.map(() => index++);
      return { ...copy, params: indices };
    });
    return { state, paramGroups };
  }

  /**
   * Checks a state dict as `loadStateDict` does before it changes anything,
   * and changes nothing: the group layout, every hyperparameter (an
   * optimizer of another kind has other ones), every state entry's keys,
   * numbers, tensors (live, of the parameter's shape).
   *
   * @param stateDict `{ state, paramGroups }`.
   * @throws CheckpointError naming the group, index or key that does not fit.
   */
  checkStateDict(stateDict: OptimizerStateDict): void {
    this.#plan(stateDict);
  }

  /**
   * Restores state saved by `stateDict()` (of an optimizer of the same kind
   * over parameters of the same shapes, in the same group layout). Tensors
   * are copied onto each parameter's device; hyperparameters (the learning
   * rate included) are taken from the dict. All or nothing: everything is
   * checked (see `checkStateDict`) before anything changes.
   *
   * @param stateDict `{ state, paramGroups }`.
   * @throws CheckpointError naming the group, index or key that does not fit.
   */
  loadStateDict(stateDict: OptimizerStateDict): void {
    const plan = this.#plan(stateDict);
    const next = new Map<Tensor, ParamState>();
    const made: Tensor[] = [];
    try {
      for (const [p, record, spec] of plan.entries) {
        const out: ParamState = {};
        for (const k of spec.numbers) {
          if (!(k in record)) continue;
          const v = record[k];
          out[k] = v instanceof Tensor ? v.item() : v as number;
        }
        for (const k of spec.tensors) {
          if (!(k in record)) continue;
          const copy = keep(
            tensor(Float32Array.from((record[k] as Tensor).data()), {
              shape: p.shape,
              device: p.device,
            }),
          );
          made.push(copy);
          out[k] = copy;
        }
        next.set(p, out);
      }
    } catch (e) {
      // only a failed allocation gets here: nothing has changed yet
      for (const t of made) t.dispose();
      throw e;
    }
    // Commit: groups first, then swap the state and free the old buffers.
    plan.groups.forEach((g, gi) => {
      const target = this.paramGroups[gi] as unknown as Record<
        string,
        unknown
      >;
      for (const [k, v] of Object.entries(g)) {
        if (k !== "params") target[k] = Array.isArray(v) ? [...v] : v;
      }
    });
    const old = [...this.state.values()];
    this.state.clear();
    for (const [p, s] of next) this.state.set(p, s);
    for (const s of old) {
      for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    }
  }

  /** Checks everything in a state dict; returns what loading it would set. */
  #plan(stateDict: OptimizerStateDict): {
    groups: ParamGroup<O>[];
    entries: [Tensor, Record<string, unknown>, StateSpec][];
  } {
    const action = `Cannot load ${this.kind} state`;
    const fail: (msg: string) => never = (msg) => {
      throw new CheckpointError(`${action}: ${msg}`);
    };
    if (
      stateDict === null || typeof stateDict !== "object" ||
      !Array.isArray(stateDict.paramGroups) ||
      stateDict.state === null || typeof stateDict.state !== "object"
    ) {
      fail("expected an object { state, paramGroups }");
    }
    const saved = stateDict.paramGroups;
    if (saved.length !== this.paramGroups.length) {
      fail(
        `the dict has ${saved.length} parameter groups, the optimizer has ${this.paramGroups.length}`,
      );
    }
    const groups: ParamGroup<O>[] = [];
    const params: [Tensor, ParamGroup<O>][] = [];
    const indexOf = new Map<number, number>(); // saved index -> position
    saved.forEach((sg, gi) => {
      const mine = this.paramGroups[gi];
      if (
        sg === null || typeof sg !== "object" || !Array.isArray(sg.params)
      ) {
        fail(`paramGroups[${gi}] has no params list`);
      }
      if (sg.params.length !== mine.params.length) {
        fail(
          `paramGroups[${gi}] has ${sg.params.length} parameters, the optimizer's group ${gi} has ${mine.params.length}`,
        );
      }
      const { params: _ids, ...hyper } = sg;
      // an optimizer of another kind has hyperparameters this one lacks
      const foreign = Object.keys(hyper).filter((k) => !Object.hasOwn(mine, k));
      if (foreign.length) {
        fail(
          `paramGroups[${gi}] has ${
            foreign.join(", ")
          }, which ${this.kind} does not have (it has ${
            Object.keys(this.defaults).join(", ")
          }); was it saved by another optimizer?`,
        );
      }
      const merged = { ...mine, ...hyper, params: mine.params } as ParamGroup<
        O
      >;
      for (const key of Object.keys(this.defaults)) {
        const want = typeof (this.defaults as Record<string, unknown>)[key];
        const got = typeof (merged as unknown as Record<string, unknown>)[key];
        if (want !== got) {
          fail(`paramGroups[${gi}].${key} is ${got}, expected ${want}`);
        }
      }
      try {
        this.validate(merged, `paramGroups[${gi}]`);
      } catch (e) {
        fail((e as Error).message);
      }
      groups.push(merged);
      sg.params.forEach((id, j) => {
        if (!Number.isInteger(id) || indexOf.has(id)) {
          fail(
            `paramGroups[${gi}].params[${j}] is ${id}, not a unique integer index`,
          );
        }
        indexOf.set(id, params.length);
        params.push([mine.params[j], merged]);
      });
    });
    const entries: [Tensor, Record<string, unknown>, StateSpec][] = [];
    for (const [key, entry] of Object.entries(stateDict.state)) {
      const pos = /^\d+$/.test(key) ? indexOf.get(Number(key)) : undefined;
      if (pos === undefined) {
        fail(
          `state[${key}] names no parameter (the groups list indices ${
            [...indexOf.keys()].join(", ")
          })`,
        );
      }
      const [p, group] = params[pos];
      const spec = this.stateSpec(group);
      this.#checkEntry(entry, p, spec, key, fail);
      entries.push([p, entry as Record<string, unknown>, spec]);
    }
    return { groups, entries };
  }

  #checkEntry(
    entry: unknown,
    p: Tensor,
    spec: StateSpec,
    key: string,
    fail: (msg: string) => never,
  ): void {
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      fail(`state[${key}] is not an object`);
    }
    const record = entry as Record<string, unknown>;
    const names = Object.keys(record);
    const unexpected = names.filter((k) =>
      !spec.tensors.includes(k) && !spec.numbers.includes(k)
    );
    if (unexpected.length) {
      fail(
        `state[${key}] has unexpected keys ${unexpected.join(", ")} (expected ${
          [...spec.tensors, ...spec.numbers].join(", ")
        })`,
      );
    }
    const missing = spec.required.filter((k) => !(k in record));
    if (names.length && missing.length) {
      fail(`state[${key}] is missing keys ${missing.join(", ")}`);
    }
    for (const k of spec.numbers) {
      if (!(k in record)) continue;
      const v = record[k];
      if (v instanceof Tensor && (v.isDisposed || v.numel() !== 1)) {
        fail(`state[${key}].${k} is not a live one-element tensor`);
      }
      const n = v instanceof Tensor ? v.item() : v;
      if (typeof n !== "number" || !Number.isFinite(n) || n < 0) {
        fail(`state[${key}].${k} is ${String(n)}, not a finite count ≥ 0`);
      }
    }
    for (const k of spec.tensors) {
      if (!(k in record)) continue;
      const v = record[k];
      if (!(v instanceof Tensor)) {
        fail(`state[${key}].${k} is not a tensor`);
      }
      const t = v as Tensor;
      if (t.isDisposed) fail(`state[${key}].${k} was disposed`);
      if (t.shape.join() !== p.shape.join()) {
        fail(
          `state[${key}].${k} has shape ${fmtShape(t.shape)} but ${
            describe(p, Number(key))
          }`,
        );
      }
    }
  }

  /** Disposes the optimizer's state tensors; the optimizer starts afresh. */
  dispose(): void {
    for (const s of this.state.values()) {
      for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    }
    this.state.clear();
  }
}
