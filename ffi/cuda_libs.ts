/**
 * Where the CUDA libraries are, and opening them.
 *
 * - The driver, `libcuda.so.1`, is opened only through the system loader (it
 *   must match the kernel module; the toolkit's `stubs/libcuda.so` is never
 *   wanted).
 * - cuBLAS, cuBLASLt, NVRTC and cuDNN are looked for, in order, in the
 *   directories of `KDENO_CUDA_LIB_DIRS`; the Python wheels of the active
 *   virtual environment, `$VIRTUAL_ENV` (`nvidia/cu13/lib`, `nvidia/cudnn/lib`
 *   and the CUDA 12 layout `nvidia/{cublas,cuda_nvrtc,cuda_runtime}/lib`);
 *   `$CONDA_PREFIX/lib`; `$CUDA_HOME` and `$CUDA_PATH`; `/usr/local/cuda`;
 *   then by bare soname. No machine's own paths are built in: a script that
 *   knows where its libraries are passes them in `KDENO_CUDA_LIB_DIRS` (as
 *   `bench/gpu_check.sh` does).
 * - A library's own dependencies (cuBLASLt for cuBLAS, the NVRTC builtins for
 *   NVRTC) are pre-loaded by absolute path from the same directory first:
 *   setting `LD_LIBRARY_PATH` from inside a running process does not reach the
 *   loader.
 *
 * Nothing is opened when this module is imported.
 *
 * @module
 */

import {
  BackendUnavailableError,
  envDirs,
  openLibrary,
  preload,
} from "./find_library.ts";
import { CUDA_SYMBOLS, type CudaDriverLib } from "./cuda.ts";
import { NVRTC_SYMBOLS, type NvrtcLib } from "./nvrtc.ts";
import { CUBLAS_SYMBOLS, type CublasLib } from "./cublas.ts";

/** The environment variable naming extra library directories, searched first. */
export const CUDA_LIB_DIRS_ENV = "KDENO_CUDA_LIB_DIRS";

/** The driver's soname. */
export const CUDA_DRIVER_SONAME = "libcuda.so.1";

// Keeps pre-loaded dependency handles alive for the life of the process.
const keepAlive: Deno.DynamicLibrary<never>[] = [];

function first(name: string): string | undefined {
  return envDirs(name)[0];
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function listDir(path: string): string[] {
  try {
    return [...Deno.readDirSync(path)].map((e) => e.name);
  } catch {
    return [];
  }
}

function unique(paths: string[]): string[] {
  return [...new Set(paths)];
}

/**
 * The `lib/python3.*\/site-packages` directories under a Python prefix,
 * newest Python first.
 *
 * @param root A virtual environment or Python prefix.
 * @returns Existing site-packages directories.
 */
export function sitePackages(root: string): string[] {
  const versions = listDir(`${root}/lib`)
    .map((name) => /^python3\.(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]));
  return versions
    .map((m) => `${root}/lib/${m[0]}/site-packages`)
    .filter(isDir);
}

/** The Python prefixes searched for NVIDIA wheels: the active venv. */
function pythonRoots(): string[] {
  const venv = first("VIRTUAL_ENV");
  return venv ? [venv] : [];
}

/** `$CONDA_PREFIX/lib`, `$CUDA_HOME`/`$CUDA_PATH` and `/usr/local/cuda` dirs. */
function toolkitDirs(): string[] {
  const dirs: string[] = [];
  const conda = first("CONDA_PREFIX");
  if (conda) dirs.push(`${conda}/lib`);
  for (const name of ["CUDA_HOME", "CUDA_PATH"]) {
    const home = first(name);
    if (home) dirs.push(`${home}/lib64`, `${home}/targets/x86_64-linux/lib`);
  }
  dirs.push(
    "/usr/local/cuda/lib64",
    "/usr/local/cuda/targets/x86_64-linux/lib",
  );
  return dirs;
}

