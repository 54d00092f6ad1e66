/**
 * Compiles CUDA C with NVRTC to a CUBIN for the device's `sm_XY`, caching the
 * result in memory and on disk (keyed by a hash of the source, the options,
 * the target and the NVRTC version). When NVRTC does not know the device's
 * architecture (a GPU newer than the compiler), it emits PTX for the newest
 * architecture it knows and lets the driver finish the job.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { NvrtcLib } from "../../../ffi/nvrtc.ts";
import { CudaError, nvrtcResultText } from "./errors.ts";
import { envDirs } from "../../../ffi/find_library.ts";

/** A compiled image for `cuModuleLoadData`. */
export interface CompiledImage {
  /** CUBIN bytes, or NUL-terminated PTX. */
  image: Uint8Array;
  /** Which of the two. */
  kind: "cubin" | "ptx";
  /** Where it came from. */
  from: "compiled" | "memory" | "disk";
}

/**
 * The directory compiled kernels are cached in: `$KDENO_CACHE_DIR/cuda`, else
 * `$XDG_CACHE_HOME/kdeno/cuda`, else `~/.cache/kdeno/cuda`; null when none
 * can be told (no `--allow-env`, no home).
 *
 * @returns The directory, not necessarily existing yet.
 */
export function kernelCacheDir(): string | null {
  const own = envDirs("KDENO_CACHE_DIR")[0];
  if (own) return `${own}/cuda`;
  const xdg = envDirs("XDG_CACHE_HOME")[0];
  if (xdg) return `${xdg}/kdeno/cuda`;
  const home = envDirs("HOME")[0];
  return home ? `${home}/.cache/kdeno/cuda` : null;
}

/**
 * Chooses what to compile for a device: a CUBIN when NVRTC supports its
 * architecture, else PTX for the newest supported one below it.
 *
 * @param deviceArch The device's compute capability, e.g. 90.
 * @param supported NVRTC's supported architectures.
 * @returns The `--gpu-architecture` value and the output kind.
 */
export function chooseTarget(
  deviceArch: number,
  supported: readonly number[],
): { arch: string; kind: "cubin" | "ptx" } {
  if (supported.length === 0 || supported.includes(deviceArch)) {
    return { arch: `sm_${deviceArch}`, kind: "cubin" };
  }
  const below = supported.filter((a) => a <= deviceArch);
  if (below.length === 0) {
    throw new RangeError(
      `Cannot compile CUDA kernels: the device is sm_${deviceArch} and ` +
        `NVRTC supports only sm_${supported.join(", sm_")}`,
    );
  }
  return { arch: `compute_${Math.max(...below)}`, kind: "ptx" };
}

const encoder = new TextEncoder();

function cstr(s: string): Uint8Array {
  return encoder.encode(s + "\0");
}

/** NVRTC with an in-memory and an on-disk cache. */
export class NvrtcCompiler {
  readonly #nvrtc: NvrtcLib["symbols"];
  /** NVRTC's version, `[major, minor]`. */
  readonly version: [number, number];
  /** The `--gpu-architecture` value used. */
  readonly arch: string;
  /** What is produced. */
  readonly kind: "cubin" | "ptx";
  /** The options every program is compiled with. */
  readonly options: readonly string[];
  readonly #cacheDir: string | null;
  readonly #memory = new Map<string, Uint8Array>();

