/**
 * 2-D pooling kernels for the CPU backend over NCHW planes: max pooling with
 * argmax indices, average pooling, adaptive average pooling, and their
 * gradients, following PyTorch's CPU kernels (window clipping, index
 * convention, divisors).
 *
 * @module
 */

import type { AdaptivePool2dGeometry, Pool2dGeometry } from "../backend.ts";
import { f32, f32Out, i32, i32Out } from "./_pool.ts";
import { floatKey, keyBits, nanBit } from "./_bits.ts";
import { nativeKernels } from "./native.ts";

/**
 * Max pooling. Padding acts as `-Infinity`; a NaN in a window wins, as in
 * PyTorch. Indices are flat positions `ih * w + iw` within each input plane.
 *
 * @param x Input `[n, c, h, w]`.
 * @param g Geometry.
 * @param needIndices Whether to compute the argmax (default true); without
 *   it `indices` is empty and the separable path skips the index work.
 * @returns `y` `[n, c, oh, ow]` and the argmax `indices`, same shape.
 */
export function maxPool2d(
  x: Float32Array,
  g: Pool2dGeometry,
  needIndices = true,
): { y: Float32Array; indices: Int32Array } {
  const { n, c, h, w, oh, ow } = g;
  const [kh, kw] = g.kernel;
  const [sh, sw] = g.stride;
  const [ph, pw] = g.padding;
  const [dh, dw] = g.dilation;
  const planes = n * c;
  const hw = h * w;
  const ohw = oh * ow;
  const y = f32Out(planes * ohw);
  const nk = nativeKernels();
  if (nk) {
    const indices = needIndices ? i32Out(planes * ohw) : new Int32Array(0);
    const geo = Int32Array.of(h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw);
    nk.kd_maxpool(x, y, indices, needIndices ? 1 : 0, planes, geo);
    return { y, indices };
  }
  // Fast path: the common 2x2 / stride 2 / no padding window.
  const fast2x2 = kh === 2 && kw === 2 && sh === 2 && sw === 2 && ph === 0 &&
    pw === 0 && dh === 1 && dw === 1 && 2 * oh <= h && 2 * ow <= w;
  // first in-range window row/column and one past the last, per output
  const rows = maxWindows(oh, sh, ph, kh, dh, h);
  const cols = maxWindows(ow, sw, pw, kw, dw, w);
  // Other windows without dilation: separable and branch-free (below),
  // except on planes holding a NaN, which take the exact loop.
  const separable = !fast2x2 && dh === 1 && dw === 1 &&
    nonEmpty(rows) && nonEmpty(cols);
  let indices = needIndices || !separable
    ? i32Out(planes * ohw)
    : new Int32Array(0);
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length);
  const yi = new Int32Array(y.buffer, y.byteOffset, y.length);
  const tk = separable ? i32(h * ow) : null;
  const tc = separable && needIndices ? i32(h * ow) : null;
  for (let pl = 0; pl < planes; pl++) {
    const xo = pl * hw;
    const yo = pl * ohw;
    if (fast2x2) {
      if (maxPlane2x2Keys(xi, xo, yi, indices, yo, oh, ow, w) !== 0) {
        maxPlane2x2(x, xo, y, indices, yo, oh, ow, w); // a NaN: exact loop
      }
      continue;
    }
    if (separable) {
      let nan = 0;
      if (tc !== null) {
        for (let r = 0; r < h; r++) {
          nan |= rowMax(xi, xo + r * w, tk!, tc, r * ow, cols);
        }
        if (nan === 0) {
          for (let oy = 0; oy < oh; oy++) {
            columnMax(tk!, tc, yi, indices, yo + oy * ow, ow, rows, oy, w);
          }
          continue;
        }
      } else {
        for (let r = 0; r < h; r++) {
          nan |= rowMaxKeys(xi, xo + r * w, tk!, r * ow, cols);
        }
        if (nan === 0) {
          for (let oy = 0; oy < oh; oy++) {
            columnMaxKeys(tk!, yi, yo + oy * ow, ow, rows, oy);
          }
          continue;
        }
        // a NaN: the exact loop needs somewhere to put its argmax
        if (indices.length === 0) indices = i32Out(planes * ohw);
      }
    }
    maxPlane(x, xo, y, indices, yo, oh, ow, w, rows, cols, dh, dw);
  }
  return { y, indices: needIndices ? indices : new Int32Array(0) };
}

function nonEmpty(windows: Int32Array): boolean {
  for (let i = 0; i < windows.length; i += 2) {
    if (windows[i] >= windows[i + 1]) return false;
  }
  return true;
}

// The separable max works on the float bits as int32 "keys": flipping the
// magnitude bits of negatives (and adding one, so that -0 and +0 tie) makes
// integer order equal float order, and an
// integer max can use a mask instead of a branch (a compare of random data
// mispredicts half the time). `mask = -(later > best)` keeps the first of
// equal values, as PyTorch's scan does: rows first, then columns.

/**
 * Max (key and column) of each output column's window, for one input row.
 * Returns 1 when the row holds a NaN (`|bits| > +Infinity's bits`): the
 * plane then takes the exact loop, which lets a NaN win as PyTorch does.
 */
