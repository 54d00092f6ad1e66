/**
 * The OpenBLAS symbol table and its lazy loader.
 *
 * The library is opened on first use, never on import. It is looked for in
 * the file or directories named by `KDENO_OPENBLAS`, or, when that is
 * unset, in the usual library directories, then by soname through the
 * system loader. Without `--allow-ffi`, or when no candidate of the usual
 * places loads, {@linkcode openBlas} returns `null` and
 * {@linkcode openBlasError} says why, so the caller can fall back to the
 * TypeScript kernels. When `KDENO_OPENBLAS` names a library that does not
 * load, {@linkcode openBlas} throws instead, naming each path and the
 * loader's reason: an explicit choice is not replaced by the system's
 * library or the TypeScript kernels (why: `find_library.ts`).
 *
 * Debian's OpenMP build (`libopenblas0-openmp`) is preferred to its pthread
 * build when both are installed: it runs on the same `libgomp` pool of
 * threads as oneDNN and the native kernels, where the pthread build keeps a
 * second pool whose workers spin between calls. The library is loaded under
 * kdeno's thread environment and follows its thread count
 * (`ffi/openmp.ts`).
 *
 * @module
 */

import {
  type BackendUnavailableError,
  type LibrarySpec,
  openLibrary,
  optionalLibrary,
} from "./find_library.ts";
import {
  onThreadCount,
  requestedThreads,
  withThreadEnvironment,
} from "./openmp.ts";

/** `CBLAS_ORDER`: row-major storage. */
export const CBLAS_ROW_MAJOR = 101;
/** `CBLAS_TRANSPOSE`: use the matrix as stored. */
export const CBLAS_NO_TRANS = 111;
/** `CBLAS_TRANSPOSE`: use the transpose of the matrix. */
export const CBLAS_TRANS = 112;

/** The `Deno.dlopen` symbol table for the parts of OpenBLAS kdeno calls. */
export const openBlasSymbols = {
  /** `C = alpha * op(A) @ op(B) + beta * C`. */
  cblas_sgemm: {
    parameters: [
      "i32", // const enum CBLAS_ORDER Order
      "i32", // const enum CBLAS_TRANSPOSE TransA
      "i32", // const enum CBLAS_TRANSPOSE TransB
      "i32", // const blasint M
      "i32", // const blasint N
      "i32", // const blasint K
      "f32", // const float alpha
      "buffer", // const float *A
      "i32", // const blasint lda
      "buffer", // const float *B
      "i32", // const blasint ldb
      "f32", // const float beta
      "buffer", // float *C
      "i32", // const blasint ldc
    ],
    result: "void",
  },
  /** Sets the number of worker threads. */
  openblas_set_num_threads: {
    parameters: [
      "i32", // int num_threads
    ],
    result: "void",
    optional: true,
  },
  /** Returns the number of worker threads. */
  openblas_get_num_threads: {
    parameters: [],
    result: "i32",
    optional: true,
  },
  /** Returns 0 (serial build), 1 (pthread build) or 2 (OpenMP build). */
  openblas_get_parallel: {
    parameters: [],
    result: "i32",
    optional: true,
  },
  /** Returns the build configuration as a C string. */
  openblas_get_config: {
    parameters: [],
    result: "pointer",
    optional: true,
  },
} as const;

/** An opened OpenBLAS. */
export interface OpenBlas {
  /** The library's symbols. */
  readonly symbols: Deno.DynamicLibrary<typeof openBlasSymbols>["symbols"];
  /** The path (or soname) that loaded. */
  readonly path: string;
  /** The build configuration (`openblas_get_config`), or `""` if absent. */
  readonly config: string;
  /**
   * How the build runs its threads: `"openmp"` (on `libgomp`'s pool, shared
   * with oneDNN and the native kernels), `"pthread"` (a pool of its own) or
   * `"serial"`, from `openblas_get_parallel`; `"unknown"` without it.
   */
  readonly threading: "openmp" | "pthread" | "serial" | "unknown";
}

/** Where OpenBLAS is looked for, in order, after `KDENO_OPENBLAS`. */
export const OPENBLAS_DIRS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/openblas-openmp",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread",
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib64",
  "/usr/local/lib",
  "/opt/homebrew/opt/openblas/lib",
];

/** The search specification for OpenBLAS. */
export const openBlasSpec: LibrarySpec = {
  library: "OpenBLAS",
  fileNames: ["libopenblas.so.0", "libopenblas.so", "libblas.so.3"],
  envVar: "KDENO_OPENBLAS",
  dirs: [...OPENBLAS_DIRS],
  sonameFallback: true,
  hint: "Install it (Debian/Ubuntu: apt-get install libopenblas0-openmp, " +
    "or libopenblas0-pthread) " +
    "or set KDENO_OPENBLAS to the library file or its directory.",
};

const loader = optionalLibrary<OpenBlas>({
  spec: openBlasSpec,
  before: requestedThreads, // a bad KDENO_NUM_THREADS throws, not falls back
  open: () => {
    const { lib, path } = withThreadEnvironment(() =>
      openLibrary(openBlasSpec, openBlasSymbols)
    );
    let config = "";
    const getConfig = lib.symbols.openblas_get_config;
    if (getConfig) {
      const p = getConfig();
      if (p !== null) config = Deno.UnsafePointerView.getCString(p);
    }
    const parallel = lib.symbols.openblas_get_parallel?.();
    const threading = parallel === 2
      ? "openmp"
      : parallel === 1
      ? "pthread"
      : parallel === 0
      ? "serial"
      : "unknown";
    const setThreads = lib.symbols.openblas_set_num_threads;
    if (setThreads) onThreadCount((n) => setThreads(n));
    return { symbols: lib.symbols, path, config, threading };
  },
});

/**
 * Opens OpenBLAS on the first call and returns it, or `null` when it cannot
 * be loaded (no `--allow-ffi`, or nothing in the usual places loads). The
 * result is cached.
 *
 * @returns The library, or `null`.
 * @throws BackendUnavailableError on every call when `KDENO_OPENBLAS` names
 *   a library that does not load, listing each path with the loader's
 *   reason.
 */
export function openBlas(): OpenBlas | null {
  return loader.get();
}

/**
 * Why OpenBLAS is not available: the permission problem, or every path tried
 * with the loader's reason. `null` when it loaded (or was not tried yet).
 *
 * @returns The reason, or `null`.
 */
export function openBlasError(): string | null {
  return loader.failure()?.message ?? null;
}

/**
 * The error {@linkcode openBlas} swallowed, with `tried` listing every path
 * and the loader's reason; `null` when it loaded (or was not tried yet).
 *
 * @returns The error, or `null`.
 */
export function openBlasFailure(): BackendUnavailableError | null {
  return loader.failure();
}
