/**
 * 2-D convolution kernels for the CPU backend: NCHW input, OIHW weight, with
 * stride, zero padding, dilation and groups, as `torch.nn.functional.conv2d`
 * defines them.
 *
 * Large convolutions go through im2col and {@linkcode sgemm} (per image, or
 * for several images at once when the output plane is small); a 1x1, stride
 * 1, unpadded convolution multiplies the input planes directly. Convolutions
 * with few input taps and few output channels per group (the tutorial's
 * 3 → 4 channel student) use direct register-tiled loops instead, which beat
 * im2col there because the GEMM would be too thin to pay for the copy.
 *
 * @module
 */

import type { Conv2dGeometry } from "../backend.ts";
import { sgemm } from "./gemm.ts";

/** The element count of im2col buffers built for several images at once. */
const BATCH_COL_LIMIT = 1 << 23;
/** Output planes smaller than this are multiplied several images at a time. */
const SMALL_PLANE = 1024;
/** Direct kernels are used up to this many taps (c/groups * r * s)... */
const DIRECT_MAX_TAPS = 64;
/** ...and this many output channels per group. */
const DIRECT_MAX_K = 8;

interface Dims {
  n: number;
  c: number;
  h: number;
  w: number;
  k: number;
  r: number;
  s: number;
  oh: number;
  ow: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  groups: number;
  cg: number;
  kg: number;
  crs: number;
  hw: number;
  ohw: number;
  pointwise: boolean;
}

function dims(g: Conv2dGeometry): Dims {
  const cg = g.c / g.groups;
  const kg = g.k / g.groups;
  const pointwise = g.r === 1 && g.s === 1 && g.stride[0] === 1 &&
    g.stride[1] === 1 && g.padding[0] === 0 && g.padding[1] === 0 &&
    g.oh === g.h && g.ow === g.w;
  return {
    n: g.n,
    c: g.c,
    h: g.h,
    w: g.w,
    k: g.k,
    r: g.r,
    s: g.s,
    oh: g.oh,
    ow: g.ow,
    sh: g.stride[0],
    sw: g.stride[1],
    ph: g.padding[0],
    pw: g.padding[1],
    dh: g.dilation[0],
    dw: g.dilation[1],
    groups: g.groups,
    cg,
    kg,
    crs: cg * g.r * g.s,
    hw: g.h * g.w,
    ohw: g.oh * g.ow,
    pointwise,
  };
}

type ConvAlgo = "auto" | "im2col" | "direct";
let algo: ConvAlgo = "auto";

/**
 * Forces one algorithm for every later call (for tests and benches):
 * `"auto"` (the default) picks per geometry, `"im2col"` always uses im2col
 * and GEMM, `"direct"` always uses the direct loops.
 *
 * @param next The algorithm.
 */
export function setConvAlgo(next: ConvAlgo): void {
  algo = next;
}

function useDirect(d: Dims): boolean {
  if (algo !== "auto") return algo === "direct";
  return d.crs <= DIRECT_MAX_TAPS && d.kg <= DIRECT_MAX_K && !d.pointwise;
}

/** Images per im2col batch: 1 unless the output plane is small. */
function imagesPerBatch(d: Dims): number {
  if (d.ohw >= SMALL_PLANE || d.n === 1) return 1;
  const per = d.crs * d.ohw;
  return Math.max(1, Math.min(d.n, Math.floor(BATCH_COL_LIMIT / per)));
}

/**
 * The first and one-past-last output index whose input index
 * `o * stride + off` lies in `[0, size)`.
 */
function validRange(
  off: number,
  stride: number,
  size: number,
  outSize: number,
): [number, number] {
  const lo = off >= 0 ? 0 : Math.ceil(-off / stride);
  const hi = size - 1 - off < 0
    ? 0
    : Math.min(outSize, Math.floor((size - 1 - off) / stride) + 1);
  return [Math.min(lo, outSize), Math.max(Math.min(lo, outSize), hi)];
}

/**
 * Unfolds one group of one image into `col` `[cg * r * s, ldCol]`, writing
 * columns `colOff .. colOff + oh * ow`.
 */
