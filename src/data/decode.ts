/**
 * Image decoding straight to {@linkcode RawImage}s: JPEGs through
 * libjpeg-turbo's TurboJPEG library when it loads (`ffi/turbojpeg.ts`,
 * `_turbojpeg.ts`), everything else, and JPEGs without it, through
 * imagescript's WebAssembly codecs (`npm:imagescript@1.3.1`).
 *
 * TurboJPEG (Debian/Ubuntu: `apt-get install libturbojpeg0`; needs
 * `--allow-ffi`; `KDENO_TURBOJPEG` names the library file or directory,
 * `KDENO_TURBOJPEG=0` turns it off) gives exactly Pillow's pixels for the
 * same libjpeg-turbo: full size as `Image.open(f).convert("RGB")`, and a
 * `draft` as `Image.draft("RGB", size)`. Without it, one line on stderr says
 * so once per process and imagescript decodes JPEGs (within a few levels of
 * Pillow's pixels; see the tests' tolerances).
 *
 * The codecs are imagescript's own (`wasm/node/jpeg.js`, `wasm/node/png.js`,
 * `wasm/node/gif.js`), called without `Image.decode`'s per-pixel RGBA
 * expansion and without the native addon its main module loads, so decoding
 * needs only `--allow-read` and `--allow-env` (imagescript reads
 * `IMAGESCRIPT_WASM_SIMD`; leave it unset). The version is pinned exactly
 * because these are subpaths of the package.
 *
 * What comes out matches PIL's `Image.open(f).convert("RGB")`, the call
 * torchvision's `ImageFolder` makes:
 *
 * - gray JPEGs and gray / gray+alpha PNGs keep one stored plane but stand for
 *   RGB (`channels: 1`, `mode: "RGB"`), as `convert("RGB")` copies L to R, G
 *   and B;
 * - palette PNGs become their palette colours; alpha is dropped (not
 *   composited), as `convert("RGB")` does;
 * - CMYK JPEGs are converted with PIL's formula (`r = (255 - c)(255 - k) /
 *   255`, rounded as PIL rounds);
 * - 16-bit PNGs keep the high byte of each sample. PIL agrees for 16-bit RGB
 *   but clips 16-bit gray ("I" mode) to 255, which destroys the image; kdeno
 *   deliberately differs there;
 * - GIFs give their first frame; EXIF orientation is ignored (as
 *   `convert("RGB")` ignores it).
 *
 * TIFF, BMP, WebP, HEIF/AVIF, PNM and arithmetic-coded JPEGs are not decoded
 * (imagescript cannot; its TIFF decoder traps), and give a `DataError` naming
 * the file and the format. Every failure is a `DataError` naming the file.
 *
 * Untrusted files: the header is read before anything is decoded (PNG's
 * IHDR and chunk lengths, JPEG's markers up to the frame header, GIF's
 * logical screen and blocks up to the first image), and decoding is refused
 *
 * - with a `DecompressionBombError` (a `DataError`) when the image, or a
 *   GIF's first frame, declares more than `maxImagePixels` pixels (default
 *   {@linkcode MAX_IMAGE_PIXELS}, 89,478,485, Pillow's; `null` or `Infinity`
 *   lifts it);
 * - with a `DataError` ("corrupt or truncated") when the file is too small to
 *   hold the pixels it declares, whatever the limit: each format has a best
 *   compression ratio (see {@linkcode readImageHeader}), so no allocation is
 *   larger than the header and the file size can justify.
 *
 * Only a GIF's first frame is decoded; the frames after it are never read.
 * A codec that cannot load (e.g. without `--allow-env`) gives a
 * `BackendUnavailableError` naming the missing permission.
 *
 * Worker-safe: no tensor imports.
 *
 * @module
 */

import {
  BackendUnavailableError,
  DataError,
  DecompressionBombError,
} from "../errors.ts";
import type { RawImage } from "./image.ts";
import { newRawImage } from "./_image_util.ts";
import { readJpegHeader } from "./_jpeg_header.ts";
import { showNotice } from "./_notices.ts";
import { DEFAULT_MAX_IMAGE_PIXELS, resolveMaxImagePixels } from "./_limits.ts";
import { decodeJpegTurbo, pilDraftScale, turboJpeg } from "./_turbojpeg.ts";
import { turboJpegError } from "../../ffi/turbojpeg.ts";

