/**
 * Pooling geometries for the CPU kernel tests.
 *
 * @module
 */
import type { Pool2dGeometry } from "../../src/backend/backend.ts";

/** Output size along one axis, as PyTorch computes it. */
export function poolOut(
  size: number,
  k: number,
  s: number,
  p: number,
  d: number,
  ceil: boolean,
): number {
  const num = size + 2 * p - d * (k - 1) - 1;
  let o = (ceil ? Math.ceil(num / s) : Math.floor(num / s)) + 1;
  // PyTorch: the last window must start inside the input or left padding
  if (ceil && (o - 1) * s >= size + p) o--;
  return o;
}

/** A pooling geometry as the pooling ops build it (stride defaults to the kernel). */
export function poolGeom(
  n: number,
  c: number,
  h: number,
  w: number,
  kernel: [number, number],
  opts: {
    stride?: [number, number];
    padding?: [number, number];
    dilation?: [number, number];
    ceil?: boolean;
    countIncludePad?: boolean;
  } = {},
): Pool2dGeometry {
  const stride = opts.stride ?? kernel;
  const padding = opts.padding ?? [0, 0];
  const dilation = opts.dilation ?? [1, 1];
  const ceil = opts.ceil ?? false;
  return {
    n,
    c,
    h,
    w,
    oh: poolOut(h, kernel[0], stride[0], padding[0], dilation[0], ceil),
    ow: poolOut(w, kernel[1], stride[1], padding[1], dilation[1], ceil),
    kernel,
    stride,
    padding,
    dilation,
    countIncludePad: opts.countIncludePad ?? true,
  };
}
