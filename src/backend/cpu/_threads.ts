/**
 * The CPU backend's thread count, like `torch.set_num_threads`: one count
 * for OpenBLAS, oneDNN and the native kernels, which share `libgomp`'s pool
 * of threads when Debian's OpenMP build of OpenBLAS is installed (see
 * `ffi/openmp.ts` for the environment they are loaded under and where the
 * default comes from).
 *
 * @module
 */

import {
  availableCores,
  requestedThreads,
  requestedThreadsSource,
  setRequestedThreads,
} from "../../../ffi/openmp.ts";
import { openBlas } from "../../../ffi/openblas.ts";

/**
 * Sets the number of threads the CPU backend's parallel kernels use, like
 * `torch.set_num_threads`: OpenBLAS's GEMM, oneDNN's convolutions and the
 * native kernels (batch norm, pooling, elementwise) at once, for the
 * libraries already loaded and those loaded later. As in PyTorch, the count
 * applies to work started from the calling thread. The default is
 * {@linkcode getNumThreads}'s before any call: `KDENO_NUM_THREADS`, else
 * `OMP_NUM_THREADS`, each capped at the cores the process may use, else
 * those cores (the affinity mask and any cgroup CPU quota). A count above
 * the available cores is honoured, as PyTorch does, though on a machine
 * shared with other work it is usually slower.
 *
 * @example
 * ```ts
 * import { getNumThreads, setNumThreads } from "@kdeno/kdeno";
 * setNumThreads(1); // e.g. beside other busy processes
 * console.log(getNumThreads()); // 1
 * ```
 *
 * @param n A whole number from 1 to 1024.
 * @throws RangeError when `n` is not a whole number from 1 to 1024; the
 *   count is then unchanged.
 */
export function setNumThreads(n: number): void {
  // the loaded libraries change now, the others as they load
  setRequestedThreads(n, "setNumThreads");
}

/**
 * The number of threads the CPU backend's parallel kernels use, like
 * `torch.get_num_threads`: the last {@linkcode setNumThreads}, else the
 * default described there.
 *
 * @returns The thread count.
 * @throws RangeError when `KDENO_NUM_THREADS` is set to anything but a whole
 *   number from 1 to 1024.
 */
export function getNumThreads(): number {
  return requestedThreads();
}

/** What {@linkcode threadInfo} reports. */
export interface ThreadInfo {
  /** The count in force ({@linkcode getNumThreads}). */
  threads: number;
  /** Where it came from, e.g. `"setNumThreads"`, `"KDENO_NUM_THREADS"`. */
  source: string;
  /** The cores this process may run on (affinity mask, cgroup quota). */
  cores: number;
  /** OpenBLAS's threading (`"openmp"`, `"pthread"`, ...) or `null`. */
  openBlas: string | null;
}

/**
 * The thread settings in force, for logs and benchmarks.
 *
 * @returns The count, its source, the available cores and OpenBLAS's
 *   threading.
 */
export function threadInfo(): ThreadInfo {
  return {
    threads: requestedThreads(),
    source: requestedThreadsSource(),
    cores: availableCores(),
    openBlas: openBlas()?.threading ?? null,
  };
}
