/**
 * 2-D pooling kernels for the CPU backend over NCHW planes: max pooling with
 * argmax indices, average pooling, adaptive average pooling, and their
 * gradients, following PyTorch's CPU kernels (window clipping, index
 * convention, divisors).
 *
 * @module
 */

import type { AdaptivePool2dGeometry, Pool2dGeometry } from "../backend.ts";
import { f32, f32Out, i32, i32Out } from "./_array_pool.ts";
import { fastKernels } from "./dispatch.ts";

/**
 * Max pooling, PyTorch's rule: padding acts as `-Infinity`, the first of
 * equal values wins (so a -0 before a +0 gives -0), a NaN wins over every
 * number and a later NaN over an earlier one. Indices are flat positions
 * `ih * w + iw` within each input plane. The platform's fast kernel from
 * `dispatch.ts` runs when there is one, else the loop below.
 *
 * @param x Input `[n, c, h, w]`.
 * @param g Geometry.
 * @param needIndices Whether to compute the argmax (default true); without
 *   it `indices` is empty (the fast kernel then skips the index work).
 * @returns `y` `[n, c, oh, ow]` and the argmax `indices`, same shape.
 */
export function maxPool2d(
  x: Float32Array,
  g: Pool2dGeometry,
  needIndices = true,
): { y: Float32Array; indices: Int32Array } {
  const { n, c, h, w, oh, ow } = g;
  const planes = n * c;
  const ohw = oh * ow;
  const y = f32Out(planes * ohw);
  const fast = fastKernels();
  if (fast) {
    const indices = needIndices ? i32Out(planes * ohw) : new Int32Array(0);
    fast.maxPool2d(x, y, indices, g);
    return { y, indices };
  }
  const indices = i32Out(planes * ohw);
  // first in-range window row/column and one past the last, per output
  const rows = maxWindows(
    oh,
    g.stride[0],
    g.padding[0],
    g.kernel[0],
    g.dilation[0],
    h,
  );
  const cols = maxWindows(
    ow,
    g.stride[1],
    g.padding[1],
    g.kernel[1],
    g.dilation[1],
    w,
  );
  for (let pl = 0; pl < planes; pl++) {
    maxPlane(
      x,
      pl * h * w,
      y,
      indices,
      pl * ohw,
      oh,
      ow,
      w,
      rows,
      cols,
      g.dilation[0],
      g.dilation[1],
    );
  }
  return { y, indices: needIndices ? indices : new Int32Array(0) };
}

function maxPlane(
  x: Float32Array,
  xo: number,
  y: Float32Array,
  indices: Int32Array,
  yo: number,
  oh: number,
  ow: number,
  w: number,
  rows: Int32Array,
  cols: Int32Array,
  dh: number,
  dw: number,
): void {
  for (let oy = 0; oy < oh; oy++) {
    const hs = rows[2 * oy];
    const he = rows[2 * oy + 1];
    for (let ox = 0; ox < ow; ox++) {
      const ws = cols[2 * ox];
      const we = cols[2 * ox + 1];
      let best = -Infinity;
      let bi = hs * w + ws;
      for (let iy = hs; iy < he; iy += dh) {
        const ro = iy * w;
        for (let ix = ws; ix < we; ix += dw) {
          const v = x[xo + ro + ix];
          if (v > best || v !== v) {
            best = v;
            bi = ro + ix;
          }
        }
      }
      const q = yo + oy * ow + ox;
      y[q] = best;
      indices[q] = bi;
    }
  }
}

/** `[start, end)` per output, PyTorch's clipping: start steps by dilation. */
function maxWindows(
  out: number,
  stride: number,
  pad: number,
  kernel: number,
  dil: number,
  size: number,
): Int32Array {
  const t = i32(2 * out);
  for (let o = 0; o < out; o++) {
    let start = o * stride - pad;
    const end = Math.min(start + (kernel - 1) * dil + 1, size);
    while (start < 0) start += dil;
    t[2 * o] = start;
    t[2 * o + 1] = end;
  }
  return t;
}

/**
 * Gradient of max pooling: routes each `dy` to its argmax position.
 *
 * @param dy Gradient of the output `[n, c, oh, ow]`.
 * @param indices The argmax from {@linkcode maxPool2d}.
 * @param g Geometry.
 * @returns `dx` `[n, c, h, w]`.
 */
