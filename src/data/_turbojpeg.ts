/**
 * JPEG decoding through libjpeg-turbo's TurboJPEG API (`ffi/turbojpeg.ts`),
 * giving exactly the pixels of Pillow 9.4 built on the same libjpeg-turbo:
 *
 * - `Image.open(f).convert("RGB")`: `tjDecompress2` with flags 0 (the
 *   accurate integer IDCT and fancy upsampling, libjpeg's defaults, which
 *   Pillow keeps), `TJPF_RGB`; gray files decode with `TJPF_GRAY` to one
 *   plane (`channels: 1, mode: "RGB"`), which `convert("RGB")` copies to R,
 *   G and B;
 * - CMYK and YCCK files: `TJPF_CMYK`, then Pillow's own `"CMYK;I"` unpack
 *   (invert) and `cmyk2rgb` (`MULDIV255`), in TypeScript;
 * - `Image.draft("RGB", size)`: the scale Pillow picks (the largest of 8, 4,
 *   2, 1 not above `min(w // size[0], h // size[1])`), decoded by libjpeg
 *   in the DCT domain at `ceil(w / s)` × `ceil(h / s)`;
 * - warnings: Pillow ignores libjpeg's warnings (corrupt data decodes to
 *   the same pixels) but fails when the data runs out, so a file whose scan
 *   data ends without an end-of-image marker is refused as truncated.
 *
 * One decompressor handle per thread (TurboJPEG handles must not be shared
 * by concurrent calls; decoding here is synchronous).
 *
 * Worker-safe: no tensor imports.
 *
 * @module
 */

import {
  openTurboJpeg,
  TJCS_CMYK,
  TJCS_GRAY,
  TJCS_YCCK,
  TJERR_WARNING,
  TJPF_CMYK,
  TJPF_GRAY,
  TJPF_RGB,
  type TurboJpeg,
} from "../../ffi/turbojpeg.ts";
import { DataError } from "../errors.ts";
import type { RawImage } from "./image.ts";

/** The opened library, or `null` (absent, no `--allow-ffi`, turned off). */
export function turboJpeg(): TurboJpeg | null {
  return openTurboJpeg();
}

let handle: Deno.PointerValue = null;
const ints = new Int32Array(4);

/**
 * A decoded image's buffer handed back by {@linkcode recycleDecoded}: the
 * next decode of this thread writes into it when it is large enough, instead
 * of allocating and zero-filling a new one (several MB for an X-ray).
 */
let spare: Uint8Array | null = null;

/**
 * Hands a decoded image's pixels back for reuse by this thread's next
 * decode. Only for pixels nothing references any more (the data loader's
 * pipeline calls it once a resize has made its own copy).
 *
 * @param data The decoded image's `data`.
 */
export function recycleDecoded(data: Uint8Array): void {
  if (data.buffer instanceof ArrayBuffer && data.buffer.byteLength > 0) {
    if (!spare || data.buffer.byteLength > spare.byteLength) {
      spare = new Uint8Array(data.buffer);
    }
  }
}

function pixels(n: number): Uint8Array {
  if (spare && spare.byteLength >= n) {
    const out = spare.subarray(0, n);
    spare = null;
    return out;
  }
  return new Uint8Array(n);
}

/**
 * The scale (1, 2, 4 or 8) Pillow's `JpegImageFile.draft(mode, size)`
 * picks for a `width` × `height` JPEG: the largest of 8, 4, 2, 1 not above
 * `min(width // size.width, height // size.height)`.
 *
 * @param width The JPEG's width.
 * @param height The JPEG's height.
 * @param size The size passed to `draft`.
 * @returns The denominator of the DCT scale.
 */
export function pilDraftScale(
  width: number,
  height: number,
  size: { width: number; height: number },
): 1 | 2 | 4 | 8 {
  const k = Math.min(
    Math.floor(width / Math.max(size.width, 1)),
    Math.floor(height / Math.max(size.height, 1)),
  );
  return k >= 8 ? 8 : k >= 4 ? 4 : k >= 2 ? 2 : 1;
}

/**
 * Whether `tjDecompress2`, given the box `ceil(w / s)` × `ceil(h / s)`,
 * picks exactly the factor 1/s (it walks its factors from the largest and
 * takes the first whose scaled size fits; for images under 8 pixels it can
 * pick another).
 */
function boxPicks(tj: TurboJpeg, w: number, h: number, s: number): boolean {
  const bw = Math.ceil(w / s), bh = Math.ceil(h / s);
  for (const [num, den] of tj.scalingFactors) {
    if (
      Math.ceil(w * num / den) <= bw && Math.ceil(h * num / den) <= bh
    ) return num * s === den;
  }
  return false;
}

function resetHandle(tj: TurboJpeg): void {
  if (handle !== null) tj.symbols.tjDestroy(handle);
  handle = null;
}

function errorText(tj: TurboJpeg): string {
  const p = tj.symbols.tjGetErrorStr2(handle);
  return p === null ? "unknown error" : Deno.UnsafePointerView.getCString(p);
}

