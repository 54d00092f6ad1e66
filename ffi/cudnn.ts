/**
 * `Deno.dlopen` symbol table for the cuDNN 9 legacy API (`libcudnn.so.9`),
 * the enum values and struct layouts kdeno uses, and opening the library.
 *
 * - Signatures follow the cuDNN 9.6 headers (`cudnn_graph.h`, `cudnn_ops.h`,
 *   `cudnn_cnn.h`); minor releases of 9.x are binary compatible with them.
 * - Handles and descriptors (`cudnnHandle_t`, `*Descriptor_t`,
 *   `cudaStream_t`) and device memory (`void*`) are `"pointer"`; host
 *   out-parameters, host arrays and the host scalars `alpha`/`beta` are
 *   `"buffer"`; enums and `int` are `"i32"`, `size_t` is `"usize"` (pass a
 *   BigInt), `double` is `"f64"`.
 * - `libcudnn.so.9` is a shim that `dlopen`s its sub-libraries by soname at
 *   run time, and the process aborts when one is missing. {@link openCudnnIn}
 *   therefore loads every sub-library by absolute path first: setting
 *   `LD_LIBRARY_PATH` from inside a running process does not reach the loader.
 *
 * Nothing is opened when this module is imported.
 *
 * @module
 */

import {
  BackendUnavailableError,
  openLibrary,
  preload,
} from "./find_library.ts";
import { CUDA_LIB_DIRS_ENV, cudnnLibDirs } from "./cuda_libs.ts";

