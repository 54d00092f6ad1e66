/**
 * The Open MPI symbol table and its lazy loader.
 *
 * Open MPI's predefined handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`,
 * ...) are macros for the *addresses* of exported globals
 * (`&ompi_mpi_comm_world`, ...): a `Deno.dlopen` static declared
 * `{ type: "pointer" }` yields exactly that address, so no C shim is
 * needed. `MPI_IN_PLACE` is `(void *) 1` and `MPI_STATUS_IGNORE` is `NULL`.
 * These handle conventions are Open MPI's (MPICH uses integer handles).
 *
 * The library is opened on first use, never on import: the file or
 * directories named by `KDENO_MPI_LIB`, else Debian's
 * `/usr/lib/x86_64-linux-gnu/libmpi.so.40`, else the soname through the
 * system loader. When nothing loads, {@linkcode openMpi} throws
 * `BackendUnavailableError` listing every path tried.
 *
 * @module
 */

import {
  BackendUnavailableError,
  type LibrarySpec,
  openLibrary,
} from "./find_library.ts";

const P = "pointer", B = "buffer", I = "i32";

/** `MPI_THREAD_SERIALIZED`: any thread may call MPI, one at a time. */
export const MPI_THREAD_SERIALIZED = 2;
/** `MPI_THREAD_MULTIPLE`: any thread may call MPI concurrently. */
export const MPI_THREAD_MULTIPLE = 3;
/** `MPI_MAX_ERROR_STRING` in Open MPI 4.1. */
export const MPI_MAX_ERROR_STRING = 256;

/** The `Deno.dlopen` symbol table for the parts of Open MPI kdeno calls. */
export const mpiSymbols = {
  /** `(int *argc, char ***argv, int required, int *provided)`. */
  MPI_Init_thread: { parameters: [P, P, I, B], result: I },
  /** `(int *flag)`. */
  MPI_Initialized: { parameters: [B], result: I },
  /** `(int *flag)`. */
  MPI_Finalized: { parameters: [B], result: I },
  /** `(MPI_Comm comm, int *rank)`. */
  MPI_Comm_rank: { parameters: [P, B], result: I },
  /** `(MPI_Comm comm, int *size)`. */
  MPI_Comm_size: { parameters: [P, B], result: I },
  /** `(MPI_Comm comm, MPI_Errhandler errhandler)`. */
  MPI_Comm_set_errhandler: { parameters: [P, P], result: I },
  /** `(int errorcode, char *string, int *resultlen)`. */
  MPI_Error_string: { parameters: [I, B, B], result: I },
  /** `(sendbuf, recvbuf, count, datatype, op, comm, MPI_Request *request)`. */
  MPI_Iallreduce: { parameters: [P, B, I, P, P, P, B], result: I },
  /** `(buffer, count, datatype, root, comm, MPI_Request *request)`. */
  MPI_Ibcast: { parameters: [B, I, P, I, P, B], result: I },
  /** `(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, request)`. */
  MPI_Iallgather: { parameters: [B, I, P, B, I, P, P, B], result: I },
  /** `(MPI_Comm comm, MPI_Request *request)`. */
  MPI_Ibarrier: { parameters: [P, B], result: I },
  /** `(MPI_Request *request, int *flag, MPI_Status *status)`. */
  MPI_Test: { parameters: [B, B, P], result: I },
  /** `(MPI_Request *request, MPI_Status *status)`. */
  MPI_Wait: { parameters: [B, P], result: I },
  /** `(MPI_Request *request)`. */
  MPI_Cancel: { parameters: [B], result: I },
  /** `(void)`. */
  MPI_Finalize: { parameters: [], result: I },
  /** `(MPI_Comm comm, int errorcode)`: does not return. */
  MPI_Abort: { parameters: [P, I], result: I },
  /** `MPI_COMM_WORLD` is the address of this global. */
  ompi_mpi_comm_world: { type: P },
  /** `MPI_FLOAT`. */
  ompi_mpi_float: { type: P },
  /** `MPI_DOUBLE`. */
  ompi_mpi_double: { type: P },
  /** `MPI_INT`. */
  ompi_mpi_int: { type: P },
  /** `MPI_BYTE`. */
  ompi_mpi_byte: { type: P },
  /** `MPI_SUM`. */
  ompi_mpi_op_sum: { type: P },
  /** `MPI_MAX`. */
  ompi_mpi_op_max: { type: P },
  /** `MPI_MIN`. */
  ompi_mpi_op_min: { type: P },
  /** `MPI_ERRORS_RETURN`. */
  ompi_mpi_errors_return: { type: P },
} as const;

/** The opened Open MPI library. */
export type MpiLib = Deno.DynamicLibrary<typeof mpiSymbols>;

/** Where Open MPI is looked for. */
export const MPI_SPEC: LibrarySpec = {
  library: "Open MPI (libmpi.so.40)",
  fileNames: ["libmpi.so.40"],
  envVar: "KDENO_MPI_LIB",
  dirs: ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"],
  hint:
    "Install Open MPI 4 (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi3) " +
    "or set KDENO_MPI_LIB to the directory or file of libmpi.so.40",
};

let cached: { lib: MpiLib; path: string } | null = null;

/**
 * Opens Open MPI (once).
 *
 * @returns The library and the path that loaded.
 * @throws BackendUnavailableError naming every path tried.
 */
export function openMpi(): { lib: MpiLib; path: string } {
  if (!cached) cached = openLibrary(MPI_SPEC, mpiSymbols);
  return cached;
}

export { BackendUnavailableError };
