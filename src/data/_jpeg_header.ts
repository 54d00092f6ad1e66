/**
 * A JPEG's frame header, read without decoding (for the pixel limit and
 * the draft scale).
 *
 * @module
 */

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
