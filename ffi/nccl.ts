/**
 * The NCCL symbol table and its lazy loader.
 *
 * `ncclUniqueId` is a 128-byte struct passed **by value** to
 * `ncclCommInitRank`; it is declared as a struct of 128 `u8` and passed as a
 * `Uint8Array`. Enums are `int`. Device buffers and streams are pointers.
 *
 * The library (`libnccl.so.2`) is opened on first use: the file or
 * directories named by `KDENO_NCCL_LIB`, else the Python environment's NVIDIA
 * wheel (`$VIRTUAL_ENV/lib/python3.*\/site-packages/nvidia/nccl/lib`, as
 * PyTorch loads it), `$CONDA_PREFIX/lib`, `$CUDA_HOME/lib64`,
 * `/usr/local/cuda/lib64`, the Debian library directory, then the soname.
 * When nothing loads, {@linkcode openNccl} throws `BackendUnavailableError`
 * listing every path tried.
 *
 * @module
 */

import {
  BackendUnavailableError,
  envDirs,
  type LibrarySpec,
  openLibrary,
} from "./find_library.ts";
import { sitePackages } from "./cuda_libs.ts";

const UID = { struct: Array(128).fill("u8") } as const;
const P = "pointer", B = "buffer", I = "i32", Z = "usize";

/** `NCCL_UNIQUE_ID_BYTES`. */
export const NCCL_UNIQUE_ID_BYTES = 128;
/** `ncclFloat32`. */
export const NCCL_FLOAT32 = 7;
/** `ncclInt32`. */
export const NCCL_INT32 = 2;
/** `ncclSum`. */
export const NCCL_SUM = 0;
/** `ncclMax`. */
export const NCCL_MAX = 2;
/** `ncclMin`. */
export const NCCL_MIN = 3;
/** `ncclAvg` (NCCL 2.10 and later). */
export const NCCL_AVG = 4;

/** The `Deno.dlopen` symbol table for the parts of NCCL kdeno calls. */
export const ncclSymbols = {
  /** `(int *version)`. */
  ncclGetVersion: { parameters: [B], result: I },
  /** `(ncclUniqueId *id)`: a 128-byte `Uint8Array`. */
  ncclGetUniqueId: { parameters: [B], result: I },
  /** `(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)`: id by value. */
  ncclCommInitRank: { parameters: [B, I, UID, I], result: I },
  /** `(send, recv, size_t count, dtype, op, comm, cudaStream_t stream)`. */
  ncclAllReduce: { parameters: [P, P, Z, I, I, P, P], result: I },
  /** `(send, recv, size_t count, dtype, int root, comm, stream)`. */
  ncclBroadcast: { parameters: [P, P, Z, I, I, P, P], result: I },
  /** `(send, recv, size_t sendcount, dtype, comm, stream)`. */
  ncclAllGather: { parameters: [P, P, Z, I, P, P], result: I },
  /** `(ncclComm_t comm)`. */
  ncclCommDestroy: { parameters: [P], result: I },
  /** `(ncclComm_t comm)`. */
  ncclCommAbort: { parameters: [P], result: I },
  /** `(ncclComm_t comm, ncclResult_t *asyncError)`. */
  ncclCommGetAsyncError: { parameters: [P, B], result: I },
  /** `(ncclResult_t result)`: a C string. */
  ncclGetErrorString: { parameters: [I], result: P },
} as const;

/** The opened NCCL library. */
export type NcclLib = Deno.DynamicLibrary<typeof ncclSymbols>;

/**
 * The directories searched for `libnccl.so.2` when `KDENO_NCCL_LIB` is unset.
 *
 * @returns Directory paths (not all of them need exist).
 */
export function ncclLibDirs(): string[] {
  const dirs: string[] = [];
  const get = (n: string) => envDirs(n)[0];
  const venv = get("VIRTUAL_ENV");
  if (venv) {
    for (const sp of sitePackages(venv)) dirs.push(`${sp}/nvidia/nccl/lib`);
  }
  const conda = get("CONDA_PREFIX");
  if (conda) dirs.push(`${conda}/lib`);
  for (const n of ["CUDA_HOME", "CUDA_PATH"]) {
    const home = get(n);
    if (home) dirs.push(`${home}/lib64`);
  }
  dirs.push("/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu");
  return [...new Set(dirs)];
}

/**
 * Where NCCL is looked for.
 *
 * @returns The search spec.
 */
export function ncclSpec(): LibrarySpec {
  return {
    library: "NCCL (libnccl.so.2)",
    fileNames: ["libnccl.so.2"],
    envVar: "KDENO_NCCL_LIB",
    dirs: ncclLibDirs(),
    hint: "Install NCCL (pip install nvidia-nccl-cu12 in the active " +
      "virtual environment, or the libnccl2 package) or set KDENO_NCCL_LIB " +
      "to the directory or file of libnccl.so.2",
  };
}

let cached: { lib: NcclLib; path: string } | null = null;

/**
 * Opens NCCL (once).
 *
 * @returns The library and the path that loaded.
 * @throws BackendUnavailableError naming every path tried.
 */
export function openNccl(): { lib: NcclLib; path: string } {
  if (!cached) cached = openLibrary(ncclSpec(), ncclSymbols);
  return cached;
}

export { BackendUnavailableError };
