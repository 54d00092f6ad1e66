/**
 * The CUDA device's memory counters, as `torch.cuda` gives them:
 * `cuda.memoryStats()` is `torch.cuda.memory_stats()`,
 * `cuda.maxMemoryAllocated()` is `torch.cuda.max_memory_allocated()`,
 * `cuda.resetPeakMemoryStats()` is `torch.cuda.reset_peak_memory_stats()`,
 * and so on. The caching allocator follows PyTorch's rules (512-byte
 * rounding, a small pool of 2 MiB segments and a large pool of 20 MiB ones,
 * best fit with splitting), so the same model asks for the same bytes.
 *
 * ```ts
 * import { cuda, models, noGrad, randn } from "@kdeno/kdeno";
 *
 * if (cuda.isAvailable()) {
 *   const net = new models.StudentNet({ inputSize: 32, numClasses: 10 }).to("cuda").eval();
 *   cuda.resetPeakMemoryStats();
 *   noGrad(() => net.call(randn([64, 3, 32, 32], { device: "cuda" })));
 *   console.log(cuda.maxMemoryAllocated() / 2 ** 20, "MiB at the peak");
 * }
 * ```
 *
 * @module
 */

import { backendStatus, getBackend } from "../registry.ts";
import type { AllocatorStats } from "./allocator.ts";
import type { CudaBackend } from "./backend.ts";

/** What {@link memoryStats} returns: the allocator's counters and the device's. */
export interface CudaMemoryStats extends AllocatorStats {
  /** Bytes free on the device (`cuMemGetInfo`), other processes included. */
  deviceFree: number;
  /** Bytes the device has. */
  deviceTotal: number;
}

function backend(): CudaBackend {
  return getBackend("cuda") as CudaBackend;
}

/**
 * Whether a CUDA device can be used here (the libraries load and device 0
 * answers), as `torch.cuda.is_available()`.
 *
 * @returns True when it can.
 */
export function isAvailable(): boolean {
  return backendStatus("cuda").available;
}

/**
 * The caching allocator's counters: bytes allocated to tensors now and at
 * the peak, bytes reserved from the device, allocation and free counts.
 *
 * @returns A snapshot of the counters.
 * @throws BackendUnavailableError when no CUDA device can be used.
 */
export function memoryStats(): CudaMemoryStats {
  return backend().memoryStats();
}

/**
 * Bytes allocated to tensors (and library workspaces) now, rounded as the
 * allocator serves them, as `torch.cuda.memory_allocated()`.
 *
 * @returns Bytes.
 * @throws BackendUnavailableError when no CUDA device can be used.
 */
export function memoryAllocated(): number {
  return backend().memoryStats().liveBytes;
}

/**
 * The most bytes allocated at once since the process started or the last
 * {@link resetPeakMemoryStats}, as `torch.cuda.max_memory_allocated()`.
 *
 * @returns Bytes.
 * @throws BackendUnavailableError when no CUDA device can be used.
 */
export function maxMemoryAllocated(): number {
  return backend().memoryStats().peakLiveBytes;
}

/**
 * Bytes the allocator holds from the device (allocated and cached), as
 * `torch.cuda.memory_reserved()`.
 *
 * @returns Bytes.
 * @throws BackendUnavailableError when no CUDA device can be used.
 */
export function memoryReserved(): number {
  return backend().memoryStats().reservedBytes;
}

/**
 * The most bytes held from the device at once since the last reset, as
 * `torch.cuda.max_memory_reserved()`.
 *
 * @returns Bytes.
 * @throws BackendUnavailableError when no CUDA device can be used.
 */
export function maxMemoryReserved(): number {
  return backend().memoryStats().peakReservedBytes;
}

/**
 * Starts the peak counters again from the current usage, as
 * `torch.cuda.reset_peak_memory_stats()`.
 *
 * @throws BackendUnavailableError when no CUDA device can be used.
 */
export function resetPeakMemoryStats(): void {
  backend().resetPeakMemory();
}

/**
 * Waits for the device's queued work, then returns the allocator's whole
 * free segments to the driver, as `torch.cuda.empty_cache()`. Tensors keep
 * their memory.
 *
 * @throws BackendUnavailableError when no CUDA device can be used.
 */
export function emptyCache(): void {
  backend().emptyCache();
}