function im2col(
  x: Float32Array,
  xo: number,
  d: Dims,
  col: Float32Array,
  ldCol: number,
  colOff: number,
): void {
  const { h, w, r, s, oh, ow, sh, sw, ph, pw, dh, dw, cg, hw } = d;
  let row = 0;
  for (let ci = 0; ci < cg; ci++) {
    const xc = xo + ci * hw;
    for (let kr = 0; kr < r; kr++) {
      const hOff = kr * dh - ph;
      const [oyLo, oyHi] = validRange(hOff, sh, h, oh);
      for (let ks = 0; ks < s; ks++, row++) {
        const wOff = ks * dw - pw;
        const [oxLo, oxHi] = validRange(wOff, sw, w, ow);
        const base = row * ldCol + colOff;
        if (oyLo > 0) col.fill(0, base, base + oyLo * ow);
        if (oyHi < oh) col.fill(0, base + oyHi * ow, base + oh * ow);
        for (let oy = oyLo; oy < oyHi; oy++) {
          const q = base + oy * ow;
          const src = xc + (oy * sh + hOff) * w + wOff;
          for (let ox = 0; ox < oxLo; ox++) col[q + ox] = 0;
          if (sw === 1) {
            for (let ox = oxLo; ox < oxHi; ox++) col[q + ox] = x[src + ox];
          } else {
            for (let ox = oxLo, si = src + oxLo * sw; ox < oxHi; ox++) {
              col[q + ox] = x[si];
              si += sw;
            }
          }
          for (let ox = oxHi; ox < ow; ox++) col[q + ox] = 0;
        }
      }
    }
  }
}

/** Folds `col` back, adding into one group of one image of `dx`. */
function col2im(
  col: Float32Array,
  ldCol: number,
  colOff: number,
  d: Dims,
  dx: Float32Array,
  xo: number,
): void {
  const { h, w, r, s, oh, ow, sh, sw, ph, pw, dh, dw, cg, hw } = d;
  let row = 0;
  for (let ci = 0; ci < cg; ci++) {
    const xc = xo + ci * hw;
    for (let kr = 0; kr < r; kr++) {
      const hOff = kr * dh - ph;
      const [oyLo, oyHi] = validRange(hOff, sh, h, oh);
      for (let ks = 0; ks < s; ks++, row++) {
        const wOff = ks * dw - pw;
        const [oxLo, oxHi] = validRange(wOff, sw, w, ow);
        const base = row * ldCol + colOff;
        for (let oy = oyLo; oy < oyHi; oy++) {
          const q = base + oy * ow;
          const dst = xc + (oy * sh + hOff) * w + wOff;
          if (sw === 1) {
            for (let ox = oxLo; ox < oxHi; ox++) dx[dst + ox] += col[q + ox];
          } else {
            for (let ox = oxLo, di = dst + oxLo * sw; ox < oxHi; ox++) {
              dx[di] += col[q + ox];
              di += sw;
            }
          }
        }
      }
    }
  }
}

/**
 * Moves `[k, nb, ohw]` (GEMM output for `nb` images) into `[nb, k, ohw]`
 * (NCHW), adding to `dst` at image `img0`.
 */
function scatterImages(
  src: Float32Array,
  dst: Float32Array,
  img0: number,
  nb: number,
  k: number,
  ohw: number,
  kOff: number,
  kTotal: number,
): void {
  for (let kk = 0; kk < k; kk++) {
    for (let b = 0; b < nb; b++) {
      const so = (kk * nb + b) * ohw;
      const dOff = ((img0 + b) * kTotal + kOff + kk) * ohw;
      dst.set(src.subarray(so, so + ohw), dOff);
    }
  }
}

/** The inverse of {@linkcode scatterImages}: `[nb, k, ohw]` → `[k, nb, ohw]`. */
function gatherImages(
  src: Float32Array,
  dst: Float32Array,
  img0: number,
  nb: number,
  k: number,
  ohw: number,
  kOff: number,
  kTotal: number,
): void {
  for (let kk = 0; kk < k; kk++) {
    for (let b = 0; b < nb; b++) {
      const so = ((img0 + b) * kTotal + kOff + kk) * ohw;
      dst.set(src.subarray(so, so + ohw), (kk * nb + b) * ohw);
    }
  }
}