/** The cuDNN functions kdeno may call (legacy API). */
export const CUDNN_SYMBOLS = {
  // ---- handle, version, errors (cudnn_graph.h) ----------------------------
  cudnnGetVersion: {
    parameters: [],
    result: "usize", // size_t, e.g. 90600 for 9.6.0
  },
  cudnnGetCudartVersion: {
    parameters: [],
    result: "usize", // size_t
    optional: true,
  },
  cudnnGetErrorString: {
    parameters: [
      "i32", // status (cudnnStatus_t)
    ],
    result: "pointer", // const char*
  },
  cudnnGetLastErrorString: {
    parameters: [
      "buffer", // message (char*)
      "usize", // max_size (size_t)
    ],
    result: "void",
    optional: true, // cuDNN >= 9.0
  },
  cudnnCreate: {
    parameters: [
      "buffer", // handle (cudnnHandle_t*)
    ],
    result: "i32",
  },
  cudnnDestroy: {
    parameters: [
      "pointer", // handle
    ],
    result: "i32",
  },
  cudnnSetStream: {
    parameters: [
      "pointer", // handle
      "pointer", // streamId (cudaStream_t)
    ],
    result: "i32",
  },

  // ---- tensor descriptors (cudnn_ops.h) -----------------------------------
  cudnnCreateTensorDescriptor: {
    parameters: [
      "buffer", // tensorDesc (cudnnTensorDescriptor_t*)
    ],
    result: "i32",
  },
  cudnnSetTensor4dDescriptor: {
    parameters: [
      "pointer", // tensorDesc
      "i32", // format (cudnnTensorFormat_t)
      "i32", // dataType (cudnnDataType_t)
      "i32", // n
      "i32", // c
      "i32", // h
      "i32", // w
    ],
    result: "i32",
  },
  cudnnSetTensor4dDescriptorEx: {
    parameters: [
      "pointer", // tensorDesc
      "i32", // dataType (cudnnDataType_t)
      "i32", // n
      "i32", // c
      "i32", // h
      "i32", // w
      "i32", // nStride
      "i32", // cStride
      "i32", // hStride
      "i32", // wStride
    ],
    result: "i32",
  },
  cudnnDestroyTensorDescriptor: {
    parameters: [
      "pointer", // tensorDesc
    ],
    result: "i32",
  },

  // ---- filter descriptors (cudnn_ops.h) -----------------------------------
  cudnnCreateFilterDescriptor: {
    parameters: [
      "buffer", // filterDesc (cudnnFilterDescriptor_t*)
    ],
    result: "i32",
  },
  cudnnSetFilter4dDescriptor: {
    parameters: [
      "pointer", // filterDesc
      "i32", // dataType (cudnnDataType_t): note the order differs from tensors
      "i32", // format (cudnnTensorFormat_t)
      "i32", // k
      "i32", // c
      "i32", // h
      "i32", // w
    ],
    result: "i32",
  },
  cudnnDestroyFilterDescriptor: {
    parameters: [
      "pointer", // filterDesc
    ],
    result: "i32",
  },

  // ---- convolution descriptors (cudnn_cnn.h) ------------------------------
  cudnnCreateConvolutionDescriptor: {
    parameters: [
      "buffer", // convDesc (cudnnConvolutionDescriptor_t*)
    ],
    result: "i32",
  },
  cudnnSetConvolution2dDescriptor: {
    parameters: [
      "pointer", // convDesc
      "i32", // pad_h
      "i32", // pad_w
      "i32", // u (vertical stride)
      "i32", // v (horizontal stride)
      "i32", // dilation_h
      "i32", // dilation_w
      "i32", // mode (cudnnConvolutionMode_t)
      "i32", // computeType (cudnnDataType_t)
    ],
    result: "i32",
  },
  cudnnSetConvolutionMathType: {
    parameters: [
      "pointer", // convDesc
      "i32", // mathType (cudnnMathType_t)
    ],
    result: "i32",
  },
  cudnnSetConvolutionGroupCount: {
    parameters: [
      "pointer", // convDesc
      "i32", // groupCount
    ],
    result: "i32",
  },
  cudnnDestroyConvolutionDescriptor: {
    parameters: [
      "pointer", // convDesc
    ],
    result: "i32",
  },
  cudnnGetConvolution2dForwardOutputDim: {
    parameters: [
      "pointer", // convDesc
      "pointer", // inputTensorDesc
      "pointer", // filterDesc
      "buffer", // n (int*)
      "buffer", // c (int*)
      "buffer", // h (int*)
      "buffer", // w (int*)
    ],
    result: "i32",
  },

  // ---- convolution forward (cudnn_cnn.h) ----------------------------------
  cudnnGetConvolutionForwardAlgorithmMaxCount: {
    parameters: [
      "pointer", // handle
      "buffer", // count (int*)
    ],
    result: "i32",
    optional: true,
  },
  cudnnGetConvolutionForwardAlgorithm_v7: {
    parameters: [
      "pointer", // handle
      "pointer", // srcDesc
      "pointer", // filterDesc
      "pointer", // convDesc
      "pointer", // destDesc
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionFwdAlgoPerf_t*)
    ],
    result: "i32",
  },
  cudnnFindConvolutionForwardAlgorithm: {
    parameters: [
      "pointer", // handle
      "pointer", // xDesc
      "pointer", // wDesc
      "pointer", // convDesc
      "pointer", // yDesc
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionFwdAlgoPerf_t*)
    ],
    result: "i32",
    optional: true,
  },
  cudnnFindConvolutionForwardAlgorithmEx: {
    parameters: [
      "pointer", // handle
      "pointer", // xDesc
      "pointer", // x
      "pointer", // wDesc
      "pointer", // w
      "pointer", // convDesc
      "pointer", // yDesc
      "pointer", // y (clobbered)
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionFwdAlgoPerf_t*)
      "pointer", // workSpace
      "usize", // workSpaceSizeInBytes
    ],
    result: "i32",
  },
  cudnnGetConvolutionForwardWorkspaceSize: {
    parameters: [
      "pointer", // handle
      "pointer", // xDesc
      "pointer", // wDesc
      "pointer", // convDesc
      "pointer", // yDesc
      "i32", // algo (cudnnConvolutionFwdAlgo_t)
      "buffer", // sizeInBytes (size_t*)
    ],
    result: "i32",
  },
  cudnnConvolutionForward: {
    parameters: [
      "pointer", // handle
      "buffer", // alpha (const void*, float for float data)
      "pointer", // xDesc
      "pointer", // x
      "pointer", // wDesc
      "pointer", // w
      "pointer", // convDesc
      "i32", // algo (cudnnConvolutionFwdAlgo_t)
      "pointer", // workSpace
      "usize", // workSpaceSizeInBytes
      "buffer", // beta (const void*)
      "pointer", // yDesc
      "pointer", // y
    ],
    result: "i32",
  },

  // ---- convolution backward data (cudnn_cnn.h) ----------------------------
  cudnnGetConvolutionBackwardDataAlgorithmMaxCount: {
    parameters: [
      "pointer", // handle
      "buffer", // count (int*)
    ],
    result: "i32",
    optional: true,
  },
  cudnnGetConvolutionBackwardDataAlgorithm_v7: {
    parameters: [
      "pointer", // handle
      "pointer", // filterDesc
      "pointer", // diffDesc (dy)
      "pointer", // convDesc
      "pointer", // gradDesc (dx)
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionBwdDataAlgoPerf_t*)
    ],
    result: "i32",
  },
  cudnnFindConvolutionBackwardDataAlgorithm: {
    parameters: [
      "pointer", // handle
      "pointer", // wDesc
      "pointer", // dyDesc
      "pointer", // convDesc
      "pointer", // dxDesc
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionBwdDataAlgoPerf_t*)
    ],
    result: "i32",
    optional: true,
  },
  cudnnFindConvolutionBackwardDataAlgorithmEx: {
    parameters: [
      "pointer", // handle
      "pointer", // wDesc
      "pointer", // w
      "pointer", // dyDesc
      "pointer", // dy
      "pointer", // convDesc
      "pointer", // dxDesc
      "pointer", // dx (clobbered)
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionBwdDataAlgoPerf_t*)
      "pointer", // workSpace
      "usize", // workSpaceSizeInBytes
    ],
    result: "i32",
  },
  cudnnGetConvolutionBackwardDataWorkspaceSize: {
    parameters: [
      "pointer", // handle
      "pointer", // wDesc
      "pointer", // dyDesc
      "pointer", // convDesc
      "pointer", // dxDesc
      "i32", // algo (cudnnConvolutionBwdDataAlgo_t)
      "buffer", // sizeInBytes (size_t*)
    ],
    result: "i32",
  },
  cudnnConvolutionBackwardData: {
    parameters: [
      "pointer", // handle
      "buffer", // alpha (const void*)
      "pointer", // wDesc
      "pointer", // w
      "pointer", // dyDesc
      "pointer", // dy
      "pointer", // convDesc
      "i32", // algo (cudnnConvolutionBwdDataAlgo_t)
      "pointer", // workSpace
      "usize", // workSpaceSizeInBytes
      "buffer", // beta (const void*)
      "pointer", // dxDesc
      "pointer", // dx
    ],
    result: "i32",
  },

  // ---- convolution backward filter and bias (cudnn_cnn.h) -----------------
  cudnnGetConvolutionBackwardFilterAlgorithmMaxCount: {
    parameters: [
      "pointer", // handle
      "buffer", // count (int*)
    ],
    result: "i32",
    optional: true,
  },
  cudnnGetConvolutionBackwardFilterAlgorithm_v7: {
    parameters: [
      "pointer", // handle
      "pointer", // srcDesc (x)
      "pointer", // diffDesc (dy)
      "pointer", // convDesc
      "pointer", // gradDesc (dw)
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionBwdFilterAlgoPerf_t*)
    ],
    result: "i32",
  },
  cudnnFindConvolutionBackwardFilterAlgorithm: {
    parameters: [
      "pointer", // handle
      "pointer", // xDesc
      "pointer", // dyDesc
      "pointer", // convDesc
      "pointer", // dwDesc
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionBwdFilterAlgoPerf_t*)
    ],
    result: "i32",
    optional: true,
  },
  cudnnFindConvolutionBackwardFilterAlgorithmEx: {
    parameters: [
      "pointer", // handle
      "pointer", // xDesc
      "pointer", // x
      "pointer", // dyDesc
      "pointer", // y (the header's name for dy)
      "pointer", // convDesc
      "pointer", // dwDesc
      "pointer", // dw (clobbered)
      "i32", // requestedAlgoCount
      "buffer", // returnedAlgoCount (int*)
      "buffer", // perfResults (cudnnConvolutionBwdFilterAlgoPerf_t*)
      "pointer", // workSpace
      "usize", // workSpaceSizeInBytes
    ],
    result: "i32",
  },
  cudnnGetConvolutionBackwardFilterWorkspaceSize: {
    parameters: [
      "pointer", // handle
      "pointer", // xDesc
      "pointer", // dyDesc
      "pointer", // convDesc
      "pointer", // gradDesc (dw)
      "i32", // algo (cudnnConvolutionBwdFilterAlgo_t)
      "buffer", // sizeInBytes (size_t*)
    ],
    result: "i32",
  },
  cudnnConvolutionBackwardFilter: {
    parameters: [
      "pointer", // handle
      "buffer", // alpha (const void*)
      "pointer", // xDesc
      "pointer", // x
      "pointer", // dyDesc
      "pointer", // dy
      "pointer", // convDesc
      "i32", // algo (cudnnConvolutionBwdFilterAlgo_t)
      "pointer", // workSpace
      "usize", // workSpaceSizeInBytes
      "buffer", // beta (const void*)
      "pointer", // dwDesc
      "pointer", // dw
    ],
    result: "i32",
  },

  // ---- batch norm (cudnn_ops.h) -------------------------------------------
  cudnnDeriveBNTensorDescriptor: {
    parameters: [
      "pointer", // derivedBnDesc
      "pointer", // xDesc
      "i32", // mode (cudnnBatchNormMode_t)
    ],
    result: "i32",
  },
  cudnnBatchNormalizationForwardTraining: {
    parameters: [
      "pointer", // handle
      "i32", // mode (cudnnBatchNormMode_t)
      "buffer", // alpha (const void*)
      "buffer", // beta (const void*)
      "pointer", // xDesc
      "pointer", // x
      "pointer", // yDesc
      "pointer", // y
      "pointer", // bnScaleBiasMeanVarDesc
      "pointer", // bnScale
      "pointer", // bnBias
      "f64", // exponentialAverageFactor (double)
      "pointer", // resultRunningMean (may be NULL with the variance)
      "pointer", // resultRunningVariance
      "f64", // epsilon (double, >= CUDNN_BN_MIN_EPSILON)
      "pointer", // resultSaveMean (may be NULL)
      "pointer", // resultSaveInvVariance (1/sqrt(var+eps); may be NULL)
    ],
    result: "i32",
  },
  cudnnBatchNormalizationForwardInference: {
    parameters: [
      "pointer", // handle
      "i32", // mode (cudnnBatchNormMode_t)
      "buffer", // alpha (const void*)
      "buffer", // beta (const void*)
      "pointer", // xDesc
      "pointer", // x
      "pointer", // yDesc
      "pointer", // y
      "pointer", // bnScaleBiasMeanVarDesc
      "pointer", // bnScale
      "pointer", // bnBias
      "pointer", // estimatedMean
      "pointer", // estimatedVariance
      "f64", // epsilon (double)
    ],
    result: "i32",
  },
  cudnnBatchNormalizationBackward: {
    parameters: [
      "pointer", // handle
      "i32", // mode (cudnnBatchNormMode_t)
      "buffer", // alphaDataDiff (const void*)
      "buffer", // betaDataDiff (const void*)
      "buffer", // alphaParamDiff (const void*)
      "buffer", // betaParamDiff (const void*)
      "pointer", // xDesc
      "pointer", // x
      "pointer", // dyDesc
      "pointer", // dy
      "pointer", // dxDesc
      "pointer", // dx
      "pointer", // dBnScaleBiasDesc
      "pointer", // bnScale
      "pointer", // dBnScaleResult
      "pointer", // dBnBiasResult
      "f64", // epsilon (double, same as forward)
      "pointer", // savedMean (may be NULL)
      "pointer", // savedInvVariance (may be NULL)
    ],
    result: "i32",
  },

  // ---- tensor arithmetic (cudnn_ops.h) ------------------------------------
  cudnnAddTensor: {
    parameters: [
      "pointer", // handle
      "buffer", // alpha (const void*)
      "pointer", // aDesc
      "pointer", // A
      "buffer", // beta (const void*)
      "pointer", // cDesc
      "pointer", // C
    ],
    result: "i32",
  },
} as const;

