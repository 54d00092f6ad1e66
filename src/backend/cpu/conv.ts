/**
 * 2-D convolution kernels for the CPU backend: NCHW input, OIHW weight, with
 * stride, zero padding, dilation and groups, as `torch.nn.functional.conv2d`
 * defines them.
 *
 * Large convolutions go through im2col and {@linkcode sgemm}: per image when
 * the output plane is large, several images per GEMM when it is small (7x7,
 * 14x14), where per-image products would be too thin. A 1x1, stride 1,
 * unpadded convolution on a large plane multiplies the input planes
 * directly, without im2col. Convolutions with few taps (`c / groups * r * s
 * <= 64`) and few output channels per group (`<= 8`), such as the tutorial
 * student's 3 -> 4 channel stem or depthwise convolutions, use direct
 * register-tiled loops over a zero-padded copy of the input instead: there
 * the GEMM is too thin to pay for the im2col copy, and the direct loops are
 * about twice as fast as im2col with the TypeScript GEMM (and on par with
 * im2col plus OpenBLAS, on one core instead of two).
 *
 * @module
 */

import type { Conv2dGeometry } from "../backend.ts";
import { sgemm } from "./gemm.ts";
import { f32, i32 } from "./_array_pool.ts";
import {
  oneDnnConvBackwardData,
  oneDnnConvBackwardFilter,
  oneDnnConvForward,
} from "./onednn_conv.ts";

/** The element count of im2col buffers built for several images at once. */
const BATCH_COL_LIMIT = 1 << 23;
/** Output planes smaller than this are multiplied several images at a time. */
const SMALL_PLANE = 256;
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

/** Which convolution algorithm the conv2d kernels use. */
export type ConvAlgo = "auto" | "onednn" | "im2col" | "direct";
let algo: ConvAlgo = "auto";

/**
 * Forces one algorithm for every later call (for tests and benches):
 * `"auto"` (the default) runs oneDNN when it loads (except 1×1
 * convolutions, which are one GEMM already) and otherwise picks between the
 * TypeScript kernels per geometry; `"onednn"` uses oneDNN wherever it has an
 * implementation; `"im2col"` always uses im2col and GEMM, `"direct"` always
 * uses the direct loops.
 *
 * @param next The algorithm.
 */
export function setConvAlgo(next: ConvAlgo): void {
  algo = next;
}

function useOneDnn(d: Dims): boolean {
  return algo === "onednn" || (algo === "auto" && !d.pointwise);
}