/** Formats recognised by their first bytes. */
export type ImageFormat =
  | "JPEG"
  | "PNG"
  | "GIF"
  | "TIFF"
  | "BMP"
  | "WebP"
  | "HEIF/AVIF"
  | "PNM"
  | "ICO";

/** Formats {@linkcode decodeImage} decodes. */
const DECODABLE_FORMATS: readonly ImageFormat[] = ["JPEG", "PNG", "GIF"];

/** File extensions of the decodable formats (lower case, no dot). */
export const IMAGE_EXTENSIONS: readonly string[] = [
  "jpg",
  "jpeg",
  "jpe",
  "jfif",
  "png",
  "gif",
];

/**
 * Names an image format from its first bytes (magic numbers; the file
 * extension is never trusted).
 *
 * @param bytes The file's bytes.
 * @returns The format, or `undefined` when the bytes are not a known image.
 */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  const b = bytes;
  const at = (i: number, s: string) => {
    for (let k = 0; k < s.length; k++) {
      if (b[i + k] !== s.charCodeAt(k)) return false;
    }
    return true;
  };
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    return "JPEG";
  }
  if (b.length >= 8 && b[0] === 0x89 && at(1, "PNG\r\n\x1a\n")) return "PNG";
  if (at(0, "GIF87a") || at(0, "GIF89a")) return "GIF";
  if (at(0, "II*\0") || at(0, "MM\0*")) return "TIFF";
  if (at(0, "BM") && b.length >= 14) return "BMP";
  if (at(0, "RIFF") && at(8, "WEBP")) return "WebP";
  if (at(4, "ftyp")) return "HEIF/AVIF";
  if (
    b[0] === 0x50 && b[1] >= 0x31 && b[1] <= 0x37 &&
    /\s/.test(String.fromCharCode(b[2] ?? 0))
  ) {
    return "PNM";
  }
  if (b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0) return "ICO";
  return undefined;
}

/**
 * Pillow's `Image.MAX_IMAGE_PIXELS`: the most pixels (width × height) an
 * image, or a GIF's first frame, may declare before {@linkcode decodeImage}
 * refuses it with a `DecompressionBombError`.
 */
export const MAX_IMAGE_PIXELS: number = DEFAULT_MAX_IMAGE_PIXELS;

/** What an image's header declares, read without decoding. */
export interface ImageHeader {
  /** The format. */
  format: "JPEG" | "PNG" | "GIF";
  /** Width of the decoded image (of a GIF, its logical screen). */
  width: number;
  /** Height of the decoded image. */
  height: number;
  /**
   * The rectangles the decoder allocates for: the image, and for a GIF its
   * screen and first frame.
   */
  areas: { what: string; width: number; height: number }[];
  /** Pixels the image data codes (a GIF's first frame; else the image). */
  codedPixels: number;
  /** The most pixels the file's image data could code. */
  maxCodedPixels: number;
  /** That data, for messages (e.g. `"3,412 bytes of IDAT data"`). */
  data: string;
}

// The most pixels a byte of image data can code, from each format's best
// compression: deflate stores at most 258 bytes in a 2-bit match (1032 per
// byte; PNG pixels have 1 to 64 bits); an LZW code has at least 2 bits and
// stands for at most 4096 pixels; every 8 × 8 JPEG block costs at least one
// bit (its DC code). The densest real JPEGs, blank gray ones (cjpeg
// -optimize), hold 255 pixels per byte of file; 2048 leaves room for any
// subsampling.
const DEFLATE_RATIO = 1032;
const LZW_PIXELS_PER_BYTE = 4 * 4096;
const JPEG_PIXELS_PER_BYTE = 2048;

const fmtInt = (n: number) => n.toLocaleString("en-US");
const fmtBytes = (n: number) => n === 1 ? "1 byte" : `${fmtInt(n)} bytes`;

function ascii(b: Uint8Array, i: number, s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    if (b[i + k] !== s.charCodeAt(k)) return false;
  }
  return true;
}

