/**
 * Feature distillation on intermediate layers, read with forward hooks on
 * named submodules (`module.registerForwardHook`), so no model is rewritten:
 * FitNets hints with a learnable 1×1 adapter (Romero et al., ICLR 2015,
 * https://arxiv.org/abs/1412.6550) and attention transfer (Zagoruyko and
 * Komodakis, ICLR 2017, https://arxiv.org/abs/1612.03928).
 *
 * Layer names are the state-dict paths of `module.namedModules()`:
 * `"layer1"`, `"layer2.0.bn2"`, ...
 *
 * @module
 */

import { Conv2d } from "../nn/layers.ts";
import type { Module } from "../nn/module.ts";
import {
  adaptiveAvgPool2d,
  clamp,
  div,
  mean,
  mseLoss,
  mul,
  pow,
  sqrt,
  sub,
  sum,
} from "../ops/mod.ts";
import { ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { CriterionInput, DistillCriterion } from "./losses.ts";

/**
 * Finds a submodule by its dotted name.
 *
 * @param model The model.
 * @param name A name from `model.namedModules()`, e.g. `"layer1.0"`.
 * @returns The submodule.
 * @throws RangeError naming the module and listing the names it has.
 */
export function findModule(model: Module, name: string): Module {
  const all = model.namedModules();
  const hit = all.find(([n]) => n === name);
  if (!hit) {
    const names = all.map(([n]) => n).filter((n) => n);
    const shown = names.slice(0, 30).join(", ");
    throw new RangeError(
      `Cannot find submodule "${name}" in ${model.constructor.name}: it has ${shown}${
        names.length > 30 ? `, ... (${names.length} in all)` : ""
      }`,
    );
  }
  return hit[1];
}

/**
 * Captures the outputs of named submodules on every forward pass, with
 * forward hooks.
 *
 * @example Capture a StudentNet's convolution block
 * ```ts
 * import { distill, models, randn } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const net = new models.StudentNet({ inputSize: 8 });
 * const hooks = new distill.FeatureHooks(net, ["layer1"]);
 * net.call(randn([2, 3, 8, 8]));
 * assert.deepEqual(hooks.get("layer1").shape, [2, 4, 4, 4]);
 * hooks.remove();
 * ```
 */
export class FeatureHooks {
  #outputs = new Map<string, Tensor>();
  #handles: { remove(): void }[] = [];
  /** The model the hooks are on. */
  readonly model: Module;

  /**
   * Records the outputs of the named submodules of `model` on each forward pass.
   *
   * @param model The model.
   * @param names Submodule names (see `findModule`).
   */
  constructor(model: Module, names: readonly string[]) {
    this.model = model;
    for (const name of names) {
      const m = findModule(model, name);
      this.#handles.push(m.registerForwardHook((_m, _in, out) => {
        this.#outputs.set(name, out);
      }));
    }
  }

  /**
   * The output of the last forward pass through a submodule.
   *
   * @param name The submodule's name.
   * @returns Its output.
   * @throws RangeError when nothing was captured or the output was disposed.
   */
  get(name: string): Tensor {
    const t = this.#outputs.get(name);
    if (!t || t.isDisposed) {
      throw new RangeError(
        `Cannot read the features of "${name}" of ${this.model.constructor.name}: no forward pass in this step captured them`,
      );
    }
    return t;
  }

  /** Removes the hooks. */
  remove(): void {
    for (const h of this.#handles) h.remove();
    this.#handles = [];
    this.#outputs.clear();
  }
}

/** Pools the larger of two NCHW maps to the spatial size of the smaller. */
function matchSpatial(a: Tensor, b: Tensor): [Tensor, Tensor] {
  const [ah, aw] = a.shape.slice(2);
  const [bh, bw] = b.shape.slice(2);
  if (ah === bh && aw === bw) return [a, b];
  if (ah * aw > bh * bw) return [adaptiveAvgPool2d(a, [bh, bw]), b];
  return [a, adaptiveAvgPool2d(b, [ah, aw])];
}

