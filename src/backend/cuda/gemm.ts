/**
 * Matrix products on cuBLAS, on the backend's stream, in the primary
 * context.
 *
 * cuBLAS is column-major; a row-major `R x C` matrix is its column-major
 * transpose. So the row-major `C[m, n] = op(A)[m, k] op(B)[k, n]` is the
 * column-major `C^T[n, m] = op(B)^T op(A)^T`: call `sgemm(opB, opA, n, m, k,
 * B, ldb, A, lda, C, n)` with each leading dimension the stored row length.
 *
 * Strict fp32 by default (`CUBLAS_DEFAULT_MATH` never uses TF32 for
 * `cublasSgemm`); TF32 tensor cores when {@link setCudaMathMode}`("tf32")`
 * or `KDENO_TF32=1`. Inside `amp.autocast` on CUDA, the inputs are rounded
 * to float16 or bfloat16 and the product runs on `cublasGemmEx` (half data,
 * `CUBLAS_COMPUTE_32F`, float32 output), as PyTorch's autocast matmul does
 * up to the output's type.
 *
 * @module
 */

import {
  CUBLAS_COMPUTE_32F,
  CUBLAS_DEFAULT_MATH,
  CUBLAS_GEMM_DEFAULT,
  CUBLAS_OP_N,
  CUBLAS_OP_T,
  CUBLAS_TF32_TENSOR_OP_MATH,
  type CublasLib,
  CUDA_R_16BF,
  CUDA_R_16F,
  CUDA_R_32F,
} from "../../../ffi/cublas.ts";
import { cudaAutocastDtype, type HalfDType } from "./autocast_state.ts";
import { toHalf } from "./half.ts";
import { envDirs } from "../../../ffi/find_library.ts";
import type { Storage } from "../backend.ts";
import { cublasStatusText, CudaError } from "./errors.ts";
import { cuda, type CudaRuntime, type CudaStorage } from "./runtime.ts";

/** How fp32 GEMMs may compute. */
export type CudaMathMode = "fp32" | "tf32";

let mathMode: CudaMathMode | null = null;
let envMode: CudaMathMode | null = null;

/**
 * Chooses strict fp32 (the default) or TF32 tensor cores for fp32 GEMMs on
 * the CUDA backend, as `torch.backends.cuda.matmul.allow_tf32` does. TF32
 * keeps fp32 range but rounds GEMM inputs to a 10-bit mantissa.
 *
 * @param mode `"fp32"` or `"tf32"`.
 */
export function setCudaMathMode(mode: CudaMathMode): void {
  if (mode !== "fp32" && mode !== "tf32") {
    throw new RangeError(
      `Cannot set the CUDA math mode: "${mode}" is not "fp32" or "tf32"`,
    );
  }
  mathMode = mode;
}

/**
 * The math mode fp32 GEMMs use: the one set with {@link setCudaMathMode},
 * else `"tf32"` when `KDENO_TF32=1`, else `"fp32"`.
 *
 * @returns The mode.
 */
export function getCudaMathMode(): CudaMathMode {
  if (mathMode) return mathMode;
  envMode ??= envDirs("KDENO_TF32")[0] === "1" ? "tf32" : "fp32";
  return envMode;
}

/** The options of a batched GEMM, as the backend contract has them. */
export interface GemmOptions {
  /** A is stored `[k, m]`. */
  transA: boolean;
  /** B is stored `[n, k]`. */
  transB: boolean;
  /** Number of products. */
  batch: number;
  /** Elements between A matrices (0 reuses one). */
  strideA: number;
  /** Elements between B matrices (0 reuses one). */
  strideB: number;
}