/**
 * Reads the header of a JPEG, PNG or GIF file without decoding: PNG's IHDR
 * and the lengths of its IDAT chunks; JPEG's markers up to the frame header
 * (SOFn), following segment lengths; GIF's logical screen, then its blocks
 * (following sub-block lengths) up to the first image descriptor and the
 * length of that image's LZW data. Its cost is a walk over chunk and block
 * headers.
 *
 * `maxCodedPixels` bounds what the image data can code from each format's
 * best compression: 1032 bytes per deflated byte (PNG), 16384 pixels per
 * byte of LZW data (GIF: a code of at least 2 bits stands for at most 4096
 * pixels), 2048 pixels per byte of file (JPEG: every 8 × 8 block costs at
 * least a bit; blank gray JPEGs, the densest, hold 255 per byte).
 *
 * @param bytes The file's bytes.
 * @param options `path` for messages.
 * @returns What the header declares.
 * @throws {DataError} For a file that is not a JPEG, PNG or GIF, or whose
 * header is malformed or truncated, naming `path`.
 */
export function readImageHeader(
  bytes: Uint8Array,
  options: { path?: string } = {},
): ImageHeader {
  const format = checkFormat(bytes, options.path);
  try {
    if (format === "PNG") return pngHeader(bytes);
    if (format === "GIF") return gifHeader(bytes);
    const h = readJpegHeader(bytes);
    if (!h) throw new Error("no frame header");
    if (h.arithmetic) {
      throw fail(options.path, "unsupported JPEG: arithmetic-coded");
    }
    return {
      format,
      width: h.width,
      height: h.height,
      areas: [{ what: "image", width: h.width, height: h.height }],
      codedPixels: h.width * h.height,
      maxCodedPixels: JPEG_PIXELS_PER_BYTE * bytes.length,
      data: `a ${fmtInt(bytes.length)}-byte file`,
    };
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw fail(
      options.path,
      `corrupt or truncated ${format} (${(e as Error).message})`,
    );
  }
}

function pngHeader(b: Uint8Array): ImageHeader {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 33 || dv.getUint32(8) !== 13 || !ascii(b, 12, "IHDR")) {
    throw new Error("no IHDR chunk at byte 8");
  }
  const width = dv.getUint32(16), height = dv.getUint32(20);
  const depth = b[24], colorType = b[25];
  const channels = [1, 0, 3, 1, 2, 0, 4][colorType] ?? 0;
  if (channels === 0 || ![1, 2, 4, 8, 16].includes(depth)) {
    throw new Error(
      `IHDR declares colour type ${colorType} with bit depth ${depth}`,
    );
  }
  // Chunk headers only: IDAT bytes present in the file, up to IEND.
  let idat = 0;
  for (let p = 33; p + 8 <= b.length;) {
    const len = dv.getUint32(p);
    if (ascii(b, p + 4, "IEND")) break;
    if (ascii(b, p + 4, "IDAT")) idat += Math.min(len, b.length - p - 8);
    p += 12 + len;
  }
  return {
    format: "PNG",
    width,
    height,
    areas: [{ what: "image", width, height }],
    codedPixels: width * height,
    maxCodedPixels: Math.floor(idat * DEFLATE_RATIO * 8 / (channels * depth)),
    data: `${fmtBytes(idat)} of IDAT data`,
  };
}

function gifHeader(b: Uint8Array): ImageHeader {
  if (b.length < 13) throw new Error("the logical screen descriptor is cut");
  const u16 = (i: number) => b[i] | (b[i + 1] << 8);
  const table = (flags: number) => flags & 0x80 ? 3 << ((flags & 7) + 1) : 0;
  const width = u16(6), height = u16(8);
  let p = 13 + table(b[10]);
  // Sub-blocks: a length byte, that many bytes, until a 0 length.
  const subBlocks = () => {
    let n = 0;
    while (p < b.length) {
      const len = b[p++];
      if (len === 0) return n;
      n += Math.min(len, b.length - p);
      p += len;
    }
    return n;
  };
  while (p < b.length && b[p] === 0x21) { // extensions
    p += 2;
    subBlocks();
  }
  if (p >= b.length) throw new Error("no image before the end of the file");
  if (b[p] === 0x3b) throw new Error("no image before the trailer");
  if (b[p] !== 0x2c) {
    throw new Error(
      `unknown block 0x${b[p].toString(16).padStart(2, "0")} at byte ${p}`,
    );
  }
  if (p + 10 > b.length) throw new Error("the image descriptor is cut");
  const fw = u16(p + 5), fh = u16(p + 7);
  p += 10 + table(b[p + 9]) + 1; // and the LZW minimum code size
  const lzw = subBlocks();
  return {
    format: "GIF",
    width,
    height,
    areas: [
      { what: "screen", width, height },
      { what: "first frame", width: fw, height: fh },
    ],
    codedPixels: fw * fh,
    maxCodedPixels: lzw * LZW_PIXELS_PER_BYTE,
    data: `${fmtBytes(lzw)} of LZW data`,
  };
}

