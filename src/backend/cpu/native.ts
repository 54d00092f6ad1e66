/**
 * The CPU backend's native kernels: batch norm, max pooling, ReLU and a few
 * elementwise loops in C (`native_source.ts`), vectorised by the compiler
 * and spread over the cores with OpenMP, on the same `libgomp` pool as
 * oneDNN and the OpenMP build of OpenBLAS, loaded under kdeno's thread
 * environment and following `setNumThreads` (`ffi/openmp.ts`). The
 * TypeScript kernels are single-threaded scalar loops; on the memory-bound
 * passes of the tutorial's models these run several times faster.
 *
 * The source is compiled once per machine with the system C compiler, the
 * way PyTorch's `torch.compile` builds its CPU kernels: into
 * `$KDENO_CACHE_DIR` (default `$XDG_CACHE_HOME/kdeno` or `~/.cache/kdeno`),
 * under a name that hashes the source, the flags and the platform. Later
 * runs open the cached file.
 *
 * The cache must never crash the process. `Deno.dlopen` maps the file, and a
 * library cut short (a crash or power loss during a build, a full disk)
 * passes the loader's header checks and then dies with SIGBUS on the first
 * page past the end, where no `try` can catch it. So every build is written
 * to a temporary name, fsync'ed, and renamed into place; its size and
 * SHA-256 go to a sidecar `kernels-<key>.<ext>.sum` written the same way
 * after it; and the library is opened only when it matches its sidecar.
 * Anything else (no sidecar, an unreadable one, another size, another
 * digest) is rebuilt. Builds hold an exclusive lock on
 * `kernels-<key>.<ext>.lock` and look again once they have it, so processes
 * starting together on an empty cache build once and the others wait and
 * open that build; readers take no lock (a rename swaps whole files, and a
 * reader that sees a new library with the old sidecar rebuilds under the
 * lock, finds it valid and opens it). Temporary files that a crashed build
 * left behind, older than {@linkcode STALE_TEMP_MINUTES} minutes, are
 * removed whenever the cache is writable.
 *
 * Nothing is required: without a compiler (`cc`, or `KDENO_CC`), without
 * the permissions (`--allow-ffi`, `--allow-run`, `--allow-read`,
 * `--allow-write`, `--allow-env`; `-A` has them), with `KDENO_NATIVE=0`, or
 * when the build fails, {@linkcode nativeKernels} returns `null`,
 * {@linkcode nativeKernelsError} says why, and the TypeScript kernels run.
 * Permissions are queried, never prompted for.
 *
 * @module
 */

import { createHash } from "node:crypto";
import {
  onThreadCount,
  requestedThreads,
  withThreadEnvironment,
} from "../../../ffi/openmp.ts";
import { granted, readEnv } from "../../../ffi/find_library.ts";
import { NATIVE_ABI, NATIVE_SOURCE } from "./native_source.ts";

// Sizes travel as float64 (exact to 2^53), not as BigInt-typed i64.
const SYMBOLS = {
  kd_abi: { parameters: [], result: "i32" },
  kd_threads: { parameters: [], result: "i32" },
  kd_set_threads: { parameters: ["i32"], result: "void" },
  kd_bn_stats: {
    parameters: ["buffer", "f64", "f64", "f64", "buffer", "buffer"],
    result: "void",
  },
  kd_channel_affine: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "f64",
      "f64",
      "f64",
      "i32",
    ],
    result: "void",
  },
  kd_bn_bwd_stats: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "f64",
      "f64",
      "f64",
      "buffer",
      "buffer",
    ],
    result: "void",
  },
  kd_bn_bwd_apply: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "f64", "f64", "f64"],
    result: "void",
  },
  kd_maxpool: {
    parameters: ["buffer", "buffer", "buffer", "i32", "f64", "buffer"],
    result: "void",
  },
  kd_maxpool_bwd: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "f64",
      "f64",
      "f64",
      "f64",
      "f64",
      "i32",
    ],
    result: "void",
  },
  kd_relu: { parameters: ["buffer", "buffer", "f64"], result: "void" },
  kd_relu_grad: {
    parameters: ["buffer", "buffer", "buffer", "f64"],
    result: "void",
  },
  kd_add: {
    parameters: ["buffer", "buffer", "buffer", "f64"],
    result: "void",
  },
  kd_axpy: { parameters: ["buffer", "buffer", "f64", "f64"], result: "void" },
  kd_sum_mid: {
    parameters: ["buffer", "buffer", "f64", "f64", "f64"],
    result: "void",
  },
  // ---- image resampling (src/data/_resize.ts) ----
  kd_resample_h_u8: {
    parameters: [
      "buffer",
      "f64",
      "f64",
      "f64",
      "f64",
      "buffer",
      "f64",
      "buffer",
      "buffer",
      "f64",
    ],
    result: "void",
  },
  kd_resample_v_u8: {
    parameters: [
      "buffer",
      "f64",
      "buffer",
      "f64",
      "buffer",
      "buffer",
      "f64",
      "f64",
    ],
    result: "void",
  },
  // ---- end of image resampling ----
} as const satisfies Deno.ForeignLibraryInterface;