export function maxPool2dBackward(
  dy: Float32Array,
  indices: Int32Array,
  g: Pool2dGeometry,
): Float32Array {
  const planes = g.n * g.c;
  const hw = g.h * g.w;
  const ohw = g.oh * g.ow;
  const fast = fastKernels();
  if (fast) {
    // 2x2 / stride 2 windows that tile the input: every dx element is
    // written (the gradient or zero), no zero fill and no scattered writes
    const tiles = g.kernel[0] === 2 && g.kernel[1] === 2 &&
      g.stride[0] === 2 && g.stride[1] === 2 && g.padding[0] === 0 &&
      g.padding[1] === 0 && g.h === 2 * g.oh && g.w === 2 * g.ow;
    const dx = f32Out(planes * hw);
    fast.maxPool2dBackward(dy, indices, dx, g, tiles);
    return dx;
  }
  const dx = f32(planes * hw);
  for (let pl = 0; pl < planes; pl++) {
    scatterPlane(dx, pl * hw, dy, indices, pl * ohw, ohw);
  }
  return dx;
}

/**
 * The window of output `o` along one axis: `[start, end)` clipped to the
 * input, and the divisor extent (clipped to the padded input only).
 */
function avgWindow(
  o: number,
  stride: number,
  pad: number,
  kernel: number,
  size: number,
  out: Int32Array,
): void {
  const start = o * stride - pad;
  const endPadded = Math.min(start + kernel, size + pad);
  out[0] = Math.max(start, 0);
  out[1] = Math.min(endPadded, size);
  out[2] = endPadded - start;
}

/**
 * Average pooling, as PyTorch computes it: with `countIncludePad` the divisor
 * counts padded cells (but not cells past the padded edge that ceil mode
 * adds), otherwise only the input cells in the window.
 *
 * @param x Input `[n, c, h, w]`.
 * @param g Geometry.
 * @returns `y` `[n, c, oh, ow]`.
 */
export function avgPool2d(x: Float32Array, g: Pool2dGeometry): Float32Array {
  const { n, c, h, w, oh, ow } = g;
  const planes = n * c;
  const hw = h * w;
  const ohw = oh * ow;
  const y = f32(planes * ohw);
  const { rows, cols, div } = avgTables(g);
  for (let pl = 0; pl < planes; pl++) {
    const xo = pl * hw;
    const yo = pl * ohw;
    for (let oy = 0; oy < oh; oy++) {
      const hs = rows[oy * 3];
      const he = rows[oy * 3 + 1];
      for (let ox = 0; ox < ow; ox++) {
        const ws = cols[ox * 3];
        const we = cols[ox * 3 + 1];
        const q = oy * ow + ox;
        if (hs >= he || ws >= we) {
          y[yo + q] = 0;
          continue;
        }
        let sum = 0;
        for (let iy = hs; iy < he; iy++) {
          const ro = xo + iy * w;
          for (let ix = ws; ix < we; ix++) sum += x[ro + ix];
        }
        y[yo + q] = sum / div[q];
      }
    }
  }
  return y;
}

/** Window bounds per output row and column, and the divisor per output. */
function avgTables(
  g: Pool2dGeometry,
): { rows: Int32Array; cols: Int32Array; div: Float64Array } {
  const { h, w, oh, ow, countIncludePad } = g;
  const rows = i32(oh * 3);
  const cols = i32(ow * 3);
  const tmp = i32(3);
  for (let oy = 0; oy < oh; oy++) {
    avgWindow(oy, g.stride[0], g.padding[0], g.kernel[0], h, tmp);
    rows.set(tmp, oy * 3);
  }
  for (let ox = 0; ox < ow; ox++) {
    avgWindow(ox, g.stride[1], g.padding[1], g.kernel[1], w, tmp);
    cols.set(tmp, ox * 3);
  }
  const div = new Float64Array(oh * ow);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      div[oy * ow + ox] = countIncludePad
        ? rows[oy * 3 + 2] * cols[ox * 3 + 2]
        : (rows[oy * 3 + 1] - rows[oy * 3]) * (cols[ox * 3 + 1] - cols[ox * 3]);
    }
  }
  return { rows, cols, div };
}

/**
 * Gradient of average pooling.
 *
 * @param dy Gradient of the output `[n, c, oh, ow]`.
 * @param g Geometry.
 * @returns `dx` `[n, c, h, w]`.
 */