/**
 * Refuses what a header declares before anything is allocated: too many
 * pixels for the limit (`DecompressionBombError`), an empty image, or more
 * pixels than the file's image data can code.
 */
function checkHeader(
  h: ImageHeader,
  size: number,
  limit: number,
  path: string | undefined,
): void {
  for (const a of h.areas) {
    const n = a.width * a.height;
    if (n > limit) {
      throw new DecompressionBombError(
        `Cannot decode image ${path ?? "<bytes>"}: the ${
          fmtInt(size)
        }-byte ${h.format} declares a ${a.width} × ${a.height} ${a.what} (${
          fmtInt(n)
        } pixels), over the limit of ${
          fmtInt(limit)
        } (maxImagePixels: raise it, or pass null to lift it, for trusted files)`,
      );
    }
  }
  if (h.width === 0 || h.height === 0) {
    throw fail(
      path,
      `corrupt or truncated ${h.format} (it declares an empty ${h.width} × ${h.height} image)`,
    );
  }
  if (h.codedPixels > h.maxCodedPixels) {
    const a = h.areas[h.areas.length - 1];
    throw fail(
      path,
      `corrupt or truncated ${h.format} (its ${a.what} is ${a.width} × ${a.height}, ${
        fmtInt(h.codedPixels)
      } pixels, but ${h.data} can code at most ${fmtInt(h.maxCodedPixels)})`,
    );
  }
}

// ---- the codecs, loaded on first use -----------------------------------------

interface JpegLib {
  decode(
    b: Uint8Array,
    w?: number,
    h?: number,
  ): { width: number; height: number; format: number; buffer: Uint8Array };
}
interface PngLib {
  decode(b: Uint8Array): {
    width: number;
    height: number;
    framebuffer: Uint8Array;
  };
}
interface GifFrame {
  x: number;
  y: number;
  width: number;
  height: number;
  buffer: Uint8Array;
}
interface GifLib {
  Decoder: new (b: Uint8Array, limit?: number) => {
    width: number;
    height: number;
    frame(): GifFrame | null;
    free(): void;
  };
}
interface Codec<T> {
  init(): Promise<T>;
  "new"(): T;
}

let codecs:
  | Promise<{
    jpeg: Codec<JpegLib>;
    png: Codec<PngLib>;
    gif: Codec<GifLib>;
  }>
  | undefined;

/**
 * Loads imagescript's codecs (compiles the wasm modules once per thread).
 * Decoding awaits this itself; call it early to move the cost out of the
 * first batch.
 *
 * @returns Resolves when the codecs are ready.
 */
export async function loadCodecs(): Promise<void> {
  await getCodecs();
}

function getCodecs() {
  codecs ??= (async () => {
    let jpeg, png, gif;
    try {
      [jpeg, png, gif] = await Promise.all([
        import("npm:imagescript@1.3.1/wasm/node/jpeg.js"),
        import("npm:imagescript@1.3.1/wasm/node/png.js"),
        import("npm:imagescript@1.3.1/wasm/node/gif.js"),
      ]);
    } catch (e) {
      throw codecsUnavailable(e);
    }
    const c = {
      jpeg: (jpeg.default ?? jpeg) as Codec<JpegLib>,
      png: (png.default ?? png) as Codec<PngLib>,
      gif: (gif.default ?? gif) as Codec<GifLib>,
    };
    // init() compiles the module once; later new() calls only instantiate.
    try {
      await Promise.all([c.jpeg.init(), c.png.init(), c.gif.init()]);
    } catch (e) {
      throw codecsUnavailable(e);
    }
    return c;
  })();
  codecs.catch(() => codecs = undefined);
  return codecs;
}

