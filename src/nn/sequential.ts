/**
 * `Sequential`: layers run in order, as `torch.nn.Sequential`.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";
import { runChain } from "./_chain.ts";

/** Runs modules in order, as `torch.nn.Sequential` (children named 0, 1, ...). */
export class Sequential extends Module {
  /** The layers by position, as `seq[0]`. */
  [index: number]: Module;
  /** Number of children. */
  readonly length: number;
  /**
   * See the parameters.
   *
   * @param modules The layers, in order.
   */
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => (this[i] = m));
    this.length = modules.length;
    Object.defineProperty(this, "length", { enumerable: false });
  }
  /** Runs the layers in order. */
  override forward(x: Tensor): Tensor {
    return runChain(x, Array.from({ length: this.length }, (_, i) => this[i]));
  }
}
