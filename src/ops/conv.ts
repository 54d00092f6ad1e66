/**
 * 2-D convolution, NCHW, as `torch.nn.functional.conv2d`.
 *
 * @module
 */

import type { Conv2dGeometry } from "../backend/backend.ts";
import { record } from "../autograd.ts";
import { fmtShape, ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { backendOf, checkShape, requireFloat, wrap } from "./_util.ts";
import { sum } from "./reduce.ts";

/** Options of `conv2d`. */
export interface Conv2dOptions {
  /** Bias `[outChannels]`. */
  bias?: Tensor | null;
  /** Stride, one number or `[h, w]` (default 1). */
  stride?: number | [number, number];
  /** Zero padding, one number or `[h, w]` (default 0). */
  padding?: number | [number, number];
  /** Dilation, one number or `[h, w]` (default 1). */
  dilation?: number | [number, number];
  /** Groups (default 1). */
  groups?: number;
}

/** A number or pair as a pair. */
export function pair(v: number | [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}

/**
 * A number or pair as a pair of integers of at least `min` (1 for kernel
 * sizes, strides and dilations, 0 for padding), as PyTorch checks them.
 *
 * @param op The op, for the message.
 * @param name The argument's name.
 * @param v Its value.
 * @param min The least allowed value.
 * @returns The pair.
 */
export function intPair(
  op: string,
  name: string,
  v: number | [number, number],
  min: 0 | 1,
): [number, number] {
  const p = pair(v);
  if (!p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new ShapeError(
      `Cannot ${op}: ${name} ${JSON.stringify(v)} must be ${
        min ? "positive" : "non-negative"
      } integers`,
    );
  }
  return p;
}

/**
 * Applies a 2-D convolution over an NCHW input.
 *
 * @param x Input `[n, c, h, w]`.
 * @param weight `[k, c / groups, r, s]`.
 * @param options Bias, stride, padding, dilation, groups.
 * @returns `[n, k, oh, ow]`.
 *
 * @example A 3×3 box filter with "same" padding
 * ```ts
 * import { nn, ones } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const y = nn.functional.conv2d(ones([1, 1, 4, 4]), ones([1, 1, 3, 3]), { padding: 1 });
 * assert.deepEqual(y.shape, [1, 1, 4, 4]);
 * const [[v]] = y.toArray() as number[][][][];
 * assert.equal(v[1][1], 9); // interior: nine ones
 * assert.equal(v[0][0], 4); // corner: four
 * ```
 */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  options: Conv2dOptions = {},
): Tensor {
  requireFloat("conv2d", x);
  requireFloat("conv2d", weight, "weight");
  const bias = options.bias ?? null;
  const be = backendOf("conv2d", x, weight, ...(bias ? [bias] : []));
  const groups = options.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) {
    throw new ShapeError(
      `Cannot conv2d: groups ${groups} must be a positive integer`,
    );
  }
  if (x.ndim !== 4 || weight.ndim !== 4) {
    throw new ShapeError(
      `Cannot conv2d: input ${fmtShape(x.shape)} and weight ${
        fmtShape(weight.shape)
      } must both be 4-D (NCHW, OIHW)`,
    );
  }
  const [n, c, h, w] = x.shape;
  const [k, cg, r, s] = weight.shape;
  if (c !== cg * groups || k % groups !== 0) {
    throw new ShapeError(
      `Cannot conv2d: input ${fmtShape(x.shape)} has ${c} channels but weight ${
        fmtShape(weight.shape)
      } with groups=${groups} expects ${cg * groups}`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== k)) {
    throw new ShapeError(
      `Cannot conv2d: bias of shape ${fmtShape(bias.shape)}, expected [${k}]`,
    );
  }
  const stride = intPair("conv2d", "stride", options.stride ?? 1, 1);
  const padding = intPair("conv2d", "padding", options.padding ?? 0, 0);
  const dilation = intPair("conv2d", "dilation", options.dilation ?? 1, 1);
  const oh = Math.floor(
    (h + 2 * padding[0] - dilation[0] * (r - 1) - 1) / stride[0],
  ) + 1;
  const ow = Math.floor(
    (w + 2 * padding[1] - dilation[1] * (s - 1) - 1) / stride[1],
  ) + 1;
  checkShape("conv2d", [n, k, Math.max(oh, 0), Math.max(ow, 0)]);
  if (oh <= 0 || ow <= 0) {
    throw new ShapeError(
      `Cannot conv2d: input ${
        fmtShape(x.shape)
      } is smaller than the dilated kernel ${
        fmtShape(weight.shape)
      } with padding ${fmtShape(padding)}`,
    );
  }
  const g: Conv2dGeometry = {
    n,
    c,
    h,
    w,
    k,
    r,
    s,
    oh,
    ow,
    stride,
    padding,
    dilation,
    groups,
  };
  const y = wrap(
    be,
    be.conv2d(x.storage, weight.storage, bias ? bias.storage : null, g),
    [n, k, oh, ow],
  );
  const inputs = bias ? [x, weight, bias] : [x, weight];
  const op = { name: "conv2d", attrs: { stride, padding, dilation, groups } };
  return record(y, inputs, op, (dy) => {
    const out: (Tensor | null)[] = [
      x.requiresGrad
        ? wrap(
          be,
          be.conv2dBackwardData(dy.storage, weight.storage, g),
          x.shape,
        )
        : null,
      weight.requiresGrad
        ? wrap(
          be,
          be.conv2dBackwardFilter(x.storage, dy.storage, g),
          weight.shape,
        )
        : null,
    ];
    if (bias) out.push(bias.requiresGrad ? sum(dy, [0, 2, 3]) : null);
    return out;
  });
}
