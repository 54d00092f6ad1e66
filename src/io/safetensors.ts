/**
 * Reading and writing the safetensors format
 * (https://github.com/huggingface/safetensors#format): an 8-byte
 * little-endian header length, a JSON header naming each tensor's dtype,
 * shape and byte span, then the raw little-endian data.
 *
 * Reading accepts F32, F16, BF16 and F64 (as float32) and I64, I32, I16,
 * I8, U64, U32, U16, U8 and BOOL (as int32, erroring on a value int32
 * cannot hold). Writing produces F32 (or F16 / BF16 on request) and I32,
 * keys sorted, the header padded with spaces to a multiple of 8 bytes,
 * written atomically.
 *
 * Untrusted files: as in the reference implementation, the header is at
 * most 100 MB and the tensors must tile the data section exactly, so a
 * file cannot claim more data than it holds; decoding widens 1- and 2-byte
 * dtypes to 4 bytes, charged to the file's allowance (`maxBytes`, by
 * default 16 times the file's size, at least 1 MiB). Messages show at most
 * a short prefix of any header value, however large or deeply nested.
 *
 * @module
 */

import type { DeviceName, TypedArray } from "../backend/backend.ts";
import { pathName, readFileOrThrow } from "./_read.ts";
import { CheckpointError, fmtShape } from "../errors.ts";
import { tensor } from "../ops/creation.ts";
import { defaultBackend, fromStorage, Tensor } from "../tensor.ts";
import { getBackend } from "../backend/registry.ts";
import { writeFileAtomic } from "./_atomic.ts";
import {
  Allowance,
  clip,
  describeStart,
  halfToFloatTable,
  LITTLE_ENDIAN,
  MAX_DIMS,
  preview,
  sniff,
} from "./_dtype.ts";
import { toBFloat16, toFloat16 } from "../amp/half.ts";

/** The element types a safetensors file may name that kdeno reads. */
export type SafetensorsDType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

const DTYPE_SIZE: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

const FLOAT_DTYPES = new Set<SafetensorsDType>(["F64", "F32", "F16", "BF16"]);

/** Headers larger than this are refused, as the reference implementation does. */
const MAX_HEADER = 100_000_000;

const METADATA_KEY = "__metadata__";

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  /** The stored element type. */
  dtype: SafetensorsDType;
  /** The shape. */
  shape: number[];
  /** `[begin, end)` byte span, relative to the start of the data section. */
  dataOffsets: [number, number];
}

/** A parsed and checked safetensors header. */
export interface SafetensorsHeader {
  /** The free-form string metadata (`__metadata__`), empty when absent. */
  metadata: Record<string, string>;
  /** Each tensor's entry, in data order. */
  tensors: Record<string, SafetensorsEntry>;
  /** Byte offset of the data section in the file. */
  dataStart: number;
}

/** Options of the readers. */
export interface LoadSafetensorsOptions {
  /** Device to create the tensors on (default: the current one). */
  device?: DeviceName;
  /**
   * The most bytes the decoded tensors may take (4 a value). Default: 16
   * times the file's size, at least 1 MiB; a safetensors file never needs
   * more than 4 times its size, so this matters only to set a lower cap.
   */
  maxBytes?: number;
  /**
   * What F16 and BF16 tensors become: `"float32"` (the default, as before)
   * or `"keep"`: float16 and bfloat16 tensors holding the file's bits
   * exactly (2 bytes a value). F64 always becomes float32.
   */
  dtype?: "float32" | "keep";
}

/** A float16 / bfloat16 tensor of the bits read from a file. */
function halfTensor(
  bits: Uint16Array,
  dtype: "float16" | "bfloat16",
  shape: readonly number[],
  options: LoadSafetensorsOptions,
): Tensor {
  const be = options.device ? getBackend(options.device) : defaultBackend();
  return fromStorage(be, be.upload(bits, dtype), shape);
}

