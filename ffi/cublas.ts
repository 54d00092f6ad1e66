/**
 * `Deno.dlopen` symbol table for cuBLAS (`libcublas.so.13`) and the enum
 * values kdeno uses. cuBLAS is column-major; `src/backend/cuda/` maps
 * row-major products onto it. `alpha`/`beta` are host pointers (the default
 * pointer mode), passed as `"buffer"`. Nothing is opened here: see
 * `ffi/cuda_libs.ts`.
 *
 * @module
 */

/** The cuBLAS functions kdeno calls. */
export const CUBLAS_SYMBOLS = {
  cublasCreate_v2: {
    parameters: [
      "buffer", // handle (cublasHandle_t*)
    ],
    result: "i32",
  },
  cublasDestroy_v2: {
    parameters: [
      "pointer", // handle
    ],
    result: "i32",
  },
  cublasGetVersion_v2: {
    parameters: [
      "pointer", // handle
      "buffer", // version (int*)
    ],
    result: "i32",
  },
  cublasGetStatusString: {
    parameters: [
      "i32", // status
    ],
    result: "pointer",
  },
  cublasSetStream_v2: {
    parameters: [
      "pointer", // handle
      "pointer", // streamId
    ],
    result: "i32",
  },
  cublasSetWorkspace_v2: {
    parameters: [
      "pointer", // handle
      "pointer", // workspace
      "usize", // workspaceSizeInBytes
    ],
    result: "i32",
  },
  cublasSetMathMode: {
    parameters: [
      "pointer", // handle
      "i32", // mode
    ],
    result: "i32",
  },
  cublasSgemm_v2: {
    parameters: [
      "pointer", // handle
      "i32", // transa
      "i32", // transb
      "i32", // m
      "i32", // n
      "i32", // k
      "buffer", // alpha (const float*)
      "pointer", // A
      "i32", // lda
      "pointer", // B
      "i32", // ldb
      "buffer", // beta (const float*)
      "pointer", // C
      "i32", // ldc
    ],
    result: "i32",
  },
  cublasSgemmStridedBatched: {
    parameters: [
      "pointer", // handle
      "i32", // transa
      "i32", // transb
      "i32", // m
      "i32", // n
      "i32", // k
      "buffer", // alpha (const float*)
      "pointer", // A
      "i32", // lda
      "i64", // strideA (long long)
      "pointer", // B
      "i32", // ldb
      "i64", // strideB (long long)
      "buffer", // beta (const float*)
      "pointer", // C
      "i32", // ldc
      "i64", // strideC (long long)
      "i32", // batchCount
    ],
    result: "i32",
  },
  cublasGemmEx: {
    parameters: [
      "pointer", // handle
      "i32", // transa
      "i32", // transb
      "i32", // m
      "i32", // n
      "i32", // k
      "buffer", // alpha (const void*)
      "pointer", // A
      "i32", // Atype
      "i32", // lda
      "pointer", // B
      "i32", // Btype
      "i32", // ldb
      "buffer", // beta (const void*)
      "pointer", // C
      "i32", // Ctype
      "i32", // ldc
      "i32", // computeType
      "i32", // algo
    ],
    result: "i32",
  },
  cublasGemmStridedBatchedEx: {
    parameters: [
      "pointer", // handle
      "i32", // transa
      "i32", // transb
      "i32", // m
      "i32", // n
      "i32", // k
      "buffer", // alpha (const void*)
      "pointer", // A
      "i32", // Atype
      "i32", // lda
      "i64", // strideA (long long)
      "pointer", // B
      "i32", // Btype
      "i32", // ldb
      "i64", // strideB
      "buffer", // beta (const void*)
      "pointer", // C
      "i32", // Ctype
      "i32", // ldc
      "i64", // strideC
      "i32", // batchCount
      "i32", // computeType
      "i32", // algo
    ],
    result: "i32",
  },
} as const;

/** cuBLAS opened with {@link CUBLAS_SYMBOLS}. */
export type CublasLib = Deno.DynamicLibrary<typeof CUBLAS_SYMBOLS>;

/** `CUBLAS_STATUS_SUCCESS`. */
export const CUBLAS_STATUS_SUCCESS = 0;
/** `CUBLAS_OP_N`. */
export const CUBLAS_OP_N = 0;
/** `CUBLAS_OP_T`. */
export const CUBLAS_OP_T = 1;
/** `CUBLAS_DEFAULT_MATH`: strict fp32 for `cublasSgemm` (no TF32). */
export const CUBLAS_DEFAULT_MATH = 0;
/** `CUBLAS_TF32_TENSOR_OP_MATH`: fp32 GEMMs may round inputs to TF32. */
export const CUBLAS_TF32_TENSOR_OP_MATH = 3;
/** `CUDA_R_32F` (`cudaDataType`). */
export const CUDA_R_32F = 0;
/** `CUDA_R_16F` (`cudaDataType`): IEEE float16. */
export const CUDA_R_16F = 2;
/** `CUDA_R_16BF` (`cudaDataType`): bfloat16. */
export const CUDA_R_16BF = 14;
/** `CUBLAS_COMPUTE_32F`. */
export const CUBLAS_COMPUTE_32F = 68;
/** `CUBLAS_COMPUTE_32F_FAST_TF32`. */
export const CUBLAS_COMPUTE_32F_FAST_TF32 = 77;
/** `CUBLAS_GEMM_DEFAULT`. */
export const CUBLAS_GEMM_DEFAULT: number = -1;
