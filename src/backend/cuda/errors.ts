/**
 * Turning CUDA, NVRTC and cuBLAS status codes into errors that carry the
 * library's own words (`cuGetErrorName`/`cuGetErrorString`,
 * `nvrtcGetErrorString` and the program log, `cublasGetStatusString`).
 *
 * @module
 */

/** Which library a failed call belongs to. */
export type CudaLibraryName = "CUDA driver" | "NVRTC" | "cuBLAS";

/** A CUDA library call returned an error status. */
export class CudaError extends Error {
  /** The library. */
  readonly library: CudaLibraryName;
  /** The function that failed, e.g. `cuMemAlloc_v2`. */
  readonly call: string;
  /** The status code it returned. */
  readonly code: number;
  /**
   * Creates the error.
   *
   * @param library The library.
   * @param call The function that failed.
   * @param code Its status code.
   * @param detail The library's text for the code (and any log).
   */
  constructor(
    library: CudaLibraryName,
    call: string,
    code: number,
    detail: string,
  ) {
    super(`Cannot run ${call} (${library}): ${detail}`);
    this.name = "CudaError";
    this.library = library;
    this.call = call;
    this.code = code;
  }
}

function cString(p: Deno.PointerValue): string | null {
  return p === null ? null : Deno.UnsafePointerView.getCString(p);
}

/** The two driver functions that describe a `CUresult`. */
export interface DriverErrorText {
  cuGetErrorName(error: number, pStr: BufferSource | null): number;
  cuGetErrorString(error: number, pStr: BufferSource | null): number;
}

const outStr = new BigUint64Array(1);

function outCString(): string | null {
  return outStr[0] === 0n
    ? null
    : cString(Deno.UnsafePointer.create(outStr[0]));
}

/**
 * Describes a `CUresult` as `NAME (code): text`, e.g.
 * `CUDA_ERROR_OUT_OF_MEMORY (2): out of memory`.
 *
 * @param cu The driver's symbols.
 * @param code The status.
 * @returns The description.
 */
export function cuResultText(cu: DriverErrorText, code: number): string {
  outStr[0] = 0n;
  const name = cu.cuGetErrorName(code, outStr) === 0 ? outCString() : null;
  outStr[0] = 0n;
  const text = cu.cuGetErrorString(code, outStr) === 0 ? outCString() : null;
  return `${name ?? "unknown CUresult"} (${code})` + (text ? `: ${text}` : "");
}

/**
 * Describes an `nvrtcResult` as `NAME (code)`.
 *
 * @param nvrtc NVRTC's `nvrtcGetErrorString`.
 * @param code The status.
 * @returns The description.
 */
export function nvrtcResultText(
  nvrtc: { nvrtcGetErrorString(result: number): Deno.PointerValue },
  code: number,
): string {
  return `${cString(nvrtc.nvrtcGetErrorString(code)) ?? "unknown"} (${code})`;
}

/**
 * Describes a `cublasStatus_t` as `NAME (code)`.
 *
 * @param cublas cuBLAS's `cublasGetStatusString`.
 * @param code The status.
 * @returns The description.
 */
export function cublasStatusText(
  cublas: { cublasGetStatusString(status: number): Deno.PointerValue },
  code: number,
): string {
  const text = cString(cublas.cublasGetStatusString(code));
  return `${text ?? "unknown cublasStatus_t"} (${code})`;
}