/**
 * The FitNets hint loss: mean squared error between the adapted student
 * features and the teacher's, `mse(adapter(fs), ft)`, after pooling the
 * larger map to the smaller one's size.
 *
 * @param studentFeatures `[n, cs, h, w]`.
 * @param teacherFeatures `[n, ct, h', w']` (never receives a gradient).
 * @param adapter A 1×1 convolution from `cs` to `ct` channels.
 * @returns The scalar loss.
 */
export function hintLoss(
  studentFeatures: Tensor,
  teacherFeatures: Tensor,
  adapter: Module,
): Tensor {
  const adapted = adapter.call(studentFeatures);
  const ft = teacherFeatures.gradNode || teacherFeatures.requiresGrad
    ? teacherFeatures.detach()
    : teacherFeatures;
  if (adapted.ndim !== 4 || ft.ndim !== 4) {
    throw new ShapeError(
      `Cannot compute hint loss: features [${adapted.shape.join(", ")}] and [${
        ft.shape.join(", ")
      }] must be NCHW`,
    );
  }
  if (adapted.shape[1] !== ft.shape[1] || adapted.shape[0] !== ft.shape[0]) {
    throw new ShapeError(
      `Cannot compute hint loss: adapted student features [${
        adapted.shape.join(", ")
      }] and teacher features [${
        ft.shape.join(", ")
      }] differ in batch or channels`,
    );
  }
  const [a, b] = matchSpatial(adapted, ft);
  return mseLoss(a, b);
}

/** Options of `HintLoss`. */
export interface HintLossOptions {
  /** The student (hooks go on it). */
  student: Module;
  /** The teacher (hooks go on it). */
  teacher: Module;
  /** The student's layer, e.g. `"layer1"`. */
  studentLayer: string;
  /** The teacher's layer, e.g. `"layer1"`. */
  teacherLayer: string;
  /** Channels of the student's layer output. */
  studentChannels: number;
  /** Channels of the teacher's layer output. */
  teacherChannels: number;
  /** Weight of the term (default 1). */
  weight?: number;
}

/**
 * FitNets hint loss as a trainer criterion: a learnable 1×1 convolution
 * maps the student layer's output to the teacher layer's channels; the term
 * is `weight * mse(adapter(fs), ft)`. The adapter's parameters
 * (`parameters()`) must be in the optimizer; the trainer checks.
 */
export class HintLoss implements DistillCriterion {
  /** For logs. */
  readonly name = "hint";
  /** The teacher must run on every batch: its features are not cached. */
  readonly needsTeacherForward = true;
  /** The learnable 1×1 regressor. */
  readonly adapter: Conv2d;
  /** Weight of the term. */
  readonly weight: number;
  #student: FeatureHooks;
  #teacher: FeatureHooks;
  #sl: string;
  #tl: string;

  /**
   * A FitNets hint criterion, with its regressor when the channels differ.
   *
   * @param options Models, layers, channels and weight.
   */
  constructor(options: HintLossOptions) {
    this.adapter = new Conv2d(
      options.studentChannels,
      options.teacherChannels,
      1,
      { bias: false },
    );
    this.weight = options.weight ?? 1;
    this.#sl = options.studentLayer;
    this.#tl = options.teacherLayer;
    this.#student = new FeatureHooks(options.student, [options.studentLayer]);
    this.#teacher = new FeatureHooks(options.teacher, [options.teacherLayer]);
  }

  /**
   * `{ hint }`, from the features captured in this step's forward passes.
   *
   * @param input Unused (the features come from the hooks).
   * @returns The weighted term.
   */
  terms(input: CriterionInput): Record<string, Tensor> {
    void input;
    const loss = hintLoss(
      this.#student.get(this.#sl),
      this.#teacher.get(this.#tl),
      this.adapter,
    );
    return { hint: mul(loss, this.weight) };
  }

  /**
   * The regressor's parameters, to train with the student.
   *
   * @returns The adapter's parameters.
   */
  parameters(): Tensor[] {
    return this.adapter.parameters();
  }

  /**
   * The regressor's weights, for checkpoints.
   *
   * @returns The adapter's state.
   */
  stateDict(): Record<string, Tensor> {
    return this.adapter.stateDict();
  }

  /**
   * Restores the regressor's weights.
   *
   * @param dict The adapter's state.
   */
  loadStateDict(dict: Record<string, Tensor>): void {
    this.adapter.loadStateDict(dict);
  }

