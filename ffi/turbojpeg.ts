/**
 * The TurboJPEG (libjpeg-turbo) symbol table and its lazy loader.
 *
 * The library is opened on first use, never on import. It is looked for in
 * the file or directories named by `KDENO_TURBOJPEG`, or, when that is
 * unset, in the usual library directories, then by soname through the
 * system loader (Debian/Ubuntu: `apt-get install libturbojpeg0`). Without
 * `--allow-ffi`, or when nothing in the usual places loads,
 * {@linkcode openTurboJpeg} returns `null` and {@linkcode turboJpegError}
 * says why, so the caller can fall back to another decoder. When
 * `KDENO_TURBOJPEG` names a library that does not load, it throws instead,
 * naming each path and the loader's reason (an explicit choice is not
 * replaced; see `find_library.ts`). `KDENO_TURBOJPEG=0` turns the library
 * off: {@linkcode openTurboJpeg} returns `null` without trying.
 *
 * Only the TurboJPEG 2.x names are declared; libjpeg-turbo 3.x keeps the
 * soname `libturbojpeg.so.0` and still exports them. `tj3Init` is declared
 * optional, so a 3.x library is recognised (`version3`).
 *
 * @module
 */

import {
  envDirs,
  type LibrarySpec,
  openLibrary,
  optionalLibrary,
} from "./find_library.ts";

/** `TJPF_RGB`: 3 bytes per pixel, R, G, B. */
export const TJPF_RGB = 0;
/** `TJPF_GRAY`: 1 byte per pixel. */
export const TJPF_GRAY = 6;
/** `TJPF_CMYK`: 4 bytes per pixel, as stored (Adobe-inverted). */
export const TJPF_CMYK = 11;
/** `TJCS_GRAY`: a one-component JPEG. */
export const TJCS_GRAY = 2;
/** `TJCS_CMYK`: a four-component JPEG without colour transform. */
export const TJCS_CMYK = 3;
/** `TJCS_YCCK`: a four-component JPEG with Adobe's YCCK transform. */
export const TJCS_YCCK = 4;
/** `TJSAMP_444`: no chroma subsampling. */
export const TJSAMP_444 = 0;
/** `TJSAMP_420`: chroma halved both ways. */
export const TJSAMP_420 = 2;
/** `TJSAMP_GRAY`: luma only. */
export const TJSAMP_GRAY = 3;
/** `TJFLAG_NOREALLOC`: compress into the caller's buffer. */
export const TJFLAG_NOREALLOC = 1024;
/** `TJFLAG_PROGRESSIVE`: write a progressive JPEG. */
export const TJFLAG_PROGRESSIVE = 16384;
/** `TJERR_WARNING`: the call completed; the data had a recoverable problem. */
export const TJERR_WARNING = 0;

// `unsigned long` is 64-bit on LP64 (Linux, macOS), 32-bit on Windows.
const ULONG = Deno.build.os === "windows" ? "u32" : "u64";

