/**
 * The OpenMP runtime (GCC's `libgomp`) and the thread environment the CPU
 * libraries are loaded under.
 *
 * oneDNN (Debian's `libdnnl2`), the native kernels (built with `-fopenmp`)
 * and the OpenMP build of OpenBLAS (`libopenblas0-openmp`) all run their
 * parallel loops on `libgomp`'s one pool of threads. That pool reads its
 * settings from the environment once, when the library is first loaded, so
 * every loader of a CPU library calls {@linkcode withThreadEnvironment},
 * which sets, for the duration of the `Deno.dlopen` only and only where the
 * user has not set them:
 *
 * - `OMP_WAIT_POLICY=PASSIVE` (unless `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT`
 *   is set): a thread with no work sleeps at once instead of spinning for
 *   up to 300,000 iterations, which on a machine whose cores other processes
 *   load takes time from the thread that holds the work;
 * - `OPENBLAS_THREAD_TIMEOUT=4` (unless set): the pthread build of OpenBLAS,
 *   when that is the one found, lets its workers spin 2^4 cycles rather than
 *   2^28 before they sleep;
 * - `OMP_NUM_THREADS` to {@linkcode requestedThreads} (unless set), so that
 *   every thread's parallel loops start from kdeno's count.
 *
 * The variables are removed again once the library has loaded, so child
 * processes (a compiler, a PyTorch run in a benchmark) inherit the user's
 * environment, not kdeno's.
 *
 * The thread count is `KDENO_NUM_THREADS`, else `OMP_NUM_THREADS` (its first
 * entry), each capped at the cores this process may run on, else those
 * cores: `navigator.hardwareConcurrency`, which counts the CPUs in the
 * process's affinity mask (`taskset`, `cpuset`) and honours a cgroup CPU
 * quota, where `libgomp` and OpenBLAS count the affinity mask only. Each
 * loaded library registers how to change its count
 * ({@linkcode onThreadCount}); {@linkcode setRequestedThreads} applies a new
 * count to all of them at once.
 *
 * @module
 */

import {
  BackendUnavailableError,
  granted,
  type LibrarySpec,
  openLibrary,
  readEnv,
} from "./find_library.ts";

/** The `Deno.dlopen` symbol table for the parts of `libgomp` kdeno calls. */
export const openMpSymbols = {
  /** Sets the calling thread's team size for later parallel regions. */
  omp_set_num_threads: { parameters: ["i32"], result: "void" },
  /** The team size the calling thread's next parallel region gets. */
  omp_get_max_threads: { parameters: [], result: "i32" },
} as const;

/** An opened OpenMP runtime. */
export interface OpenMp {
  /** The library's symbols. */
  readonly symbols: Deno.DynamicLibrary<typeof openMpSymbols>["symbols"];
  /** The path (or soname) that loaded. */
  readonly path: string;
}

/**
 * The search specification for `libgomp`: by soname only, so that the copy
 * opened here is the one oneDNN and the native kernels link to.
 */
export const openMpSpec: LibrarySpec = {
  library: "OpenMP runtime (libgomp)",
  fileNames: ["libgomp.so.1"],
  dirs: [],
  sonameFallback: true,
  hint: "Install it (Debian/Ubuntu: apt-get install libgomp1).",
};

/** The most threads {@linkcode setRequestedThreads} accepts. */
export const MAX_THREADS = 1024;

/** What {@linkcode withThreadEnvironment} sets when the user has not. */
export const WAIT_POLICY = "PASSIVE";
/** OpenBLAS's smallest spin before its (pthread) workers sleep: 2^4 cycles. */
export const OPENBLAS_TIMEOUT = "4";

let requested: number | undefined;
let requestedFrom = "";
const setters: Array<(n: number) => void> = [];
let gomp: { lib: OpenMp | null; error: string | null } | undefined;

/** The cores this process may run on (affinity mask and cgroup quota). */
export function availableCores(): number {
  const n = globalThis.navigator?.hardwareConcurrency;
  return typeof n === "number" && n >= 1 ? n : 1;
}

