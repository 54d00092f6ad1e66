/**
 * A small read-only zip reader, enough for PyTorch checkpoints: the central
 * directory (zip64 included), STORED entries (what `torch.save` writes) and
 * DEFLATE entries (through `node:zlib`), each checked against its CRC-32.
 * Encrypted entries and other methods are refused.
 *
 * Whatever the archive claims, the work is bounded by its bytes: every
 * record is read only after checking it lies inside the archive (zip64
 * extra fields included), and an entry is inflated no further than its
 * declared size, so a bomb stops after that many bytes. Bounding the
 * declared sizes themselves is the caller's part (the PyTorch reader
 * charges each entry to the file's allowance before reading it).
 *
 * Every error is a `ZipFormatError` naming what was wrong; the PyTorch reader
 * wraps it in a `CheckpointError` naming the file.
 *
 * @module
 */

import * as zlib from "node:zlib";
import { preview } from "./_dtype.ts";

/** A malformed, truncated or unsupported zip archive. */
export class ZipFormatError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "ZipFormatError";
  }
}

/** One entry of the central directory. */
export interface ZipEntry {
  /** The entry's path inside the archive. */
  name: string;
  /** 0 (STORED) or 8 (DEFLATE); others are refused on reading. */
  method: number;
  /** General-purpose flags (bit 0: encrypted). */
  flags: number;
  /** CRC-32 of the uncompressed data. */
  crc32: number;
  /** Bytes as stored. */
  compressedSize: number;
  /** Bytes once inflated. */
  size: number;
  /** Offset of the entry's local header in the archive. */
  localOffset: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ZipFormatError(`${what} ${v} is too large`);
  }
  return Number(v);
}

let crcTable: Uint32Array | undefined;

/**
 * CRC-32 (IEEE 802.3, as zip uses): `node:zlib`'s when the runtime has it
 * (native, about 100 times faster), else table-driven.
 *
 * @param data The bytes.
 * @returns The checksum as an unsigned 32-bit number.
 */
export function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === "function") return native(data) >>> 0;
  return crc32Table(data);
}

/**
 * CRC-32 computed in TypeScript, the fallback of `crc32`.
 *
 * @param data The bytes.
 * @returns The checksum as an unsigned 32-bit number.
 */