function fail(name: string, msg: string): never {
  throw new CheckpointError(`Cannot read safetensors file ${name}: ${msg}`);
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function show(x: unknown): string {
  return preview(x, 77);
}

/**
 * Checks, in one pass over the text, that the header nests as safetensors
 * headers do (an object of objects whose values are scalars or arrays of
 * scalars: `{"w": {"shape": [2, 3], ...}}`) before `JSON.parse` builds it.
 * Otherwise a header of `[[[[...` or `[[],[],...` makes `JSON.parse`
 * allocate 25 to 40 times its size and take seconds before the first check;
 * the reference implementation's typed parse refuses such headers at once.
 */
function checkNesting(text: string, name: string): void {
  const opens = "{{["; // the container each level may open
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: skip to its closing quote
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) {
        if (text.charCodeAt(i) === 0x5c) i++;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (depth >= opens.length || text[i] !== opens[depth]) {
        fail(
          name,
          `the header opens ${
            c === 0x7b ? "an object" : "an array"
          } at nesting level ${depth + 1} (byte ${
            8 + i
          }); a safetensors header is an object of objects whose values are scalars or arrays of scalars`,
        );
      }
      depth++;
    } else if ((c === 0x7d || c === 0x5d) && depth > 0) {
      depth--;
    }
  }
}

/**
 * Parses and checks the header of a safetensors file: its length, its JSON,
 * every entry's dtype, shape and byte span, and that the spans tile the
 * data section exactly (no overlap, no gap, nothing left over).
 *
 * @param bytes The whole file.
 * @param name The file's path, for messages.
 * @returns The metadata, the entries in data order, and where data starts.
 * @throws CheckpointError naming the file and what is wrong.
 */
export function parseSafetensorsHeader(
  bytes: Uint8Array,
  name: string,
): SafetensorsHeader {
  const kind = sniff(bytes);
  if (kind === "zip" || kind === "pickle" || kind === "tar") {
    fail(
      name,
      `it is a PyTorch checkpoint (${
        kind === "zip"
          ? "a zip archive"
          : kind === "tar"
          ? "a tar archive"
          : "a pickle"
      }), not safetensors: read it with io.loadTorch or io.loadWeights`,
    );
  }
  if (bytes.length < 8) {
    fail(
      name,
      `the file is ${bytes.length} bytes, too short for the 8-byte header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > bytes.length - 8) {
    fail(
      name,
      `the header length ${n} runs past the end of the file (${bytes.length} bytes, ${
        bytes.length - 8
      } after the length field); the file is truncated or not safetensors (it ${
        describeStart(bytes)
      })`,
    );
  }
  if (n > MAX_HEADER) {
    fail(name, `the header length ${n} exceeds the limit of ${MAX_HEADER}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(8, 8 + n),
    );
  } catch {
    fail(name, "the header is not valid UTF-8");
  }
  if (!text.startsWith("{")) {
    fail(
      name,
      `the header does not start with "{": ${
        show(text.slice(0, 20))
      }; the file is not safetensors (it ${describeStart(bytes)})`,
    );
  }
  checkNesting(text, name);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(
      name,
      `the header is not valid JSON (${show((e as Error).message)})`,
    );
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    fail(name, "the header is not a JSON object");
  }
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: [string, SafetensorsEntry][] = [];
  for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
    if (key === METADATA_KEY) {
      if (raw === null) continue;
      if (typeof raw !== "object" || Array.isArray(raw)) {
        fail(name, `${METADATA_KEY} is ${show(raw)}, not an object of strings`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") {
          fail(
            name,
            `${METADATA_KEY}.${clip(k)} is ${show(v)}, not a string`,
          );
        }
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor ${show(key)}`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      fail(name, `${where} has entry ${show(raw)}, not an object`);
    }
    const { dtype, shape, data_offsets: offsets } = raw as Record<
      string,
      unknown
    >;
    if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_SIZE, dtype)) {
      fail(
        name,
        `${where} has unknown dtype ${show(dtype)} (readable: ${
          Object.keys(DTYPE_SIZE).join(", ")
        })`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      fail(
        name,
        `${where} has shape ${show(shape)}, not a list of sizes`,
      );
    }
    if (shape.length > MAX_DIMS) {
      fail(
        name,
        `${where} has ${shape.length} dims; kdeno reads at most ${MAX_DIMS}`,
      );
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every(isCount) || offsets[0] > offsets[1]
    ) {
      fail(
        name,
        `${where} has data_offsets ${
          show(offsets)
        }, not [begin, end] with begin <= end`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      fail(
        name,
        `${where} has data_offsets [${begin}, ${end}] beyond the data section (${dataLength} bytes); the file is truncated`,
      );
    }
    const size = DTYPE_SIZE[dtype as SafetensorsDType];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (numel * size !== end - begin) {
      fail(
        name,
        `${where} of shape ${
          fmtShape(shape as number[])
        } and dtype ${dtype} needs ${
          numel * size
        } bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.push([key, {
      dtype: dtype as SafetensorsDType,
      shape: [...shape as number[]],
      dataOffsets: [begin, end],
    }]);
  }
  entries.sort(([, a], [, b]) =>
    a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]
  );
  let covered = 0;
  let previous = "";
  for (const [key, e] of entries) {
    const [begin, end] = e.dataOffsets;
    if (begin < covered) {
      fail(
        name,
        `tensor ${show(key)} (bytes [${begin}, ${end}]) overlaps tensor ${
          show(previous)
        } (ending at ${covered})`,
      );
    }
    if (begin > covered) {
      fail(
        name,
        `bytes [${covered}, ${begin}] of the data section belong to no tensor (before tensor ${
          show(key)
        })`,
      );
    }
    covered = end;
    previous = key;
  }
  if (covered !== dataLength) {
    fail(
      name,
      `the tensors cover ${covered} bytes but the data section has ${dataLength}`,
    );
  }
  return { metadata, tensors: Object.fromEntries(entries), dataStart };
}