/** The column-major cuBLAS call that computes a row-major product. */
export interface CublasGemmArgs {
  /** cuBLAS `transa` (applies to its first matrix: our B). */
  transa: number;
  /** cuBLAS `transb` (applies to its second matrix: our A). */
  transb: number;
  /** cuBLAS `m` (our n). */
  m: number;
  /** cuBLAS `n` (our m). */
  n: number;
  /** cuBLAS `k`. */
  k: number;
  /** Leading dimension of cuBLAS's A (our B). */
  lda: number;
  /** Leading dimension of cuBLAS's B (our A). */
  ldb: number;
  /** Leading dimension of C. */
  ldc: number;
  /** Batch stride of cuBLAS's A (our B). */
  strideA: number;
  /** Batch stride of cuBLAS's B (our A). */
  strideB: number;
  /** Batch stride of C. */
  strideC: number;
}

/**
 * Maps the row-major contract onto cuBLAS's column-major arguments.
 *
 * @param m Rows of `op(A)` and C.
 * @param n Columns of `op(B)` and C.
 * @param k The inner dimension.
 * @param o Transposes, batch and strides.
 * @returns The arguments; pass our B as cuBLAS's A and our A as its B.
 */
export function cublasGemmArgs(
  m: number,
  n: number,
  k: number,
  o: GemmOptions,
): CublasGemmArgs {
  return {
    transa: o.transB ? CUBLAS_OP_T : CUBLAS_OP_N,
    transb: o.transA ? CUBLAS_OP_T : CUBLAS_OP_N,
    m: n,
    n: m,
    k,
    lda: o.transB ? k : n,
    ldb: o.transA ? m : k,
    ldc: n,
    strideA: o.strideB,
    strideB: o.strideA,
    strideC: m * n,
  };
}

/** Workspace for cuBLAS on Hopper, as its documentation recommends. */
const WORKSPACE_BYTES = 32 * 1024 * 1024;

const ONE = new Float32Array([1]);
const ZERO = new Float32Array([0]);

/** A cuBLAS handle bound to the runtime's stream. */
export class Blas {
  readonly #cb: CublasLib["symbols"];
  readonly #rt: CudaRuntime;
  readonly #handle: Deno.PointerObject;
  /** `cublasGetVersion_v2`, e.g. 130100. */
  readonly version: number;
  #applied: CudaMathMode | null = null;