  /**
   * @param lib The opened NVRTC.
   * @param deviceArch The device's compute capability, e.g. 90.
   * @param cacheDir Where to cache images on disk; null for no disk cache.
   */
  constructor(
    lib: NvrtcLib,
    deviceArch: number,
    cacheDir: string | null = kernelCacheDir(),
  ) {
    const nv = this.#nvrtc = lib.symbols;
    const major = new Int32Array(1);
    const minor = new Int32Array(1);
    this.#check(nv.nvrtcVersion(major, minor), "nvrtcVersion");
    this.version = [major[0], minor[0]];
    this.#check(
      nv.nvrtcGetNumSupportedArchs(major),
      "nvrtcGetNumSupportedArchs",
    );
    const archs = new Int32Array(major[0]);
    if (archs.length > 0) {
      this.#check(nv.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs");
    }
    const target = chooseTarget(deviceArch, [...archs]);
    this.arch = target.arch;
    this.kind = target.kind;
    this.options = [
      `--gpu-architecture=${this.arch}`,
      "--std=c++17",
      "-default-device",
    ];
    this.#cacheDir = cacheDir;
  }

  #check(rc: number, call: string, log = ""): void {
    if (rc !== 0) {
      const text = nvrtcResultText(this.#nvrtc, rc);
      throw new CudaError("NVRTC", call, rc, log ? `${text}\n${log}` : text);
    }
  }

  /** The cache key of a source under this compiler's options. */
  key(source: string): string {
    return createHash("sha256")
      .update(source)
      .update("\0" + this.options.join(" "))
      .update(`\0nvrtc ${this.version.join(".")} ${this.kind}`)
      .digest("hex");
  }

  /**
   * Returns the image for `source`, compiling it only when neither cache has
   * it. An unwritable or unreadable disk cache is skipped silently.
   *
   * @param source The CUDA C program.
   * @param name A file name for messages, e.g. `reduce.cu`.
   * @returns The image.
   */
  compile(source: string, name: string): CompiledImage {
    const key = this.key(source);
    const kind = this.kind;
    const inMemory = this.#memory.get(key);
    if (inMemory) return { image: inMemory, kind, from: "memory" };
    const file = this.#cacheDir ? `${this.#cacheDir}/${key}.${kind}` : null;
    if (file) {
      try {
        const image = Deno.readFileSync(file);
        if (image.length > 0) {
          this.#memory.set(key, image);
          return { image, kind, from: "disk" };
        }
      } catch {
        // not cached yet, or the cache cannot be read
      }
    }
    const image = this.#compile(source, name);
    this.#memory.set(key, image);
    if (file) this.#store(file, image);
    return { image, kind, from: "compiled" };
  }

  /** Drops an image from both caches (after the driver rejected it). */
  forget(source: string): void {
    const key = this.key(source);
    this.#memory.delete(key);
    if (this.#cacheDir) {
      try {
        Deno.removeSync(`${this.#cacheDir}/${key}.${this.kind}`);
      } catch {
        // nothing cached
      }
    }
  }

  #store(file: string, image: Uint8Array): void {
    try {
      Deno.mkdirSync(this.#cacheDir!, { recursive: true });
      const tmp = `${file}.${Deno.pid}.tmp`;
      Deno.writeFileSync(tmp, image);
      Deno.renameSync(tmp, file);
    } catch {
      // read-only or missing home: compile again next time
    }
  }

  #compile(source: string, name: string): Uint8Array {
    const nv = this.#nvrtc;
    const handle = new BigUint64Array(1);
    this.#check(
      nv.nvrtcCreateProgram(handle, cstr(source), cstr(name), 0, null, null),
      "nvrtcCreateProgram",
    );
    const prog = Deno.UnsafePointer.create(handle[0]);
    try {
      const opts = this.options.map(cstr);
      const optPtrs = new BigUint64Array(
        opts.map((o) =>
          BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(o)))
        ),
      );
      const rc = nv.nvrtcCompileProgram(prog, opts.length, optPtrs);
      if (rc !== 0) {
        this.#check(rc, `nvrtcCompileProgram(${name})`, this.#log(prog));
      }
      const size = new BigUint64Array(1);
      const cubin = this.kind === "cubin";
      this.#check(
        cubin
          ? nv.nvrtcGetCUBINSize(prog, size)
          : nv.nvrtcGetPTXSize(prog, size),
        cubin ? "nvrtcGetCUBINSize" : "nvrtcGetPTXSize",
      );
      const image = new Uint8Array(Number(size[0]));
      this.#check(
        cubin ? nv.nvrtcGetCUBIN(prog, image) : nv.nvrtcGetPTX(prog, image),
        cubin ? "nvrtcGetCUBIN" : "nvrtcGetPTX",
      );
      return image;
    } finally {
      nv.nvrtcDestroyProgram(handle);
    }
  }

  #log(prog: Deno.PointerValue): string {
    const nv = this.#nvrtc;
    const size = new BigUint64Array(1);
    if (nv.nvrtcGetProgramLogSize(prog, size) !== 0) return "";
    const log = new Uint8Array(Number(size[0]));
    if (log.length === 0 || nv.nvrtcGetProgramLog(prog, log) !== 0) return "";
    return new TextDecoder().decode(log).replace(/\0+$/, "").trim();
  }
}
