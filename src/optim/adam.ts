/**
 * Adam and AdamW, as `torch.optim.Adam` and `torch.optim.AdamW`
 * (https://pytorch.org/docs/1.13/generated/torch.optim.Adam.html,
 * https://pytorch.org/docs/1.13/generated/torch.optim.AdamW.html).
 *
 * @module
 */

import { zeros } from "../ops/creation.ts";
import { keep, type Tensor } from "../tensor.ts";
import { checkBoolean, checkKeys, checkNumber } from "./_util.ts";
import {
  type GroupOptions,
  Optimizer,
  type ParamGroup,
  type Params,
  type ParamState,
  type StateSpec,
} from "./optimizer.ts";

/** Hyperparameters of `Adam` and `AdamW`. */
export interface AdamOptions extends GroupOptions {
  /** Learning rate (default 1e-3). */
  lr: number;
  /** Coefficients of the running averages of the gradient and its square (default [0.9, 0.999]). */
  betas: [number, number];
  /** Term added to the denominator (default 1e-8). */
  eps: number;
  /** Weight decay: L2 for Adam (default 0), decoupled for AdamW (default 1e-2). */
  weightDecay: number;
  /** Use the AMSGrad variant (default false). */
  amsgrad: boolean;
}

const ADAM_OPTIONS = ["lr", "betas", "eps", "weightDecay", "amsgrad"];

function defaults(
  options: Partial<AdamOptions> | undefined,
  weightDecay: number,
): AdamOptions {
  const betas = options?.betas ?? [0.9, 0.999];
  return {
    lr: options?.lr ?? 1e-3,
    betas: Array.isArray(betas) ? [betas[0], betas[1]] : betas,
    eps: options?.eps ?? 1e-8,
    weightDecay: options?.weightDecay ?? weightDecay,
    amsgrad: options?.amsgrad ?? false,
  };
}

function validateAdam(o: AdamOptions, action: string): void {
  checkNumber(action, "lr", o.lr, { min: 0 });
  if (!Array.isArray(o.betas) || o.betas.length !== 2) {
    throw new RangeError(
      `${action}: betas is ${
        JSON.stringify(o.betas)
      }, expected two numbers [beta1, beta2]`,
    );
  }
  checkNumber(action, "betas[0]", o.betas[0], {
    min: 0,
    max: 1,
    maxExclusive: true,
  });
  checkNumber(action, "betas[1]", o.betas[1], {
    min: 0,
    max: 1,
    maxExclusive: true,
  });
  checkNumber(action, "eps", o.eps, { min: 0 });
  checkNumber(action, "weightDecay", o.weightDecay, { min: 0 });
  checkBoolean(action, "amsgrad", o.amsgrad);
}

/**
 * Adam, as `torch.optim.Adam`: bias-corrected running averages of the
 * gradient and its square, with `weightDecay` added to the gradient as an
 * L2 penalty.
 *
 * @example One step moves each weight by about `lr`
 * ```ts
 * import { optim, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const w = tensor([1, 1], { requiresGrad: true });
 * const opt = new optim.Adam([w], { lr: 0.1 });
 * w.grad = tensor([3, -0.5]);
 * opt.step();
 * const [a, b] = w.toArray() as number[];
 * assert.ok(Math.abs(a - 0.9) < 1e-6 && Math.abs(b - 1.1) < 1e-6);
 * ```
 */
export class Adam extends Optimizer<AdamOptions> {
  /** True for AdamW's decoupled weight decay. */
  protected static readonly decoupled: boolean = false;
  /** The weight decay a group gets when none is given. */
  protected static readonly defaultWeightDecay: number = 0;

  /**
   * Creates the optimizer; options a group leaves out come from `options`.
   *
   * @param params Tensors, or parameter groups `{ params, ...options }`.
   * @param options `lr` (1e-3), `betas` ([0.9, 0.999]), `eps` (1e-8),
   *   `weightDecay` (0 for Adam, 1e-2 for AdamW), `amsgrad` (false).
   */
  constructor(
    params: Params<AdamOptions>,
    options: Partial<AdamOptions> = {},
  ) {
    const self = new.target as typeof Adam;
    checkKeys(`Cannot create ${self.name}`, options, ADAM_OPTIONS);
    super(params, defaults(options, self.defaultWeightDecay), self.name);
  }

  /**
   * Checks the hyperparameters.
   *
   * @param o The hyperparameters.
   * @param action What is being done.
   */
  protected validate(o: AdamOptions, action: string): void {
    validateAdam(o, action);
  }

  /**
   * Adam keeps `step`, `expAvg`, `expAvgSq` (and `maxExpAvgSq` with AMSGrad).
   *
   * @param group The parameter's group.
   * @returns The state spec.
   */
  protected stateSpec(group: ParamGroup<AdamOptions>): StateSpec {
    const tensors = ["expAvg", "expAvgSq", "maxExpAvgSq"];
    const required = ["step", "expAvg", "expAvgSq"];
    if (group.amsgrad) required.push("maxExpAvgSq");
    return { tensors, numbers: ["step"], required };
  }

  /** Updates every parameter that requires gradients and has one. */
  step(): void {
    for (const [p, grad, g] of this.withGrads()) {
      let s = this.state.get(p);
      if (!s || s.expAvg === undefined) {
        s = {
          step: 0,
          expAvg: keep(zeros(p.shape, { device: p.device })),
          expAvgSq: keep(zeros(p.shape, { device: p.device })),
        } as ParamState;
        this.state.set(p, s);
      }
      if (g.amsgrad && s.maxExpAvgSq === undefined) {
        s.maxExpAvgSq = keep(zeros(p.shape, { device: p.device }));
      }
      const step = (s.step as number) + 1;
      s.step = step;
      const max = g.amsgrad ? (s.maxExpAvgSq as Tensor).storage : null;
      p.backend.adamStep(
        p.storage,
        grad.storage,
        (s.expAvg as Tensor).storage,
        (s.expAvgSq as Tensor).storage,
        max,
        {
          lr: g.lr,
          beta1: g.betas[0],
          beta2: g.betas[1],
          eps: g.eps,
          weightDecay: g.weightDecay,
          decoupled: (this.constructor as typeof Adam).decoupled,
          step,
          amsgrad: g.amsgrad,
        },
      );
    }
  }
}

/**
 * AdamW, as `torch.optim.AdamW`: Adam with decoupled weight decay,
 * `p *= 1 - lr * weightDecay` before the Adam update
 * (https://arxiv.org/abs/1711.05101).
 *
 * @example Weight decay shrinks a weight whose gradient is zero
 * ```ts
 * import { optim, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const w = tensor([2], { requiresGrad: true });
 * const opt = new optim.AdamW([w], { lr: 0.1, weightDecay: 0.5 });
 * w.grad = tensor([0]);
 * opt.step();
 * assert.ok(Math.abs((w.toArray() as number[])[0] - 1.9) < 1e-6);
 * ```
 */
export class AdamW extends Adam {
  /** AdamW decays the weights directly. */
  protected static override readonly decoupled: boolean = true;
  /** AdamW's default weight decay. */
  protected static override readonly defaultWeightDecay: number = 1e-2;

  /**
   * Creates the optimizer; options a group leaves out come from `options`.
   *
   * @param params Tensors, or parameter groups `{ params, ...options }`.
   * @param options `lr` (1e-3), `betas` ([0.9, 0.999]), `eps` (1e-8),
   *   `weightDecay` (1e-2), `amsgrad` (false).
   */
  constructor(
    params: Params<AdamOptions>,
    options: Partial<AdamOptions> = {},
  ) {
    super(params, options);
  }
}
