/**
 * Layers, with PyTorch's names, arguments and default initialisations.
 *
 * @module
 */

import { noGrad } from "../autograd.ts";
import { ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { conv2d, pair } from "../ops/conv.ts";
import { linear } from "../ops/matmul.ts";
import { batchNorm } from "../ops/norm.ts";
import { adaptiveAvgPool2d, avgPool2d, maxPool2d } from "../ops/pool.ts";
import { dropout, full, zeros } from "../ops/creation.ts";
import { relu } from "../ops/elementwise.ts";
import { flatten } from "../ops/shape.ts";
import { Buffer, Module, Parameter } from "./module.ts";
import { fans, kaimingUniform_, ones_, uniform_, zeros_ } from "./init.ts";

// ---- hyper-parameter checks ------------------------------------------------
// Every constructor checks its arguments as PyTorch's does, so a bad value
// fails where it is written, naming the layer, the argument and the value:
// sizes (features, channels, kernel, stride, padding, dilation, groups,
// dims) throw ShapeError, other numbers (p, eps, momentum) RangeError.

function show(v: unknown): string {
  return typeof v === "string" || Array.isArray(v)
    ? JSON.stringify(v)
    : String(v);
}

/** Throws ShapeError unless `v` is an integer of at least `min`. */
function checkSize(layer: string, name: string, v: unknown, min: 0 | 1) {
  if (!Number.isInteger(v) || (v as number) < min) {
    throw new ShapeError(
      `Cannot create ${layer}: ${name} ${show(v)} must be ${
        min ? "a positive" : "a non-negative"
      } integer`,
    );
  }
}

/** A size or `[h, w]` pair, checked like `checkSize`, as a pair. */
function checkPair(
  layer: string,
  name: string,
  v: unknown,
  min: 0 | 1,
): [number, number] {
  const p = typeof v === "number"
    ? [v, v]
    : Array.isArray(v) && v.length === 2
    ? v
    : null;
  if (!p || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new ShapeError(
      `Cannot create ${layer}: ${name} ${show(v)} must be ${
        min ? "a positive" : "a non-negative"
      } integer or a pair of them`,
    );
  }
  return [p[0], p[1]];
}

/** Throws RangeError unless `v` is a number in [0, 1]. */
function checkUnit(layer: string, name: string, v: unknown) {
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
    throw new RangeError(
      `Cannot create ${layer}: ${name} ${show(v)} must be in [0, 1]`,
    );
  }
}

/** Throws RangeError unless `v` is a finite number above 0. */
function checkPositive(layer: string, name: string, v: unknown) {
  if (typeof v !== "number" || !(v > 0 && v < Infinity)) {
    throw new RangeError(
      `Cannot create ${layer}: ${name} ${
        show(v)
      } must be a positive finite number`,
    );
  }
}

/** PyTorch's default Linear/Conv init: kaiming_uniform(a=√5), bias U(±1/√fanIn). */
function resetLinearLike(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const [fanIn] = fans(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound);
  }
}

/** `y = x Wᵀ + b`, as `torch.nn.Linear`. */
export class Linear extends Module {
  /** `[outFeatures, inFeatures]`. */
  weight: Tensor;
  /** `[outFeatures]`, or null. */
  bias: Tensor | null;
  /**
   * Creates the object.
   *
   * @param inFeatures Input size.
   * @param outFeatures Output size.
   * @param options `bias` (default true).
   * @throws ShapeError unless both sizes are non-negative integers.
   */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    checkSize("Linear", "inFeatures", inFeatures, 0);
    checkSize("Linear", "outFeatures", outFeatures, 0);
    this.weight = Parameter(zeros([outFeatures, inFeatures]));
    this.bias = options.bias === false ? null : Parameter(zeros([outFeatures]));
    resetLinearLike(this.weight, this.bias);
  }
  /** Applies `x @ weight^T + bias` to `[..., inFeatures]`. */
  override forward(x: Tensor): Tensor {
    return linear(x, this.weight, { bias: this.bias });
  }
  /** The sizes and whether there is a bias. */
  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${
      this.bias !== null
    }`;
  }
}

/** Options of `Conv2d`. */
export interface Conv2dLayerOptions {
  /** Stride (default 1). */
  stride?: number | [number, number];
  /** Zero padding (default 0). */
  padding?: number | [number, number];
  /** Dilation (default 1). */
  dilation?: number | [number, number];
  /** Groups (default 1). */
  groups?: number;
  /** Learn a bias (default true). */
  bias?: boolean;
}

/** 2-D convolution over NCHW, as `torch.nn.Conv2d`. */
export class Conv2d extends Module {
  /** `[outChannels, inChannels / groups, kh, kw]`. */
  weight: Tensor;
  /** `[outChannels]`, or null. */
  bias: Tensor | null;
  /** Stride. */
  readonly stride: [number, number];
  /** Padding. */
  readonly padding: [number, number];
  /** Dilation. */
  readonly dilation: [number, number];
  /** Groups. */
  readonly groups: number;
  /**
   * Creates the object.
   *
   * @param inChannels Input channels.
   * @param outChannels Output channels.
   * @param kernelSize Kernel size.
   * @param options Stride, padding, dilation, groups, bias.
   * @throws ShapeError unless the channels are non-negative integers
   * divisible by `groups`, the kernel, stride, dilation and groups positive
   * integers, and the padding a non-negative one.
   */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number | [number, number],
    options: Conv2dLayerOptions = {},
  ) {
    super();
    checkSize("Conv2d", "inChannels", inChannels, 0);
    checkSize("Conv2d", "outChannels", outChannels, 0);
    const [kh, kw] = checkPair("Conv2d", "kernelSize", kernelSize, 1);
    this.stride = checkPair("Conv2d", "stride", options.stride ?? 1, 1);
    this.padding = checkPair("Conv2d", "padding", options.padding ?? 0, 0);
    this.dilation = checkPair("Conv2d", "dilation", options.dilation ?? 1, 1);
    this.groups = options.groups ?? 1;
    checkSize("Conv2d", "groups", this.groups, 1);
    const channels = { inChannels, outChannels };
    for (const [name, n] of Object.entries(channels)) {
      if (n % this.groups !== 0) {
        throw new ShapeError(
          `Cannot create Conv2d: ${name} ${n} is not divisible by groups ${this.groups}`,
        );
      }
    }
    this.weight = Parameter(
      zeros([outChannels, inChannels / this.groups, kh, kw]),
    );
    this.bias = options.bias === false ? null : Parameter(zeros([outChannels]));
    resetLinearLike(this.weight, this.bias);
  }
  /** Convolves an NCHW input. */
  override forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, {
      bias: this.bias,
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }
  /** The channels, kernel size, stride and padding. */
  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=${
      JSON.stringify(pair(this.kernelSize))
    }, stride=${JSON.stringify(this.stride)}, padding=${
      JSON.stringify(this.padding)
    }, bias=${this.bias !== null}`;
  }
}