/**
 * Parses a thread count from an environment variable.
 *
 * @param name The variable, for the message.
 * @param value Its value (`OMP_NUM_THREADS` may list several: the first
 *   counts).
 * @returns The count.
 * @throws RangeError naming the variable when the value is not a whole
 *   number from 1 to {@linkcode MAX_THREADS}.
 */
export function parseThreads(name: string, value: string): number {
  const first = name === "OMP_NUM_THREADS" ? value.split(",")[0] : value;
  const n = /^\s*\d+\s*$/.test(first) ? Number(first) : NaN;
  if (!(n >= 1 && n <= MAX_THREADS)) {
    throw new RangeError(
      `${name}=${JSON.stringify(value)} is not a thread count: use a whole ` +
        `number from 1 to ${MAX_THREADS}`,
    );
  }
  return n;
}

/**
 * The thread count in force: the last {@linkcode setRequestedThreads}, else
 * `KDENO_NUM_THREADS`, else `OMP_NUM_THREADS`, each capped at
 * {@linkcode availableCores}, else the available cores.
 *
 * @returns The count.
 * @throws RangeError when `KDENO_NUM_THREADS` is not a whole number from 1
 *   to {@linkcode MAX_THREADS}.
 */
export function requestedThreads(): number {
  if (requested !== undefined) return requested;
  const cores = availableCores();
  const own = readEnv("KDENO_NUM_THREADS");
  if (own !== undefined && own !== "") {
    const n = parseThreads("KDENO_NUM_THREADS", own);
    requestedFrom = n > cores
      ? `KDENO_NUM_THREADS=${n}, capped at the ${cores} available core(s)`
      : "KDENO_NUM_THREADS";
    requested = Math.min(n, cores);
    return requested;
  }
  const omp = readEnv("OMP_NUM_THREADS");
  if (omp !== undefined && omp !== "") {
    let n: number | undefined;
    try {
      n = parseThreads("OMP_NUM_THREADS", omp);
    } catch {
      // libgomp ignores a value it cannot read; so does kdeno
    }
    if (n !== undefined) {
      requestedFrom = n > cores
        ? `OMP_NUM_THREADS=${n}, capped at the ${cores} available core(s)`
        : "OMP_NUM_THREADS";
      requested = Math.min(n, cores);
      return requested;
    }
  }
  requestedFrom = "the available cores";
  requested = cores;
  return requested;
}

/**
 * Where the thread count in force came from, e.g. `"KDENO_NUM_THREADS"`,
 * `"setNumThreads"` or `"the available cores"`.
 *
 * @returns A short phrase.
 */
export function requestedThreadsSource(): string {
  requestedThreads();
  return requestedFrom;
}

/**
 * Sets the thread count for every CPU library loaded so far and those
 * loaded later.
 *
 * @param n A whole number from 1 to {@linkcode MAX_THREADS}.
 * @param source Where the count came from, for
 *   {@linkcode requestedThreadsSource}.
 * @throws RangeError when `n` is out of range (nothing changes then).
 */
export function setRequestedThreads(n: number, source = "setNumThreads"): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new RangeError(
      `setNumThreads(${
        typeof n === "number" ? n : JSON.stringify(n)
      }): the thread count must be a whole number from 1 to ${MAX_THREADS}`,
    );
  }
  requested = n;
  requestedFrom = source;
  for (const set of setters) set(n);
}

/**
 * Registers how a loaded library changes its thread count: `set` is called
 * now with the count in force and again on every change.
 *
 * @param set Applies a count to one library.
 */
export function onThreadCount(set: (n: number) => void): void {
  setters.push(set);
  set(requestedThreads());
}

/**
 * The variables {@linkcode withThreadEnvironment} sets now: only those the
 * user has not set.
 *
 * @returns Name to value.
 */