/** The whole cuDNN table's type. */
export type CudnnSymbols = typeof CUDNN_SYMBOLS;

/** A symbol name in {@link CUDNN_SYMBOLS}. */
export type CudnnSymbolName = keyof CudnnSymbols;

/** cuDNN opened with {@link CUDNN_SYMBOLS}. */
export type CudnnLib = Deno.DynamicLibrary<CudnnSymbols>;

/**
 * A subset of the table, for opening a library that exports only some of the
 * names (a test double, or a probe of one function).
 *
 * @param names The symbols wanted.
 * @returns A table holding just those entries.
 */
export function pickCudnnSymbols<K extends CudnnSymbolName>(
  names: readonly K[],
): Pick<CudnnSymbols, K> {
  const out: Partial<Record<K, CudnnSymbols[K]>> = {};
  for (const name of names) out[name] = CUDNN_SYMBOLS[name];
  return out as Pick<CudnnSymbols, K>;
}

// ---- enum values (cuDNN 9.6 headers) ---------------------------------------

/** `CUDNN_STATUS_SUCCESS`. */
export const CUDNN_STATUS_SUCCESS = 0;
/** `CUDNN_STATUS_NOT_INITIALIZED`. */
export const CUDNN_STATUS_NOT_INITIALIZED = 1001;
/** `CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED`. */
export const CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED = 1008;
/** `CUDNN_STATUS_BAD_PARAM`. */
export const CUDNN_STATUS_BAD_PARAM = 2000;
/** `CUDNN_STATUS_NOT_SUPPORTED`. */
export const CUDNN_STATUS_NOT_SUPPORTED = 3000;
/** `CUDNN_STATUS_INTERNAL_ERROR`. */
export const CUDNN_STATUS_INTERNAL_ERROR = 4000;
/** `CUDNN_STATUS_EXECUTION_FAILED`. */
export const CUDNN_STATUS_EXECUTION_FAILED = 5000;

