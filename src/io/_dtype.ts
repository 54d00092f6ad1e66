/**
 * What the checkpoint readers share: element conversions, telling the
 * formats apart by their first bytes, the allowance that bounds what a file
 * may make the reader allocate, and bounded previews of untrusted values
 * for error messages.
 *
 * @module
 */

import { fmtBytes } from "../errors.ts";

/** float16 bit patterns to float32, built once (256 KiB). */
export { float16Table as halfToFloatTable } from "../backend/half_bits.ts";

/** Whether this machine stores numbers little-endian. */
export const LITTLE_ENDIAN: boolean =
  new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The most dims a checkpoint's tensor may have, as `tensor()` reads at most
 * 64 nested levels.
 */
export const MAX_DIMS = 64;

/**
 * A short, bounded rendering of an untrusted value for an error message,
 * as `JSON.stringify` writes it (`"key"`, `[2,3]`, `{"a":1}`; BigInts as
 * digits, typed arrays and class instances by kind): at most `max`
 * characters, and
 * the walk stops there, so a header of millions of elements or a value
 * nested thousands deep costs no more than a short one. `JSON.stringify`
 * would walk (or overflow on) the whole value and throws on BigInts and
 * cycles.
 *
 * @param x The value.
 * @param max The most characters before `...`.
 * @returns The rendering.
 */
export function preview(x: unknown, max = 60): string {
  let out = "";
  // each call appends at least one character, so the walk visits at most
  // `max` values and recurses at most `max` deep
  const walk = (v: unknown): void => {
    if (out.length > max) return;
    if (typeof v === "string") {
      out += JSON.stringify(v.length > max ? v.slice(0, max) : v);
    } else if (typeof v === "bigint") {
      const s = v.toString();
      out += s.length > max ? s.slice(0, max) : s;
    } else if (v === null || typeof v !== "object") {
      out += String(v);
    } else if (Array.isArray(v)) {
      out += "[";
      for (let i = 0; i < v.length && out.length <= max; i++) {
        if (i) out += ",";
        walk(v[i]);
      }
      out += "]";
    } else if (ArrayBuffer.isView(v)) {
      out += `<${v.byteLength} bytes>`;
    } else if (Object.getPrototypeOf(v) === Object.prototype) {
      out += "{";
      let first = true;
      for (const k in v) {
        if (out.length > max) break;
        if (!first) out += ",";
        first = false;
        out += `${JSON.stringify(k.length > max ? k.slice(0, max) : k)}:`;
        walk((v as Record<string, unknown>)[k]);
      }
      out += "}";
    } else {
      out += `<${v.constructor?.name ?? "object"}>`;
    }
  };
  walk(x);
  return out.length > max ? `${out.slice(0, max)}...` : out;
}

/**
 * A string cut to `max` characters for a message, `...` marking the cut.
 *
 * @param s The string.
 * @param max The most characters kept.
 * @returns The string or its prefix.
 */
export function clip(s: string, max = 60): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/** A checkpoint format, as its first bytes tell it. */
export type FileKind =
  | "empty"
  | "safetensors"
  | "zip"
  | "pickle"
  | "tar"
  | "unknown";

/**
 * Tells a checkpoint's format from its first bytes: safetensors (an 8-byte
 * header length, then the JSON header's `{`), a zip archive (`PK\x03\x04`:
 * `torch.save` since PyTorch 1.6), a pickle (`\x80`, the PROTO opcode: the
 * legacy `torch.save` stream), a tar archive (PyTorch before 0.4).
 * Safetensors is tried first: its header length may begin with any byte,
 * while byte 8 of a zip or a legacy torch file is never `{`.
 *
 * @param bytes The file.
 * @returns Its kind.
 */
export function sniff(bytes: Uint8Array): FileKind {
  if (bytes.length === 0) return "empty";
  if (bytes.length >= 9 && bytes[8] === 0x7b) return "safetensors";
  if (
    bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
    ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6))
  ) {
    return "zip";
  }
  if (bytes[0] === 0x80) return "pickle";
  if (
    bytes.length >= 262 &&
    String.fromCharCode(...bytes.subarray(257, 262)) === "ustar"
  ) {
    return "tar";
  }
  return "unknown";
}