/**
 * Convolution forward: `x` `[n, c, h, w]`, `w` `[k, c / groups, r, s]`,
 * optional `bias` `[k]` → `[n, k, oh, ow]`.
 *
 * @param x Input.
 * @param w Weight.
 * @param bias Bias or `null`.
 * @param g Geometry.
 * @returns The output.
 */
export function conv2dForward(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  g: Conv2dGeometry,
): Float32Array {
  const d = dims(g);
  const { n, k, kg, cg, crs, hw, ohw, groups } = d;
  const y = new Float32Array(n * k * ohw);
  if (n === 0 || ohw === 0 || k === 0) return y;
  if (crs === 0) {
    if (bias) addBias(y, bias, n, k, ohw);
    return y;
  }
  if (useDirect(d)) {
    directForward(x, w, bias, d, y);
    return y;
  }
  const nb = imagesPerBatch(d);
  if (nb === 1) {
    const col = d.pointwise ? null : new Float32Array(crs * ohw);
    for (let img = 0; img < n; img++) {
      for (let gi = 0; gi < groups; gi++) {
        const xo = (img * d.c + gi * cg) * hw;
        let bm: Float32Array;
        if (col === null) {
          bm = x.subarray(xo, xo + cg * hw);
        } else {
          im2col(x, xo, d, col, ohw, 0);
          bm = col;
        }
        const yo = (img * k + gi * kg) * ohw;
        sgemm(
          false,
          false,
          kg,
          ohw,
          crs,
          1,
          w.subarray(gi * kg * crs),
          crs,
          bm,
          ohw,
          0,
          y.subarray(yo),
          ohw,
        );
      }
    }
  } else {
    const col = new Float32Array(crs * nb * ohw);
    const out = new Float32Array(kg * nb * ohw);
    for (let img0 = 0; img0 < n; img0 += nb) {
      const cnt = Math.min(nb, n - img0);
      const ld = cnt * ohw;
      for (let gi = 0; gi < groups; gi++) {
        for (let b = 0; b < cnt; b++) {
          im2col(x, ((img0 + b) * d.c + gi * cg) * hw, d, col, ld, b * ohw);
        }
        sgemm(
          false,
          false,
          kg,
          ld,
          crs,
          1,
          w.subarray(gi * kg * crs),
          crs,
          col,
          ld,
          0,
          out,
          ld,
        );
        scatterImages(out, y, img0, cnt, kg, ohw, gi * kg, k);
      }
    }
  }
  if (bias) addBias(y, bias, n, k, ohw);
  return y;
}

function addBias(
  y: Float32Array,
  bias: Float32Array,
  n: number,
  k: number,
  ohw: number,
): void {
  for (let img = 0; img < n; img++) {
    for (let kk = 0; kk < k; kk++) {
      const b = bias[kk];
      const o = (img * k + kk) * ohw;
      for (let i = o; i < o + ohw; i++) y[i] += b;
    }
  }
}

/**
 * Convolution backward with respect to the input: `dy` `[n, k, oh, ow]`,
 * `w` `[k, c / groups, r, s]` → `dx` `[n, c, h, w]`.
 *
 * @param dy Gradient of the output.
 * @param w Weight.
 * @param g Geometry.
 * @returns The gradient of the input.
 */
export function conv2dBackwardData(
  dy: Float32Array,
  w: Float32Array,
  g: Conv2dGeometry,
): Float32Array {
  const d = dims(g);
  const { n, c, k, kg, cg, crs, hw, ohw, groups } = d;
  const dx = new Float32Array(n * c * hw);
  if (n === 0 || ohw === 0 || k === 0 || crs === 0) return dx;
  if (useDirect(d)) {
    directBackwardData(dy, w, d, dx);
    return dx;
  }
  const nb = d.pointwise ? 1 : imagesPerBatch(d);
  if (nb === 1) {
    const col = d.pointwise ? null : new Float32Array(crs * ohw);
    for (let img = 0; img < n; img++) {
      for (let gi = 0; gi < groups; gi++) {
        const xo = (img * c + gi * cg) * hw;
        const yo = (img * k + gi * kg) * ohw;
        const wg = w.subarray(gi * kg * crs);
        const dyg = dy.subarray(yo);
        if (col === null) {
          // dx[cg, hw] = W^T [cg, kg] @ dy [kg, hw]
          sgemm(true, false, cg, hw, kg, 1, wg, crs, dyg, ohw, 0, dx.subarray(xo), hw);
        } else {
          sgemm(true, false, crs, ohw, kg, 1, wg, crs, dyg, ohw, 0, col, ohw);
          col2im(col, ohw, 0, d, dx, xo);
        }
      }
    }
    return dx;
  }
  const col = new Float32Array(crs * nb * ohw);
  const dyb = new Float32Array(kg * nb * ohw);
  for (let img0 = 0; img0 < n; img0 += nb) {
    const cnt = Math.min(nb, n - img0);
    const ld = cnt * ohw;
    for (let gi = 0; gi < groups; gi++) {
      gatherImages(dy, dyb, img0, cnt, kg, ohw, gi * kg, k);
      sgemm(true, false, crs, ld, kg, 1, w.subarray(gi * kg * crs), crs, dyb, ld, 0, col, ld);
      for (let b = 0; b < cnt; b++) {
        col2im(col, ld, b * ohw, d, dx, ((img0 + b) * c + gi * cg) * hw);
      }
    }
  }
  return dx;
}