function searchDirs(wheelDirs: string[]): string[] {
  const dirs = [...envDirs(CUDA_LIB_DIRS_ENV)];
  for (const root of pythonRoots()) {
    for (const sp of sitePackages(root)) {
      for (const d of wheelDirs) dirs.push(`${sp}/${d}`);
    }
  }
  dirs.push(...toolkitDirs());
  return unique(dirs);
}

/**
 * The directories searched for cuBLAS, cuBLASLt and NVRTC, in order.
 *
 * @returns Directory paths (not all of them need exist).
 */
export function cudaLibDirs(): string[] {
  return searchDirs([
    "nvidia/cu13/lib",
    "nvidia/cublas/lib",
    "nvidia/cuda_nvrtc/lib",
    "nvidia/cuda_runtime/lib",
  ]);
}

/**
 * The directories searched for cuDNN (`libcudnn.so.9` and its sub-libraries),
 * in order.
 *
 * @returns Directory paths (not all of them need exist).
 */
export function cudnnLibDirs(): string[] {
  return searchDirs(["nvidia/cudnn/lib", "nvidia/cu13/lib"]);
}

/** A library opened from one of the search directories. */
export interface OpenedLibrary<S extends Deno.ForeignLibraryInterface> {
  /** The handle. */
  lib: Deno.DynamicLibrary<S>;
  /** The path (or soname) that loaded. */
  path: string;
  /** Dependencies pre-loaded by absolute path before it. */
  preloaded: string[];
}

/** How to find one versioned library and its same-directory dependencies. */
interface VersionedSpec {
  library: string;
  /** File names by preference, e.g. `libcublas.so.13`, `libcublas.so.12`. */
  fileNames: string[];
  /** Dependencies to pre-load from the directory a file name was found in. */
  deps: (dir: string, fileName: string) => string[];
  hint: string;
}

/**
 * Tries each directory in turn: a directory holding the library gets its
 * dependencies pre-loaded from that same directory (so one directory's set of
 * libraries is never mixed with another's), then the library is opened. Bare
 * sonames through the system loader come last.
 */
function openVersioned<S extends Deno.ForeignLibraryInterface>(
  spec: VersionedSpec,
  dirs: string[],
  symbols: S,
): OpenedLibrary<S> {
  const tried: string[] = [];
  for (const dir of dirs) {
    for (const fileName of spec.fileNames) {
      const path = `${dir}/${fileName}`;
      if (!isFile(path)) {
        tried.push(`${path}: not found`);
        continue;
      }
      const deps = spec.deps(dir, fileName).filter(isFile);
      keepAlive.push(...preload(deps));
      try {
        const one = { library: spec.library, fileNames: [fileName] };
        const { lib } = openLibrary(
          { ...one, dirs: [dir], sonameFallback: false },
          symbols,
        );
        return { lib, path, preloaded: deps };
      } catch (e) {
        if (!(e instanceof BackendUnavailableError)) throw e;
        tried.push(...e.tried);
      }
    }
  }
  try {
    const { lib, path } = openLibrary(
      { library: spec.library, fileNames: spec.fileNames },
      symbols,
    );
    return { lib, path, preloaded: [] };
  } catch (e) {
    if (!(e instanceof BackendUnavailableError)) throw e;
    tried.push(...e.tried);
  }
  throw new BackendUnavailableError(spec.library, tried, spec.hint);
}

function major(fileName: string): string {
  return fileName.slice(fileName.lastIndexOf(".so.") + 4);
}

const LIB_HINT = `Set ${CUDA_LIB_DIRS_ENV} to the directory holding it, ` +
  "or install the NVIDIA wheels (nvidia-cublas, nvidia-cuda-nvrtc) " +
  "in the active virtual environment";

/**
 * Opens the CUDA driver through the system loader only.
 *
 * @returns The driver handle and the soname that loaded.
 * @throws BackendUnavailableError when there is no NVIDIA driver.
 */
export function openCudaDriver(): OpenedLibrary<typeof CUDA_SYMBOLS> {
  const { lib, path } = openLibrary(
    {
      library: `the CUDA driver (${CUDA_DRIVER_SONAME})`,
      fileNames: [CUDA_DRIVER_SONAME],
      sonameFallback: true,
      hint: "No NVIDIA driver here: libcuda.so.1 is looked up only through " +
        "the system loader (ld.so.cache, LD_LIBRARY_PATH at start-up); " +
        'install the driver or use the "cpu" device',
    },
    CUDA_SYMBOLS,
  );
  return { lib, path, preloaded: [] };
}

