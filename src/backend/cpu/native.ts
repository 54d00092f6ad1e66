/**
 * The CPU backend's native kernels: batch norm, max pooling, ReLU and a few
 * elementwise loops in C (`native_source.ts`), vectorised by the compiler
 * and spread over the cores with OpenMP. The TypeScript kernels are
 * single-threaded scalar loops; on the memory-bound passes of the tutorial's
 * models these run several times faster.
 *
 * The source is compiled once per machine with the system C compiler, the
 * way PyTorch's `torch.compile` builds its CPU kernels: into
 * `$KDENO_CACHE_DIR` (default `$XDG_CACHE_HOME/kdeno` or `~/.cache/kdeno`),
 * under a name that hashes the source, the flags and the platform, written
 * to a temporary name and renamed into place so that processes starting
 * together never open a half-written file. Later runs open the cached file.
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

import { NATIVE_ABI, NATIVE_SOURCE } from "./native_source.ts";

// Sizes travel as float64 (exact to 2^53), not as BigInt-typed i64.
const SYMBOLS = {
  kd_abi: { parameters: [], result: "i32" },
  kd_threads: { parameters: [], result: "i32" },
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

function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

function env(name: string): string | undefined {
  return granted({ name: "env", variable: name })
    ? Deno.env.get(name)
    : undefined;
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
  const own = env("KDENO_CACHE_DIR");
  if (own) return own;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/kdeno`;
  const home = env("HOME");
  return home ? `${home}/.cache/kdeno` : null;
}

function open(path: string): NativeKernels {
  const lib = Deno.dlopen(path, SYMBOLS);
  if (lib.symbols.kd_abi() !== NATIVE_ABI) {
    lib.close();
    throw new Error(`${path} has ABI ${lib.symbols.kd_abi()}`);
  }
  return lib.symbols;
}

function compile(cc: string, src: string, out: string, openmp: boolean) {
  const args = [...FLAGS, ...(openmp ? [OPENMP] : []), "-o", out, src];
  return new Deno.Command(cc, { args, stdout: "piped", stderr: "piped" })
    .outputSync();
}

function load(): LoadState {
  if (env("KDENO_NATIVE") === "0") return fail("turned off by KDENO_NATIVE=0");
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
  const cc = env("KDENO_CC") ?? "cc";
  const key = hash(
    [NATIVE_SOURCE, FLAGS.join(" "), OPENMP, cc, os, arch].join("\n"),
  );
  const path = `${dir}/kernels-${key}.${ext}`;
  try {
    return { lib: open(path), path, error: null };
  } catch {
    // not built yet (or unusable): build it below
  }
  if (!granted({ name: "write", path: dir })) {
    return fail(`no permission to write ${dir}: run with --allow-write`);
  }
  if (!granted({ name: "run", command: cc })) {
    return fail(`no permission to run the C compiler: run with --allow-run`);
  }
  const tmp = `${path}.${Deno.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(`${tmp}.c`, NATIVE_SOURCE);
    let r = compile(cc, `${tmp}.c`, tmp, true);
    // a compiler without OpenMP (clang without libomp): one thread
    if (!r.success) r = compile(cc, `${tmp}.c`, tmp, false);
    if (!r.success) {
      const msg = new TextDecoder().decode(r.stderr).trim().split("\n")
        .slice(0, 8).join("\n");
      return fail(`${cc} failed to build the native kernels:\n${msg}`);
    }
    Deno.renameSync(tmp, path);
    return { lib: open(path), path, error: null };
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? `no C compiler (${cc}); install one (Debian: apt-get install gcc) or set KDENO_CC`
      : e instanceof Error
      ? e.message
      : String(e);
    return fail(`cannot build the native kernels: ${why}`);
  } finally {
    for (const f of [`${tmp}.c`, tmp]) {
      try {
        Deno.removeSync(f);
      } catch {
        // already renamed or never written
      }
    }
  }
}
