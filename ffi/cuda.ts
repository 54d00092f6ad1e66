/**
 * `Deno.dlopen` symbol table for the CUDA driver API (`libcuda.so.1`), and
 * the constants kdeno uses from `cuda.h` (CUDA 13.0).
 *
 * Exported names are the versioned ones the library really exports
 * (`cuMemAlloc_v2`, ...). Opaque handles (`CUcontext`, `CUstream`,
 * `CUmodule`, `CUfunction`, `CUevent`, `CUmemoryPool`) and device addresses
 * (`CUdeviceptr`, ABI-identical to a pointer on x86-64) are `"pointer"`; host
 * out-parameters and host arrays are `"buffer"`; `size_t` is `"usize"`.
 * Nothing is opened here: see `ffi/cuda_libs.ts`.
 *
 * @module
 */

/** The driver API functions kdeno calls. */
export const CUDA_SYMBOLS = {
  cuInit: {
    parameters: [
      "u32", // Flags
    ],
    result: "i32",
  },
  cuDriverGetVersion: {
    parameters: [
      "buffer", // driverVersion (int*)
    ],
    result: "i32",
  },
  cuDeviceGetCount: {
    parameters: [
      "buffer", // count (int*)
    ],
    result: "i32",
  },
  cuDeviceGet: {
    parameters: [
      "buffer", // device (CUdevice*)
      "i32", // ordinal
    ],
    result: "i32",
  },
  cuDeviceGetName: {
    parameters: [
      "buffer", // name (char*)
      "i32", // len
      "i32", // dev
    ],
    result: "i32",
  },
  cuDeviceGetAttribute: {
    parameters: [
      "buffer", // pi (int*)
      "i32", // attrib
      "i32", // dev
    ],
    result: "i32",
  },
  cuDeviceTotalMem_v2: {
    parameters: [
      "buffer", // bytes (size_t*)
      "i32", // dev
    ],
    result: "i32",
  },
  cuDevicePrimaryCtxRetain: {
    parameters: [
      "buffer", // pctx (CUcontext*)
      "i32", // dev
    ],
    result: "i32",
  },
  cuDevicePrimaryCtxRelease_v2: {
    parameters: [
      "i32", // dev
    ],
    result: "i32",
  },
  cuCtxSetCurrent: {
    parameters: [
      "pointer", // ctx
    ],
    result: "i32",
  },
  cuCtxSynchronize: {
    parameters: [],
    result: "i32",
  },
  cuMemGetInfo_v2: {
    parameters: [
      "buffer", // free (size_t*)
      "buffer", // total (size_t*)
    ],
    result: "i32",
  },
  cuMemAlloc_v2: {
    parameters: [
      "buffer", // dptr (CUdeviceptr*)
      "usize", // bytesize
    ],
    result: "i32",
  },
  cuMemFree_v2: {
    parameters: [
      "pointer", // dptr
    ],
    result: "i32",
  },
  cuMemAllocAsync: {
    parameters: [
      "buffer", // dptr (CUdeviceptr*)
      "usize", // bytesize
      "pointer", // hStream
    ],
    result: "i32",
    optional: true,
  },
  cuMemFreeAsync: {
    parameters: [
      "pointer", // dptr
      "pointer", // hStream
    ],
    result: "i32",
    optional: true,
  },
  cuDeviceGetDefaultMemPool: {
    parameters: [
      "buffer", // pool_out (CUmemoryPool*)
      "i32", // dev
    ],
    result: "i32",
    optional: true,
  },
  cuMemPoolSetAttribute: {
    parameters: [
      "pointer", // pool
      "i32", // attr
      "buffer", // value (void*)
    ],
    result: "i32",
    optional: true,
  },
  cuMemcpyHtoD_v2: {
    parameters: [
      "pointer", // dstDevice
      "buffer", // srcHost
      "usize", // ByteCount
    ],
    result: "i32",
  },
  cuMemcpyDtoH_v2: {
    parameters: [
      "buffer", // dstHost
      "pointer", // srcDevice
      "usize", // ByteCount
    ],
    result: "i32",
  },
  cuMemcpyDtoD_v2: {
    parameters: [
      "pointer", // dstDevice
      "pointer", // srcDevice
      "usize", // ByteCount
    ],
    result: "i32",
  },
  cuMemcpyHtoDAsync_v2: {
    parameters: [
      "pointer", // dstDevice
      "buffer", // srcHost
      "usize", // ByteCount
      "pointer", // hStream
    ],
    result: "i32",
  },
  cuMemcpyDtoHAsync_v2: {
    parameters: [
      "buffer", // dstHost
      "pointer", // srcDevice
      "usize", // ByteCount
      "pointer", // hStream
    ],
    result: "i32",
  },
  cuMemcpyDtoDAsync_v2: {
    parameters: [
      "pointer", // dstDevice
      "pointer", // srcDevice
      "usize", // ByteCount
      "pointer", // hStream
    ],
    result: "i32",
  },
  cuMemsetD32_v2: {
    parameters: [
      "pointer", // dstDevice
      "u32", // ui
      "usize", // N
    ],
    result: "i32",
  },
  cuMemsetD32Async: {
    parameters: [
      "pointer", // dstDevice
      "u32", // ui
      "usize", // N
      "pointer", // hStream
    ],
    result: "i32",
  },
  cuStreamCreate: {
    parameters: [
      "buffer", // phStream (CUstream*)
      "u32", // Flags
    ],
    result: "i32",
  },
  cuStreamDestroy_v2: {
    parameters: [
      "pointer", // hStream
    ],
    result: "i32",
  },
  cuStreamSynchronize: {
    parameters: [
      "pointer", // hStream
    ],
    result: "i32",
  },
  cuEventCreate: {
    parameters: [
      "buffer", // phEvent (CUevent*)
      "u32", // Flags
    ],
    result: "i32",
  },
  cuEventRecord: {
    parameters: [
      "pointer", // hEvent
      "pointer", // hStream
    ],
    result: "i32",
  },
  cuEventSynchronize: {
    parameters: [
      "pointer", // hEvent
    ],
    result: "i32",
  },
  cuEventElapsedTime: {
    parameters: [
      "buffer", // pMilliseconds (float*)
      "pointer", // hStart
      "pointer", // hEnd
    ],
    result: "i32",
    optional: true,
  },
  cuEventElapsedTime_v2: {
    parameters: [
      "buffer", // pMilliseconds (float*)
      "pointer", // hStart
      "pointer", // hEnd
    ],
    result: "i32",
    optional: true,
  },
  cuEventDestroy_v2: {
    parameters: [
      "pointer", // hEvent
    ],
    result: "i32",
  },
  cuModuleLoadData: {
    parameters: [
      "buffer", // module (CUmodule*)
      "buffer", // image
    ],
    result: "i32",
  },
  cuModuleGetFunction: {
    parameters: [
      "buffer", // hfunc (CUfunction*)
      "pointer", // hmod
      "buffer", // name (const char*)
    ],
    result: "i32",
  },
  cuModuleUnload: {
    parameters: [
      "pointer", // hmod
    ],
    result: "i32",
  },
  cuLaunchKernel: {
    parameters: [
      "pointer", // f
      "u32", // gridDimX
      "u32", // gridDimY
      "u32", // gridDimZ
      "u32", // blockDimX
      "u32", // blockDimY
      "u32", // blockDimZ
      "u32", // sharedMemBytes
      "pointer", // hStream
      "buffer", // kernelParams (void**)
      "buffer", // extra (void**)
    ],
    result: "i32",
  },
  cuGetErrorString: {
    parameters: [
      "i32", // error
      "buffer", // pStr (const char**)
    ],
    result: "i32",
  },
  cuGetErrorName: {
    parameters: [
      "i32", // error
      "buffer", // pStr (const char**)
    ],
    result: "i32",
  },
} as const;