/**
 * Whether the scan data ends with an end-of-image marker (FF D9) after the
 * first start-of-scan: markers cannot occur inside entropy-coded data (FF
 * is stuffed as FF 00), so without one the file was cut.
 */
function endsWithEoi(b: Uint8Array): boolean {
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return false;
    const m = b[p + 1];
    if (m === 0xff) {
      p++;
      continue;
    }
    if (m === 0xd9) return false;
    if (m === 0xda) break;
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      p += 2;
      continue;
    }
    p += 2 + ((b[p + 2] << 8) | b[p + 3]);
  }
  for (let i = b.length - 2; i > p; i--) {
    if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  }
  return false;
}

/**
 * Pillow's `"CMYK;I"` unpack (every byte inverted) followed by `cmyk2rgb`
 * from `Convert.c`: `nk = 255 - K`, `out = nk - MULDIV255(C, nk)`.
 *
 * @param cmyk TurboJPEG's `TJPF_CMYK` output (Adobe-inverted samples).
 * @param out `3 * pixels` bytes to write.
 */
export function cmykToRgbLikePillow(cmyk: Uint8Array, out: Uint8Array): void {
  const n = cmyk.length >> 2;
  for (let i = 0, o = 0; i < n; i++) {
    const nk = cmyk[4 * i + 3];
    for (let c = 0; c < 3; c++) {
      const t = (255 - cmyk[4 * i + c]) * nk + 128;
      const v = nk - (((t >> 8) + t) >> 8);
      out[o++] = v < 0 ? 0 : v;
    }
  }
}

/**
 * Decodes a JPEG whose header has already been checked (pixel limit, file
 * size), as Pillow would (see the module notes).
 *
 * @param tj The library.
 * @param bytes The file.
 * @param width The width the header check read.
 * @param height The height the header check read.
 * @param draft The size passed to Pillow's `draft`, or none.
 * @param path The file name, for messages.
 * @returns The image.
 * @throws {DataError} For a corrupt or truncated file, or one whose
 * header TurboJPEG reads differently, naming `path`.
 */
export function decodeJpegTurbo(
  tj: TurboJpeg,
  bytes: Uint8Array,
  width: number,
  height: number,
  draft: { width: number; height: number } | undefined,
  path: string | undefined,
): RawImage {
  const t = tj.symbols;
  const fail = (why: string) => {
    // After an error (even a warning) TurboJPEG 2.x can leave the handle in
    // a state where every later call fails with the same message: start over.
    resetHandle(tj);
    return new DataError(
      `Cannot decode image ${
        path ?? "<bytes>"
      }: corrupt or truncated JPEG (${why})`,
    );
  };
  if (handle === null) {
    handle = t.tjInitDecompress();
    if (handle === null) throw new Error("tjInitDecompress failed");
  }
  const len = BigInt(bytes.length);
  const i = ints.fill(0); // left untouched on early errors
  const rc = t.tjDecompressHeader3(
    handle,
    bytes,
    len,
    i.subarray(0, 1),
    i.subarray(1, 2),
    i.subarray(2, 3),
    i.subarray(3, 4),
  );
  // 2.x refuses unusual sampling factors after reading the size (subsamp
  // -1), and a warning also returns -1; tjDecompress2 decodes both.
  if (
    rc !== 0 && !(i[0] > 0 && i[1] > 0 &&
      (i[2] === -1 || t.tjGetErrorCode(handle) === TJERR_WARNING))
  ) throw fail(errorText(tj));
  if (rc !== 0) {
    resetHandle(tj);
    handle = t.tjInitDecompress();
  }
  if (i[0] !== width || i[1] !== height) {
    throw fail(
      `TurboJPEG reads a ${i[0]} × ${
        i[1]
      } image where the frame header says ${width} × ${height}`,
    );
  }
  const cs = i[3];
  const cmyk = cs === TJCS_CMYK || cs === TJCS_YCCK;
  const gray = cs === TJCS_GRAY;
  let s: number = draft ? pilDraftScale(width, height, draft) : 1;
  if (s > 1 && !boxPicks(tj, width, height, s)) s = 1;
  const sw = Math.ceil(width / s), sh = Math.ceil(height / s);
  const bpp = cmyk ? 4 : gray ? 1 : 3;
  const pf = cmyk ? TJPF_CMYK : gray ? TJPF_GRAY : TJPF_RGB;
  const out = cmyk ? new Uint8Array(sw * sh * bpp) : pixels(sw * sh * bpp);
  if (t.tjDecompress2(handle, bytes, len, out, sw, sw * bpp, sh, pf, 0) !== 0) {
    const msg = errorText(tj);
    if (
      t.tjGetErrorCode(handle) !== TJERR_WARNING ||
      msg.startsWith("Premature end of JPEG file") || !endsWithEoi(bytes)
    ) throw fail(msg);
    resetHandle(tj);
  }
  if (!cmyk) {
    return {
      width: sw,
      height: sh,
      channels: gray ? 1 : 3,
      mode: "RGB",
      data: out,
    };
  }
  const rgb = new Uint8Array(sw * sh * 3);
  cmykToRgbLikePillow(out, rgb);
  return { width: sw, height: sh, channels: 3, mode: "RGB", data: rgb };
}