export function threadEnvironment(): Record<string, string> {
  const out: Record<string, string> = {};
  const isSet = (name: string) => readEnv(name) !== undefined;
  if (!isSet("OMP_WAIT_POLICY") && !isSet("GOMP_SPINCOUNT")) {
    out.OMP_WAIT_POLICY = WAIT_POLICY;
  }
  if (!isSet("OPENBLAS_THREAD_TIMEOUT")) {
    out.OPENBLAS_THREAD_TIMEOUT = OPENBLAS_TIMEOUT;
  }
  if (!isSet("OMP_NUM_THREADS")) {
    out.OMP_NUM_THREADS = String(requestedThreads());
  }
  return out;
}

/**
 * Runs `load` (a `Deno.dlopen` of a CPU library) with the thread
 * environment set (see the module's description), loading `libgomp` first
 * under it; the variables set are removed afterwards. Without permission to
 * write the environment, `load` runs as it is.
 *
 * @param load Opens the library.
 * @returns What `load` returns.
 */
export function withThreadEnvironment<T>(load: () => T): T {
  const vars = threadEnvironment();
  const set: string[] = [];
  for (const [k, v] of Object.entries(vars)) {
    if (!granted({ name: "env", variable: k })) continue;
    try {
      Deno.env.set(k, v);
      set.push(k);
    } catch {
      // no permission after all: the library keeps its own default
    }
  }
  try {
    ensureGomp();
    return load();
  } finally {
    for (const k of set) Deno.env.delete(k);
  }
}

/** `dlopen` flags: resolve now, never unload. */
const RTLD_NOW = 2;
const RTLD_NODELETE = 0x1000;

let pinned = false;

/**
 * Opens `soname` through the C library's `dlopen` with `RTLD_NODELETE`, so
 * that it stays mapped until the process ends. Deno closes its library
 * handles when a program ends by running out of work; once OpenBLAS,
 * oneDNN and this handle were closed, `libgomp` was unmapped under its
 * sleeping pool threads and the process died with SIGSEGV at exit (3 of 8
 * runs of a program using only the OpenMP OpenBLAS). glibc only; elsewhere
 * nothing is pinned.
 */
function pin(soname: string): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    const libc = Deno.dlopen("libc.so.6", {
      dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
    });
    const name = new TextEncoder().encode(`${soname}\0`);
    return libc.symbols.dlopen(name, RTLD_NOW | RTLD_NODELETE) !== null;
  } catch {
    return false; // not glibc: the library is loaded the ordinary way
  }
}

/**
 * Whether `libgomp` is pinned (never unloaded before the process ends).
 *
 * @returns `true` once pinned.
 */
export function openMpPinned(): boolean {
  return pinned;
}

function loadGomp(): { lib: OpenMp | null; error: string | null } {
  if (typeof Deno?.dlopen !== "function") {
    return { lib: null, error: "Deno.dlopen is not available" };
  }
  if (!granted({ name: "ffi" })) {
    return { lib: null, error: "No FFI permission: run with --allow-ffi" };
  }
  try {
    pinned = pin(openMpSpec.fileNames[0]);
    const { lib, path } = openLibrary(openMpSpec, openMpSymbols);
    return { lib: { symbols: lib.symbols, path }, error: null };
  } catch (e) {
    return {
      lib: null,
      error: e instanceof BackendUnavailableError || e instanceof Error
        ? e.message
        : String(e),
    };
  }
}

/**
 * Opens `libgomp` on the first call (under the thread environment, see
 * {@linkcode withThreadEnvironment}) and returns it, or `null`
 * when it does not load; {@linkcode openMpError} says why. Once opened, its
 * thread count follows {@linkcode setRequestedThreads}.
 *
 * @returns The library, or `null`.
 */
export function openMp(): OpenMp | null {
  if (gomp === undefined) withThreadEnvironment(() => {});
  return gomp!.lib;
}

function ensureGomp(): void {
  if (gomp !== undefined) return;
  gomp = loadGomp();
  const lib = gomp.lib;
  if (lib !== null) onThreadCount((n) => lib.symbols.omp_set_num_threads(n));
}

/**
 * Why `libgomp` is not loaded, or `null` when it is (or was not tried).
 *
 * @returns The reason, or `null`.
 */
export function openMpError(): string | null {
  return gomp?.error ?? null;
}