/** Options of `BatchNorm2d`. */
export interface BatchNorm2dOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Running-average factor; null for a cumulative average (default 0.1). */
  momentum?: number | null;
  /** Learn weight and bias (default true). */
  affine?: boolean;
  /** Keep running statistics (default true). */
  trackRunningStats?: boolean;
}

/** Batch normalisation over NCHW channels, as `torch.nn.BatchNorm2d`. */
export class BatchNorm2d extends Module {
  /** Scale `[c]`, or null. */
  weight: Tensor | null;
  /** Shift `[c]`, or null. */
  bias: Tensor | null;
  /** Running mean `[c]` (state-dict key `running_mean`). */
  runningMean: Tensor | null;
  /** Running variance `[c]` (`running_var`). */
  runningVar: Tensor | null;
  /** Batches seen in training (`num_batches_tracked`, int32). */
  numBatchesTracked: Tensor | null;
  /** Epsilon. */
  readonly eps: number;
  /** Momentum (null: cumulative average). */
  readonly momentum: number | null;
  #tracked = 0;
  /**
   * Creates the object.
   *
   * @param numFeatures Channels.
   * @param options eps, momentum, affine, trackRunningStats.
   * @throws ShapeError unless `numFeatures` is a non-negative integer;
   * RangeError unless `eps` is positive and finite and `momentum` null or in
   * [0, 1].
   */
  constructor(readonly numFeatures: number, options: BatchNorm2dOptions = {}) {
    super();
    checkSize("BatchNorm2d", "numFeatures", numFeatures, 0);
    this.eps = options.eps ?? 1e-5;
    checkPositive("BatchNorm2d", "eps", this.eps);
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    if (this.momentum !== null) {
      checkUnit("BatchNorm2d", "momentum", this.momentum);
    }
    const affine = options.affine ?? true;
    this.weight = affine ? Parameter(ones_(zeros([numFeatures]))) : null;
    this.bias = affine ? Parameter(zeros_(zeros([numFeatures]))) : null;
    const track = options.trackRunningStats ?? true;
    this.runningMean = track ? Buffer(zeros([numFeatures])) : null;
    this.runningVar = track ? Buffer(full([numFeatures], 1)) : null;
    this.numBatchesTracked = track
      ? Buffer(zeros([], { dtype: "int32" }))
      : null;
  }
  /** Normalises each channel of an NCHW input (batch statistics in training, running ones in evaluation). */
  override forward(x: Tensor): Tensor {
    return this.#run(x, false);
  }
  /**
   * `relu(forward(x))` as one kernel where the backend has one; used by
   * `Sequential` for a BatchNorm2d → ReLU pair when no forward hook could
   * observe the step in between.
   *
   * @param x Input.
   * @returns The normalised input after ReLU.
   */
  forwardRelu(x: Tensor): Tensor {
    return this.#run(x, true);
  }
  #run(x: Tensor, relu: boolean): Tensor {
    let momentum = this.momentum ?? 0;
    const useBatch = this.training || !this.runningMean;
    if (this.training && this.numBatchesTracked) {
      this.#tracked++;
      noGrad(() =>
        this.numBatchesTracked!.backend.fill(
          this.numBatchesTracked!.storage,
          this.#tracked,
        )
      );
      if (this.momentum === null) momentum = 1 / this.#tracked;
    }
    return batchNorm(
      x,
      useBatch && !this.training ? null : this.runningMean,
      useBatch && !this.training ? null : this.runningVar,
      {
        weight: this.weight,
        bias: this.bias,
        training: useBatch,
        momentum,
        eps: this.eps,
        relu,
      },
    );
  }
  /** Picks up `numBatchesTracked` from a loaded state dict. */
  protected override afterLoad(): void {
    if (this.numBatchesTracked) this.#tracked = this.numBatchesTracked.item();
  }
  /** The number of features, eps, momentum and flags. */
  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}`;
  }
}

/** `max(x, 0)`, as `torch.nn.ReLU`. */
export class ReLU extends Module {
  /** Applies `max(x, 0)`. */
  override forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** Checks a pooling layer's window, stride and padding. */
function checkPool(
  layer: string,
  kernelSize: unknown,
  o: { stride?: unknown; padding?: unknown },
): void {
  checkPair(layer, "kernelSize", kernelSize, 1);
  checkPair(layer, "stride", o.stride ?? kernelSize, 1);
  checkPair(layer, "padding", o.padding ?? 0, 0);
}

/** Max pooling, as `torch.nn.MaxPool2d`. */
export class MaxPool2d extends Module {
  /**
   * Creates the object.
   *
   * @param kernelSize Window.
   * @param options Stride (default: the window), padding, dilation, ceilMode.
   */
  constructor(
    readonly kernelSize: number | [number, number],
    readonly options: {
      stride?: number | [number, number];
      padding?: number | [number, number];
      dilation?: number | [number, number];
      ceilMode?: boolean;
    } = {},
  ) {
    super();
    checkPool("MaxPool2d", kernelSize, options);
    checkPair("MaxPool2d", "dilation", options.dilation ?? 1, 1);
  }
  /** Max-pools an NCHW input. */
  override forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.options);
  }
  /** The kernel size, stride and padding. */
  override extraRepr(): string {
    return `kernelSize=${JSON.stringify(this.kernelSize)}, ${
      JSON.stringify(this.options)
    }`;
  }
}

/** Average pooling, as `torch.nn.AvgPool2d`. */
export class AvgPool2d extends Module {
  /**
   * Creates the object.
   *
   * @param kernelSize Window.
   * @param options Stride, padding, ceilMode, countIncludePad.
   */
  constructor(
    readonly kernelSize: number | [number, number],
    readonly options: {
      stride?: number | [number, number];
      padding?: number | [number, number];
      ceilMode?: boolean;
      countIncludePad?: boolean;
    } = {},
  ) {
    super();
    checkPool("AvgPool2d", kernelSize, options);
  }
  /** Average-pools an NCHW input. */
  override forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.options);
  }
}

/** Adaptive average pooling, as `torch.nn.AdaptiveAvgPool2d`. */
export class AdaptiveAvgPool2d extends Module {
  /**
   * See the parameters.
   *
   * @param outputSize Output size.
   */
  constructor(readonly outputSize: number | [number, number]) {
    super();
    checkPair("AdaptiveAvgPool2d", "outputSize", outputSize, 1);
  }
  /** Average-pools an NCHW input to the output size. */
  override forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
  /** The output size. */
  override extraRepr(): string {
    return `outputSize=${JSON.stringify(this.outputSize)}`;
  }
}

/** Dropout in training mode, identity in eval mode, as `torch.nn.Dropout`. */
export class Dropout extends Module {
  /**
   * See the parameters.
   *
   * @param p Drop probability (default 0.5).
   * @throws RangeError unless `p` is in [0, 1].
   */
  constructor(readonly p: number = 0.5) {
    super();
    checkUnit("Dropout", "p", p);
  }
  /** Zeroes elements with probability `p` in training; the identity in evaluation. */
  override forward(x: Tensor): Tensor {
    return dropout(x, { p: this.p, training: this.training });
  }
}

/** Flattens dims `startDim..endDim`, as `torch.nn.Flatten` (default from dim 1). */
export class Flatten extends Module {
  /**
   * See the parameters.
   *
   * @param startDim First dim (default 1).
   * @param endDim Last dim (default -1).
   */
  constructor(readonly startDim: number = 1, readonly endDim: number = -1) {
    super();
    for (const [name, d] of [["startDim", startDim], ["endDim", endDim]]) {
      if (!Number.isInteger(d)) {
        throw new ShapeError(
          `Cannot create Flatten: ${name} ${show(d)} must be an integer`,
        );
      }
    }
  }
  /** Flattens the dims from `startDim` to `endDim`. */
  override forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}

/** Returns its input, as `torch.nn.Identity`. */
export class Identity extends Module {
  /** Returns `x` unchanged. */
  override forward(x: Tensor): Tensor {
    return x;
  }
}