/**
 * Convolution backward with respect to the weight: `x` `[n, c, h, w]`, `dy`
 * `[n, k, oh, ow]` → `dw` `[k, c / groups, r, s]`.
 *
 * @param x Input of the forward pass.
 * @param dy Gradient of the output.
 * @param g Geometry.
 * @returns The gradient of the weight.
 */
export function conv2dBackwardFilter(
  x: Float32Array,
  dy: Float32Array,
  g: Conv2dGeometry,
): Float32Array {
  const d = dims(g);
  const { n, c, k, kg, cg, crs, hw, ohw, groups } = d;
  const dw = new Float32Array(k * crs);
  if (n === 0 || ohw === 0 || k === 0 || crs === 0) return dw;
  if (useDirect(d)) {
    directBackwardFilter(x, dy, d, dw);
    return dw;
  }
  const nb = imagesPerBatch(d);
  if (nb === 1) {
    const col = d.pointwise ? null : new Float32Array(crs * ohw);
    for (let img = 0; img < n; img++) {
      for (let gi = 0; gi < groups; gi++) {
        const xo = (img * c + gi * cg) * hw;
        let bm: Float32Array;
        if (col === null) {
          bm = x.subarray(xo, xo + cg * hw);
        } else {
          im2col(x, xo, d, col, ohw, 0);
          bm = col;
        }
        // dw[kg, crs] += dy[kg, ohw] @ col^T [ohw, crs]
        sgemm(
          false,
          true,
          kg,
          crs,
          ohw,
          1,
          dy.subarray((img * k + gi * kg) * ohw),
          ohw,
          bm,
          ohw,
          img === 0 ? 0 : 1,
          dw.subarray(gi * kg * crs),
          crs,
        );
      }
    }
    return dw;
  }
  const col = new Float32Array(crs * nb * ohw);
  const dyb = new Float32Array(kg * nb * ohw);
  for (let img0 = 0; img0 < n; img0 += nb) {
    const cnt = Math.min(nb, n - img0);
    const ld = cnt * ohw;
    for (let gi = 0; gi < groups; gi++) {
      for (let b = 0; b < cnt; b++) {
        im2col(x, ((img0 + b) * c + gi * cg) * hw, d, col, ld, b * ohw);
      }
      gatherImages(dy, dyb, img0, cnt, kg, ohw, gi * kg, k);
      sgemm(
        false,
        true,
        kg,
        crs,
        ld,
        1,
        dyb,
        ld,
        col,
        ld,
        img0 === 0 ? 0 : 1,
        dw.subarray(gi * kg * crs),
        crs,
      );
    }
  }
  return dw;
}

// ---- direct kernels (few taps, few output channels) ----------------------

/** Per-tap input offsets and kernel positions for one group. */
interface Taps {
  /** Offset of tap t from the window origin in the input group. */
  off: Int32Array;
  /** Kernel row offset `kr * dh` of tap t. */
  dy: Int32Array;
  /** Kernel column offset `ks * dw` of tap t. */
  dx: Int32Array;
}

