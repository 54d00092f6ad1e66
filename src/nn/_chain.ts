/**
 * The loop that runs a chain of layers (`Sequential`, the models' blocks)
 * with the inference shortcuts: batch norm + ReLU fused, intermediates
 * freed once consumed.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { BatchNorm2d, ReLU } from "./layers.ts";
import type { Module } from "./module.ts";
import { noForwardHooks, releaseIntermediate } from "./_state.ts";

/**
 * Runs `modules` in order on `x`. With no forward hook registered, a
 * `BatchNorm2d` followed by a `ReLU` runs as one kernel
 * (`batchNorm(..., { relu: true })`: one pass in inference, one graph node in
 * training), and under `noGrad` each intermediate is freed once consumed (see
 * `releaseIntermediate`). `x` itself stays.
 *
 * @param x Input.
 * @param modules The layers.
 * @returns The last layer's output.
 */
export function runChain(x: Tensor, modules: readonly Module[]): Tensor {
  let y = x;
  for (let i = 0; i < modules.length; i++) {
    const m = modules[i];
    let next: Tensor;
    if (
      noForwardHooks() && m.constructor === BatchNorm2d &&
      modules[i + 1]?.constructor === ReLU
    ) {
      next = (m as BatchNorm2d).forwardRelu(y);
      i++;
    } else {
      next = m.call(y);
    }
    if (y !== x) releaseIntermediate(y, x, next);
    y = next;
  }
  return y;
}
