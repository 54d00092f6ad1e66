// Image files made from bytes in the tests, honest or hostile, so that no
// large binary fixture is committed: PNGs of any size (deflate makes a
// 20000 × 20000 1-bit PNG a few KB), GIFs with any screen and frame, and
// JPEGs whose frame header claims another size.
import { deflateSync } from "node:zlib";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** @returns The CRC-32 of `bytes`, as PNG chunks carry it. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** @returns The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** @returns One PNG chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** What {@linkcode png} makes. */
export interface PngSpec {
  width: number;
  height: number;
  /** Bits per sample (default 8). */
  bitDepth?: number;
  /** 0 gray (default), 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA. */
  colorType?: number;
  /**
   * The zlib stream of the IDAT chunk; by default the honest one, every row
   * filter 0 and black.
   */
  idat?: Uint8Array;
  /** Chunks to put between IHDR and IDAT. */
  extra?: Uint8Array[];
}

/** @returns A PNG file (non-interlaced). */
export function png(spec: PngSpec): Uint8Array {
  const { width, height, bitDepth = 8, colorType = 0 } = spec;
  const channels = [1, 0, 3, 1, 2, 0, 4][colorType];
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([bitDepth, colorType, 0, 0, 0], 8);
  const idat = spec.idat ??
    deflateSync(
      new Uint8Array(height * (1 + Math.ceil(width * channels * bitDepth / 8))),
    );
  const plte = colorType === 3
    ? [pngChunk("PLTE", Uint8Array.from([0, 0, 0, 255, 255, 255]))]
    : [];
  return concat(
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    ...plte,
    ...(spec.extra ?? []),
    pngChunk("IDAT", idat),
    pngChunk("IEND", new Uint8Array(0)),
  );
}

/** What {@linkcode gif} makes. */
export interface GifSpec {
  /** The logical screen. */
  width: number;
  height: number;
  /** The first frame's rectangle (default: the whole screen). */
  frame?: { x: number; y: number; width: number; height: number };
  /**
   * `"all"` (default): every frame pixel coded (colour 1, white), so the
   * file is valid; `"none"`: only a clear and an end code, so the frame's
   * data holds no pixel at all.
   */
  pixels?: "all" | "none";
}

/**
 * @returns A GIF89a file: a 4-colour global table (black, white, red,
 * green, background black), one frame. Its LZW data sends a clear code
 * before every second pixel, so the code width stays at 3 bits.
 */
export function gif(spec: GifSpec): Uint8Array {
  const { width, height } = spec;
  const f = spec.frame ?? { x: 0, y: 0, width, height };
  const u16 = (v: number) => [v & 0xff, v >> 8];
  const codes = [4];
  if ((spec.pixels ?? "all") === "all") {
    for (let i = 0; i < f.width * f.height; i++) {
      if (i > 0 && i % 2 === 0) codes.push(4);
      codes.push(1);
    }
  }
  codes.push(5);
  // LSB-first 3-bit codes.
  const lzw: number[] = [];
  let acc = 0, bits = 0;
  for (const c of codes) {
    acc |= c << bits;
    bits += 3;
    while (bits >= 8) {
      lzw.push(acc & 0xff);
      acc >>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) lzw.push(acc & 0xff);
  const blocks: number[] = [];
  for (let i = 0; i < lzw.length; i += 255) {
    const part = lzw.slice(i, i + 255);
    blocks.push(part.length, ...part);
  }
  return Uint8Array.from([
    ...new TextEncoder().encode("GIF89a"),
    ...u16(width),
    ...u16(height),
    0x81, // global colour table of 4 entries
    0,
    0,
    ...[0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 255, 0],
    0x2c,
    ...u16(f.x),
    ...u16(f.y),
    ...u16(f.width),
    ...u16(f.height),
    0,
    2, // LZW minimum code size
    ...blocks,
    0,
    0x3b,
  ]);
}

/**
 * @returns A copy of `jpeg` whose first frame header (SOFn) declares
 * `width` × `height`; the scan data stays the original's.
 */
export function jpegWithSize(
  jpeg: Uint8Array,
  width: number,
  height: number,
): Uint8Array {
  const b = jpeg.slice();
  let p = 2;
  while (p + 4 <= b.length) {
    const m = b[p + 1];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      b.set([height >> 8, height & 0xff, width >> 8, width & 0xff], p + 5);
      return b;
    }
    p += 2 + ((b[p + 2] << 8) | b[p + 3]);
  }
  throw new Error("jpegWithSize: no frame header");
}

/**
 * @returns A copy of a (mutated) PNG with the CRC of every whole chunk
 * recomputed, so that a fuzzer's mutants get past the CRC check into the
 * decoder.
 */
export function fixPngCrcs(png: Uint8Array): Uint8Array {
  const b = png.slice();
  const dv = new DataView(b.buffer);
  for (let p = 8; p + 12 <= b.length;) {
    const len = dv.getUint32(p);
    if (p + 12 + len > b.length) break;
    dv.setUint32(p + 8 + len, crc32(b.subarray(p + 4, p + 8 + len)));
    p += 12 + len;
  }
  return b;
}
