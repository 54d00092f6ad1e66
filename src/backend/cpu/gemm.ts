/**
 * Single-precision GEMM for the CPU backend: OpenBLAS through FFI when it
 * loads, a cache-blocked, register-tiled TypeScript kernel when it does not
 * (with one warning on stderr). An OpenBLAS named by `KDENO_OPENBLAS` that
 * does not load is an error, not a fallback (see `ffi/find_library.ts`).
 *
 * Both follow BLAS `sgemm` semantics on row-major storage:
 * `C = alpha * op(A) @ op(B) + beta * C`, `op(A)` is `[m, k]`, `op(B)` is
 * `[k, n]`; with `beta == 0` the old contents of C are not read.
 *
 * @module
 */

import { BackendUnavailableError } from "../../../ffi/find_library.ts";
import {
  CBLAS_NO_TRANS,
  CBLAS_ROW_MAJOR,
  CBLAS_TRANS,
  openBlas,
  openBlasError,
  openBlasFailure,
} from "../../../ffi/openblas.ts";

// Blocking (Goto/BLIS style): a KC x NC panel of op(B) is packed into NR-wide
// column strips, an MC x KC block of op(A) into MR-tall row strips, and a
// 4 x 4 register tile of C is accumulated over KC. Packs are float64 so the
// micro-kernel's loads need no conversion.
const MR = 4;
const NR = 4;
const MC = 64;
const KC = 256;
const NC = 4096;

let packA = new Float64Array(0);
let packB = new Float64Array(0);

/** Below this many multiply-adds the FFI call costs more than it saves. */
const SMALL_PRODUCT = 4096;

/** Which GEMM implementation {@linkcode sgemm} uses. */
export type GemmImpl = "auto" | "openblas" | "typescript";
let impl: GemmImpl = "auto";
let warned = false;

/**
 * Chooses the GEMM implementation: `"auto"` (OpenBLAS when it loads, the
 * default), `"openblas"` (OpenBLAS for every size; throws on the next call if
 * it does not load) or `"typescript"`.
 *
 * @param next The implementation to use from now on.
 */
export function setGemmImpl(next: GemmImpl): void {
  impl = next;
}

/**
 * Which implementation large products currently go to.
 *
 * @returns `"openblas"` when OpenBLAS is selected and loads, else
 * `"typescript"`.
 * @throws BackendUnavailableError when `KDENO_OPENBLAS` names a library
 *   that does not load (unless `"typescript"` is selected).
 */
export function gemmBackend(): "openblas" | "typescript" {
  if (impl === "typescript") return "typescript";
  return openBlas() !== null ? "openblas" : "typescript";
}

function warnFallback(): void {
  if (warned) return;
  warned = true;
  console.warn(
    `kdeno: OpenBLAS was not loaded, using TypeScript CPU kernels ` +
      `(slower).\n${openBlasError() ?? "unknown reason"}`,
  );
}

/**
 * `C = alpha * op(A) @ op(B) + beta * C` on row-major float32 matrices, as
 * BLAS `cblas_sgemm(CblasRowMajor, ...)` defines it. `a`, `b` and `c` may be
 * subarrays; the leading dimensions are the row strides of the stored
 * matrices (`lda >= k` for A stored `[m, k]`, `>= m` when `transA`).
 *
 * @param transA Use A transposed (A stored `[k, m]`).
 * @param transB Use B transposed (B stored `[n, k]`).
 * @param m Rows of `op(A)` and C.
 * @param n Columns of `op(B)` and C.
 * @param k Columns of `op(A)`, rows of `op(B)`.
 * @param alpha Scale of the product.
 * @param a Storage of A.
 * @param lda Row stride of A.
 * @param b Storage of B.
 * @param ldb Row stride of B.
 * @param beta Scale of the old C (0: C is not read).
 * @param c Storage of C, written in place.
 * @param ldc Row stride of C.
 * @throws BackendUnavailableError when OpenBLAS is to be used and does not
 *   load, but `setGemmImpl("openblas")` chose it or `KDENO_OPENBLAS` named
 *   it (the message lists each path with the loader's reason).
 */
