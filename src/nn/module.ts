/**
 * `Module`: the base of every layer and model, as `torch.nn.Module`.
 *
 * Parameters, buffers and child modules are found on the instance's own
 * properties, in the order they were assigned, so `this.fc = new Linear(...)`
 * registers a child just as in PyTorch. State-dict keys are PyTorch's: a
 * camelCase property name becomes snake_case (`runningMean` →
 * `running_mean`), so checkpoints line up with torchvision's.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import { noGrad } from "../autograd.ts";
import { keep, type Tensor } from "../tensor.ts";
import { checkStateDict, hookAdded, hookRemoved, toSnake } from "./_state.ts";

const PARAMETERS = new WeakSet<Tensor>();
const BUFFERS = new WeakSet<Tensor>();
const NON_PERSISTENT = new WeakSet<Tensor>();
/** BatchNorm layers that `freeze` keeps in evaluation mode. */
const FROZEN_EVAL = new WeakSet<Module>();

/**
 * Marks a tensor as a parameter: it requires gradients (unless frozen later),
 * is listed by `parameters()` and survives `tidy`.
 *
 * @param t A float32 tensor.
 * @returns The same tensor.
 */
export function Parameter(t: Tensor): Tensor {
  PARAMETERS.add(t);
  keep(t);
  if (t.dtype === "float32") t.requiresGrad_(true);
  return t;
}

/**
 * Marks a tensor as a buffer (state that is not trained, such as running
 * statistics).
 *
 * @param t The tensor.
 * @param options `persistent` (default true) puts it in the state dict.
 * @returns The same tensor.
 */
export function Buffer(
  t: Tensor,
  options: { persistent?: boolean } = {},
): Tensor {
  BUFFERS.add(t);
  keep(t);
  if (options.persistent === false) NON_PERSISTENT.add(t);
  return t;
}

/** A forward hook: sees the module, its inputs and its output. */
export type ForwardHook = (
  module: Module,
  inputs: Tensor[],
  output: Tensor,
) => Tensor | void;

/** The result of `loadStateDict` with `strict: false`. */
export interface LoadResult {
  /** Keys the module has that the dict lacks. */
  missingKeys: string[];
  /** Keys the dict has that the module lacks. */
  unexpectedKeys: string[];
}

/** Options of `Module.loadStateDict`. */
export interface LoadStateDictOptions {
  /** Fail on missing or unexpected keys (default true). Shapes must always match. */
  strict?: boolean;
}

/** Options of `Module.freeze`. */
export interface FreezeOptions {
  /**
   * Submodules left trainable, by their `namedModules()` path (`"fc"`,
   * `"layer4.1"`): a path names that module and everything below it.
   */
  except?: readonly string[];
  /**
   * What the frozen BatchNorm layers do in training mode. `"eval"`: they
   * stay in evaluation mode even after `train()`, so they normalise with
   * their running statistics and never update them (the backbone is frozen
   * entirely, as PyTorch users get by overriding `train()` or calling
   * `eval()` on the frozen part). `"train"`: they follow `train()` like any
   * layer, normalise with batch statistics and update their running
   * statistics (`requires_grad_(False)` alone in PyTorch).
   */
  batchNorm: "eval" | "train";
}

/**
 * The base class of layers and models. Subclasses assign parameters (made
 * with `Parameter`), buffers (`Buffer`) and child modules to properties, and
 * implement `forward`. Call a module with `module.call(x)` so forward hooks
 * run (`forward(x)` skips them, as in PyTorch).
 */
export class Module {
  /** Training mode (true) or evaluation mode (false). */
  training = true;
  #hooks: ForwardHook[] = [];

  /**
   * Computes the output. Subclasses override it.
   *
   * @param _x Input.
   * @returns Output.
   */
  forward(_x: Tensor): Tensor {
    throw new Error(`${this.constructor.name}.forward() is not implemented`);
  }