function taps(d: Dims): Taps {
  const { cg, r, s, dh, dw, w, hw } = d;
  const n = cg * r * s;
  const off = new Int32Array(n);
  const ty = new Int32Array(n);
  const tx = new Int32Array(n);
  let t = 0;
  for (let ci = 0; ci < cg; ci++) {
    for (let kr = 0; kr < r; kr++) {
      for (let ks = 0; ks < s; ks++, t++) {
        off[t] = ci * hw + kr * dh * w + ks * dw;
        ty[t] = kr * dh;
        tx[t] = ks * dw;
      }
    }
  }
  return { off, dy: ty, dx: tx };
}

/** Output rows/columns whose whole window lies inside the input. */
function interior(
  size: number,
  outSize: number,
  stride: number,
  pad: number,
  span: number,
): [number, number] {
  // o * stride - pad >= 0 and o * stride - pad + span - 1 <= size - 1
  const lo = Math.min(outSize, Math.ceil(pad / stride));
  const hiRaw = size - span + pad;
  const hi = hiRaw < 0 ? 0 : Math.min(outSize, Math.floor(hiRaw / stride) + 1);
  return [lo, Math.max(lo, hi)];
}

function directForward(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  d: Dims,
  y: Float32Array,
): void {
  const { n, c, h, k, kg, cg, crs, hw, oh, ow, ohw, groups, sh, sw, ph, pw } =
    d;
  const W = d.w;
  const tp = taps(d);
  const toff = tp.off;
  const [oyLo, oyHi] = interior(h, oh, sh, ph, (d.r - 1) * d.dh + 1);
  const [oxLo, oxHi] = interior(W, ow, sw, pw, (d.s - 1) * d.dw + 1);
  // weights of 4 output channels interleaved per tap: wt[t * 4 + j]
  const wt = new Float64Array(crs * 4);
  for (let gi = 0; gi < groups; gi++) {
    for (let k0 = 0; k0 < kg; k0 += 4) {
      const kb = Math.min(4, kg - k0);
      wt.fill(0);
      for (let j = 0; j < kb; j++) {
        const wo = (gi * kg + k0 + j) * crs;
        for (let t = 0; t < crs; t++) wt[t * 4 + j] = w[wo + t];
      }
      const b0 = bias && kb > 0 ? bias[gi * kg + k0] : 0;
      const b1 = bias && kb > 1 ? bias[gi * kg + k0 + 1] : 0;
      const b2 = bias && kb > 2 ? bias[gi * kg + k0 + 2] : 0;
      const b3 = bias && kb > 3 ? bias[gi * kg + k0 + 3] : 0;
      for (let img = 0; img < n; img++) {
        const xg = (img * c + gi * cg) * hw;
        const yo = (img * k + gi * kg + k0) * ohw;
        for (let oy = 0; oy < oh; oy++) {
          const iy = oy * sh - ph;
          const rowInterior = oy >= oyLo && oy < oyHi;
          for (let ox = 0; ox < ow; ox++) {
            const ix = ox * sw - pw;
            let a0 = b0, a1 = b1, a2 = b2, a3 = b3;
            if (rowInterior && ox >= oxLo && ox < oxHi) {
              const base = xg + iy * W + ix;
              for (let t = 0, q = 0; t < crs; t++, q += 4) {
                const v = x[base + toff[t]];
                a0 += wt[q] * v;
                a1 += wt[q + 1] * v;
                a2 += wt[q + 2] * v;
                a3 += wt[q + 3] * v;
              }
            } else {
              const base = xg + iy * W + ix;
              for (let t = 0, q = 0; t < crs; t++, q += 4) {
                const yy = iy + tp.dy[t];
                const xx = ix + tp.dx[t];
                if (yy < 0 || yy >= h || xx < 0 || xx >= W) continue;
                const v = x[base + toff[t]];
                a0 += wt[q] * v;
                a1 += wt[q + 1] * v;
                a2 += wt[q + 2] * v;
                a3 += wt[q + 3] * v;
              }
            }
            const p = yo + oy * ow + ox;
            y[p] = a0;
            if (kb > 1) y[p + ohw] = a1;
            if (kb > 2) y[p + 2 * ohw] = a2;
            if (kb > 3) y[p + 3 * ohw] = a3;
          }
        }
      }
    }
  }
}

