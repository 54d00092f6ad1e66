/**
 * Stochastic gradient descent with momentum, dampening, Nesterov momentum
 * and L2 weight decay, as `torch.optim.SGD`
 * (https://pytorch.org/docs/1.13/generated/torch.optim.SGD.html).
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
  type StateSpec,
} from "./optimizer.ts";

/** Hyperparameters of `SGD`. */
export interface SgdOptions extends GroupOptions {
  /** Learning rate. */
  lr: number;
  /** Momentum factor (default 0). */
  momentum: number;
  /** Dampening for momentum (default 0). */
  dampening: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov: boolean;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay: number;
}

const SGD_OPTIONS = ["lr", "momentum", "dampening", "nesterov", "weightDecay"];

/**
 * Stochastic gradient descent, as `torch.optim.SGD`:
 *
 * ```
 * g = grad + weightDecay * p
 * buf = momentum * buf + (1 - dampening) * g   (buf = g on the first step)
 * g = nesterov ? g + momentum * buf : buf      (when momentum > 0)
 * p -= lr * g
 * ```
 *
 * The momentum buffer is per-parameter state, `momentumBuffer` in the state
 * dict.
 *
 * @example One step of plain SGD
 * ```ts
 * import { optim, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const w = tensor([1, 2], { requiresGrad: true });
 * const opt = new optim.SGD([w], { lr: 0.5 });
 * w.grad = tensor([2, -2]);
 * opt.step();
 * assert.deepEqual(w.toArray(), [0, 3]);
 * ```
 */
export class SGD extends Optimizer<SgdOptions> {
  /**
   * Creates the optimizer; options a group leaves out come from `options`.
   *
   * @param params Tensors, or parameter groups `{ params, ...options }`.
   * @param options `lr` (required), `momentum`, `dampening`, `nesterov`,
   *   `weightDecay`.
   */
  constructor(
    params: Params<SgdOptions>,
    options: Partial<SgdOptions> & { lr: number },
  ) {
    checkKeys("Cannot create SGD", options, SGD_OPTIONS);
    super(params, {
      lr: options?.lr,
      momentum: options?.momentum ?? 0,
      dampening: options?.dampening ?? 0,
      nesterov: options?.nesterov ?? false,
      weightDecay: options?.weightDecay ?? 0,
    }, "SGD");
  }

  /**
   * Checks SGD's hyperparameters.
   *
   * @param o The hyperparameters.
   * @param action What is being done.
   */
  protected validate(o: SgdOptions, action: string): void {
    checkNumber(action, "lr", o.lr, { min: 0 });
    checkNumber(action, "momentum", o.momentum, { min: 0 });
    checkNumber(action, "dampening", o.dampening);
    checkNumber(action, "weightDecay", o.weightDecay, { min: 0 });
    checkBoolean(action, "nesterov", o.nesterov);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new RangeError(
        `${action}: nesterov needs momentum > 0 and dampening 0, got momentum ${o.momentum} and dampening ${o.dampening}`,
      );
    }
  }

  /**
   * SGD keeps an optional `momentumBuffer` per parameter.
   *
   * @returns The state spec.
   */
  protected stateSpec(_group: ParamGroup<SgdOptions>): StateSpec {
    return { tensors: ["momentumBuffer"], numbers: [], required: [] };
  }

  /** Updates every parameter that requires gradients and has one. */
  step(): void {
    for (const [p, grad, g] of this.withGrads()) {
      let buf: Tensor | null = null;
      let firstStep = false;
      if (g.momentum !== 0) {
        let s = this.state.get(p);
        if (!s) this.state.set(p, s = {});
        const have = s.momentumBuffer;
        if (have === undefined || typeof have === "number") {
          buf = keep(zeros(p.shape, { device: p.device }));
          s.momentumBuffer = buf;
          firstStep = true;
        } else {
          buf = have;
        }
      }
      p.backend.sgdStep(p.storage, grad.storage, buf?.storage ?? null, {
        lr: g.lr,
        momentum: g.momentum,
        dampening: g.dampening,
        weightDecay: g.weightDecay,
        nesterov: g.nesterov,
        firstStep,
      });
    }
  }
}