export function avgPool2dBackward(
  dy: Float32Array,
  g: Pool2dGeometry,
): Float32Array {
  const { n, c, h, w, oh, ow } = g;
  const planes = n * c;
  const hw = h * w;
  const ohw = oh * ow;
  const dx = f32(planes * hw);
  const { rows, cols, div } = avgTables(g);
  for (let pl = 0; pl < planes; pl++) {
    const xo = pl * hw;
    const yo = pl * ohw;
    for (let oy = 0; oy < oh; oy++) {
      const hs = rows[oy * 3];
      const he = rows[oy * 3 + 1];
      for (let ox = 0; ox < ow; ox++) {
        const ws = cols[ox * 3];
        const we = cols[ox * 3 + 1];
        const q = oy * ow + ox;
        if (hs >= he || ws >= we) continue;
        const v = dy[yo + q] / div[q];
        for (let iy = hs; iy < he; iy++) {
          const ro = xo + iy * w;
          for (let ix = ws; ix < we; ix++) dx[ro + ix] += v;
        }
      }
    }
  }
  return dx;
}

/** PyTorch's adaptive bins: `[floor(i * in / out), ceil((i + 1) * in / out))`. */
function adaptiveBins(size: number, out: number): Int32Array {
  const b = i32(out * 2);
  for (let i = 0; i < out; i++) {
    b[2 * i] = Math.floor((i * size) / out);
    b[2 * i + 1] = Math.ceil(((i + 1) * size) / out);
  }
  return b;
}

/**
 * Adaptive average pooling `[n, c, h, w]` → `[n, c, oh, ow]` with PyTorch's
 * bins.
 *
 * @param x Input.
 * @param g Sizes `n, c, h, w, oh, ow`.
 * @returns The output.
 */
export function adaptiveAvgPool2d(
  x: Float32Array,
  g: AdaptivePool2dGeometry,
): Float32Array {
  const { n, c, h, w, oh, ow } = g;
  const planes = n * c;
  const hw = h * w;
  const ohw = oh * ow;
  const y = f32(planes * ohw);
  if (oh === 1 && ow === 1) {
    // global average pooling (ResNet's head)
    for (let pl = 0; pl < planes; pl++) {
      let sum = 0;
      const xo = pl * hw;
      for (let i = xo; i < xo + hw; i++) sum += x[i];
      y[pl] = sum / hw;
    }
    return y;
  }
  const rb = adaptiveBins(h, oh);
  const cb = adaptiveBins(w, ow);
  for (let pl = 0; pl < planes; pl++) {
    const xo = pl * hw;
    const yo = pl * ohw;
    for (let oy = 0; oy < oh; oy++) {
      const hs = rb[2 * oy];
      const he = rb[2 * oy + 1];
      for (let ox = 0; ox < ow; ox++) {
        const ws = cb[2 * ox];
        const we = cb[2 * ox + 1];
        let sum = 0;
        for (let iy = hs; iy < he; iy++) {
          const ro = xo + iy * w;
          for (let ix = ws; ix < we; ix++) sum += x[ro + ix];
        }
        y[yo + oy * ow + ox] = sum / ((he - hs) * (we - ws));
      }
    }
  }
  return y;
}

/**
 * Gradient of adaptive average pooling.
 *
 * @param dy Gradient of the output `[n, c, oh, ow]`.
 * @param g Sizes `n, c, h, w, oh, ow`.
 * @returns `dx` `[n, c, h, w]`.
 */
export function adaptiveAvgPool2dBackward(
  dy: Float32Array,
  g: AdaptivePool2dGeometry,
): Float32Array {
  const { n, c, h, w, oh, ow } = g;
  const planes = n * c;
  const hw = h * w;
  const ohw = oh * ow;
  const dx = f32(planes * hw);
  if (oh === 1 && ow === 1) {
    for (let pl = 0; pl < planes; pl++) {
      dx.fill(dy[pl] / hw, pl * hw, (pl + 1) * hw);
    }
    return dx;
  }
  const rb = adaptiveBins(h, oh);
  const cb = adaptiveBins(w, ow);
  for (let pl = 0; pl < planes; pl++) {
    const xo = pl * hw;
    const yo = pl * ohw;
    for (let oy = 0; oy < oh; oy++) {
      const hs = rb[2 * oy];
      const he = rb[2 * oy + 1];
      for (let ox = 0; ox < ow; ox++) {
        const ws = cb[2 * ox];
        const we = cb[2 * ox + 1];
        const v = dy[yo + oy * ow + ox] / ((he - hs) * (we - ws));
        for (let iy = hs; iy < he; iy++) {
          const ro = xo + iy * w;
          for (let ix = ws; ix < we; ix++) dx[ro + ix] += v;
        }
      }
    }
  }
  return dx;
}

function scatterPlane(
  dx: Float32Array,
  xo: number,
  dy: Float32Array,
  indices: Int32Array,
  yo: number,
  ohw: number,
): void {
  const end = yo + ohw;
  for (let q = yo; q < end; q++) dx[xo + indices[q]] += dy[q];
}