function useDirect(d: Dims): boolean {
  if (algo === "im2col" || algo === "direct") return algo === "direct";
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
  if (n > 0 && ohw > 0 && k > 0 && crs > 0 && useOneDnn(d)) {
    const out = oneDnnConvForward(x, w, bias, g);
    if (out !== null) return out;
  }
  const y = f32(n * k * ohw);
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
    const col = d.pointwise ? null : f32(crs * ohw);
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
    const col = f32(crs * nb * ohw);
    const out = f32(kg * nb * ohw);
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
  if (n > 0 && ohw > 0 && k > 0 && crs > 0 && useOneDnn(d)) {
    const out = oneDnnConvBackwardData(dy, w, g);
    if (out !== null) return out;
  }
  const dx = f32(n * c * hw);
  if (n === 0 || ohw === 0 || k === 0 || crs === 0) return dx;
  if (useDirect(d)) {
    directBackwardData(dy, w, d, dx);
    return dx;
  }
  const nb = d.pointwise ? 1 : imagesPerBatch(d);
  if (nb === 1) {
    const col = d.pointwise ? null : f32(crs * ohw);
    for (let img = 0; img < n; img++) {
      for (let gi = 0; gi < groups; gi++) {
        const xo = (img * c + gi * cg) * hw;
        const yo = (img * k + gi * kg) * ohw;
        const wg = w.subarray(gi * kg * crs);
        const dyg = dy.subarray(yo);
        if (col === null) {
          // dx[cg, hw] = W^T [cg, kg] @ dy [kg, hw]
          sgemm(
            true,
            false,
            cg,
            hw,
            kg,
            1,
            wg,
            crs,
            dyg,
            ohw,
            0,
            dx.subarray(xo),
            hw,
          );
        } else {
          sgemm(true, false, crs, ohw, kg, 1, wg, crs, dyg, ohw, 0, col, ohw);
          col2im(col, ohw, 0, d, dx, xo);
        }
      }
    }
    return dx;
  }
  const col = f32(crs * nb * ohw);
  const dyb = f32(kg * nb * ohw);
  for (let img0 = 0; img0 < n; img0 += nb) {
    const cnt = Math.min(nb, n - img0);
    const ld = cnt * ohw;
    for (let gi = 0; gi < groups; gi++) {
      gatherImages(dy, dyb, img0, cnt, kg, ohw, gi * kg, k);
      sgemm(
        true,
        false,
        crs,
        ld,
        kg,
        1,
        w.subarray(gi * kg * crs),
        crs,
        dyb,
        ld,
        0,
        col,
        ld,
      );
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
  if (n > 0 && ohw > 0 && k > 0 && crs > 0 && useOneDnn(d)) {
    const out = oneDnnConvBackwardFilter(x, dy, g);
    if (out !== null) return out;
  }
  const dw = f32(k * crs);
  if (n === 0 || ohw === 0 || k === 0 || crs === 0) return dw;
  if (useDirect(d)) {
    directBackwardFilter(x, dy, d, dw);
    return dw;
  }
  const nb = imagesPerBatch(d);
  if (nb === 1) {
    const col = d.pointwise ? null : f32(crs * ohw);
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
  const col = f32(crs * nb * ohw);
  const dyb = f32(kg * nb * ohw);
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

/**
 * Copies one group of one image into a zero-padded buffer `[cg, hp, wp]` so
 * the direct kernels need no bounds checks.
 */
function padGroup(
  x: Float32Array,
  xo: number,
  d: Dims,
  hp: number,
  wp: number,
  dst: Float32Array,
): void {
  const { cg, h, w, ph, pw, hw } = d;
  if (hp === h && wp === w) {
    dst.set(x.subarray(xo, xo + cg * hw));
    return;
  }
  dst.fill(0);
  for (let ci = 0; ci < cg; ci++) {
    for (let iy = 0; iy < h; iy++) {
      const src = xo + ci * hw + iy * w;
      dst.set(x.subarray(src, src + w), (ci * hp + iy + ph) * wp + pw);
    }
  }
}

/** Tap offsets `ci * hp * wp + kr * dh * wp + ks * dw` in a padded group. */
function paddedTaps(d: Dims, hp: number, wp: number): Int32Array {
  const off = i32(d.crs);
  let t = 0;
  for (let ci = 0; ci < d.cg; ci++) {
    for (let kr = 0; kr < d.r; kr++) {
      for (let ks = 0; ks < d.s; ks++) {
        off[t++] = ci * hp * wp + kr * d.dh * wp + ks * d.dw;
      }
    }
  }
  return off;
}

/** Padded extent that every window of `out` outputs fits in. */
function paddedSize(
  size: number,
  pad: number,
  out: number,
  stride: number,
  span: number,
): number {
  return Math.max(size + 2 * pad, (out - 1) * stride + span);
}

function directForward(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  d: Dims,
  y: Float32Array,
): void {
  const { n, c, k, kg, cg, crs, hw, oh, ow, ohw, groups, sh, sw } = d;
  const hp = paddedSize(d.h, d.ph, oh, sh, (d.r - 1) * d.dh + 1);
  const wp = paddedSize(d.w, d.pw, ow, sw, (d.s - 1) * d.dw + 1);
  const xp = f32(cg * hp * wp);
  const toff = paddedTaps(d, hp, wp);
  // weights of 4 output channels interleaved per tap: wt[t * 4 + j]
  const wt = new Float64Array(crs * 4);
  for (let img = 0; img < n; img++) {
    for (let gi = 0; gi < groups; gi++) {
      padGroup(x, (img * c + gi * cg) * hw, d, hp, wp, xp);
      for (let k0 = 0; k0 < kg; k0 += 4) {
        const kb = Math.min(4, kg - k0);
        const kAbs = gi * kg + k0;
        wt.fill(0);
        for (let j = 0; j < kb; j++) {
          for (let t = 0; t < crs; t++) wt[t * 4 + j] = w[(kAbs + j) * crs + t];
        }
        const b0 = bias ? bias[kAbs] : 0;
        const b1 = bias && kb > 1 ? bias[kAbs + 1] : 0;
        const b2 = bias && kb > 2 ? bias[kAbs + 2] : 0;
        const b3 = bias && kb > 3 ? bias[kAbs + 3] : 0;
        const yo = (img * k + kAbs) * ohw;
        for (let oy = 0; oy < oh; oy++) {
          forwardRow(
            xp,
            toff,
            wt,
            y,
            oy * sh * wp,
            yo + oy * ow,
            ow,
            ohw,
            sw,
            crs,
            kb,
            b0,
            b1,
            b2,
            b3,
          );
        }
      }
    }
  }
}

/**
 * One output row of `directForward`: 4 output channels, all columns. A
 * function of its own so V8 optimises it as a whole after a few calls; as
 * inner loops of one long call it ran in on-stack-replaced code that fell
 * back to the interpreter at every loop exit.
 */
function forwardRow(
  xp: Float32Array,
  toff: Int32Array,
  wt: Float64Array,
  y: Float32Array,
  rowBase: number,
  yr: number,
  ow: number,
  ohw: number,
  sw: number,
  crs: number,
  kb: number,
  b0: number,
  b1: number,
  b2: number,
  b3: number,
): void {
  const sw2 = 2 * sw;
  const sw3 = 3 * sw;
  let ox = 0;
  // 4 output channels x 4 output columns per tile
  if (sw === 1) {
    for (; ox + 4 <= ow; ox += 4) {
      const base = rowBase + ox;
      let a00 = b0, a01 = b0, a02 = b0, a03 = b0;
      let a10 = b1, a11 = b1, a12 = b1, a13 = b1;
      let a20 = b2, a21 = b2, a22 = b2, a23 = b2;
      let a30 = b3, a31 = b3, a32 = b3, a33 = b3;
      for (let t = 0, q = 0; t < crs; t++, q += 4) {
        const o = base + toff[t];
        const x0 = xp[o], x1 = xp[o + 1], x2 = xp[o + 2];
        const x3 = xp[o + 3];
        const w0 = wt[q], w1 = wt[q + 1], w2 = wt[q + 2];
        const w3 = wt[q + 3];
        a00 += w0 * x0;
        a01 += w0 * x1;
        a02 += w0 * x2;
        a03 += w0 * x3;
        a10 += w1 * x0;
        a11 += w1 * x1;
        a12 += w1 * x2;
        a13 += w1 * x3;
        a20 += w2 * x0;
        a21 += w2 * x1;
        a22 += w2 * x2;
        a23 += w2 * x3;
        a30 += w3 * x0;
        a31 += w3 * x1;
        a32 += w3 * x2;
        a33 += w3 * x3;
      }
      store4x4(
        y,
        yr + ox,
        ohw,
        kb,
        a00,
        a01,
        a02,
        a03,
        a10,
        a11,
        a12,
        a13,
        a20,
        a21,
        a22,
        a23,
        a30,
        a31,
        a32,
        a33,
      );
    }
  }
  for (; ox + 4 <= ow; ox += 4) {
    const base = rowBase + ox * sw;
    let a00 = b0, a01 = b0, a02 = b0, a03 = b0;
    let a10 = b1, a11 = b1, a12 = b1, a13 = b1;
    let a20 = b2, a21 = b2, a22 = b2, a23 = b2;
    let a30 = b3, a31 = b3, a32 = b3, a33 = b3;
    for (let t = 0, q = 0; t < crs; t++, q += 4) {
      const o = base + toff[t];
      const x0 = xp[o], x1 = xp[o + sw], x2 = xp[o + sw2];
      const x3 = xp[o + sw3];
      const w0 = wt[q], w1 = wt[q + 1], w2 = wt[q + 2], w3 = wt[q + 3];
      a00 += w0 * x0;
      a01 += w0 * x1;
      a02 += w0 * x2;
      a03 += w0 * x3;
      a10 += w1 * x0;
      a11 += w1 * x1;
      a12 += w1 * x2;
      a13 += w1 * x3;
      a20 += w2 * x0;
      a21 += w2 * x1;
      a22 += w2 * x2;
      a23 += w2 * x3;
      a30 += w3 * x0;
      a31 += w3 * x1;
      a32 += w3 * x2;
      a33 += w3 * x3;
    }
    store4x4(
      y,
      yr + ox,
      ohw,
      kb,
      a00,
      a01,
      a02,
      a03,
      a10,
      a11,
      a12,
      a13,
      a20,
      a21,
      a22,
      a23,
      a30,
      a31,
      a32,
      a33,
    );
  }
  for (; ox < ow; ox++) {
    const base = rowBase + ox * sw;
    let a0 = b0, a1 = b1, a2 = b2, a3 = b3;
    for (let t = 0, q = 0; t < crs; t++, q += 4) {
      const v = xp[base + toff[t]];
      a0 += wt[q] * v;
      a1 += wt[q + 1] * v;
      a2 += wt[q + 2] * v;
      a3 += wt[q + 3] * v;
    }
    const p = yr + ox;
    y[p] = a0;
    if (kb > 1) y[p + ohw] = a1;
    if (kb > 2) y[p + 2 * ohw] = a2;
    if (kb > 3) y[p + 3 * ohw] = a3;
  }
}

/**
 * One 4-channel × 4-tap tile of `directBackwardFilter`, summed over one
 * image's pixels into `acc`. A function of its own so V8 optimises it as a
 * whole instead of through on-stack replacement of its inner loops.
 */
function filterTile(
  xp: Float32Array,
  dy: Float32Array,
  toff: Int32Array,
  acc: Float64Array,
  t0: number,
  crs: number,
  yo: number,
  kAbs: number,
  kb: number,
  d1: number,
  d2: number,
  d3: number,
  oh: number,
  ow: number,
  sh: number,
  sw: number,
  wp: number,
): void {
  const tb = Math.min(4, crs - t0);
  const o0 = toff[t0];
  const o1 = toff[t0 + Math.min(1, tb - 1)];
  const o2 = toff[t0 + Math.min(2, tb - 1)];
  const o3 = toff[t0 + Math.min(3, tb - 1)];
  let a00 = 0, a01 = 0, a02 = 0, a03 = 0;
  let a10 = 0, a11 = 0, a12 = 0, a13 = 0;
  let a20 = 0, a21 = 0, a22 = 0, a23 = 0;
  let a30 = 0, a31 = 0, a32 = 0, a33 = 0;
  for (let oy = 0; oy < oh; oy++) {
    const yr = yo + oy * ow;
    let xb = oy * sh * wp;
    for (let ox = 0; ox < ow; ox++) {
      const q = yr + ox;
      const g0 = dy[q], g1 = dy[q + d1], g2 = dy[q + d2];
      const g3 = dy[q + d3];
      const x0 = xp[xb + o0], x1 = xp[xb + o1], x2 = xp[xb + o2];
      const x3 = xp[xb + o3];
      a00 += g0 * x0;
      a01 += g0 * x1;
      a02 += g0 * x2;
      a03 += g0 * x3;
      a10 += g1 * x0;
      a11 += g1 * x1;
      a12 += g1 * x2;
      a13 += g1 * x3;
      a20 += g2 * x0;
      a21 += g2 * x1;
      a22 += g2 * x2;
      a23 += g2 * x3;
      a30 += g3 * x0;
      a31 += g3 * x1;
      a32 += g3 * x2;
      a33 += g3 * x3;
      xb += sw;
    }
  }
  const r0 = kAbs * crs + t0;
  accumulateRow(acc, r0, tb, a00, a01, a02, a03);
  if (kb > 1) accumulateRow(acc, r0 + crs, tb, a10, a11, a12, a13);
  if (kb > 2) accumulateRow(acc, r0 + 2 * crs, tb, a20, a21, a22, a23);
  if (kb > 3) accumulateRow(acc, r0 + 3 * crs, tb, a30, a31, a32, a33);
}

/** Stores a 4-channel x 4-column output tile (`kb` channels valid). */
function store4x4(
  y: Float32Array,
  p: number,
  ohw: number,
  kb: number,
  a00: number,
  a01: number,
  a02: number,
  a03: number,
  a10: number,
  a11: number,
  a12: number,
  a13: number,
  a20: number,
  a21: number,
  a22: number,
  a23: number,
  a30: number,
  a31: number,
  a32: number,
  a33: number,
): void {
  y[p] = a00;
  y[p + 1] = a01;
  y[p + 2] = a02;
  y[p + 3] = a03;
  if (kb > 1) {
    const p1 = p + ohw;
    y[p1] = a10;
    y[p1 + 1] = a11;
    y[p1 + 2] = a12;
    y[p1 + 3] = a13;
  }
  if (kb > 2) {
    const p2 = p + 2 * ohw;
    y[p2] = a20;
    y[p2 + 1] = a21;
    y[p2 + 2] = a22;
    y[p2 + 3] = a23;
  }
  if (kb > 3) {
    const p3 = p + 3 * ohw;
    y[p3] = a30;
    y[p3 + 1] = a31;
    y[p3 + 2] = a32;
    y[p3 + 3] = a33;
  }
}

function directBackwardFilter(
  x: Float32Array,
  dy: Float32Array,
  d: Dims,
  dw: Float32Array,
): void {
  const { n, c, k, kg, cg, crs, hw, oh, ow, ohw, groups, sh, sw } = d;
  const hp = paddedSize(d.h, d.ph, oh, sh, (d.r - 1) * d.dh + 1);
  const wp = paddedSize(d.w, d.pw, ow, sw, (d.s - 1) * d.dw + 1);
  const xp = f32(cg * hp * wp);
  const toff = paddedTaps(d, hp, wp);
  const acc = new Float64Array(k * crs);
  // dw[j, t] = sum over images and pixels p of dy[j, p] * xp[base(p) + t]:
  // 4 output channels x 4 taps per register tile. Channels or taps past the
  // end of a block repeat the last one and their sums are dropped.
  for (let img = 0; img < n; img++) {
    for (let gi = 0; gi < groups; gi++) {
      padGroup(x, (img * c + gi * cg) * hw, d, hp, wp, xp);
      for (let k0 = 0; k0 < kg; k0 += 4) {
        const kb = Math.min(4, kg - k0);
        const kAbs = gi * kg + k0;
        const yo = (img * k + kAbs) * ohw;
        const d1 = Math.min(1, kb - 1) * ohw;
        const d2 = Math.min(2, kb - 1) * ohw;
        const d3 = Math.min(3, kb - 1) * ohw;
        for (let t0 = 0; t0 < crs; t0 += 4) {
          filterTile(
            xp,
            dy,
            toff,
            acc,
            t0,
            crs,
            yo,
            kAbs,
            kb,
            d1,
            d2,
            d3,
            oh,
            ow,
            sh,
            sw,
            wp,
          );
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) dw[i] = acc[i];
}

function accumulateRow(
  acc: Float64Array,
  o: number,
  tb: number,
  v0: number,
  v1: number,
  v2: number,
  v3: number,
): void {
  acc[o] += v0;
  if (tb > 1) acc[o + 1] += v1;
  if (tb > 2) acc[o + 2] += v2;
  if (tb > 3) acc[o + 3] += v3;
}

function directBackwardData(
  dy: Float32Array,
  w: Float32Array,
  d: Dims,
  dx: Float32Array,
): void {
  const { n, c, k, kg, cg, crs, hw, oh, ow, ohw, groups, sh, sw } = d;
  const { h, ph, pw } = d;
  const W = d.w;
  const hp = paddedSize(h, ph, oh, sh, (d.r - 1) * d.dh + 1);
  const wp = paddedSize(W, pw, ow, sw, (d.s - 1) * d.dw + 1);
  const dxp = f32(cg * hp * wp);
  const toff = paddedTaps(d, hp, wp);
  const wt = new Float64Array(crs * 4);
  // Scatter into a padded buffer: dxp[base(p) + t] += sum_j w[j, t] dy[j, p]
  // for 4 output channels x 4 output columns at a time, then crop.
  for (let img = 0; img < n; img++) {
    for (let gi = 0; gi < groups; gi++) {
      dxp.fill(0);
      for (let k0 = 0; k0 < kg; k0 += 4) {
        const kb = Math.min(4, kg - k0);
        const kAbs = gi * kg + k0;
        wt.fill(0);
        for (let j = 0; j < kb; j++) {
          for (let t = 0; t < crs; t++) wt[t * 4 + j] = w[(kAbs + j) * crs + t];
        }
        // channels past the block read the last one again; their weights
        // are zero
        const e1 = Math.min(1, kb - 1) * ohw;
        const e2 = Math.min(2, kb - 1) * ohw;
        const e3 = Math.min(3, kb - 1) * ohw;
        const yo = (img * k + kAbs) * ohw;
        for (let oy = 0; oy < oh; oy++) {
          const rowBase = oy * sh * wp;
          const yr = yo + oy * ow;
          let ox = 0;
          for (; ox + 4 <= ow; ox += 4) {
            const q0 = yr + ox;
            const g00 = dy[q0], g01 = dy[q0 + 1], g02 = dy[q0 + 2];
            const g03 = dy[q0 + 3];
            const g10 = dy[q0 + e1], g11 = dy[q0 + e1 + 1];
            const g12 = dy[q0 + e1 + 2], g13 = dy[q0 + e1 + 3];
            const g20 = dy[q0 + e2], g21 = dy[q0 + e2 + 1];
            const g22 = dy[q0 + e2 + 2], g23 = dy[q0 + e2 + 3];
            const g30 = dy[q0 + e3], g31 = dy[q0 + e3 + 1];
            const g32 = dy[q0 + e3 + 2], g33 = dy[q0 + e3 + 3];
            const base = rowBase + ox * sw;
            for (let t = 0, q = 0; t < crs; t++, q += 4) {
              const o = base + toff[t];
              const w0 = wt[q], w1 = wt[q + 1], w2 = wt[q + 2], w3 = wt[q + 3];
              dxp[o] += w0 * g00 + w1 * g10 + w2 * g20 + w3 * g30;
              dxp[o + sw] += w0 * g01 + w1 * g11 + w2 * g21 + w3 * g31;
              dxp[o + 2 * sw] += w0 * g02 + w1 * g12 + w2 * g22 + w3 * g32;
              dxp[o + 3 * sw] += w0 * g03 + w1 * g13 + w2 * g23 + w3 * g33;
            }
          }
          for (; ox < ow; ox++) {
            const q0 = yr + ox;
            const g0 = dy[q0], g1 = dy[q0 + e1], g2 = dy[q0 + e2];
            const g3 = dy[q0 + e3];
            const base = rowBase + ox * sw;
            for (let t = 0, q = 0; t < crs; t++, q += 4) {
              dxp[base + toff[t]] += wt[q] * g0 + wt[q + 1] * g1 +
                wt[q + 2] * g2 + wt[q + 3] * g3;
            }
          }
        }
      }
      // crop the padding away
      const xo = (img * c + gi * cg) * hw;
      for (let ci = 0; ci < cg; ci++) {
        for (let iy = 0; iy < h; iy++) {
          const src = (ci * hp + iy + ph) * wp + pw;
          dx.set(dxp.subarray(src, src + W), xo + ci * hw + iy * W);
        }
      }
    }
  }
}