/**
 * The codecs' modules read `IMAGESCRIPT_WASM_SIMD` on import and their
 * `.wasm` files on `init()`: without `--allow-env` or `--allow-read` Deno
 * throws `NotCapable`, which becomes a typed error naming the permission
 * (not a `DataError`: no image is at fault, and `onError: "skip"` must not
 * skip every file for it).
 */
function codecsUnavailable(e: unknown): BackendUnavailableError {
  const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
  return new BackendUnavailableError(
    "imagescript's image codecs (npm:imagescript@1.3.1/wasm/node)",
    [`jpeg.js, png.js, gif.js: ${why}`],
    e instanceof Deno.errors.NotCapable
      ? "Image decoding needs --allow-read (imagescript reads its .wasm files) and --allow-env (it reads IMAGESCRIPT_WASM_SIMD)"
      : "",
  );
}

// One instance per codec per thread, replaced after any failure (a trap
// can leave an instance's memory in a bad state).
let jpegInst: JpegLib | undefined;
let pngInst: PngLib | undefined;

// ---- decoding ----------------------------------------------------------------

/** Options of {@linkcode decodeImage}. */
export interface DecodeOptions {
  /** The file name, for error messages. */
  path?: string;
  /**
   * Like PIL's `Image.draft("RGB", (width, height))`: a JPEG is decoded at
   * 1/s scale in the DCT domain (much faster), s the largest of 8, 4, 2, 1
   * not above `min(w // width, h // height)` as Pillow picks it, so both
   * sides stay at least `width` × `height` (or the size a function of the
   * full size returns). With TurboJPEG the pixels equal Pillow's draft
   * output. Other formats ignore it.
   */
  draft?:
    | { width: number; height: number }
    | ((width: number, height: number) => { width: number; height: number });
  /**
   * The most pixels the image (and a GIF's first frame) may declare, checked
   * from the header before decoding: more gives a `DecompressionBombError`.
   * Default {@linkcode MAX_IMAGE_PIXELS} (89,478,485, Pillow's); `null` or
   * `Infinity` lifts the limit (for trusted files only).
   */
  maxImagePixels?: number | null;
}

function fail(path: string | undefined, reason: string): DataError {
  return new DataError(`Cannot decode image ${path ?? "<bytes>"}: ${reason}`);
}

function hex(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 8)].map((v) => v.toString(16).padStart(2, "0"))
    .join(" ");
}

/**
 * Picks the JPEG DCT scale (8 = full size, 4, 2, 1 eighths) for a draft as
 * Pillow's `JpegImageFile.draft` does: 1/s with s the largest of 8, 4, 2, 1
 * not above `min(width // draft.width, height // draft.height)`, which keeps
 * both sides at least the draft size.
 *
 * @param width The JPEG's width.
 * @param height The JPEG's height.
 * @param draft The size asked for.
 * @returns The scale in eighths: 8, 4, 2 or 1.
 */
function draftScale(
  width: number,
  height: number,
  draft: { width: number; height: number },
): number {
  return 8 / pilDraftScale(width, height, draft);
}

/**
 * Which JPEG decoder {@linkcode decodeImage} uses: `"turbojpeg"` when
 * libjpeg-turbo's TurboJPEG loaded, else `"imagescript"`.
 *
 * @returns The decoder's name.
 * @throws {BackendUnavailableError} When `KDENO_TURBOJPEG` names a library
 * that does not load.
 */
export function jpegDecoder(): "turbojpeg" | "imagescript" {
  return turboJpeg() ? "turbojpeg" : "imagescript";
}

