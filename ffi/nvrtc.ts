/**
 * `Deno.dlopen` symbol table for NVRTC (`libnvrtc.so.13`), the runtime CUDA C
 * compiler, and its status codes. Nothing is opened here: see
 * `ffi/cuda_libs.ts`.
 *
 * @module
 */

/** The NVRTC functions kdeno calls. */
export const NVRTC_SYMBOLS = {
  nvrtcVersion: {
    parameters: [
      "buffer", // major (int*)
      "buffer", // minor (int*)
    ],
    result: "i32",
  },
  nvrtcGetErrorString: {
    parameters: [
      "i32", // result
    ],
    result: "pointer",
  },
  nvrtcGetNumSupportedArchs: {
    parameters: [
      "buffer", // numArchs (int*)
    ],
    result: "i32",
  },
  nvrtcGetSupportedArchs: {
    parameters: [
      "buffer", // supportedArchs (int*)
    ],
    result: "i32",
  },
  nvrtcCreateProgram: {
    parameters: [
      "buffer", // prog (nvrtcProgram*)
      "buffer", // src (const char*)
      "buffer", // name (const char*)
      "i32", // numHeaders
      "buffer", // headers (const char* const*)
      "buffer", // includeNames (const char* const*)
    ],
    result: "i32",
  },
  nvrtcCompileProgram: {
    parameters: [
      "pointer", // prog
      "i32", // numOptions
      "buffer", // options (const char* const*)
    ],
    result: "i32",
  },
  nvrtcGetPTXSize: {
    parameters: [
      "pointer", // prog
      "buffer", // ptxSizeRet (size_t*)
    ],
    result: "i32",
  },
  nvrtcGetPTX: {
    parameters: [
      "pointer", // prog
      "buffer", // ptx (char*)
    ],
    result: "i32",
  },
  nvrtcGetCUBINSize: {
    parameters: [
      "pointer", // prog
      "buffer", // cubinSizeRet (size_t*)
    ],
    result: "i32",
  },
  nvrtcGetCUBIN: {
    parameters: [
      "pointer", // prog
      "buffer", // cubin (char*)
    ],
    result: "i32",
  },
  nvrtcGetProgramLogSize: {
    parameters: [
      "pointer", // prog
      "buffer", // logSizeRet (size_t*)
    ],
    result: "i32",
  },
  nvrtcGetProgramLog: {
    parameters: [
      "pointer", // prog
      "buffer", // log (char*)
    ],
    result: "i32",
  },
  nvrtcDestroyProgram: {
    parameters: [
      "buffer", // prog (nvrtcProgram*)
    ],
    result: "i32",
  },
} as const;

/** NVRTC opened with {@link NVRTC_SYMBOLS}. */
export type NvrtcLib = Deno.DynamicLibrary<typeof NVRTC_SYMBOLS>;

/** `NVRTC_SUCCESS`. */
export const NVRTC_SUCCESS = 0;
/** `NVRTC_ERROR_COMPILATION`: the program log says why. */
export const NVRTC_ERROR_COMPILATION = 6;