export function sgemm(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
): void {
  if (m <= 0 || n <= 0) return;
  if (
    impl !== "typescript" && (impl === "openblas" || m * n * k >= SMALL_PRODUCT)
  ) {
    const blas = openBlas();
    if (blas !== null) {
      blas.symbols.cblas_sgemm(
        CBLAS_ROW_MAJOR,
        transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
        transB ? CBLAS_TRANS : CBLAS_NO_TRANS,
        m,
        n,
        k,
        alpha,
        a,
        Math.max(lda, 1),
        b,
        Math.max(ldb, 1),
        beta,
        c,
        Math.max(ldc, 1),
      );
      return;
    }
    if (impl === "openblas") {
      throw openBlasFailure() ?? new BackendUnavailableError("OpenBLAS", []);
    }
    warnFallback();
  }
  sgemmTs(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/**
 * The TypeScript GEMM: same contract as {@linkcode sgemm}, never calls
 * native code. Packs blocks of A and B into float64 strips and runs a 4 x 4
 * register-tiled micro-kernel over them.
 *
 * @param transA Use A transposed (A stored `[k, m]`).
 * @param transB Use B transposed (B stored `[n, k]`).
 * @param m Rows of `op(A)` and C.
 * @param n Columns of `op(B)` and C.
 * @param k Columns of `op(A)`, rows of `op(B)`.
 * @param alpha Scale of the product.
 * @param a Storage of A.
 * @param lda Row stride of A.
 * @param b Storage of B.
 * @param ldb Row stride of B.
 * @param beta Scale of the old C (0: C is not read).
 * @param c Storage of C, written in place.
 * @param ldc Row stride of C.
 */
export function sgemmTs(
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
): void {
  if (m <= 0 || n <= 0) return;
  if (beta !== 1) {
    for (let i = 0; i < m; i++) {
      const o = i * ldc;
      if (beta === 0) c.fill(0, o, o + n);
      else for (let j = o; j < o + n; j++) c[j] *= beta;
    }
  }
  if (k <= 0 || alpha === 0) return;

  const kcMax = Math.min(KC, k);
  const apLen = Math.ceil(Math.min(MC, m) / MR) * MR * kcMax;
  const bpLen = Math.ceil(Math.min(NC, n) / NR) * NR * kcMax;
  if (packA.length < apLen) packA = new Float64Array(apLen);
  if (packB.length < bpLen) packB = new Float64Array(bpLen);
  const pa = packA;
  const pb = packB;

  for (let jc = 0; jc < n; jc += NC) {
    const nc = Math.min(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      packPanelB(pb, b, ldb, transB, jc, nc, pc, kc);
      for (let ic = 0; ic < m; ic += MC) {
        const mc = Math.min(MC, m - ic);
        packPanelA(pa, a, lda, transA, ic, mc, pc, kc, alpha);
        for (let j0 = 0; j0 < nc; j0 += NR) {
          const nr = Math.min(NR, nc - j0);
          const cCol = jc + j0;
          for (let i0 = 0; i0 < mc; i0 += MR) {
            kernel4x4(
              kc,
              pa,
              i0 * kc,
              pb,
              j0 * kc,
              c,
              (ic + i0) * ldc + cCol,
              ldc,
              Math.min(MR, mc - i0),
              nr,
            );
          }
        }
      }
    }
  }
}

/** Packs `op(B)[pc:pc+kc, jc:jc+nc]` into NR-wide strips, zero-padded. */
function packPanelB(
  dst: Float64Array,
  b: Float32Array,
  ldb: number,
  transB: boolean,
  jc: number,
  nc: number,
  pc: number,
  kc: number,
): void {
  let q = 0;
  for (let j0 = 0; j0 < nc; j0 += NR) {
    const nr = Math.min(NR, nc - j0);
    const col = jc + j0;
    if (nr === NR) {
      if (transB) {
        // B stored [n, k]: op(B)[p, j] = b[j * ldb + p]
        const o0 = col * ldb + pc;
        const o1 = o0 + ldb;
        const o2 = o1 + ldb;
        const o3 = o2 + ldb;
        for (let p = 0; p < kc; p++) {
          dst[q] = b[o0 + p];
          dst[q + 1] = b[o1 + p];
          dst[q + 2] = b[o2 + p];
          dst[q + 3] = b[o3 + p];
          q += 4;
        }
      } else {
        let o = pc * ldb + col;
        for (let p = 0; p < kc; p++) {
          dst[q] = b[o];
          dst[q + 1] = b[o + 1];
          dst[q + 2] = b[o + 2];
          dst[q + 3] = b[o + 3];
          q += 4;
          o += ldb;
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const row = pc + p;
        for (let jj = 0; jj < NR; jj++) {
          if (jj < nr) {
            const j = col + jj;
            dst[q++] = transB ? b[j * ldb + row] : b[row * ldb + j];
          } else {
            dst[q++] = 0;
          }
        }
      }
    }
  }
}

/** Packs `alpha * op(A)[ic:ic+mc, pc:pc+kc]` into MR-tall strips, zero-padded. */
function packPanelA(
  dst: Float64Array,
  a: Float32Array,
  lda: number,
  transA: boolean,
  ic: number,
  mc: number,
  pc: number,
  kc: number,
  alpha: number,
): void {
  const full = mc - (mc % MR);
  if (transA && full > 0) {
    const strip = kc * MR;
    for (let p = 0; p < kc; p++) {
      const src = (pc + p) * lda + ic;
      let d = p * MR;
      for (let i = 0; i < full; i += MR) {
        dst[d] = alpha * a[src + i];
        dst[d + 1] = alpha * a[src + i + 1];
        dst[d + 2] = alpha * a[src + i + 2];
        dst[d + 3] = alpha * a[src + i + 3];
        d += strip;
      }
    }
  }
  let q = 0;
  for (let i0 = 0; i0 < mc; i0 += MR) {
    const mr = Math.min(MR, mc - i0);
    const row = ic + i0;
    if (mr === MR) {
      if (transA) {
        // A stored [k, m]: op(A)[i, p] = a[p * lda + i]; done for all full
        // strips at once below, reading the rows of A contiguously
        q += kc * MR;
      } else {
        const o0 = row * lda + pc;
        const o1 = o0 + lda;
        const o2 = o1 + lda;
        const o3 = o2 + lda;
        for (let p = 0; p < kc; p++) {
          dst[q] = alpha * a[o0 + p];
          dst[q + 1] = alpha * a[o1 + p];
          dst[q + 2] = alpha * a[o2 + p];
          dst[q + 3] = alpha * a[o3 + p];
          q += 4;
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const kk = pc + p;
        for (let ii = 0; ii < MR; ii++) {
          if (ii < mr) {
            const i = row + ii;
            dst[q++] = alpha * (transA ? a[kk * lda + i] : a[i * lda + kk]);
          } else {
            dst[q++] = 0;
          }
        }
      }
    }
  }
}

/** C[co..] += A-strip @ B-strip over kc, a 4 x 4 tile (mr x nr valid). */
function kernel4x4(
  kc: number,
  pa: Float64Array,
  ao: number,
  pb: Float64Array,
  bo: number,
  c: Float32Array,
  co: number,
  ldc: number,
  mr: number,
  nr: number,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let p = 0; p < kc; p++) {
    const b0 = pb[bo], b1 = pb[bo + 1], b2 = pb[bo + 2], b3 = pb[bo + 3];
    const a0 = pa[ao], a1 = pa[ao + 1], a2 = pa[ao + 2], a3 = pa[ao + 3];
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
    c20 += a2 * b0;
    c21 += a2 * b1;
    c22 += a2 * b2;
    c23 += a2 * b3;
    c30 += a3 * b0;
    c31 += a3 * b1;
    c32 += a3 * b2;
    c33 += a3 * b3;
    ao += 4;
    bo += 4;
  }
  if (mr === 4 && nr === 4) {
    let o = co;
    c[o] += c00;
    c[o + 1] += c01;
    c[o + 2] += c02;
    c[o + 3] += c03;
    o += ldc;
    c[o] += c10;
    c[o + 1] += c11;
    c[o + 2] += c12;
    c[o + 3] += c13;
    o += ldc;
    c[o] += c20;
    c[o + 1] += c21;
    c[o + 2] += c22;
    c[o + 3] += c23;
    o += ldc;
    c[o] += c30;
    c[o + 1] += c31;
    c[o + 2] += c32;
    c[o + 3] += c33;
    return;
  }
  storeRow(c, co, nr, c00, c01, c02, c03);
  if (mr > 1) storeRow(c, co + ldc, nr, c10, c11, c12, c13);
  if (mr > 2) storeRow(c, co + 2 * ldc, nr, c20, c21, c22, c23);
  if (mr > 3) storeRow(c, co + 3 * ldc, nr, c30, c31, c32, c33);
}

function storeRow(
  c: Float32Array,
  o: number,
  nr: number,
  v0: number,
  v1: number,
  v2: number,
  v3: number,
): void {
  c[o] += v0;
  if (nr > 1) c[o + 1] += v1;
  if (nr > 2) c[o + 2] += v2;
  if (nr > 3) c[o + 3] += v3;
}
