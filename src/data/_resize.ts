/**
 * Resampling of 8-bit images, ported from Pillow 9.4's `libImaging/Resample.c`
 * so that `Resize` gives what torchvision's `Resize` gives on a PIL image:
 * a separable two-pass convolution (horizontal first, rounded to 8 bits in
 * between), filter support widened by the downscale factor (the antialiasing
 * PIL always applies when shrinking), pixel centres at +0.5, and
 * coefficients in 22-bit fixed point with PIL's rounding. The result is
 * bit-identical to Pillow's for the same decoded pixels.
 *
 * The two passes run in C when the CPU backend's native kernels build
 * (`kd_resample_h_u8`, `kd_resample_v_u8` in `backend/cpu/native_source.ts`:
 * the same integer arithmetic, so the same bytes); the TypeScript passes
 * here are the fallback and the tests' oracle.
 *
 * Worker-safe: no tensor imports.
 *
 * @module
 */

import type { RawImage } from "./image.ts";
import { newRawImage } from "./_image_util.ts";
import { nativeKernels } from "../backend/cpu/native.ts";

let nativeOn = true;

/**
 * Turns the C resampling passes on (the default, when the native kernels
 * build) or off, for the tests that compare them with the TypeScript ones.
 *
 * @param on Whether to use them.
 */
export function setNativeResize(on: boolean): void {
  nativeOn = on;
}

function kernels() {
  return nativeOn ? nativeKernels() : null;
}

/** Resampling filters, named as `torchvision.transforms.InterpolationMode`. */
export type Interpolation = "nearest" | "bilinear" | "bicubic";

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
const MAX = 255 << PRECISION_BITS;

