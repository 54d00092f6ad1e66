/**
 * Image decoding with imagescript's WebAssembly codecs
 * (`npm:imagescript@1.3.1`), straight to {@linkcode RawImage}s.
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
 * Worker-safe: no tensor imports.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { newRawImage, type RawImage } from "./image.ts";

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
export const DECODABLE_FORMATS: readonly ImageFormat[] = ["JPEG", "PNG", "GIF"];

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

/** Dimensions and layout read from a JPEG's frame header. */
export interface JpegHeader {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Colour components: 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK. */
  components: number;
  /** Whether the frame is progressive. */
  progressive: boolean;
  /** Whether entropy coding is arithmetic (not decodable here). */
  arithmetic: boolean;
}

/**
 * Reads a JPEG's frame header (SOFn) without decoding.
 *
 * @param bytes The JPEG file.
 * @returns The header, or `undefined` when no frame header is found.
 */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return undefined;
    const m = bytes[p + 1];
    if (m === 0xff) {
      p++;
      continue;
    }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      p += 2;
      continue;
    }
    const len = (bytes[p + 2] << 8) | bytes[p + 3];
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 &&
      m !== 0xcc;
    if (isSof) {
      if (p + 10 > bytes.length) return undefined;
      return {
        height: (bytes[p + 5] << 8) | bytes[p + 6],
        width: (bytes[p + 7] << 8) | bytes[p + 8],
        components: bytes[p + 9],
        progressive: m === 0xc2 || m === 0xc6 || m === 0xca || m === 0xce,
        arithmetic: m >= 0xc9,
      };
    }
    if (m === 0xda || m === 0xd9) return undefined;
    p += 2 + len;
  }
  return undefined;
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
    const [jpeg, png, gif] = await Promise.all([
      import("npm:imagescript@1.3.1/wasm/node/jpeg.js"),
      import("npm:imagescript@1.3.1/wasm/node/png.js"),
      import("npm:imagescript@1.3.1/wasm/node/gif.js"),
    ]);
    const c = {
      jpeg: (jpeg.default ?? jpeg) as Codec<JpegLib>,
      png: (png.default ?? png) as Codec<PngLib>,
      gif: (gif.default ?? gif) as Codec<GifLib>,
    };
    // init() compiles the module once; later new() calls only instantiate.
    await Promise.all([c.jpeg.init(), c.png.init(), c.gif.init()]);
    return c;
  })();
  codecs.catch(() => codecs = undefined);
  return codecs;
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
   * Like PIL's `Image.draft`: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale
   * (in the DCT domain, much faster) as long as both sides stay at least
   * `width` × `height` (or the size a function of the full size returns).
   * Other formats ignore it.
   */
  draft?:
    | { width: number; height: number }
    | ((width: number, height: number) => { width: number; height: number });
}

function fail(path: string | undefined, reason: string): DataError {
  return new DataError(`Cannot decode image ${path ?? "<bytes>"}: ${reason}`);
}

function hex(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 8)].map((v) => v.toString(16).padStart(2, "0"))
    .join(" ");
}

/**
 * Picks the JPEG DCT scale (8 = full size, 4, 2, 1 eighths) for a draft:
 * the smallest that keeps both sides at least the draft size.
 */
export function draftScale(
  width: number,
  height: number,
  draft: { width: number; height: number },
): number {
  for (const s of [1, 2, 4]) {
    if (
      Math.ceil(width * s / 8) >= draft.width &&
      Math.ceil(height * s / 8) >= draft.height
    ) return s;
  }
  return 8;
}

/**
 * Decodes a JPEG, PNG or GIF file into an 8-bit image, as PIL's
 * `Image.open(f).convert("RGB")` would see it (see the module notes for the
 * exact rules).
 *
 * @param bytes The file's bytes.
 * @param options `path` for messages; `draft` for scaled JPEG decoding.
 * @returns The decoded image.
 * @throws {DataError} For empty, truncated, corrupt or unsupported files,
 * naming `path`.
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
 */
export async function decodeImage(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): Promise<RawImage> {
  const { path } = options;
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
  if (!DECODABLE_FORMATS.includes(format)) {
    throw fail(
      path,
      `unsupported format ${format} (imagescript decodes ${
        DECODABLE_FORMATS.join(", ")
      }; convert the file, e.g. with ImageMagick: convert in out.png)`,
    );
  }
  const c = await getCodecs();
  try {
    if (format === "JPEG") return decodeJpeg(c.jpeg, bytes, options);
    if (format === "PNG") return decodePng(c.png, bytes);
    return decodeGif(c.gif, bytes);
  } catch (e) {
    if (e instanceof DataError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw fail(path, `corrupt or truncated ${format} (${msg})`);
  }
}

function decodeJpeg(
  codec: Codec<JpegLib>,
  bytes: Uint8Array,
  options: DecodeOptions,
): RawImage {
  const h = readJpegHeader(bytes);
  if (!h) {
    throw fail(options.path, "corrupt or truncated JPEG (no frame header)");
  }
  if (h.arithmetic) {
    throw fail(options.path, "unsupported JPEG: arithmetic-coded");
  }
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
  return rgbaToRgb(rgba, width, height);
}

function rgbaToRgb(rgba: Uint8Array, width: number, height: number): RawImage {
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
    const { width, height } = dec;
    const canvas = new Uint8Array(width * height * 4);
    for (let y = 0; y < f.height; y++) {
      const cy = y + f.y;
      if (cy >= height) break;
      for (let x = 0; x < f.width; x++) {
        const cx = x + f.x;
        if (cx >= width) break;
        const s = 4 * (y * f.width + x), o = 4 * (cy * width + cx);
        canvas[o] = f.buffer[s];
        canvas[o + 1] = f.buffer[s + 1];
        canvas[o + 2] = f.buffer[s + 2];
      }
    }
    return rgbaToRgb(canvas, width, height);
  } finally {
    dec.free();
  }
}

/**
 * Reads and decodes an image file.
 *
 * @param path The file.
 * @param options `draft` as for {@linkcode decodeImage}.
 * @returns The decoded image.
 * @throws {DataError} When the file cannot be read or decoded, naming it.
 */
export async function readImage(
  path: string,
  options: Omit<DecodeOptions, "path"> = {},
): Promise<RawImage> {
  let bytes: Uint8Array;
  try {
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