/** The `Deno.dlopen` symbol table for the parts of TurboJPEG kdeno calls. */
export const turboJpegSymbols = {
  /** `tjhandle tjInitDecompress(void)`. */
  tjInitDecompress: { parameters: [], result: "pointer" },
  /** `tjhandle tjInitCompress(void)`. */
  tjInitCompress: { parameters: [], result: "pointer" },
  /**
   * `int tjDecompressHeader3(handle, jpegBuf, jpegSize, *width, *height,
   * *jpegSubsamp, *jpegColorspace)`.
   */
  tjDecompressHeader3: {
    parameters: [
      "pointer",
      "buffer",
      ULONG,
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  /**
   * `int tjDecompress2(handle, jpegBuf, jpegSize, dstBuf, width, pitch,
   * height, pixelFormat, flags)`: width and height are a box the scaled
   * image must fit.
   */
  tjDecompress2: {
    parameters: [
      "pointer",
      "buffer",
      ULONG,
      "buffer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  /**
   * `int tjCompress2(handle, srcBuf, width, pitch, height, pixelFormat,
   * **jpegBuf, *jpegSize, jpegSubsamp, jpegQual, flags)`.
   */
  tjCompress2: {
    parameters: [
      "pointer",
      "buffer",
      "i32",
      "i32",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "i32",
      "i32",
      "i32",
    ],
    result: "i32",
  },
  /** `unsigned long tjBufSize(width, height, jpegSubsamp)`. */
  tjBufSize: { parameters: ["i32", "i32", "i32"], result: ULONG },
  /** `tjscalingfactor *tjGetScalingFactors(int *numScalingFactors)`. */
  tjGetScalingFactors: { parameters: ["buffer"], result: "pointer" },
  /** `char *tjGetErrorStr2(tjhandle)`. */
  tjGetErrorStr2: { parameters: ["pointer"], result: "pointer" },
  /** `int tjGetErrorCode(tjhandle)`: `TJERR_WARNING` (0) or fatal (1). */
  tjGetErrorCode: { parameters: ["pointer"], result: "i32" },
  /** `int tjDestroy(tjhandle)`. */
  tjDestroy: { parameters: ["pointer"], result: "i32" },
  /** Present from libjpeg-turbo 3.0 on (`null` before). */
  tj3Init: { parameters: ["i32"], result: "pointer", optional: true },
} as const;

/** An opened TurboJPEG. */
export interface TurboJpeg {
  /** The library's symbols. */
  readonly symbols: Deno.DynamicLibrary<typeof turboJpegSymbols>["symbols"];
  /** The path (or soname) that loaded. */
  readonly path: string;
  /** Whether it is libjpeg-turbo 3.x (it exports `tj3Init`). */
  readonly version3: boolean;
  /** The DCT scaling factors it offers, `[num, denom]`, largest first. */
  readonly scalingFactors: readonly (readonly [number, number])[];
}

/** The search specification for TurboJPEG. */
export const turboJpegSpec: LibrarySpec = {
  library: "TurboJPEG",
  fileNames: ["libturbojpeg.so.0", "libturbojpeg.so", "libturbojpeg.dylib"],
  envVar: "KDENO_TURBOJPEG",
  dirs: [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/local/lib",
    "/opt/libjpeg-turbo/lib64",
    "/opt/homebrew/opt/jpeg-turbo/lib",
  ],
  sonameFallback: true,
  hint: "Install it (Debian/Ubuntu: apt-get install libturbojpeg0) or set " +
    "KDENO_TURBOJPEG to the library file or its directory.",
};

/** Whether `KDENO_TURBOJPEG` is `0`, `off` or `none`. */
export function turboJpegTurnedOff(): boolean {
  const v = envDirs("KDENO_TURBOJPEG");
  return v.length === 1 && ["0", "off", "none"].includes(v[0].toLowerCase());
}

const loader = optionalLibrary<TurboJpeg>({
  spec: turboJpegSpec,
  turnedOff: () =>
    turboJpegTurnedOff() ? "KDENO_TURBOJPEG=0 turns it off" : null,
  open: () => {
    const { lib, path } = openLibrary(turboJpegSpec, turboJpegSymbols);
    const n = new Int32Array(1);
    const p = lib.symbols.tjGetScalingFactors(n);
    const scalingFactors: [number, number][] = [];
    if (p !== null) {
      const v = new Deno.UnsafePointerView(p);
      for (let i = 0; i < n[0]; i++) {
        scalingFactors.push([v.getInt32(8 * i), v.getInt32(8 * i + 4)]);
      }
    }
    return {
      symbols: lib.symbols,
      path,
      version3: lib.symbols.tj3Init !== null,
      scalingFactors,
    };
  },
});

/**
 * Opens TurboJPEG on the first call and returns it, or `null` when it cannot
 * be loaded (no `--allow-ffi`, nothing in the usual places loads, or
 * `KDENO_TURBOJPEG=0`). The result is cached per thread.
 *
 * @returns The library, or `null`.
 * @throws BackendUnavailableError on every call when `KDENO_TURBOJPEG`
 *   names a library that does not load, listing each path with the loader's
 *   reason.
 */
export function openTurboJpeg(): TurboJpeg | null {
  return loader.get();
}

/**
 * Why TurboJPEG is not available, or `null` when it loaded (or was not tried
 * yet).
 *
 * @returns The reason, or `null`.
 */
export function turboJpegError(): string | null {
  return loader.failure()?.message ?? null;
}