function bilinearFilter(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

function bicubicFilter(x: number): number {
  // Pillow's bicubic, a = -0.5.
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Per-output-pixel source ranges and fixed-point weights of one axis. */
interface Coeffs {
  /** Taps per output pixel (the stride of `weights`). */
  ksize: number;
  /** `[xmin, count]` per output pixel. */
  bounds: Int32Array;
  /** `ksize` weights per output pixel, summing to about 2^22. */
  weights: Int32Array;
}

const coeffCache = new Map<string, Coeffs>();

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`, memoised. */
function coeffs(
  inSize: number,
  outSize: number,
  filter: Interpolation,
): Coeffs {
  const key = `${inSize},${outSize},${filter}`;
  const hit = coeffCache.get(key);
  if (hit) return hit;
  const [fn, baseSupport] = filter === "bicubic"
    ? [bicubicFilter, 2]
    : [bilinearFilter, 1];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = baseSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] = w < 0
        ? Math.trunc(-0.5 + w * ONE)
        : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const c = { ksize, bounds, weights };
  if (coeffCache.size > 256) coeffCache.clear();
  coeffCache.set(key, c);
  return c;
}

function clip8(ss: number): number {
  return ss >= MAX ? 255 : ss <= 0 ? 0 : ss >> PRECISION_BITS;
}

/** Horizontal pass over rows `[y0, y0 + rows)` of `src`. */
function horizontal(
  src: RawImage,
  y0: number,
  rows: number,
  outW: number,
  c: Coeffs,
): RawImage {
  const ch = src.channels;
  const out = newRawImage(outW, rows, ch, src.mode);
  const { ksize, bounds, weights } = c;
  const s = src.data, d = out.data;
  const k = kernels();
  if (k) {
    k.kd_resample_h_u8(
      s,
      src.width,
      y0,
      rows,
      ch,
      d,
      outW,
      bounds,
      weights,
      ksize,
    );
    return out;
  }
  const inStride = src.width * ch;
  for (let y = 0; y < rows; y++) {
    const row = (y + y0) * inStride;
    let o = y * outW * ch;
    if (ch === 1) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], n = bounds[xx * 2 + 1];
        const kb = xx * ksize;
        let ss = HALF;
        let p = row + xmin;
        for (let x = 0; x < n; x++) ss += s[p++] * weights[kb + x];
        d[o++] = clip8(ss);
      }
    } else {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], n = bounds[xx * 2 + 1];
        const kb = xx * ksize;
        let s0 = HALF, s1 = HALF, s2 = HALF;
        let p = row + xmin * 3;
        for (let x = 0; x < n; x++) {
          const w = weights[kb + x];
          s0 += s[p] * w;
          s1 += s[p + 1] * w;
          s2 += s[p + 2] * w;
          p += 3;
        }
        d[o++] = clip8(s0);
        d[o++] = clip8(s1);
        d[o++] = clip8(s2);
      }
    }
  }
  return out;
}

/** Vertical pass; `bounds` are relative to `src`'s first row. */
function vertical(
  src: RawImage,
  outH: number,
  c: Coeffs,
  shift: number,
): RawImage {
  const ch = src.channels;
  const w = src.width;
  const out = newRawImage(w, outH, ch, src.mode);
  const { ksize, bounds, weights } = c;
  const s = src.data, d = out.data;
  const stride = w * ch;
  const k = kernels();
  if (k) {
    k.kd_resample_v_u8(s, stride, d, outH, bounds, weights, ksize, shift);
    return out;
  }
  const acc = new Int32Array(stride);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2] - shift, n = bounds[yy * 2 + 1];
    const kb = yy * ksize;
    if (n === 2) {
      // Upscaling: two taps, one pass without the accumulator.
      const w0 = weights[kb], w1 = weights[kb + 1];
      const r0 = ymin * stride, r1 = r0 + stride, o = yy * stride;
      for (let i = 0; i < stride; i++) {
        d[o + i] = clip8(HALF + s[r0 + i] * w0 + s[r1 + i] * w1);
      }
      continue;
    }
    acc.fill(HALF);
    for (let y = 0; y < n; y++) {
      const wgt = weights[kb + y];
      const row = (ymin + y) * stride;
      for (let i = 0; i < stride; i++) acc[i] += s[row + i] * wgt;
    }
    const o = yy * stride;
    for (let i = 0; i < stride; i++) d[o + i] = clip8(acc[i]);
  }
  return out;
}

function nearest(img: RawImage, outW: number, outH: number): RawImage {
  const ch = img.channels;
  const out = newRawImage(outW, outH, ch, img.mode);
  const xs = new Int32Array(outW);
  for (let x = 0; x < outW; x++) {
    xs[x] = Math.min(Math.floor((x + 0.5) * img.width / outW), img.width - 1);
  }
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(
      Math.floor((y + 0.5) * img.height / outH),
      img.height - 1,
    );
    const srow = sy * img.width * ch;
    let o = y * outW * ch;
    for (let x = 0; x < outW; x++) {
      const p = srow + xs[x] * ch;
      for (let c = 0; c < ch; c++) out.data[o++] = img.data[p + c];
    }
  }
  return out;
}

/**
 * Resizes an 8-bit image as PIL's `Image.resize((w, h), filter)` does.
 *
 * @param img The image.
 * @param outW Output width.
 * @param outH Output height.
 * @param filter The filter (default bilinear).
 * @returns A new image (or `img` itself when the size is unchanged).
 */
export function resample(
  img: RawImage,
  outW: number,
  outH: number,
  filter: Interpolation = "bilinear",
): RawImage {
  if (outW === img.width && outH === img.height) return img;
  if (filter === "nearest") return nearest(img, outW, outH);
  const needH = outW !== img.width, needV = outH !== img.height;
  const cv = coeffs(img.height, outH, filter);
  let cur = img;
  let shift = 0;
  if (needH) {
    // Only the rows the vertical pass reads (Pillow's ybox_first/last).
    const first = cv.bounds[0];
    const last = cv.bounds[outH * 2 - 2] + cv.bounds[outH * 2 - 1];
    const rows = needV ? last - first : img.height;
    const y0 = needV ? first : 0;
    cur = horizontal(img, y0, rows, outW, coeffs(img.width, outW, filter));
    shift = y0;
  }
  if (needV) cur = vertical(cur, outH, cv, shift);
  return cur;
}