function directBackwardFilter(
  x: Float32Array,
  dy: Float32Array,
  d: Dims,
  dw: Float32Array,
): void {
  const { n, c, h, k, kg, cg, crs, hw, oh, ow, ohw, groups, sh, sw, ph, pw } =
    d;
  const W = d.w;
  const tp = taps(d);
  // For each tap: dw[kk, t] = sum over images and output pixels of
  // dy[kk, p] * x[window(p) + t], four output channels at a time.
  for (let gi = 0; gi < groups; gi++) {
    for (let k0 = 0; k0 < kg; k0 += 4) {
      const kb = Math.min(4, kg - k0);
      for (let t = 0; t < crs; t++) {
        const toff = tp.off[t];
        const [oyLo, oyHi] = validRange(tp.dy[t] - ph, sh, h, oh);
        const [oxLo, oxHi] = validRange(tp.dx[t] - pw, sw, W, ow);
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (let img = 0; img < n; img++) {
          const xg = (img * c + gi * cg) * hw + toff;
          const yo = (img * k + gi * kg + k0) * ohw;
          for (let oy = oyLo; oy < oyHi; oy++) {
            const xr = xg + (oy * sh - ph) * W - pw;
            const yr = yo + oy * ow;
            if (kb === 4) {
              for (let ox = oxLo; ox < oxHi; ox++) {
                const v = x[xr + ox * sw];
                const q = yr + ox;
                a0 += dy[q] * v;
                a1 += dy[q + ohw] * v;
                a2 += dy[q + 2 * ohw] * v;
                a3 += dy[q + 3 * ohw] * v;
              }
            } else {
              for (let ox = oxLo; ox < oxHi; ox++) {
                const v = x[xr + ox * sw];
                const q = yr + ox;
                a0 += dy[q] * v;
                if (kb > 1) a1 += dy[q + ohw] * v;
                if (kb > 2) a2 += dy[q + 2 * ohw] * v;
              }
            }
          }
        }
        const o = (gi * kg + k0) * crs + t;
        dw[o] = a0;
        if (kb > 1) dw[o + crs] = a1;
        if (kb > 2) dw[o + 2 * crs] = a2;
        if (kb > 3) dw[o + 3 * crs] = a3;
      }
    }
  }
}

function directBackwardData(
  dy: Float32Array,
  w: Float32Array,
  d: Dims,
  dx: Float32Array,
): void {
  const { n, c, h, k, kg, cg, crs, hw, oh, ow, ohw, groups, sh, sw, ph, pw } =
    d;
  const W = d.w;
  const tp = taps(d);
  // Scatter: dx[window(p) + t] += sum_j w[j, t] * dy[j, p], per tap row.
  for (let gi = 0; gi < groups; gi++) {
    for (let k0 = 0; k0 < kg; k0 += 4) {
      const kb = Math.min(4, kg - k0);
      for (let t = 0; t < crs; t++) {
        const toff = tp.off[t];
        const w0 = w[(gi * kg + k0) * crs + t];
        const w1 = kb > 1 ? w[(gi * kg + k0 + 1) * crs + t] : 0;
        const w2 = kb > 2 ? w[(gi * kg + k0 + 2) * crs + t] : 0;
        const w3 = kb > 3 ? w[(gi * kg + k0 + 3) * crs + t] : 0;
        const [oyLo, oyHi] = validRange(tp.dy[t] - ph, sh, h, oh);
        const [oxLo, oxHi] = validRange(tp.dx[t] - pw, sw, W, ow);
        const o1 = kb > 1 ? ohw : 0;
        const o2 = kb > 2 ? 2 * ohw : 0;
        const o3 = kb > 3 ? 3 * ohw : 0;
        for (let img = 0; img < n; img++) {
          const xg = (img * c + gi * cg) * hw + toff;
          const yo = (img * k + gi * kg + k0) * ohw;
          for (let oy = oyLo; oy < oyHi; oy++) {
            const xr = xg + (oy * sh - ph) * W - pw;
            const yr = yo + oy * ow;
            for (let ox = oxLo; ox < oxHi; ox++) {
              const q = yr + ox;
              dx[xr + ox * sw] += w0 * dy[q] + w1 * dy[q + o1] +
                w2 * dy[q + o2] + w3 * dy[q + o3];
            }
          }
        }
      }
    }
  }
}
