/**
 * The tutorial's student: one convolution block and a linear layer.
 *
 * @module
 */

import { ShapeError } from "../../errors.ts";
import type { Tensor } from "../../tensor.ts";
import { flatten } from "../../ops/shape.ts";
import { BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU } from "../layers.ts";
import { Sequential } from "../sequential.ts";
import { Module } from "../module.ts";
import { releaseIntermediate } from "../_state.ts";

/** Options of `StudentNet`. */
export interface StudentNetOptions {
  /** Input height and width (default 224; must be even). */
  inputSize?: number;
  /** Output classes (default 2). */
  numClasses?: number;
  /** Input channels (default 3). */
  inChannels?: number;
}

/**
 * The tutorial's StudentNet: Conv2d(3, 4, 3, padding 1) → BatchNorm2d(4) →
 * ReLU → MaxPool2d(2, 2) → Linear(4 · (size/2)², classes); 100,474
 * parameters at 224×224 with 2 classes.
 *
 * @example Count parameters
 * ```ts
 * import { models } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new models.StudentNet().numParameters(), 100474);
 * ```
 */
export class StudentNet extends Module {
  /** The convolution block. */
  layer1: Sequential;
  /** The classifier. */
  fc: Linear;
  /** Input size the `fc` layer was built for. */
  readonly inputSize: number;
  /**
   * Builds the student with its random initial weights.
   *
   * @param options inputSize, numClasses, inChannels.
   */
  constructor(options: StudentNetOptions = {}) {
    super();
    const size = options.inputSize ?? 224;
    if (!Number.isInteger(size) || size < 2 || size % 2 !== 0) {
      throw new ShapeError(
        `Cannot build StudentNet: inputSize ${size} must be an even integer ≥ 2`,
      );
    }
    this.inputSize = size;
    this.layer1 = new Sequential(
      new Conv2d(options.inChannels ?? 3, 4, 3, { padding: 1 }),
      new BatchNorm2d(4),
      new ReLU(),
      new MaxPool2d(2, { stride: 2 }),
    );
    this.fc = new Linear(4 * (size / 2) * (size / 2), options.numClasses ?? 2);
  }
  /** Maps NCHW images to `[n, numClasses]` logits. */
  override forward(x: Tensor): Tensor {
    if (
      x.ndim !== 4 || x.shape[2] !== this.inputSize ||
      x.shape[3] !== this.inputSize
    ) {
      throw new ShapeError(
        `Cannot run StudentNet built for ${this.inputSize}x${this.inputSize}: input has shape [${
          x.shape.join(", ")
        }]`,
      );
    }
    const features = this.layer1.call(x);
    const flat = flatten(features, 1);
    releaseIntermediate(features, x, flat);
    const y = this.fc.call(flat);
    releaseIntermediate(flat, x, y);
    return y;
  }
}