/** `CUDNN_DATA_FLOAT` (`cudnnDataType_t`). */
export const CUDNN_DATA_FLOAT = 0;
/** `CUDNN_TENSOR_NCHW` (`cudnnTensorFormat_t`). */
export const CUDNN_TENSOR_NCHW = 0;
/** `CUDNN_TENSOR_NHWC`. */
export const CUDNN_TENSOR_NHWC = 1;

/** `CUDNN_DEFAULT_MATH`: on Ampere and later it permits TF32 tensor cores. */
export const CUDNN_DEFAULT_MATH = 0;
/** `CUDNN_TENSOR_OP_MATH`: tensor cores permitted, no down-conversion. */
export const CUDNN_TENSOR_OP_MATH = 1;
/** `CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION`: tensor cores with down-conversion. */
export const CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION = 2;
/** `CUDNN_FMA_MATH`: FMA kernels only, so no TF32 (strict fp32). */
export const CUDNN_FMA_MATH = 3;

/** `CUDNN_CONVOLUTION` (flips the filter). */
export const CUDNN_CONVOLUTION = 0;
/** `CUDNN_CROSS_CORRELATION`: what PyTorch calls convolution. */
export const CUDNN_CROSS_CORRELATION = 1;

/** `CUDNN_CONVOLUTION_FWD_ALGO_COUNT`. */
export const CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8;
/** `CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT`. */
export const CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT = 6;
/** `CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT`. */
export const CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT = 7;