/** The native kernels' entry points. */
export type NativeKernels = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Flags the kernels are built with; part of the cache key. */
const FLAGS = [
  "-O3",
  "-ffp-contract=off",
  "-shared",
  "-fPIC",
  // never unloaded: OpenMP's threads outlive the library handle at exit
  ...(Deno.build.os === "linux" ? ["-Wl,-z,nodelete"] : []),
];
const OPENMP = "-fopenmp";

/**
 * Temporary files in the cache older than this many minutes were left by a
 * build that crashed (a build takes seconds) and are removed.
 */
export const STALE_TEMP_MINUTES = 10;

/**
 * A build's temporary files: the library's name with a further suffix other
 * than the sidecar's and the lock's (`.tmp-<pid>-<random>`, its `.c`, and
 * the `.<pid>.<random>` of earlier versions).
 */
const TEMPORARY = /^kernels-[0-9a-f]{16}\.[a-z]+\.(?!(?:sum|lock)$)/;

/** The sidecar's largest plausible size: one line of JSON. */
const MAX_SUM_BYTES = 1024;

/** What loading gave: the kernels and their file, or why there are none. */
type LoadState = {
  lib: NativeKernels | null;
  path: string | null;
  error: string | null;
};

let state: LoadState | undefined;
let enabled = true;

/**
 * Turns the native kernels on (the default, when they build) or off, for
 * tests and benchmarks that compare them with the TypeScript kernels.
 *
 * @param on Whether to use them.
 */
export function setNativeKernels(on: boolean): void {
  enabled = on;
}

/**
 * The native kernels, built or opened on the first call, or `null` when they
 * are turned off or unavailable (then {@linkcode nativeKernelsError} says
 * why).
 *
 * A cached library is opened only when its size and SHA-256 match the
 * sidecar written after it; one that does not (cut short by a crash, or
 * changed since) is rebuilt under the cache's lock. Temporary files of
 * crashed builds older than {@linkcode STALE_TEMP_MINUTES} (10) minutes are
 * removed. `KDENO_CACHE_DIR` chooses the cache, `KDENO_CC` the compiler,
 * `KDENO_NATIVE=0` turns the kernels off.
 *
 * @returns The kernels, or `null`.
 */
export function nativeKernels(): NativeKernels | null {
  if (!enabled) return null;
  state ??= load();
  return state.lib;
}

/** Why the native kernels are not in use, or `null` when they are. */
export function nativeKernelsError(): string | null {
  if (!enabled) return "turned off by setNativeKernels(false)";
  state ??= load();
  return state.error;
}

/**
 * How the native kernels run, for diagnostics and benchmarks: the library
 * file and its thread count (1 when the compiler had no OpenMP), or why
 * they do not.
 */
export function nativeKernelsInfo(): string {
  const k = nativeKernels();
  return k
    ? `C, ${k.kd_threads()} thread(s), ${nativeKernelsPath()}`
    : `TypeScript (${nativeKernelsError()})`;
}