/**
 * Decodes a JPEG, PNG or GIF file into an 8-bit image, as PIL's
 * `Image.open(f).convert("RGB")` would see it (see the module notes for the
 * exact rules).
 *
 * Limits, checked from the header before anything is decoded (see
 * {@linkcode readImageHeader}):
 *
 * - `maxImagePixels` (default {@linkcode MAX_IMAGE_PIXELS}, 89,478,485,
 *   Pillow's `MAX_IMAGE_PIXELS`; `null` or `Infinity` lifts it): an image,
 *   GIF screen or GIF first frame of more pixels gives a
 *   `DecompressionBombError`. Unlike Pillow, which warns up to twice the
 *   limit, kdeno refuses above it;
 * - whatever the limit, a file too small to code the pixels it declares
 *   (more than 1032 deflated bytes per IDAT byte, 16384 pixels per LZW byte,
 *   2048 pixels per JPEG byte) is refused as corrupt or truncated, so every
 *   allocation is bounded by the header and the file size;
 * - an empty (0-pixel) image is refused as corrupt.
 *
 * @param bytes The file's bytes.
 * @param options `path` for messages; `draft` for scaled JPEG decoding;
 * `maxImagePixels`.
 * @returns The decoded image.
 * @throws {DecompressionBombError} When the header declares more than
 * `maxImagePixels` pixels.
 * @throws {DataError} For empty, truncated, corrupt or unsupported files,
 * naming `path`.
 * @throws {BackendUnavailableError} When imagescript's codecs cannot load
 * (without `--allow-env` or `--allow-read`), naming the permission, or when
 * `KDENO_TURBOJPEG` names a TurboJPEG library that does not load.
 *
 * @example Decode a PNG
 * ```ts
 * import { data } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const bytes = await Deno.readFile(
 *   "examples/data/fashion-binary/test/shirt/test_00007.png",
 * );
 * const img = await data.decodeImage(bytes);
 * assert.deepEqual([img.width, img.height, img.mode], [28, 28, "RGB"]);
 * ```
 *
 * @example Refuse images over a limit
 * ```ts
 * import { data, DecompressionBombError } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const bytes = await Deno.readFile(
 *   "examples/data/fashion-binary/test/shirt/test_00007.png",
 * );
 * await assert.rejects(
 *   data.decodeImage(bytes, { maxImagePixels: 28 * 27 }),
 *   DecompressionBombError,
 * );
 * ```
 */
export async function decodeImage(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): Promise<RawImage> {
  const { path } = options;
  const limit = resolveMaxImagePixels(options.maxImagePixels, "decodeImage");
  const header = readImageHeader(bytes, { path });
  checkHeader(header, bytes.length, limit, path);
  const { format } = header;
  if (format === "JPEG") {
    const tj = turboJpeg();
    if (tj) {
      const d = typeof options.draft === "function"
        ? options.draft(header.width, header.height)
        : options.draft;
      return decodeJpegTurbo(tj, bytes, header.width, header.height, d, path);
    }
    const why = turboJpegError() ?? "";
    showNotice(
      `kdeno: TurboJPEG not loaded (${
        why.includes("FFI permission")
          ? "no --allow-ffi"
          : why.includes("turns it off")
          ? "KDENO_TURBOJPEG=0"
          : "libturbojpeg.so.0 not found; apt-get install libturbojpeg0"
      }): JPEGs decode with imagescript, slower and not bit-exact to PIL`,
    );
  }
  const c = await getCodecs();
  try {
    if (format === "JPEG") return decodeJpeg(c.jpeg, bytes, header, options);
    if (format === "PNG") return decodePng(c.png, bytes);
    return decodeGif(c.gif, bytes);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw fail(path, `corrupt or truncated ${format} (${msg})`);
  }
}

/** Refuses empty files, non-images and the formats not decoded. */
function checkFormat(
  bytes: Uint8Array,
  path: string | undefined,
): "JPEG" | "PNG" | "GIF" {
  if (bytes.length === 0) throw fail(path, "the file is empty (0 bytes)");
  const format = sniffFormat(bytes);
  if (format === undefined) {
    throw fail(
      path,
      `not an image: it starts with bytes ${hex(bytes)} (expected ${
        DECODABLE_FORMATS.join(", ")
      })`,
    );
  }
  if (format !== "JPEG" && format !== "PNG" && format !== "GIF") {
    throw fail(
      path,
      `unsupported format ${format} (imagescript decodes ${
        DECODABLE_FORMATS.join(", ")
      }; convert the file, e.g. with ImageMagick: convert in out.png)`,
    );
  }
  return format;
}