/** `CUDNN_NON_DETERMINISTIC` (`cudnnDeterminism_t`). */
export const CUDNN_NON_DETERMINISTIC = 0;
/** `CUDNN_DETERMINISTIC`. */
export const CUDNN_DETERMINISTIC = 1;

/** `CUDNN_BATCHNORM_PER_ACTIVATION`. */
export const CUDNN_BATCHNORM_PER_ACTIVATION = 0;
/** `CUDNN_BATCHNORM_SPATIAL`: statistics over N, H, W per channel. */
export const CUDNN_BATCHNORM_SPATIAL = 1;
/** `CUDNN_BATCHNORM_SPATIAL_PERSISTENT`. */
export const CUDNN_BATCHNORM_SPATIAL_PERSISTENT = 2;
/** `CUDNN_BN_MIN_EPSILON` in cuDNN 9. */
export const CUDNN_BN_MIN_EPSILON = 0;

// ---- struct layouts ---------------------------------------------------------

/**
 * Byte layout of `cudnnConvolutionFwdAlgoPerf_t` (the same for the
 * `BwdData`/`BwdFilter` structs): 48 bytes, 8-byte aligned.
 */
export const CUDNN_ALGO_PERF_LAYOUT = {
  /** `sizeof`. */
  size: 48,
  /** `algo` (int enum). */
  algo: 0,
  /** `status` (cudnnStatus_t). */
  status: 4,
  /** `time` (float, milliseconds). */
  time: 8,
  /** `memory` (size_t, workspace bytes); 4 bytes of padding before it. */
  memory: 16,
  /** `determinism` (cudnnDeterminism_t). */
  determinism: 24,
  /** `mathType` (cudnnMathType_t). */
  mathType: 28,
  /** `reserved` (int[3]). */
  reserved: 32,
} as const;