  /**
   * Creates the handle, sets its stream, then its workspace (setting the
   * stream resets the workspace, so the order matters).
   *
   * @param lib The opened cuBLAS.
   * @param rt The runtime.
   */
  constructor(lib: CublasLib, rt: CudaRuntime) {
    const cb = this.#cb = lib.symbols;
    this.#rt = rt;
    const out = new BigUint64Array(1);
    this.#check(cb.cublasCreate_v2(out), "cublasCreate_v2");
    const handle = Deno.UnsafePointer.create(out[0]);
    if (!handle) {
      throw new CudaError("cuBLAS", "cublasCreate_v2", 0, "NULL handle");
    }
    this.#handle = handle;
    const version = new Int32Array(1);
    this.#check(cb.cublasGetVersion_v2(handle, version), "cublasGetVersion_v2");
    this.version = version[0];
    this.#check(
      cb.cublasSetStream_v2(handle, rt.device.stream),
      "cublasSetStream_v2",
    );
    const ws = rt.allocator.alloc(WORKSPACE_BYTES);
    this.#check(
      cb.cublasSetWorkspace_v2(handle, ws.pointer, BigInt(ws.bytes)),
      "cublasSetWorkspace_v2",
    );
  }

  #check(rc: number, call: string): void {
    if (rc !== 0) {
      throw new CudaError("cuBLAS", call, rc, cublasStatusText(this.#cb, rc));
    }
  }

  #applyMathMode(): void {
    const mode = getCudaMathMode();
    if (mode === this.#applied) return;
    this.#check(
      this.#cb.cublasSetMathMode(
        this.#handle,
        mode === "tf32" ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH,
      ),
      "cublasSetMathMode",
    );
    this.#applied = mode;
  }

  /**
   * Batched row-major `C[b] = op(A[b]) op(B[b])`, float32.
   *
   * @param a A.
   * @param b B.
   * @param m Rows of C.
   * @param n Columns of C.
   * @param k Inner dimension.
   * @param o Transposes, batch and strides.
   * @returns C, `[batch, m, n]`.
   */
  gemm(
    a: Storage,
    b: Storage,
    m: number,
    n: number,
    k: number,
    o: GemmOptions,
  ): CudaStorage {
    const as = cuda(a);
    const bs = cuda(b);
    if (as.dtype !== "float32" || bs.dtype !== "float32") {
      throw new TypeError(
        `Cannot run gemm on CUDA: it takes float32, got ${as.dtype} and ` +
          bs.dtype,
      );
    }
    const rt = this.#rt;
    const c = rt.alloc("float32", o.batch * m * n);
    if (c.length === 0) return c;
    if (k === 0) {
      rt.device.fill32(c.pointer, 0, c.length);
      return c;
    }
    this.#applyMathMode();
    const g = cublasGemmArgs(m, n, k, o);
    const half = cudaAutocastDtype();
    if (half) {
      this.#gemmHalf(as, bs, c, g, o.batch, half);
      return c;
    }
    const cb = this.#cb;
    if (o.batch === 1) {
      this.#check(
        cb.cublasSgemm_v2(
          this.#handle,
          g.transa,
          g.transb,
          g.m,
          g.n,
          g.k,
          ONE,
          bs.pointer,
          g.lda,
          as.pointer,
          g.ldb,
          ZERO,
          c.pointer,
          g.ldc,
        ),
        "cublasSgemm_v2",
      );
    } else {
      this.#check(
        cb.cublasSgemmStridedBatched(
          this.#handle,
          g.transa,
          g.transb,
          g.m,
          g.n,
          g.k,
          ONE,
          bs.pointer,
          g.lda,
          BigInt(g.strideA),
          as.pointer,
          g.ldb,
          BigInt(g.strideB),
          ZERO,
          c.pointer,
          g.ldc,
          BigInt(g.strideC),
          o.batch,
        ),
        "cublasSgemmStridedBatched",
      );
    }
    return c;
  }

  // A and B rounded to `half` into scratch, then cublasGemm(StridedBatched)Ex
  #gemmHalf(
    as: CudaStorage,
    bs: CudaStorage,
    c: CudaStorage,
    g: CublasGemmArgs,
    batch: number,
    half: HalfDType,
  ): void {
    const rt = this.#rt;
    const type = half === "float16" ? CUDA_R_16F : CUDA_R_16BF;
    const ah = toHalf(rt, as, half);
    const bh = toHalf(rt, bs, half);
    const cb = this.#cb;
    try {
      if (batch === 1) {
        this.#check(
          cb.cublasGemmEx(
            this.#handle,
            g.transa,
            g.transb,
            g.m,
            g.n,
            g.k,
            ONE,
            bh.pointer,
            type,
            g.lda,
            ah.pointer,
            type,
            g.ldb,
            ZERO,
            c.pointer,
            CUDA_R_32F,
            g.ldc,
            CUBLAS_COMPUTE_32F,
            CUBLAS_GEMM_DEFAULT,
          ),
          "cublasGemmEx",
        );
      } else {
        this.#check(
          cb.cublasGemmStridedBatchedEx(
            this.#handle,
            g.transa,
            g.transb,
            g.m,
            g.n,
            g.k,
            ONE,
            bh.pointer,
            type,
            g.lda,
            BigInt(g.strideA),
            ah.pointer,
            type,
            g.ldb,
            BigInt(g.strideB),
            ZERO,
            c.pointer,
            CUDA_R_32F,
            g.ldc,
            BigInt(g.strideC),
            batch,
            CUBLAS_COMPUTE_32F,
            CUBLAS_GEMM_DEFAULT,
          ),
          "cublasGemmStridedBatchedEx",
        );
      }
    } finally {
      // one stream: work queued later reuses the blocks after this product
      rt.free(ah);
      rt.free(bh);
    }
  }
}
