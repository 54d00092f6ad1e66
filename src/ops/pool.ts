/**
 * Pooling over NCHW inputs: max, average and adaptive average.
 *
 * @module
 */

import type {
  AdaptivePool2dGeometry,
  Pool2dGeometry,
} from "../backend/backend.ts";
import { record, traceOp } from "../autograd.ts";
import { fmtShape, ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { requireFloat, wrap } from "./_util.ts";
import { intPair } from "./conv.ts";

/** Options of `maxPool2d`. */
export interface MaxPool2dOptions {
  /** Stride (default: the kernel size). */
  stride?: number | [number, number];
  /** Implicit -inf padding (default 0). */
  padding?: number | [number, number];
  /** Dilation (default 1). */
  dilation?: number | [number, number];
  /** Use ceil instead of floor for the output size (default false). */
  ceilMode?: boolean;
}

/** Options of `avgPool2d`. */
export interface AvgPool2dOptions {
  /** Stride (default: the kernel size). */
  stride?: number | [number, number];
  /** Implicit zero padding (default 0). */
  padding?: number | [number, number];
  /** Use ceil instead of floor for the output size (default false). */
  ceilMode?: boolean;
  /** Count padded zeros in the divisor (default true). */
  countIncludePad?: boolean;
}

function outSize(
  inp: number,
  k: number,
  pad: number,
  stride: number,
  dil: number,
  ceil: boolean,
): number {
  const num = inp + 2 * pad - dil * (k - 1) - 1 + (ceil ? stride - 1 : 0);
  let out = Math.floor(num / stride) + 1;
  // the last window must start inside the input or left padding
  if (ceil && (out - 1) * stride >= inp + pad) out--;
  return out;
}

function geometry(
  op: string,
  x: Tensor,
  kernelSize: number | [number, number],
  o: {
    stride?: number | [number, number];
    padding?: number | [number, number];
    dilation?: number | [number, number];
    ceilMode?: boolean;
    countIncludePad?: boolean;
  },
): Pool2dGeometry {
  requireFloat(op, x);
  if (x.ndim !== 4) {
    throw new ShapeError(
      `Cannot ${op}: input of shape ${fmtShape(x.shape)} must be 4-D (NCHW)`,
    );
  }
  const [n, c, h, w] = x.shape;
  const kernel = intPair(op, "kernelSize", kernelSize, 1);
  const stride = intPair(op, "stride", o.stride ?? kernelSize, 1);
  const padding = intPair(op, "padding", o.padding ?? 0, 0);
  const dilation = intPair(op, "dilation", o.dilation ?? 1, 1);
  if (padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1]) {
    throw new ShapeError(
      `Cannot ${op}: padding ${
        fmtShape(padding)
      } must be at most half the kernel ${fmtShape(kernel)}`,
    );
  }
  const ceil = o.ceilMode ?? false;
  const oh = outSize(h, kernel[0], padding[0], stride[0], dilation[0], ceil);
  const ow = outSize(w, kernel[1], padding[1], stride[1], dilation[1], ceil);
  if (oh <= 0 || ow <= 0) {
    throw new ShapeError(
      `Cannot ${op}: input of shape ${
        fmtShape(x.shape)
      } is smaller than the kernel ${fmtShape(kernel)}`,
    );
  }
  return {
    n,
    c,
    h,
    w,
    oh,
    ow,
    kernel,
    stride,
    padding,
    dilation,
    countIncludePad: o.countIncludePad ?? true,
  };
}

/**
 * Max pooling, as `torch.nn.functional.max_pool2d`.
 *
 * @param x `[n, c, h, w]`.
 * @param kernelSize Window size.
 * @param options Stride, padding, dilation, ceilMode.
 * @returns `[n, c, oh, ow]`.
 *
 * @example Halving the resolution
 * ```ts
 * import { arange, nn, reshape } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const x = reshape(arange(0, 16, { dtype: "float32" }), [1, 1, 4, 4]);
 * assert.deepEqual(nn.functional.maxPool2d(x, 2).toArray(), [[[[5, 7], [13, 15]]]]);
 * ```
 */
export function maxPool2d(
  x: Tensor,
  kernelSize: number | [number, number],
  options: MaxPool2dOptions = {},
): Tensor {
  const g = geometry("maxPool2d", x, kernelSize, options);
  const be = x.backend;
  const r = be.maxPool2d(x.storage, g, x.requiresGrad);
  const y = wrap(be, r.y, [g.n, g.c, g.oh, g.ow]);
  const indices = wrap(be, r.indices, [g.n, g.c, g.oh, g.ow]);
  const attrs = { geometry: g, ceilMode: options.ceilMode ?? false };
  if (!x.requiresGrad) {
    indices.dispose();
    return traceOp(y, [x], "maxPool2d", attrs);
  }
  return record(y, [x], { name: "maxPool2d", attrs }, (dy) => [
    wrap(be, be.maxPool2dBackward(dy.storage, indices.storage, g), x.shape),
  ], [indices]);
}

/**
 * Average pooling, as `torch.nn.functional.avg_pool2d`.
 *
 * @param x `[n, c, h, w]`.
 * @param kernelSize Window size.
 * @param options Stride, padding, ceilMode, countIncludePad.
 * @returns `[n, c, oh, ow]`.
 */
export function avgPool2d(
  x: Tensor,
  kernelSize: number | [number, number],
  options: AvgPool2dOptions = {},
): Tensor {
  const g = geometry("avgPool2d", x, kernelSize, options);
  const be = x.backend;
  const y = wrap(be, be.avgPool2d(x.storage, g), [g.n, g.c, g.oh, g.ow]);
  const attrs = { geometry: g, ceilMode: options.ceilMode ?? false };
  return record(y, [x], { name: "avgPool2d", attrs }, (dy) => [
    wrap(be, be.avgPool2dBackward(dy.storage, g), x.shape),
  ]);
}

/**
 * Adaptive average pooling to a fixed output size, as
 * `torch.nn.functional.adaptive_avg_pool2d`.
 *
 * @param x `[n, c, h, w]`.
 * @param outputSize `oh` (square) or `[oh, ow]`.
 * @returns `[n, c, oh, ow]`.
 */
export function adaptiveAvgPool2d(
  x: Tensor,
  outputSize: number | [number, number],
): Tensor {
  requireFloat("adaptiveAvgPool2d", x);
  if (x.ndim !== 4) {
    throw new ShapeError(
      `Cannot adaptiveAvgPool2d: input of shape ${
        fmtShape(x.shape)
      } must be 4-D (NCHW)`,
    );
  }
  const [n, c, h, w] = x.shape;
  const [oh, ow] = intPair("adaptiveAvgPool2d", "outputSize", outputSize, 1);
  if (oh <= 0 || ow <= 0) {
    throw new ShapeError(
      `Cannot adaptiveAvgPool2d: output size ${
        fmtShape([oh, ow])
      } must be positive`,
    );
  }
  const be = x.backend;
  const g: AdaptivePool2dGeometry = { n, c, h, w, oh, ow };
  const y = wrap(be, be.adaptiveAvgPool2d(x.storage, g), [n, c, oh, ow]);
  return record(y, [x], "adaptiveAvgPool2d", (dy) => [
    wrap(be, be.adaptiveAvgPool2dBackward(dy.storage, g), x.shape),
  ]);
}