/** One decoded `cudnnConvolution*AlgoPerf_t`. */
export interface CudnnAlgoPerf {
  /** The algorithm enum value. */
  algo: number;
  /** Whether it ran (0) or why not. */
  status: number;
  /** Measured time in milliseconds (-1 from the heuristics). */
  time: number;
  /** Workspace bytes it needs. */
  memory: number;
  /** `CUDNN_DETERMINISTIC` or not. */
  determinism: number;
  /** The math type it runs with. */
  mathType: number;
}

/**
 * Reads entry `i` of a perf-struct array that cuDNN filled.
 *
 * @param view A view over the array's bytes.
 * @param i The entry.
 * @returns The decoded fields.
 */
export function readAlgoPerf(view: DataView, i: number): CudnnAlgoPerf {
  const L = CUDNN_ALGO_PERF_LAYOUT;
  const o = i * L.size;
  return {
    algo: view.getInt32(o + L.algo, true),
    status: view.getInt32(o + L.status, true),
    time: view.getFloat32(o + L.time, true),
    memory: Number(view.getBigUint64(o + L.memory, true)),
    determinism: view.getInt32(o + L.determinism, true),
    mathType: view.getInt32(o + L.mathType, true),
  };
}

// ---- opening ----------------------------------------------------------------

/** The shim every symbol is bound through. */
export const CUDNN_SONAME = "libcudnn.so.9";

/**
 * The cuDNN 9 sub-libraries, in the order they are pre-loaded (each one's
 * own dependencies before it: graph first, the legacy ops/cnn/adv last).
 */
export const CUDNN_SUBLIBRARIES = [
  "libcudnn_graph.so.9",
  "libcudnn_engines_precompiled.so.9",
  "libcudnn_engines_runtime_compiled.so.9",
  "libcudnn_heuristic.so.9",
  "libcudnn_ops.so.9",
  "libcudnn_cnn.so.9",
  "libcudnn_adv.so.9",
] as const;

/**
 * Sub-libraries the legacy API cannot do without: a directory where one of
 * them is present but fails to load is skipped, because the shim would abort
 * the process when it later failed to load it itself.
 */
const REQUIRED_SUBLIBRARIES: readonly string[] = [
  "libcudnn_graph.so.9",
  "libcudnn_ops.so.9",
  "libcudnn_cnn.so.9",
];

// Pre-loaded handles stay referenced for the life of the process.
const keepAlive: Deno.DynamicLibrary<never>[] = [];