  /**
   * Runs `forward` and then the forward hooks.
   *
   * @param x Input.
   * @returns Output (a hook may replace it).
   */
  call(x: Tensor): Tensor {
    let y = this.forward(x);
    for (const h of this.#hooks) {
      const r = h(this, [x], y);
      if (r) y = r;
    }
    return y;
  }

  /**
   * Registers a hook run after every `call`.
   *
   * @param hook The hook.
   * @returns A handle whose `remove()` unregisters it.
   */
  registerForwardHook(hook: ForwardHook): { remove(): void } {
    this.#hooks.push(hook);
    hookAdded();
    return {
      remove: () => {
        const i = this.#hooks.indexOf(hook);
        if (i >= 0) {
          this.#hooks.splice(i, 1);
          hookRemoved();
        }
      },
    };
  }

  #own(): [string, unknown][] {
    return Object.entries(this).filter(([k]) => k !== "training");
  }

  /**
   * The direct child modules with their attribute names, as `named_children`.
   *
   * @returns Direct children as `[name, module]` pairs.
   */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of this.#own()) {
      if (v instanceof Module) out.push([toSnake(k), v]);
    }
    return out;
  }

  /**
   * The direct child modules, as `torch.nn.Module.children`.
   *
   * @returns Direct children.
   */
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /**
   * This module and every descendant as `[name, module]` pairs.
   *
   * @param prefix Prepended to every name.
   * @returns This module and every descendant as `[name, module]` pairs.
   */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [k, m] of this.namedChildren()) {
      out.push(...m.namedModules(prefix ? `${prefix}.${k}` : k));
    }
    return out;
  }

  /**
   * This module and every module below it, depth first.
   *
   * @returns This module and every descendant.
   */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /**
   * Every parameter as `[name, tensor]`, with PyTorch's names.
   *
   * @param prefix Prepended to every name.
   * @returns Every parameter as `[name, tensor]`, with PyTorch's names.
   */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [k, v] of m.#own()) {
        if (isTensorLike(v) && PARAMETERS.has(v) && !seen.has(v)) {
          seen.add(v);
          out.push([path ? `${path}.${toSnake(k)}` : toSnake(k), v]);
        }
      }
    }
    return out;
  }

  /**
   * Every parameter of this module and its children, for an optimizer.
   *
   * @returns Every parameter (each once).
   */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /**
   * Every buffer as `[name, tensor]`.
   *
   * @param prefix Prepended to every name.
   * @returns Every buffer as `[name, tensor]`.
   */
  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [k, v] of m.#own()) {
        if (isTensorLike(v) && BUFFERS.has(v)) {
          out.push([path ? `${path}.${toSnake(k)}` : toSnake(k), v]);
        }
      }
    }
    return out;
  }

  /**
   * Every buffer (running statistics and other non-learned state) of this module and its children.
   *
   * @returns Every buffer.
   */
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /**
   * Sets training mode on this module and its descendants.
   *
   * @param mode True for training (default), false for evaluation.
   * @returns This module.
   */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode && !FROZEN_EVAL.has(m);
    return this;
  }

  /**
   * Switches to evaluation mode, as `train(false)`.
   *
   * @returns This module, in evaluation mode.
   */
  eval(): this {
    return this.train(false);
  }

  /**
   * Freezes (false) or unfreezes (true) every parameter. Frozen parameters
   * get no gradient and optimizers skip them. Note that freezing does not
   * stop BatchNorm from updating its running statistics in training mode:
   * `freeze({ except, batchNorm: "eval" })` freezes a backbone and keeps its
   * BatchNorm layers in eval mode.
   *
   * @param flag Whether parameters require gradients (default true).
   * @returns This module.
   *
   * @example Freeze a backbone, train the head (the tutorial's intent)
   * ```ts
   * import { models } from "@kdeno/kdeno";
   * import assert from "node:assert/strict";
   *
   * const net = models.resnet18({ numClasses: 2 });
   * net.requiresGrad(false);
   * net.fc.requiresGrad(true);
   * const trainable = net.parameters().filter((p) => p.requiresGrad);
   * assert.equal(trainable.length, 2); // fc.weight and fc.bias
   * ```
   */
  requiresGrad(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad = flag;
    return this;
  }

  /**
   * Freezes the module except the submodules named in `except`, for
   * fine-tuning a head on a pretrained backbone: the frozen parameters get
   * `requiresGrad = false` (no gradient; optimizers skip them), those under
   * `except` get `requiresGrad = true`. BatchNorm layers (modules with a
   * `runningMean`) outside `except` follow `batchNorm`: with `"eval"` they
   * are put in evaluation mode now and `train()` leaves them there, so
   * their running statistics never change; with `"train"` they follow
   * `train()`/`eval()` as usual and keep updating their statistics in
   * training mode. `eval()` puts every layer in evaluation mode either way.
   * Calling `freeze` again replaces the earlier choice for the layers it
   * reaches; `requiresGrad(true)` unfreezes the parameters only.
   *
   * @param options `except` (trainable submodule paths) and `batchNorm`.
   * @returns This module.
   * @throws Error when a path of `except` names no submodule.
   *
   * @example Train only the head of a ResNet-18, BatchNorm frozen too
   * ```ts
   * import { models } from "@kdeno/kdeno";
   * import assert from "node:assert/strict";
   *
   * const net = models.resnet18({ numClasses: 2 });
   * net.freeze({ except: ["fc"], batchNorm: "eval" }).train();
   * const trainable = net.parameters().filter((p) => p.requiresGrad);
   * assert.equal(trainable.length, 2); // fc.weight and fc.bias
   * assert.equal(net.bn1.training, false); // stays in eval mode
   * assert.equal(net.fc.training, true);
   * ```
   */
  freeze(options: FreezeOptions): this {
    const except = options.except ?? [];
    const named = this.namedModules();
    for (const e of except) {
      if (!named.some(([path]) => path === e)) {
        throw new Error(
          `${this.constructor.name}.freeze: no submodule named "${e}"`,
        );
      }
    }
    const kept = (path: string) =>
      except.some((e) => path === e || path.startsWith(e + "."));
    for (const [path, m] of named) {
      const trainable = kept(path);
      for (const [, v] of m.#own()) {
        if (isTensorLike(v) && PARAMETERS.has(v)) v.requiresGrad = trainable;
      }
      if (!("runningMean" in m)) continue;
      if (!trainable && options.batchNorm === "eval") {
        FROZEN_EVAL.add(m);
        m.training = false;
      } else {
        FROZEN_EVAL.delete(m);
      }
    }
    return this;
  }

  /** Clears every parameter's gradient (disposing it). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * See the parameters.
   *
   * @returns Parameters and persistent buffers by PyTorch key, sharing
   * storage with the module.
   */
  stateDict(): Record<string, Tensor> {
    // PyTorch's order: each module's parameters, then its buffers, pre-order
    const out: Record<string, Tensor> = {};
    for (const [path, m] of this.namedModules()) {
      const own = m.#own().filter(([, v]) => isTensorLike(v)) as [
        string,
        Tensor,
      ][];
      const key = (k: string) => (path ? `${path}.${toSnake(k)}` : toSnake(k));
      for (const [k, v] of own) if (PARAMETERS.has(v)) out[key(k)] ??= v;
      for (const [k, v] of own) {
        if (BUFFERS.has(v) && !NON_PERSISTENT.has(v)) out[key(k)] = v;
      }
    }
    return out;
  }

  /**
   * Checks a state dict as `loadStateDict` does before it writes anything,
   * and changes nothing: every value the module will take is present, a
   * live tensor, of the module's shape, and of a dtype that converts
   * without loss (int32 into float32, not float32 into an int32 buffer);
   * with `strict`, no key is missing and none is unexpected.
   *
   * @param dict Tensors by PyTorch key.
   * @param options `strict` (default true).
   * @returns The missing and unexpected keys.
   * @throws CheckpointError listing every bad key, value, dtype and shape.
   * @throws TensorStateError when one of the module's own tensors was
   *   disposed.
   *
   * @example Check a dict before loading it
   * ```ts
   * import { CheckpointError, nn, zeros } from "@kdeno/kdeno";
   * import assert from "node:assert/strict";
   *
   * const fc = new nn.Linear(2, 3);
   * assert.throws(
   *   () => fc.checkStateDict({ weight: zeros([3, 2]), bias: zeros([2]) }),
   *   CheckpointError,
   * );
   * ```
   */
  checkStateDict(
    dict: Record<string, Tensor>,
    options: LoadStateDictOptions = {},
  ): LoadResult {
    return checkStateDict(this.stateDict(), dict, {
      strict: options.strict ?? true,
      owner: this.constructor.name,
    });
  }

  /**
   * Copies values from a state dict into this module's parameters and
   * buffers, in place. All or nothing: every value is checked first (see
   * `checkStateDict`), and nothing is copied unless all of them fit.
   *
   * @param dict Tensors by PyTorch key.
   * @param options `strict` (default true).
   * @returns The missing and unexpected keys.
   * @throws CheckpointError listing missing keys, unexpected keys, values
   *   that are not live tensors, dtype and shape mismatches.
   * @throws TensorStateError when one of the module's own tensors was
   *   disposed.
   */
  loadStateDict(
    dict: Record<string, Tensor>,
    options: LoadStateDictOptions = {},
  ): LoadResult {
    const own = this.stateDict();
    const result = checkStateDict(own, dict, {
      strict: options.strict ?? true,
      owner: this.constructor.name,
    });
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) {
        if (!Object.hasOwn(dict, k)) continue;
        const src = dict[k];
        const moved = src.device === t.device ? src : src.to(t.device);
        const conv = moved.dtype === t.dtype ? moved : moved.toDtype(t.dtype);
        t.backend.assign(t.storage, conv.storage);
        if (conv !== moved) conv.dispose();
        if (moved !== src) moved.dispose();
      }
    });
    for (const m of this.modules()) m.afterLoad();
    return result;
  }

  /** Called after `loadStateDict` copies values in; layers resync caches. */
  protected afterLoad(): void {}

  /**
   * Moves every parameter and buffer to a device, in place.
   *
   * @param device `"cpu"` or `"cuda"`.
   * @returns This module.
   */
  to(device: DeviceName): this {
    for (const m of this.modules()) {
      for (const [k, v] of m.#own()) {
        if (!isTensorLike(v) || v.device === device) continue;
        const moved = noGrad(() => v.to(device));
        if (PARAMETERS.has(v)) {
          Parameter(moved).requiresGrad = v.requiresGrad;
        } else if (BUFFERS.has(v)) {
          Buffer(moved, { persistent: !NON_PERSISTENT.has(v) });
        }
        (m as unknown as Record<string, unknown>)[k] = moved;
        v.dispose();
      }
    }
    return this;
  }

  /** Disposes every parameter, gradient and buffer. */
  dispose(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.dispose();
    }
    for (const b of this.buffers()) b.dispose();
  }

  /**
   * The number of parameter elements, frozen ones included.
   *
   * @returns The number of parameter elements.
   */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel(), 0);
  }

  /**
   * The module tree as PyTorch prints it.
   *
   * @returns A readable tree of the module, like PyTorch's repr.
   */
  toString(): string {
    const kids = this.namedChildren();
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (!kids.length) return head + ")";
    const lines = kids.map(([k, m]) =>
      `  (${k}): ${m.toString().split("\n").join("\n  ")}`
    );
    return `${head}\n${lines.join("\n")}\n)`;
  }

  /**
   * The text inside this module's parentheses in `toString`; override it to show a layer's settings.
   *
   * @returns Extra text for `toString`, e.g. layer sizes.
   */
  extraRepr(): string {
    return "";
  }
}

function isTensorLike(v: unknown): v is Tensor {
  return typeof v === "object" && v !== null && "shape" in v &&
    "ref" in v && "dtype" in v;
}