/**
 * The first bytes of a file, in hex and, when they are text, as text:
 * `starts with bytes 3c 21 44 4f 43 54 59 50 ("<!DOCTYPE html>...")`.
 *
 * @param bytes The file.
 * @returns The phrase.
 */
export function describeStart(bytes: Uint8Array): string {
  const head = bytes.subarray(0, 8);
  const hex = Array.from(head, (b) => b.toString(16).padStart(2, "0"));
  const text = bytes.subarray(0, 40);
  const printable = text.every((b) =>
    (b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09
  );
  const lfs = printable &&
    String.fromCharCode(...text).startsWith("version https://git-lfs");
  return `starts with bytes ${hex.join(" ")}${
    printable ? ` (${preview(String.fromCharCode(...text), 40)})` : ""
  }${lfs ? ": a Git LFS pointer, not the file it points to" : ""}`;
}

/** How many times its own size a checkpoint may materialise by default. */
export const EXPANSION = 16;

/** What any checkpoint may materialise by default, however small. */
export const MIN_ALLOWANCE: number = 2 ** 20;

/**
 * The bytes a checkpoint may make its reader allocate or scan: zip entries
 * read (inflated or not), tensors decoded (4 bytes a value). By default
 * `EXPANSION` times the file's size, at least `MIN_ALLOWANCE`; a reader's
 * `maxBytes` option replaces that. Every reader charges its allocations
 * here before making them, so a small file cannot make it allocate much,
 * whichever way it tries (a zip bomb, stride-0 views, many views of one
 * storage).
 *
 * Why 16: an honest `torch.save` file of float32 weights materialises
 * about twice its size (each storage read once, each tensor decoded once);
 * 1-byte dtypes widen 4 times to int32; shared storages (tied weights) are
 * decoded once per tensor. 16 leaves room for several views of 1-byte
 * storages and for re-zipped DEFLATE archives of ordinary weights, while a
 * 1.5 MiB file can no longer claim gigabytes.
 */
export class Allowance {
  /** The most bytes this file may materialise. */
  readonly limit: number;
  readonly #fileBytes: number;
  readonly #explicit: boolean;
  readonly #fail: (msg: string) => never;
  #used = 0;

  /**
   * Creates the allowance of one file.
   *
   * @param fileBytes The file's size.
   * @param maxBytes The reader's `maxBytes` option, if given.
   * @param fail Throws the reader's error with a message (also for a
   * `maxBytes` that is not a number >= 0).
   */
  constructor(
    fileBytes: number,
    maxBytes: number | undefined,
    fail: (msg: string) => never,
  ) {
    if (
      maxBytes !== undefined &&
      (typeof maxBytes !== "number" || !(maxBytes >= 0))
    ) {
      fail(`the maxBytes option is ${preview(maxBytes)}, not a number >= 0`);
    }
    this.limit = maxBytes ?? Math.max(EXPANSION * fileBytes, MIN_ALLOWANCE);
    this.#fileBytes = fileBytes;
    this.#explicit = maxBytes !== undefined;
    this.#fail = fail;
  }

  /**
   * Charges `bytes` about to be materialised, or refuses them.
   *
   * @param bytes The bytes.
   * @param what What needs them, starting a sentence: `zip entry "x"`; a
   * function when making the text would cost more than the check.
   * @throws The reader's error when the file's allowance would be exceeded.
   */
  take(bytes: number, what: string | (() => string)): void {
    if (bytes <= this.limit - this.#used) {
      this.#used += bytes;
      return;
    }
    const basis = this.#explicit
      ? "set by the maxBytes option"
      : `a file of ${
        fmtBytes(this.#fileBytes)
      } may materialise (${EXPANSION} times its size, at least ${
        fmtBytes(MIN_ALLOWANCE)
      }); if the file is trusted, pass a larger maxBytes`;
    this.#fail(
      `${typeof what === "string" ? what : what()} needs ${fmtBytes(bytes)}${
        this.#used ? ` on top of ${fmtBytes(this.#used)} already taken` : ""
      }, more than the ${fmtBytes(this.limit)} ${basis}`,
    );
  }
}
