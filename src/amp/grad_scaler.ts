/**
 * `GradScaler`: loss scaling for float16 training, as
 * `torch.cuda.amp.GradScaler`.
 *
 * @module
 */

import { keep, type Tensor } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { add, mul, sum } from "../ops/mod.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { TensorStateError } from "../errors.ts";

/** Options of {@link GradScaler}, with PyTorch's defaults. */
export interface GradScalerOptions {
  /** The first scale (default 2^16). */
  initScale?: number;
  /** What the scale is multiplied by after `growthInterval` clean steps (default 2). */
  growthFactor?: number;
  /** What the scale is multiplied by after a step with inf/NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Clean steps before the scale grows (default 2000). */
  growthInterval?: number;
  /** False makes every method a pass-through (default true). */
  enabled?: boolean;
}

/**
 * What {@link GradScaler.stateDict} returns: PyTorch's keys, so a state
 * saved by `torch.cuda.amp.GradScaler.state_dict()` loads as it is.
 */
export interface GradScalerState {
  /** The current scale. */
  scale: number;
  /** The growth factor. */
  growth_factor: number;
  /** The backoff factor. */
  backoff_factor: number;
  /** The growth interval. */
  growth_interval: number;
  /** Clean steps since the scale last changed. */
  _growth_tracker: number;
}

type Stage = "ready" | "unscaled" | "stepped";

interface PerOptimizer {
  stage: Stage;
  foundInf: boolean;
}

/**
 * Scales the loss so that float16 gradients do not underflow, unscales the
 * gradients before the optimizer steps, skips steps whose gradients hold
 * inf or NaN, and adapts the scale, with the semantics of PyTorch's
 * `GradScaler`: the scale starts at 2^16, is halved after every step with
 * inf/NaN gradients (that step is skipped), and doubles after 2000
 * consecutive clean steps.
 *
 * It works on every device (PyTorch 1.13's is CUDA only). Checking the
 * gradients reads one number back from the device per step.
 *
 * @example The PyTorch loop
 * ```ts
 * import { amp, nn, optim, randn, tensor } from "@kdeno/kdeno";
 *
 * const model = new nn.Linear(4, 2);
 * const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
 * const scaler = new amp.GradScaler();
 * const loss = nn.functional.crossEntropy(
 *   model.call(randn([8, 4])),
 *   tensor([0, 1, 0, 1, 0, 1, 0, 1], { dtype: "int32" }),
 * );
 * opt.zeroGrad();
 * scaler.scale(loss).backward();
 * scaler.step(opt);
 * scaler.update();
 * ```
 */
export class GradScaler {
  #scale: number;
  #growthFactor: number;
  #backoffFactor: number;
  #growthInterval: number;
  #growthTracker = 0;
  readonly #enabled: boolean;
  #perOptimizer = new Map<Optimizer, PerOptimizer>();