function decode(
  bytes: Uint8Array,
  start: number,
  e: SafetensorsEntry,
  key: string,
  name: string,
  keepHalf = false,
): TypedArray {
  const [begin, end] = e.dataOffsets;
  const size = DTYPE_SIZE[e.dtype];
  const n = (end - begin) / size;
  const at = start + begin;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, end - begin);
  if (keepHalf && (e.dtype === "F16" || e.dtype === "BF16")) {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
    return out;
  }
  if (e.dtype === "F32" || e.dtype === "I32") {
    const out = e.dtype === "F32" ? new Float32Array(n) : new Int32Array(n);
    if (LITTLE_ENDIAN) {
      new Uint8Array(out.buffer).set(bytes.subarray(at, at + end - begin));
    } else if (out instanceof Float32Array) {
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
    } else {
      for (let i = 0; i < n; i++) out[i] = view.getInt32(4 * i, true);
    }
    return out;
  }
  if (FLOAT_DTYPES.has(e.dtype)) {
    const out = new Float32Array(n);
    if (e.dtype === "F64") {
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
    } else if (e.dtype === "F16") {
      const table = halfToFloatTable();
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(2 * i, true)];
    } else {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
    }
    return out;
  }
  const out = new Int32Array(n);
  const overflow = (i: number, v: bigint | number): never =>
    fail(
      name,
      `tensor ${
        show(key)
      } (${e.dtype}) holds ${v} at flat index ${i}, outside the int32 range kdeno reads integers into`,
    );
  switch (e.dtype) {
    case "I64":
    case "U64":
      for (let i = 0; i < n; i++) {
        const v = e.dtype === "I64"
          ? view.getBigInt64(8 * i, true)
          : view.getBigUint64(8 * i, true);
        if (v < -2147483648n || v > 2147483647n) overflow(i, v);
        out[i] = Number(v);
      }
      break;
    case "U32":
      for (let i = 0; i < n; i++) {
        const v = view.getUint32(4 * i, true);
        if (v > 2147483647) overflow(i, v);
        out[i] = v;
      }
      break;
    case "I16":
      for (let i = 0; i < n; i++) out[i] = view.getInt16(2 * i, true);
      break;
    case "U16":
      for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
      break;
    case "I8":
      for (let i = 0; i < n; i++) out[i] = view.getInt8(i);
      break;
    case "U8":
      for (let i = 0; i < n; i++) out[i] = view.getUint8(i);
      break;
    case "BOOL":
      for (let i = 0; i < n; i++) out[i] = view.getUint8(i) ? 1 : 0;
      break;
  }
  return out;
}

