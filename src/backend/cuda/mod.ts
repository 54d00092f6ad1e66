/**
 * The CUDA backend: device 0 through the driver API, GEMM on cuBLAS, every
 * other kernel CUDA C compiled by NVRTC for the device on first use.
 *
 * Importing this module opens nothing; {@link createCudaBackend} opens the
 * libraries and the device.
 *
 * @module
 */

import { BackendUnavailableError } from "../../../ffi/find_library.ts";
import { openCudaLibraries } from "../../../ffi/cuda_libs.ts";
import { CudaBackend } from "./backend.ts";
import { CudaError } from "./errors.ts";

export {
  CudaBackend,
  type CudaBackendInfo,
  type CudaBackendOptions,
} from "./backend.ts";
export { CudaError, type CudaLibraryName } from "./errors.ts";
export {
  type AllocatorStats,
  type Block,
  DeviceOutOfMemoryError,
} from "./allocator.ts";
export type { CudaLibraries } from "../../../ffi/cuda_libs.ts";
export { CudaStorage } from "./runtime.ts";
export { type CudaMathMode, getCudaMathMode, setCudaMathMode } from "./gemm.ts";

let instance: CudaBackend | null = null;

/**
 * Opens the CUDA driver, NVRTC and cuBLAS, and sets up device 0. One backend
 * exists per process; later calls return it.
 *
 * @returns The backend.
 * @throws BackendUnavailableError naming the missing library and every path
 * tried, or the device that did not answer.
 */
export function createCudaBackend(): CudaBackend {
  if (instance) return instance;
  const libs = openCudaLibraries();
  try {
    instance = new CudaBackend(libs);
  } catch (e) {
    if (!(e instanceof CudaError)) throw e;
    const loaded = [libs.paths.driver, libs.paths.nvrtc, libs.paths.cublas];
    throw new BackendUnavailableError(
      "a CUDA device",
      [...loaded.map((p) => `${p}: loaded`), `device 0: ${e.message}`],
      "The libraries loaded but device 0 could not be set up",
    );
  }
  return instance;
}