function decodeJpeg(
  codec: Codec<JpegLib>,
  bytes: Uint8Array,
  h: ImageHeader,
  options: DecodeOptions,
): RawImage {
  let r;
  try {
    jpegInst ??= codec.new();
    const d = typeof options.draft === "function"
      ? options.draft(h.width, h.height)
      : options.draft;
    const s = d ? draftScale(h.width, h.height, d) : 8;
    r = s === 8 ? jpegInst.decode(bytes) : jpegInst.decode(
      bytes,
      Math.ceil(h.width * s / 8),
      Math.ceil(h.height * s / 8),
    );
  } catch (e) {
    jpegInst = undefined;
    throw e;
  }
  const { width, height, format, buffer } = r;
  const n = width * height;
  if (format === 0) {
    return {
      width,
      height,
      channels: 1,
      mode: "RGB",
      data: buffer.subarray(0, n),
    };
  }
  if (format === 1) {
    return {
      width,
      height,
      channels: 3,
      mode: "RGB",
      data: buffer.subarray(0, 3 * n),
    };
  }
  // CMYK (ink amounts; the decoder undoes Adobe's inversion): PIL's
  // cmyk2rgb, r = nk - round(c * nk / 255) with nk = 255 - k.
  const out = newRawImage(width, height, 3, "RGB");
  const d = out.data;
  for (let i = 0, o = 0; i < 4 * n; i += 4) {
    const nk = 255 - buffer[i + 3];
    for (let ch = 0; ch < 3; ch++) {
      const t = buffer[i + ch] * nk + 128;
      d[o++] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return out;
}

function decodePng(codec: Codec<PngLib>, bytes: Uint8Array): RawImage {
  let r;
  try {
    pngInst ??= codec.new();
    r = pngInst.decode(bytes);
  } catch (e) {
    pngInst = undefined;
    throw e;
  }
  const { width, height, framebuffer: rgba } = r;
  const colorType = bytes[25]; // IHDR: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
  const n = width * height;
  if (colorType === 0 || colorType === 4) {
    const out = newRawImage(width, height, 1, "RGB");
    for (let i = 0; i < n; i++) out.data[i] = rgba[4 * i];
    return out;
  }
  const out = newRawImage(width, height, 3, "RGB");
  const d = out.data;
  for (let i = 0, o = 0; o < d.length; i += 4) {
    d[o++] = rgba[i];
    d[o++] = rgba[i + 1];
    d[o++] = rgba[i + 2];
  }
  return out;
}

function decodeGif(codec: Codec<GifLib>, bytes: Uint8Array): RawImage {
  const dec = new (codec.new()).Decoder(bytes);
  try {
    const f = dec.frame();
    if (!f) throw new Error("gif: no frames");
    // The first frame, clipped to the screen, over a black background.
    const { width, height } = dec;
    const out = newRawImage(width, height, 3, "RGB");
    const d = out.data;
    const w = Math.min(f.width, width - f.x);
    for (let y = 0; y < f.height && y + f.y < height; y++) {
      for (let x = 0; x < w; x++) {
        const s = 4 * (y * f.width + x), o = 3 * ((y + f.y) * width + x + f.x);
        d[o] = f.buffer[s];
        d[o + 1] = f.buffer[s + 1];
        d[o + 2] = f.buffer[s + 2];
      }
    }
    return out;
  } finally {
    dec.free();
  }
}

/**
 * Reads and decodes an image file. Only regular files are read (a FIFO or
 * a device named `x.jpg` would block or never end); the limits are
 * {@linkcode decodeImage}'s.
 *
 * @param path The file.
 * @param options `draft` and `maxImagePixels` as for
 * {@linkcode decodeImage}.
 * @returns The decoded image.
 * @throws {DecompressionBombError} When the header declares more than
 * `maxImagePixels` pixels.
 * @throws {DataError} When the file cannot be read or decoded, naming it.
 * @throws {BackendUnavailableError} When the codecs cannot load.
 */
export async function readImage(
  path: string,
  options: Omit<DecodeOptions, "path"> = {},
): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
    const st = Deno.statSync(path);
    if (!st.isFile) {
      throw new Error(`not a regular file (${fileKind(st)})`);
    }
    // Synchronous: for image-sized files it is several times cheaper than
    // the async op, and decoding blocks this thread anyway.
    bytes = Deno.readFileSync(path);
  } catch (e) {
    throw new DataError(
      `Cannot read image ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
  return await decodeImage(bytes, { ...options, path });
}

/** Names what a path that is not a regular file is. */
function fileKind(st: Deno.FileInfo): string {
  return st.isDirectory
    ? "a directory"
    : st.isFifo
    ? "a FIFO"
    : st.isSocket
    ? "a socket"
    : st.isCharDevice || st.isBlockDevice
    ? "a device"
    : "of an unknown kind";
}