/**
 * Reads the tensors of a safetensors file already in memory. Floating-point
 * tensors become float32 (F16 and BF16 stay float16 and bfloat16 with
 * `{ dtype: "keep" }`), integer and boolean ones int32.
 *
 * Limits, for untrusted files: a header of at most 100 MB, tensors of at
 * most 64 dims, and decoded tensors (4 bytes a value) of at most
 * `maxBytes` in all (default 16 times the file's size, at least 1 MiB).
 *
 * @param bytes The whole file.
 * @param name The file's path, for messages.
 * @param options `device` for the new tensors; `maxBytes` to cap what the
 * decoded tensors may take; `dtype: "keep"` to keep F16 and BF16 tensors as
 * float16 and bfloat16.
 * @returns The tensors by name, in data order.
 * @throws CheckpointError naming the file and what is wrong.
 *
 * @example Round trip through bytes
 * ```ts
 * import { io, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const bytes = io.serializeSafetensors({ w: tensor([[1, 2], [3, 4]]) });
 * const { w } = io.parseSafetensors(bytes, "in-memory");
 * assert.deepEqual(w.toArray(), [[1, 2], [3, 4]]);
 * ```
 */
export function parseSafetensors(
  bytes: Uint8Array,
  name: string,
  options: LoadSafetensorsOptions = {},
): Record<string, Tensor> {
  const allowance = new Allowance(
    bytes.length,
    options.maxBytes,
    (msg) => fail(name, msg),
  );
  const keep = options.dtype ?? "float32";
  if (keep !== "float32" && keep !== "keep") {
    throw new TypeError(
      `Cannot read safetensors file ${name}: dtype ${
        show(keep)
      } is not "float32" or "keep"`,
    );
  }
  const header = parseSafetensorsHeader(bytes, name);
  // Decode everything before creating tensors, so a bad value leaves no
  // half-made set of tensors behind on the device.
  const decoded = Object.entries(header.tensors).map(([key, e]) => {
    const n = (e.dataOffsets[1] - e.dataOffsets[0]) / DTYPE_SIZE[e.dtype];
    allowance.take(4 * n, `tensor ${show(key)} (${e.dtype})`);
    return [
      key,
      e.shape,
      decode(bytes, header.dataStart, e, key, name, keep === "keep"),
      e.dtype,
    ] as const;
  });
  return Object.fromEntries(
    decoded.map(([key, shape, data, dt]) => [
      key,
      data instanceof Uint16Array
        ? halfTensor(
          data,
          dt === "F16" ? "float16" : "bfloat16",
          shape,
          options,
        )
        : tensor(data, { shape, device: options.device }),
    ]),
  );
}

/**
 * Reads a safetensors file. Floating-point tensors (F32, F16, BF16, F64)
 * become float32 (F16 and BF16 stay float16 and bfloat16 with
 * `{ dtype: "keep" }`); integer and boolean ones (I64, I32, I16, I8, U64, U32,
 * U16, U8, BOOL) become int32, and a value int32 cannot hold is an error.
 *
 * Untrusted files get bounded work and memory: the header is at most
 * 100 MB (as in the reference implementation) and checked so that the
 * tensors tile the data section exactly; a tensor has at most 64 dims; the
 * decoded tensors (4 bytes a value) may take at most `maxBytes`, by
 * default 16 times the file's size and at least 1 MiB (a valid file needs
 * at most 4 times its size). A file in another format (a PyTorch zip or
 * pickle) is named as such.
 *
 * @param path The file.
 * @param options `device` for the new tensors; `maxBytes` to cap what the
 * decoded tensors may take; `dtype: "keep"` to keep F16 and BF16 tensors as
 * float16 and bfloat16.
 * @returns The tensors by name.
 * @throws CheckpointError naming the file: unreadable, truncated, malformed.
 */
export async function loadSafetensors(
  path: string | URL,
  options: LoadSafetensorsOptions = {},
): Promise<Record<string, Tensor>> {
  const { bytes, name } = await readFileOrThrow(path, "safetensors file");
  return parseSafetensors(bytes, name, options);
}

/**
/** Options of {@link serializeSafetensors} and {@link saveSafetensors}. */
export interface SaveSafetensorsOptions {
  /**
   * Store float32 tensors as F16 (`"float16"`) or BF16 (`"bfloat16"`),
   * rounded as PyTorch's `.to(torch.float16)` / `.to(torch.bfloat16)`
   * round (to nearest, ties to even); default `"float32"` (F32). int32
   * tensors stay I32; float16 and bfloat16 tensors are written as their
   * own F16 / BF16 bits whatever this says.
   */
  dtype?: "float32" | "float16" | "bfloat16";
}