/** The file the native kernels were opened from, or `null`. */
export function nativeKernelsPath(): string | null {
  state ??= load();
  return state.path;
}

/** FNV-1a over UTF-16 code units, 64 bits as two 32-bit halves. */
function hash(text: string): string {
  let h1 = 0x811c9dc5, h2 = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x01000193 + 2 * i + 1) >>> 0;
  }
  return h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}

function fail(error: string): LoadState {
  return { lib: null, path: null, error };
}

function cacheDir(): string | null {
  const own = readEnv("KDENO_CACHE_DIR");
  if (own) return own;
  const xdg = readEnv("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/kdeno`;
  const home = readEnv("HOME");
  return home ? `${home}/.cache/kdeno` : null;
}

function open(path: string): NativeKernels {
  const lib = withThreadEnvironment(() => Deno.dlopen(path, SYMBOLS));
  if (lib.symbols.kd_abi() !== NATIVE_ABI) {
    lib.close();
    throw new Error(`has ABI ${lib.symbols.kd_abi()}, not ${NATIVE_ABI}`);
  }
  return lib.symbols;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What the sidecar records about the library beside it. */
interface Sum {
  bytes: number;
  sha256: string;
}

/**
 * Why the library at `path` does not match its sidecar (or is missing), or
 * `null` when it matches. The size is compared before any byte is read.
 */
function mismatch(path: string): string | null {
  let size: number;
  try {
    size = Deno.statSync(path).size;
  } catch {
    return "not built yet";
  }
  let sum: Partial<Sum>;
  try {
    if (Deno.statSync(`${path}.sum`).size > MAX_SUM_BYTES) {
      return `its checksum file is over ${MAX_SUM_BYTES} bytes`;
    }
    sum = JSON.parse(Deno.readTextFileSync(`${path}.sum`)) ?? {};
  } catch (e) {
    return e instanceof Deno.errors.NotFound
      ? "it has no checksum file"
      : "its checksum file is unreadable";
  }
  if (sum.bytes !== size) {
    return `it is ${size} bytes, its checksum file says ${sum.bytes}`;
  }
  let digest: string;
  try {
    digest = sha256(Deno.readFileSync(path));
  } catch {
    return "it is unreadable";
  }
  if (sum.sha256 !== digest) {
    return `its SHA-256 is ${digest}, its checksum file says ${sum.sha256}`;
  }
  return null;
}

/** The kernels at `path` if it matches its sidecar and opens, else why not. */
function verifiedOpen(path: string): NativeKernels | string {
  const why = mismatch(path);
  if (why !== null) return why;
  try {
    return open(path);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

function opened(lib: NativeKernels, path: string): LoadState {
  onThreadCount((n) => lib.kd_set_threads(n)); // setNumThreads reaches them
  return { lib, path, error: null };
}

/** Flushes a file's (or directory's) contents to the disk. */
function fsync(path: string, write = true): void {
  const f = Deno.openSync(path, { read: true, write });
  try {
    f.syncSync();
  } finally {
    f.close();
  }
}

/** Writes `text` to `path` by fsync'ed temporary file and rename. */
function writeDurably(path: string, text: string, suffix: string): void {
  const tmp = `${path}${suffix}`;
  try {
    Deno.writeTextFileSync(tmp, text);
    fsync(tmp);
    Deno.renameSync(tmp, path);
  } finally {
    removeIfThere(tmp);
  }
}

function removeIfThere(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // already renamed or never written
  }
}

/** Removes the temporary files of builds that crashed, see the header. */
function removeStale(dir: string): void {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)]
      .filter((e) => e.isFile && TEMPORARY.test(e.name))
      .map((e) => e.name);
  } catch {
    return; // no cache directory yet
  }
  const before = Date.now() - STALE_TEMP_MINUTES * 60_000;
  for (const name of names) {
    try {
      const mtime = Deno.statSync(`${dir}/${name}`).mtime;
      if (mtime !== null && mtime.getTime() < before) {
        Deno.removeSync(`${dir}/${name}`);
      }
    } catch {
      // removed by another process meanwhile
    }
  }
}