  /**
   * Creates the scaler.
   *
   * @param options initScale, growthFactor, backoffFactor, growthInterval,
   *   enabled.
   * @throws RangeError for a non-positive scale or interval, a growth factor
   *   not above 1 or a backoff factor not in (0, 1).
   */
  constructor(options: GradScalerOptions = {}) {
    this.#scale = Math.fround(options.initScale ?? 2 ** 16);
    this.#growthFactor = options.growthFactor ?? 2;
    this.#backoffFactor = options.backoffFactor ?? 0.5;
    this.#growthInterval = options.growthInterval ?? 2000;
    this.#enabled = options.enabled ?? true;
    const bad = (what: string, v: number, need: string) =>
      new RangeError(`Cannot create a GradScaler: ${what} ${v} ${need}`);
    if (!(this.#scale > 0) || !Number.isFinite(this.#scale)) {
      throw bad("initScale", this.#scale, "must be a positive finite number");
    }
    if (!(this.#growthFactor > 1)) {
      throw bad("growthFactor", this.#growthFactor, "must be above 1");
    }
    if (!(this.#backoffFactor > 0 && this.#backoffFactor < 1)) {
      throw bad("backoffFactor", this.#backoffFactor, "must be in (0, 1)");
    }
    if (!Number.isInteger(this.#growthInterval) || this.#growthInterval < 1) {
      throw bad(
        "growthInterval",
        this.#growthInterval,
        "must be an integer ≥ 1",
      );
    }
  }

  /** Whether the scaler does anything. */
  isEnabled(): boolean {
    return this.#enabled;
  }

  /**
   * The current scale (1 when disabled), as `get_scale()`.
   *
   * @returns The scale.
   */
  getScale(): number {
    return this.#enabled ? this.#scale : 1;
  }

  /**
   * The loss (or outputs) times the scale, as `scale(outputs)`; call
   * `backward()` on the result. Arrays are scaled element by element.
   *
   * @param outputs A tensor or an array of them.
   * @returns The scaled tensor(s); the same when disabled.
   */
  scale<T extends Tensor | Tensor[]>(outputs: T): T {
    if (!this.#enabled) return outputs;
    if (Array.isArray(outputs)) {
      return outputs.map((t) => mul(t, this.#scale)) as T;
    }
    return mul(outputs as Tensor, this.#scale) as T;
  }

  #state(opt: Optimizer): PerOptimizer {
    let s = this.#perOptimizer.get(opt);
    if (!s) {
      this.#perOptimizer.set(opt, s = { stage: "ready", foundInf: false });
    }
    return s;
  }

  /**
   * Divides the optimizer's gradients by the scale in place and records
   * whether any holds inf or NaN, as `unscale_(optimizer)`: call it before
   * clipping gradients. At most once per optimizer between `update()`s.
   *
   * @param optimizer The optimizer whose parameters' gradients to unscale.
   * @throws TensorStateError when called twice, or after `step()`, before
   *   `update()`.
   */
  unscale_(optimizer: Optimizer): void {
    if (!this.#enabled) return;
    const st = this.#state(optimizer);
    if (st.stage === "unscaled") {
      throw new TensorStateError(
        "Cannot unscale_(): it was already called on this optimizer since " +
          "the last update()",
      );
    }
    if (st.stage === "stepped") {
      throw new TensorStateError(
        "Cannot unscale_(): step() was already called since the last update()",
      );
    }
    // PyTorch: inv_scale = scale.double().reciprocal().float()
    const inv = Math.fround(1 / this.#scale);
    let check: Tensor | null = null;
    noGrad(() => {
      for (const group of optimizer.paramGroups) {
        for (const p of group.params) {
          const g = p.grad;
          if (!g) continue;
          const scaled = keep(mul(g, inv));
          p.grad = scaled;
          g.dispose();
          // x * 0 is 0 for finite x and NaN for inf or NaN
          const probe = sum(mul(scaled, 0));
          if (check) {
            const next = add(check, probe);
            check.dispose();
            probe.dispose();
            check = next;
          } else check = probe;
        }
      }
    });
    const c = check as Tensor | null;
    st.foundInf = c !== null && Number.isNaN(c.item());
    c?.dispose();
    st.stage = "unscaled";
  }

  /**
   * Unscales the gradients if `unscale_` was not called, then runs
   * `optimizer.step()` unless a gradient holds inf or NaN, as
   * `step(optimizer)`.
   *
   * @param optimizer The optimizer.
   * @returns True when the optimizer stepped.
   * @throws TensorStateError when called twice before `update()`.
   */
  step(optimizer: Optimizer): boolean {
    if (!this.#enabled) {
      optimizer.step();
      return true;
    }
    const st = this.#state(optimizer);
    if (st.stage === "stepped") {
      throw new TensorStateError(
        "Cannot step(): it was already called on this optimizer since the " +
          "last update()",
      );
    }
    if (st.stage === "ready") this.unscale_(optimizer);
    st.stage = "stepped";
    if (st.foundInf) return false;
    optimizer.step();
    return true;
  }

  /**
   * Adapts the scale after the step, as `update(new_scale=None)`: halved
   * (backoff) when any optimizer saw inf/NaN gradients, doubled (growth)
   * after `growthInterval` clean steps in a row, unless that overflows
   * float32. A `newScale` replaces the scale instead.
   *
   * @param newScale Sets the scale directly.
   * @throws TensorStateError when no optimizer was unscaled or stepped
   *   since the last update (and no `newScale` was given).
   */
  update(newScale?: number): void {
    if (!this.#enabled) return;
    if (newScale !== undefined) {
      if (!(newScale > 0) || !Number.isFinite(newScale)) {
        throw new RangeError(
          `Cannot update the GradScaler: newScale ${newScale} must be a ` +
            "positive finite number",
        );
      }
      this.#scale = Math.fround(newScale);
    } else {
      const states = [...this.#perOptimizer.values()];
      if (states.length === 0) {
        throw new TensorStateError(
          "Cannot update(): no inf checks were recorded since the last " +
            "update(); call step() (or unscale_()) first",
        );
      }
      if (states.some((s) => s.foundInf)) {
        this.#scale = Math.fround(this.#scale * this.#backoffFactor);
        this.#growthTracker = 0;
      } else {
        const ok = this.#growthTracker + 1;
        if (ok === this.#growthInterval) {
          const grown = Math.fround(this.#scale * this.#growthFactor);
          if (Number.isFinite(grown)) this.#scale = grown;
          this.#growthTracker = 0;
        } else this.#growthTracker = ok;
      }
    }
    this.#perOptimizer = new Map();
  }

  /**
   * The scaler's state under PyTorch's keys (empty when disabled), as
   * `state_dict()`.
   *
   * @returns The state.
   */
  stateDict(): GradScalerState | Record<string, never> {
    if (!this.#enabled) return {};
    return {
      scale: this.#scale,
      growth_factor: this.#growthFactor,
      backoff_factor: this.#backoffFactor,
      growth_interval: this.#growthInterval,
      _growth_tracker: this.#growthTracker,
    };
  }

  /**
   * Restores a state from {@link stateDict} or PyTorch's `state_dict()`.
   *
   * @param state The state.
   * @throws TensorStateError for an empty state on an enabled scaler, or a
   *   field that is missing or not a number (named).
   */
  loadStateDict(state: Partial<GradScalerState>): void {
    if (!this.#enabled) return;
    const keys = [
      "scale",
      "growth_factor",
      "backoff_factor",
      "growth_interval",
      "_growth_tracker",
    ] as const;
    if (Object.keys(state).length === 0) {
      throw new TensorStateError(
        "Cannot load the GradScaler state: it is empty (saved from a " +
          "disabled scaler)",
      );
    }
    for (const k of keys) {
      if (typeof state[k] !== "number" || !Number.isFinite(state[k])) {
        throw new TensorStateError(
          `Cannot load the GradScaler state: "${k}" is ${
            k in state ? String(state[k]) : "missing"
          }, expected a finite number`,
        );
      }
    }
    this.#scale = Math.fround(state.scale!);
    this.#growthFactor = state.growth_factor!;
    this.#backoffFactor = state.backoff_factor!;
    this.#growthInterval = state.growth_interval!;
    this.#growthTracker = state._growth_tracker!;
  }
}