/**
 * Encodes tensors in the safetensors format: float32 as F32 (or F16 / BF16
 * with `options.dtype`), int32 as I32, keys sorted, data in key order, the
 * header padded with spaces so the data starts at a multiple of 8 bytes.
 *
 * @param tensors The tensors by name (`__metadata__` is reserved).
 * @param metadata Free-form string metadata, stored as `__metadata__`.
 * @param options `dtype` for float tensors.
 * @returns The file's bytes.
 * @throws TypeError for a disposed tensor, a reserved name, non-string
 * metadata or an unknown dtype.
 */
export function serializeSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options: SaveSafetensorsOptions = {},
): Uint8Array {
  const action = "Cannot write safetensors";
  const floatAs = options.dtype ?? "float32";
  if (
    floatAs !== "float32" && floatAs !== "float16" && floatAs !== "bfloat16"
  ) {
    throw new TypeError(
      `${action}: dtype ${
        show(floatAs)
      } is not "float32", "float16" or "bfloat16"`,
    );
  }
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object") {
      throw new TypeError(`${action}: metadata must be an object of strings`);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new TypeError(
          `${action}: metadata.${k} is ${typeof v}; values must be strings`,
        );
      }
    }
    header[METADATA_KEY] = { ...metadata };
  }
  const keys = Object.keys(tensors).sort();
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const key of keys) {
    const t = tensors[key];
    if (key === METADATA_KEY) {
      throw new TypeError(`${action}: "${METADATA_KEY}" is not a tensor name`);
    }
    if (!(t instanceof Tensor)) {
      throw new TypeError(`${action}: "${key}" is ${show(t)}, not a tensor`);
    }
    if (t.isDisposed) {
      throw new TypeError(
        `${action}: tensor "${key}" of shape ${fmtShape(t.shape)} was disposed`,
      );
    }
    const data = t.data();
    let raw: Uint8Array;
    let dtype = t.dtype === "float32" ? "F32" : "I32";
    if (data instanceof Uint16Array) {
      // a float16 / bfloat16 tensor: its own bits, whatever options.dtype
      dtype = t.dtype === "bfloat16" ? "BF16" : "F16";
      raw = new Uint8Array(data.byteLength);
      const v = new DataView(raw.buffer);
      for (let i = 0; i < data.length; i++) v.setUint16(2 * i, data[i], true);
    } else if (data instanceof Float32Array && floatAs !== "float32") {
      const half = floatAs === "float16" ? toFloat16(data) : toBFloat16(data);
      dtype = floatAs === "float16" ? "F16" : "BF16";
      raw = new Uint8Array(half.byteLength);
      const v = new DataView(raw.buffer);
      for (let i = 0; i < half.length; i++) v.setUint16(2 * i, half[i], true);
    } else if (LITTLE_ENDIAN) {
      raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } else {
      raw = new Uint8Array(data.byteLength);
      const v = new DataView(raw.buffer);
      for (let i = 0; i < data.length; i++) {
        if (data instanceof Float32Array) v.setFloat32(4 * i, data[i], true);
        else v.setInt32(4 * i, data[i], true);
      }
    }
    header[key] = {
      dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + raw.length],
    };
    chunks.push(raw);
    offset += raw.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length % 2 ** 32, true);
  view.setUint32(4, Math.floor(json.length / 2 ** 32), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Writes tensors to a safetensors file, atomically: the bytes go to a
 * temporary file in the same folder, which is flushed and then renamed over
 * `path`, so an existing file is replaced only by a complete one.
 *
 * @param path The file.
 * @param tensors The tensors by name (float32 or int32).
 * @param metadata Free-form string metadata.
 * @param options `dtype`: store float tensors as F16 or BF16.
 * @throws CheckpointError naming the file when it cannot be written.
 *
 * @example Save and load
 * ```ts
 * import { io, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await io.saveSafetensors(path, { bias: tensor([0.5, -1]) }, { epoch: "3" });
 * const { bias } = await io.loadSafetensors(path);
 * assert.deepEqual(bias.toArray(), [0.5, -1]);
 * await Deno.remove(path);
 * ```
 */
export async function saveSafetensors(
  path: string | URL,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
  options: SaveSafetensorsOptions = {},
): Promise<void> {
  const bytes = serializeSafetensors(tensors, metadata, options);
  const name = pathName(path);
  try {
    await writeFileAtomic(name, bytes);
  } catch (e) {
    const err = new CheckpointError(
      `Cannot write safetensors file ${name}: ${(e as Error).message}`,
    );
    err.cause = e;
    throw err;
  }
}