function compile(cc: string, src: string, out: string, openmp: boolean) {
  const args = [...FLAGS, ...(openmp ? [OPENMP] : []), "-o", out, src];
  return new Deno.Command(cc, { args, stdout: "piped", stderr: "piped" })
    .outputSync();
}

function load(): LoadState {
  if (readEnv("KDENO_NATIVE") === "0") {
    return fail("turned off by KDENO_NATIVE=0");
  }
  requestedThreads(); // a bad KDENO_NUM_THREADS throws here, not falls back
  if (typeof Deno?.dlopen !== "function") {
    return fail("Deno.dlopen is not available");
  }
  if (!granted({ name: "ffi" })) {
    return fail("no FFI permission: run with --allow-ffi (or -A)");
  }
  const dir = cacheDir();
  if (dir === null) {
    return fail(
      "no cache directory: set KDENO_CACHE_DIR or HOME (and --allow-env)",
    );
  }
  if (!granted({ name: "read", path: dir })) {
    return fail(`no permission to read ${dir}: run with --allow-read`);
  }
  const { os, arch } = Deno.build;
  const ext = os === "darwin" ? "dylib" : os === "windows" ? "dll" : "so";
  const cc = readEnv("KDENO_CC") ?? "cc";
  const key = hash(
    [NATIVE_SOURCE, FLAGS.join(" "), OPENMP, cc, os, arch].join("\n"),
  );
  const path = `${dir}/kernels-${key}.${ext}`;
  const writable = granted({ name: "write", path: dir });
  if (writable) removeStale(dir);
  const cached = verifiedOpen(path);
  if (typeof cached !== "string") return opened(cached, path);
  if (!writable) {
    return fail(
      `cannot use ${path} (${cached}) and no permission to write ${dir} ` +
        "to build it: run with --allow-write",
    );
  }
  if (!granted({ name: "run", command: cc })) {
    return fail(`no permission to run the C compiler: run with --allow-run`);
  }
  const tmp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2)}`;
  let lock: Deno.FsFile | undefined;
  try {
    Deno.mkdirSync(dir, { recursive: true });
    lock = Deno.openSync(`${path}.lock`, {
      read: true,
      write: true,
      create: true,
    });
    try {
      lock.lockSync(true);
    } catch {
      // a file system without locks: builds may then run twice, each one
      // still written whole before it is renamed into place
    }
    // another process may have built it while this one waited for the lock
    const built = verifiedOpen(path);
    if (typeof built !== "string") return opened(built, path);
    Deno.writeTextFileSync(`${tmp}.c`, NATIVE_SOURCE);
    let r = compile(cc, `${tmp}.c`, tmp, true);
    // a compiler without OpenMP (clang without libomp): one thread
    if (!r.success) r = compile(cc, `${tmp}.c`, tmp, false);
    if (!r.success) {
      const msg = new TextDecoder().decode(r.stderr).trim().split("\n")
        .slice(0, 8).join("\n");
      return fail(`${cc} failed to build the native kernels:\n${msg}`);
    }
    // the library's bytes reach the disk before its name does, and its
    // sidecar after it: a crash at any point leaves a mismatch, not a
    // truncated file that matches
    fsync(tmp);
    const bytes = Deno.readFileSync(tmp);
    Deno.renameSync(tmp, path);
    const sum: Sum = { bytes: bytes.length, sha256: sha256(bytes) };
    writeDurably(`${path}.sum`, JSON.stringify(sum), tmp.slice(path.length));
    try {
      fsync(dir, false); // the renames themselves
    } catch {
      // not every platform opens directories; the files are synced
    }
    const fresh = verifiedOpen(path);
    return typeof fresh === "string"
      ? fail(`cannot open the native kernels just built at ${path}: ${fresh}`)
      : opened(fresh, path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? `no C compiler (${cc}); install one (Debian: apt-get install gcc) or set KDENO_CC`
      : e instanceof Error
      ? e.message
      : String(e);
    return fail(`cannot build the native kernels: ${why}`);
  } finally {
    removeIfThere(`${tmp}.c`);
    removeIfThere(tmp);
    lock?.close(); // releases the lock
  }
}