function rowMax(
  xi: Int32Array,
  ro: number,
  tk: Int32Array,
  tc: Int32Array,
  to: number,
  cols: Int32Array,
): number {
  const ow = cols.length >> 1;
  let nan = 0;
  for (let ox = 0; ox < ow; ox++) {
    const ws = cols[2 * ox];
    const we = cols[2 * ox + 1];
    const b = xi[ro + ws];
    nan |= nanBit(b);
    let m = floatKey(b);
    let mi = ws;
    if (we - ws === 3) {
      // the usual full 3-wide window, unrolled
      const v1 = xi[ro + ws + 1];
      nan |= nanBit(v1);
      const k1 = floatKey(v1);
      const m1 = -(k1 > m);
      m ^= (m ^ k1) & m1;
      mi ^= (mi ^ (ws + 1)) & m1;
      const v2 = xi[ro + ws + 2];
      nan |= nanBit(v2);
      const k2 = floatKey(v2);
      const m2 = -(k2 > m);
      m ^= (m ^ k2) & m2;
      mi ^= (mi ^ (ws + 2)) & m2;
      tk[to + ox] = m;
      tc[to + ox] = mi;
      continue;
    }
    for (let ix = ws + 1; ix < we; ix++) {
      const v = xi[ro + ix];
      nan |= nanBit(v);
      const kv = floatKey(v);
      const mask = -(kv > m);
      m ^= (m ^ kv) & mask;
      mi ^= (mi ^ ix) & mask;
    }
    tk[to + ox] = m;
    tc[to + ox] = mi;
  }
  return nan;
}

/** {@linkcode rowMax} without the argmax. */
function rowMaxKeys(
  xi: Int32Array,
  ro: number,
  tk: Int32Array,
  to: number,
  cols: Int32Array,
): number {
  const ow = cols.length >> 1;
  let nan = 0;
  for (let ox = 0; ox < ow; ox++) {
    const ws = cols[2 * ox];
    const we = cols[2 * ox + 1];
    if (we - ws === 3) {
      // the usual full 3-wide window, unrolled
      const i = ro + ws;
      const v0 = xi[i], v1 = xi[i + 1], v2 = xi[i + 2];
      nan |= nanBit(v0) |
        nanBit(v1) |
        nanBit(v2);
      const k0 = floatKey(v0);
      const k1 = floatKey(v1);
      const k2 = floatKey(v2);
      const m = k0 ^ ((k0 ^ k1) & -(k1 > k0));
      tk[to + ox] = m ^ ((m ^ k2) & -(k2 > m));
      continue;
    }
    let m = -0x80000000;
    for (let ix = ws; ix < we; ix++) {
      const v = xi[ro + ix];
      nan |= nanBit(v);
      const kv = floatKey(v);
      m ^= (m ^ kv) & -(kv > m);
    }
    tk[to + ox] = m;
  }
  return nan;
}

/** {@linkcode columnMax} without the argmax: row by row, contiguous. */
function columnMaxKeys(
  tk: Int32Array,
  yi: Int32Array,
  q: number,
  ow: number,
  rows: Int32Array,
  oy: number,
): void {
  const hs = rows[2 * oy];
  const he = rows[2 * oy + 1];
  const first = hs * ow;
  for (let ox = 0; ox < ow; ox++) yi[q + ox] = tk[first + ox];
  for (let r = hs + 1; r < he; r++) {
    const ro = r * ow;
    for (let ox = 0; ox < ow; ox++) {
      const kv = tk[ro + ox];
      const m = yi[q + ox];
      yi[q + ox] = m ^ ((m ^ kv) & -(kv > m));
    }
  }
  for (let ox = 0; ox < ow; ox++) {
    const m = yi[q + ox];
    yi[q + ox] = keyBits(m);
  }
}

/** Max over each output's window rows of the row maxima; writes y and indices. */
function columnMax(
  tk: Int32Array,
  tc: Int32Array,
  yi: Int32Array,
  indices: Int32Array,
  q: number,
  ow: number,
  rows: Int32Array,
  oy: number,
  w: number,
): void {
  const hs = rows[2 * oy];
  const he = rows[2 * oy + 1];
  for (let ox = 0; ox < ow; ox++) {
    let m = tk[hs * ow + ox];
    let mi = hs * w + tc[hs * ow + ox];
    for (let r = hs + 1; r < he; r++) {
      const kv = tk[r * ow + ox];
      const mask = -(kv > m);
      m ^= (m ^ kv) & mask;
      mi ^= (mi ^ (r * w + tc[r * ow + ox])) & mask;
    }
    yi[q + ox] = keyBits(m);
    indices[q + ox] = mi;
  }
}

// One plane per call: small functions that V8 optimises as a whole (inner
// loops of one long call ran in on-stack-replaced code that fell back to the
// interpreter at every loop exit).

/**
 * The 2x2 / stride 2 window on int32 keys (see below), branch-free; returns
 * 1 without finishing when the plane holds a NaN.
 */