/** The driver library opened with {@link CUDA_SYMBOLS}. */
export type CudaDriverLib = Deno.DynamicLibrary<typeof CUDA_SYMBOLS>;

// ---- CUresult -------------------------------------------------------------
/** `CUDA_SUCCESS`. */
export const CUDA_SUCCESS = 0;
/** `CUDA_ERROR_OUT_OF_MEMORY`. */
export const CUDA_ERROR_OUT_OF_MEMORY = 2;
/** `CUDA_ERROR_STUB_LIBRARY`: the toolkit stub was loaded instead of the driver. */
export const CUDA_ERROR_STUB_LIBRARY = 34;
/** `CUDA_ERROR_NO_DEVICE`. */
export const CUDA_ERROR_NO_DEVICE = 100;

// ---- CUdevice_attribute ---------------------------------------------------
/** `CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK`. */
export const CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 1;
/** `CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT`. */
export const CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
/** `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR`. */
export const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
/** `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR`. */
export const CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
/** `CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED`. */
export const CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED = 115;

// ---- flags ----------------------------------------------------------------
/** `CU_STREAM_DEFAULT`: the stream synchronises with the legacy NULL stream. */
export const CU_STREAM_DEFAULT = 0;
/** `CU_STREAM_NON_BLOCKING`. */
export const CU_STREAM_NON_BLOCKING = 1;
/** `CU_EVENT_DEFAULT` (timing enabled). */
export const CU_EVENT_DEFAULT = 0;
/** `CU_MEMPOOL_ATTR_RELEASE_THRESHOLD` (value type `cuuint64_t`). */
export const CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = 4;