  /** Removes the hooks. */
  dispose(): void {
    this.#student.remove();
    this.#teacher.remove();
  }
}

/**
 * An attention map: the channel mean of `|f|^p`, flattened per sample and
 * L2-normalised (`F.normalize`, eps 1e-12), as in Zagoruyko and Komodakis.
 *
 * @param features `[n, c, h, w]`.
 * @param p The power (default 2).
 * @returns `[n, h * w]`.
 */
export function attentionMap(features: Tensor, p = 2): Tensor {
  if (features.ndim !== 4) {
    throw new ShapeError(
      `Cannot compute an attention map: features [${
        features.shape.join(", ")
      }] must be NCHW`,
    );
  }
  const n = features.shape[0];
  const powered = p === 2 ? mul(features, features) : pow(features.abs(), p);
  const a = mean(powered, 1).reshape([n, -1]);
  const norm = clamp(sqrt(sum(mul(a, a), 1, { keepdim: true })), 1e-12);
  return div(a, norm);
}

/**
 * The attention-transfer loss between two feature maps:
 * `mean((at(fs) - at(ft))²)`, as RepDistiller's `Attention` loss, after
 * pooling the larger map to the smaller one's size.
 *
 * @param studentFeatures `[n, cs, h, w]`.
 * @param teacherFeatures `[n, ct, h', w']` (never receives a gradient).
 * @param p The power of the attention map (default 2).
 * @returns The scalar loss.
 */
export function attentionTransferLoss(
  studentFeatures: Tensor,
  teacherFeatures: Tensor,
  p = 2,
): Tensor {
  const ft = teacherFeatures.gradNode || teacherFeatures.requiresGrad
    ? teacherFeatures.detach()
    : teacherFeatures;
  const [a, b] = matchSpatial(studentFeatures, ft);
  const d = sub(attentionMap(a, p), attentionMap(b, p));
  return mean(mul(d, d));
}

/** Options of `AttentionTransferLoss`. */
export interface AttentionTransferOptions {
  /** The student. */
  student: Module;
  /** The teacher. */
  teacher: Module;
  /** `[studentLayer, teacherLayer]` pairs. */
  pairs: readonly (readonly [string, string])[];
  /** Weight of the summed term (default 1000, RepDistiller's beta). */
  weight?: number;
  /** Power of the attention maps (default 2). */
  p?: number;
}

/**
 * Attention transfer as a trainer criterion: `weight * Σ_pairs
 * attentionTransferLoss(fs, ft)`. No learnable parameters; channel counts
 * may differ.
 */
export class AttentionTransferLoss implements DistillCriterion {
  /** For logs. */
  readonly name = "at";
  /** The teacher must run on every batch. */
  readonly needsTeacherForward = true;
  /** Weight of the term. */
  readonly weight: number;
  /** Attention-map power. */
  readonly p: number;
  #pairs: readonly (readonly [string, string])[];
  #student: FeatureHooks;
  #teacher: FeatureHooks;

  /**
   * An attention-transfer criterion over the given feature pairs.
   *
   * @param options Models, layer pairs, weight, p.
   */
  constructor(options: AttentionTransferOptions) {
    if (!options.pairs.length) {
      throw new RangeError(
        "Cannot create AttentionTransferLoss: no layer pairs given",
      );
    }
    this.weight = options.weight ?? 1000;
    this.p = options.p ?? 2;
    this.#pairs = options.pairs;
    this.#student = new FeatureHooks(
      options.student,
      options.pairs.map(([s]) => s),
    );
    this.#teacher = new FeatureHooks(
      options.teacher,
      options.pairs.map(([, t]) => t),
    );
  }

  /**
   * `{ at }`, from the features captured in this step.
   *
   * @param input Unused.
   * @returns The weighted term.
   */
  terms(input: CriterionInput): Record<string, Tensor> {
    void input;
    let total: Tensor | null = null;
    for (const [s, t] of this.#pairs) {
      const l = attentionTransferLoss(
        this.#student.get(s),
        this.#teacher.get(t),
        this.p,
      );
      total = total ? total.add(l) : l;
    }
    return { at: mul(total!, this.weight) };
  }

  /** Removes the hooks. */
  dispose(): void {
    this.#student.remove();
    this.#teacher.remove();
  }
}