function maxPlane2x2Keys(
  xi: Int32Array,
  xo: number,
  yi: Int32Array,
  indices: Int32Array,
  yo: number,
  oh: number,
  ow: number,
  w: number,
): number {
  for (let oy = 0; oy < oh; oy++) {
    const r0 = 2 * oy * w;
    const r1 = r0 + w;
    const q0 = yo + oy * ow;
    let nan = 0;
    for (let ox = 0; ox < ow; ox++) {
      const i0 = r0 + 2 * ox;
      const i2 = r1 + 2 * ox;
      const v0 = xi[xo + i0], v1 = xi[xo + i0 + 1];
      const v2 = xi[xo + i2], v3 = xi[xo + i2 + 1];
      nan |= nanBit(v0) |
        nanBit(v1) |
        nanBit(v2) |
        nanBit(v3);
      const k0 = floatKey(v0);
      const k1 = floatKey(v1);
      const k2 = floatKey(v2);
      const k3 = floatKey(v3);
      // scan order i0, i0 + 1, i2, i2 + 1; a later value must be greater
      let m = k0;
      let mi = i0;
      let mask = -(k1 > m);
      m ^= (m ^ k1) & mask;
      mi ^= (mi ^ (i0 + 1)) & mask;
      mask = -(k2 > m);
      m ^= (m ^ k2) & mask;
      mi ^= (mi ^ i2) & mask;
      mask = -(k3 > m);
      m ^= (m ^ k3) & mask;
      mi ^= (mi ^ (i2 + 1)) & mask;
      yi[q0 + ox] = keyBits(m);
      indices[q0 + ox] = mi;
    }
    if (nan !== 0) return 1;
  }
  return 0;
}

function maxPlane2x2(
  x: Float32Array,
  xo: number,
  y: Float32Array,
  indices: Int32Array,
  yo: number,
  oh: number,
  ow: number,
  w: number,
): void {
  for (let oy = 0; oy < oh; oy++) {
    const r0 = 2 * oy * w;
    const r1 = r0 + w;
    const q0 = yo + oy * ow;
    for (let ox = 0; ox < ow; ox++) {
      const i0 = r0 + 2 * ox;
      const i2 = r1 + 2 * ox;
      // same order and NaN rule as the general loop below
      let best = x[xo + i0];
      let bi = i0;
      let v = x[xo + i0 + 1];
      if (v > best || v !== v) {
        best = v;
        bi = i0 + 1;
      }
      v = x[xo + i2];
      if (v > best || v !== v) {
        best = v;
        bi = i2;
      }
      v = x[xo + i2 + 1];
      if (v > best || v !== v) {
        best = v;
        bi = i2 + 1;
      }
      y[q0 + ox] = best;
      indices[q0 + ox] = bi;
    }
  }
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
  // 2x2 / stride 2 windows that tile the input: every dx element is written
  // (the gradient or zero), no zero fill and no scattered writes
  const tiles = g.kernel[0] === 2 && g.kernel[1] === 2 && g.stride[0] === 2 &&
    g.stride[1] === 2 && g.padding[0] === 0 && g.padding[1] === 0 &&
    g.h === 2 * g.oh && g.w === 2 * g.ow;
  const nk = nativeKernels();
  if (nk) {
    const dx = f32Out(planes * hw);
    nk.kd_maxpool_bwd(dy, indices, dx, planes, g.h, g.w, g.oh, g.ow, +tiles);
    return dx;
  }
  if (tiles) {
    const dx = f32Out(planes * hw);
    const dxi = new Int32Array(dx.buffer, dx.byteOffset, dx.length);
    const dyi = new Int32Array(dy.buffer, dy.byteOffset, dy.length);
    for (let pl = 0; pl < planes; pl++) {
      tile2x2Plane(dxi, pl * hw, dyi, indices, pl * ohw, g.oh, g.ow, g.w);
    }
    return dx;
  }
  const dx = f32(planes * hw);
  for (let pl = 0; pl < planes; pl++) {
    const xo = pl * hw;
    const yo = pl * ohw;
    scatterPlane(dx, xo, dy, indices, yo, ohw);
  }
  return dx;
}

/** One plane of the tiling 2x2 backward, on float bits (exact for any value). */
function tile2x2Plane(
  dxi: Int32Array,
  xo: number,
  dyi: Int32Array,
  indices: Int32Array,
  yo: number,
  oh: number,
  ow: number,
  w: number,
): void {
  for (let oy = 0; oy < oh; oy++) {
    const r0 = 2 * oy * w;
    const r1 = r0 + w;
    const q0 = yo + oy * ow;
    for (let ox = 0; ox < ow; ox++) {
      const g = dyi[q0 + ox];
      const at = indices[q0 + ox];
      const i0 = r0 + 2 * ox;
      const i2 = r1 + 2 * ox;
      dxi[xo + i0] = g & -(at === i0);
      dxi[xo + i0 + 1] = g & -(at === i0 + 1);
      dxi[xo + i2] = g & -(at === i2);
      dxi[xo + i2 + 1] = g & -(at === i2 + 1);
    }
  }
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