/** cuDNN opened from one directory, and what was pre-loaded before it. */
export interface OpenedCudnn<S extends Deno.ForeignLibraryInterface> {
  /** The handle. */
  lib: Deno.DynamicLibrary<S>;
  /** The path (or soname) that loaded. */
  path: string;
  /** Libraries loaded by absolute path before it, in order. */
  preloaded: string[];
  /** Sub-libraries that exist but did not load (not fatal), as `path: reason`. */
  preloadFailed: string[];
  /** `cudnnGetVersion()`, e.g. 91700 for 9.17.0. */
  version: number;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const HINT = `Set ${CUDA_LIB_DIRS_ENV} to the directory holding ` +
  `${CUDNN_SONAME} and its libcudnn_*.so.9 sub-libraries, or install the ` +
  "nvidia-cudnn-cu13 wheel in the active virtual environment; open cuBLAS " +
  "first so that libcublasLt, which cuDNN 9 needs, is already loaded";

/**
 * Opens `libcudnn.so.9` from one directory: `extraDeps` (absolute paths, for
 * example libcublasLt from another directory) and then every sub-library in
 * {@link CUDNN_SUBLIBRARIES} are loaded by absolute path first, then the shim,
 * whose major version is checked.
 *
 * @param dir The directory holding the cuDNN libraries.
 * @param symbols The table (default {@link CUDNN_SYMBOLS}); a subset from
 *   {@link pickCudnnSymbols} works too, but must include `cudnnGetVersion`.
 * @param extraDeps Absolute paths to pre-load before the sub-libraries.
 * @returns The opened library and what was loaded before it.
 * @throws BackendUnavailableError naming the paths tried and why each failed.
 */
export function openCudnnIn<
  S extends Deno.ForeignLibraryInterface & {
    cudnnGetVersion: CudnnSymbols["cudnnGetVersion"];
  } = CudnnSymbols,
>(
  dir: string,
  symbols: S = CUDNN_SYMBOLS as unknown as S,
  extraDeps: readonly string[] = [],
): OpenedCudnn<S> {
  const library = `cuDNN 9 (${CUDNN_SONAME})`;
  const path = `${dir}/${CUDNN_SONAME}`;
  if (!isFile(path)) {
    throw new BackendUnavailableError(library, [`${path}: not found`], HINT);
  }
  const preloaded: string[] = [];
  const preloadFailed: string[] = [];
  const fatal: string[] = [];
  const deps = [
    ...extraDeps,
    ...CUDNN_SUBLIBRARIES.map((name) => `${dir}/${name}`),
  ];
  for (const dep of deps) {
    if (!isFile(dep)) continue; // a missing optional file; the shim decides
    const handles = preload([dep]);
    if (handles.length > 0) {
      keepAlive.push(...handles);
      preloaded.push(dep);
      continue;
    }
    const why = `${dep}: exists but did not load (a dependency of it is ` +
      "missing, e.g. libcublasLt.so.13)";
    const name = dep.slice(dep.lastIndexOf("/") + 1);
    (REQUIRED_SUBLIBRARIES.includes(name) ? fatal : preloadFailed).push(why);
  }
  if (fatal.length > 0) {
    throw new BackendUnavailableError(library, fatal, HINT);
  }
  const { lib } = openLibrary(
    { library, fileNames: [CUDNN_SONAME], dirs: [dir], sonameFallback: false },
    symbols,
  );
  const version = Number(
    (lib.symbols as unknown as CudnnLib["symbols"]).cudnnGetVersion(),
  );
  if (Math.floor(version / 10000) !== 9) {
    lib.close();
    throw new BackendUnavailableError(
      library,
      [`${path}: cudnnGetVersion() is ${version}, not a 9.x version`],
      HINT,
    );
  }
  return { lib, path, preloaded, preloadFailed, version };
}

/**
 * Opens cuDNN from the first directory of `dirs` that holds it (see
 * {@link openCudnnIn}), then by bare soname through the system loader
 * (`LD_LIBRARY_PATH` as set when the process started, `ld.so.cache`).
 *
 * @param dirs Directories to try (default `cudnnLibDirs()` from
 *   `ffi/cuda_libs.ts`: `KDENO_CUDA_LIB_DIRS`, the Python wheels'
 *   `nvidia/cudnn/lib`, conda, the CUDA toolkit).
 * @param extraDeps Absolute paths to pre-load first in every directory.
 * @returns The opened library.
 * @throws BackendUnavailableError listing every path tried.
 */
export function openCudnn(
  dirs: readonly string[] = cudnnLibDirs(),
  extraDeps: readonly string[] = [],
): OpenedCudnn<CudnnSymbols> {
  const library = `cuDNN 9 (${CUDNN_SONAME})`;
  const tried: string[] = [];
  for (const dir of dirs) {
    try {
      return openCudnnIn(dir, CUDNN_SYMBOLS, extraDeps);
    } catch (e) {
      if (!(e instanceof BackendUnavailableError)) throw e;
      tried.push(...e.tried);
    }
  }
  try {
    const { lib, path } = openLibrary(
      { library, fileNames: [CUDNN_SONAME] },
      CUDNN_SYMBOLS,
    );
    const version = Number(lib.symbols.cudnnGetVersion());
    if (Math.floor(version / 10000) === 9) {
      return { lib, path, preloaded: [], preloadFailed: [], version };
    }
    lib.close();
    tried.push(`${path}: cudnnGetVersion() is ${version}, not a 9.x version`);
  } catch (e) {
    if (!(e instanceof BackendUnavailableError)) throw e;
    tried.push(...e.tried);
  }
  throw new BackendUnavailableError(library, tried, HINT);
}