/**
 * Opens NVRTC, pre-loading `libnvrtc-builtins.so.*` from its directory.
 *
 * @param dirs Directories to search (default {@link cudaLibDirs}).
 * @returns The NVRTC handle and where it came from.
 * @throws BackendUnavailableError listing every path tried.
 */
export function openNvrtc(
  dirs: string[] = cudaLibDirs(),
): OpenedLibrary<typeof NVRTC_SYMBOLS> {
  return openVersioned(
    {
      library: "NVRTC (libnvrtc.so.13)",
      fileNames: ["libnvrtc.so.13", "libnvrtc.so.12"],
      deps: (dir, fileName) =>
        listDir(dir)
          .filter((n) =>
            n.startsWith(`libnvrtc-builtins.so.${major(fileName)}`)
          )
          .sort()
          .map((n) => `${dir}/${n}`),
      hint: LIB_HINT,
    },
    dirs,
    NVRTC_SYMBOLS,
  );
}

/**
 * Opens cuBLAS, pre-loading cuBLASLt (and the CUDA runtime when present) from
 * its directory.
 *
 * @param dirs Directories to search (default {@link cudaLibDirs}).
 * @returns The cuBLAS handle and where it came from.
 * @throws BackendUnavailableError listing every path tried.
 */
export function openCublas(
  dirs: string[] = cudaLibDirs(),
): OpenedLibrary<typeof CUBLAS_SYMBOLS> {
  return openVersioned(
    {
      library: "cuBLAS (libcublas.so.13)",
      fileNames: ["libcublas.so.13", "libcublas.so.12"],
      deps: (dir, fileName) => [
        `${dir}/libcudart.so.${major(fileName)}`,
        `${dir}/libcublasLt.so.${major(fileName)}`,
      ],
      hint: LIB_HINT,
    },
    dirs,
    CUBLAS_SYMBOLS,
  );
}

/** The three libraries the CUDA backend needs, and where each came from. */
export interface CudaLibraries {
  /** The driver API. */
  driver: CudaDriverLib;
  /** The runtime compiler. */
  nvrtc: NvrtcLib;
  /** cuBLAS. */
  cublas: CublasLib;
  /** What loaded, for messages and reports. */
  paths: {
    driver: string;
    nvrtc: string;
    cublas: string;
    preloaded: string[];
  };
}

/**
 * Opens the driver, NVRTC and cuBLAS, in that order (the driver first so a
 * machine without a GPU fails fast).
 *
 * @returns The opened libraries.
 * @throws BackendUnavailableError naming the library missing and every path tried.
 */
export function openCudaLibraries(): CudaLibraries {
  const driver = openCudaDriver();
  const dirs = cudaLibDirs();
  const nvrtc = openNvrtc(dirs);
  const cublas = openCublas(dirs);
  return {
    driver: driver.lib,
    nvrtc: nvrtc.lib,
    cublas: cublas.lib,
    paths: {
      driver: driver.path,
      nvrtc: nvrtc.path,
      cublas: cublas.path,
      preloaded: [...nvrtc.preloaded, ...cublas.preloaded],
    },
  };
}

/**
 * The file a loaded library really came from (read from `/proc/self/maps`),
 * for reports; `undefined` when it cannot be told.
 *
 * @param fileName A library file name such as `libcuda.so.1`.
 * @returns The absolute path mapped into this process, if any.
 */
export function loadedFrom(fileName: string): string | undefined {
  let maps: string;
  try {
    maps = Deno.readTextFileSync("/proc/self/maps");
  } catch {
    return undefined;
  }
  for (const line of maps.split("\n")) {
    const path = line.slice(line.indexOf("/"));
    if (line.includes("/") && path.split("/").pop()?.startsWith(fileName)) {
      return path;
    }
  }
  return undefined;
}