export function crc32Table(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive held in memory: its directory and a way to read entries. */
export class ZipReader {
  /** The entries in central-directory order. */
  readonly entries: ZipEntry[];
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #byName = new Map<string, ZipEntry>();

  /**
   * Parses the central directory.
   *
   * @param bytes The whole archive.
   * @throws ZipFormatError when there is no valid directory (a truncated
   * or non-zip file).
   */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.entries = this.#readDirectory();
    for (const e of this.entries) {
      if (this.#byName.has(e.name)) {
        throw new ZipFormatError(`the archive lists ${preview(e.name)} twice`);
      }
      this.#byName.set(e.name, e);
    }
  }

  #readDirectory(): ZipEntry[] {
    const b = this.#bytes;
    const v = this.#view;
    // the end-of-central-directory record: 22 bytes plus a comment of at
    // most 65535 bytes, at the very end
    let eocd = -1;
    for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 65535); i--) {
      if (
        v.getUint32(i, true) === EOCD &&
        i + 22 + v.getUint16(i + 20, true) === b.length
      ) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      throw new ZipFormatError(
        "no end-of-central-directory record at the end of the file: it is truncated or not a zip archive",
      );
    }
    let count = v.getUint16(eocd + 10, true);
    let dirSize = v.getUint32(eocd + 12, true);
    let dirOffset = v.getUint32(eocd + 16, true);
    if (
      count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff
    ) {
      const loc = eocd - 20;
      if (loc < 0 || v.getUint32(loc, true) !== EOCD64_LOCATOR) {
        throw new ZipFormatError(
          "the directory record asks for zip64 but the zip64 locator is missing",
        );
      }
      const rec = u64(v, loc + 8, "the zip64 record offset");
      if (rec + 56 > b.length || v.getUint32(rec, true) !== EOCD64) {
        throw new ZipFormatError(
          `no zip64 end-of-central-directory record at byte ${rec}`,
        );
      }
      count = u64(v, rec + 32, "the entry count");
      dirSize = u64(v, rec + 40, "the directory size");
      dirOffset = u64(v, rec + 48, "the directory offset");
    }
    if (dirOffset + dirSize > b.length) {
      throw new ZipFormatError(
        `the central directory (bytes ${dirOffset} to ${
          dirOffset + dirSize
        }) runs past the end of the file (${b.length} bytes): it is truncated`,
      );
    }
    const entries: ZipEntry[] = [];
    let at = dirOffset;
    const decoder = new TextDecoder("utf-8", { fatal: false });
    for (let k = 0; k < count; k++) {
      if (at + 46 > dirOffset + dirSize || v.getUint32(at, true) !== CENTRAL) {
        throw new ZipFormatError(
          `central directory entry ${k} of ${count} at byte ${at} is malformed`,
        );
      }
      const flags = v.getUint16(at + 8, true);
      const method = v.getUint16(at + 10, true);
      const crc = v.getUint32(at + 16, true);
      let compressedSize = v.getUint32(at + 20, true);
      let size = v.getUint32(at + 24, true);
      const nameLen = v.getUint16(at + 28, true);
      const extraLen = v.getUint16(at + 30, true);
      const commentLen = v.getUint16(at + 32, true);
      let localOffset = v.getUint32(at + 42, true);
      const end = at + 46 + nameLen + extraLen + commentLen;
      if (end > dirOffset + dirSize) {
        throw new ZipFormatError(
          `central directory entry ${k} runs past the directory`,
        );
      }
      const name = decoder.decode(b.subarray(at + 46, at + 46 + nameLen));
      // zip64 extended information: the 64-bit values of the fields that
      // hold 0xffffffff, in this order
      let x = at + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = v.getUint16(x, true);
        const len = v.getUint16(x + 2, true);
        if (x + 4 + len > xEnd) {
          throw new ZipFormatError(
            `entry ${
              preview(name)
            } has an extra field of ${len} bytes at byte ${
              x + 4
            } that runs past its ${extraLen}-byte extra area`,
          );
        }
        if (id === 0x0001) {
          let p = x + 4;
          const need = (what: string) => {
            if (p + 8 > x + 4 + len) {
              throw new ZipFormatError(
                `entry ${preview(name)} lacks its zip64 ${what}`,
              );
            }
            const r = u64(v, p, `entry ${preview(name)}'s ${what}`);
            p += 8;
            return r;
          };
          if (size === 0xffffffff) size = need("size");
          if (compressedSize === 0xffffffff) {
            compressedSize = need("compressed size");
          }
          if (localOffset === 0xffffffff) localOffset = need("offset");
        }
        x += 4 + len;
      }
      entries.push({
        name,
        method,
        flags,
        crc32: crc,
        compressedSize,
        size,
        localOffset,
      });
      at = end;
    }
    return entries;
  }

  /**
   * Looks an entry up by its exact path.
   *
   * @param name The path inside the archive.
   * @returns The entry, or undefined.
   */
  get(name: string): ZipEntry | undefined {
    return this.#byName.get(name);
  }

  /**
   * Reads an entry's data, inflating it when needed (never past its
   * declared size), and checks its size and CRC-32. A STORED entry is
   * returned as a view into the archive.
   *
   * @param entry An entry of this archive.
   * @returns The uncompressed bytes.
   * @throws ZipFormatError for a truncated, corrupt, encrypted or
   * unsupported entry.
   */
  read(entry: ZipEntry): Uint8Array {
    const b = this.#bytes;
    const v = this.#view;
    const at = entry.localOffset;
    const what = `entry ${preview(entry.name)}`;
    if (entry.flags & 1) throw new ZipFormatError(`${what} is encrypted`);
    if (at + 30 > b.length || v.getUint32(at, true) !== LOCAL) {
      throw new ZipFormatError(
        `${what} has no local header at byte ${at} (the file has ${b.length} bytes)`,
      );
    }
    const start = at + 30 + v.getUint16(at + 26, true) +
      v.getUint16(at + 28, true);
    const end = start + entry.compressedSize;
    if (end > b.length) {
      throw new ZipFormatError(
        `${what} (bytes ${start} to ${end}) runs past the end of the file (${b.length} bytes): it is truncated`,
      );
    }
    const raw = b.subarray(start, end);
    let data: Uint8Array;
    if (entry.method === 0) {
      data = raw;
    } else if (entry.method === 8) {
      try {
        // one byte past the declared size tells a lie from the truth
        // without inflating the rest
        const out = zlib.inflateRawSync(raw, {
          maxOutputLength: entry.size + 1,
        });
        data = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      } catch (e) {
        if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
          throw new ZipFormatError(
            `${what} inflates past its declared ${entry.size} bytes: the file is corrupt or a zip bomb`,
          );
        }
        throw new ZipFormatError(
          `${what} does not inflate: ${preview((e as Error).message, 200)}`,
        );
      }
    } else {
      throw new ZipFormatError(
        `${what} uses compression method ${entry.method}; only STORED (0) and DEFLATE (8) are read`,
      );
    }
    if (data.length !== entry.size) {
      throw new ZipFormatError(
        `${what} holds ${data.length} bytes but the directory says ${entry.size}`,
      );
    }
    const crc = crc32(data);
    if (crc !== entry.crc32) {
      throw new ZipFormatError(
        `${what} fails its CRC-32 check (0x${crc.toString(16)}, expected 0x${
          entry.crc32.toString(16)
        }): the file is corrupt`,
      );
    }
    return data;
  }
}
