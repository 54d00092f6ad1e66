/**
 * Reading PyTorch `.pt`/`.pth` state dicts without PyTorch and without
 * running any of the file's code.
 *
 * Two layouts are read: the zip archive that `torch.save` writes since
 * PyTorch 1.6 (`<archive>/data.pkl` plus one file per storage under
 * `<archive>/data/`), and the older "legacy" stream (`torch.save(...,
 * _use_new_zipfile_serialization=False)`: magic number, protocol, system
 * info, the pickle, the storage keys, then each storage's bytes). The
 * pre-0.4 tar layout is refused.
 *
 * The pickle goes through a restricted interpreter (`_pickle.ts`) that knows
 * only what a state dict needs: `collections.OrderedDict`, the tensor
 * rebuild functions (`torch._utils._rebuild_tensor_v2`, `_rebuild_tensor`,
 * `_rebuild_parameter`, `_rebuild_parameter_with_state`), the storage
 * classes (`torch.FloatStorage`, `LongStorage`, `HalfStorage`, ...) and
 * dtype constants. Any other global (`os.system`, `builtins.eval`, a model
 * class, numpy) is refused with a `CheckpointError` that names it.
 *
 * Each tensor is a strided view of a storage (an offset and a stride per
 * dim); the reader checks the view lies inside the storage and gathers it.
 * Floating-point storages (float32, float64, float16, bfloat16) become
 * float32; integer and boolean ones become int32, and a value int32 cannot
 * hold (an int64 of 2^31 or more) is an error naming the key.
 *
 * Untrusted files: PyTorch keeps a view as a view, but kdeno copies it, so
 * a few bytes of stride-0 views (or many tensors over one storage) could
 * claim gigabytes, as could a zip entry that inflates far beyond its size.
 * Every zip entry read and every tensor decoded is therefore charged, before
 * it is allocated, to the file's allowance (`_dtype.ts`'s `Allowance`: 16
 * times the file's size, at least 1 MiB, or the `maxBytes` option), and
 * DEFLATE entries inflate no further than their declared size. Parsing is
 * linear in the file (`_pickle.ts`), and messages quote at most a short
 * prefix of anything the file supplies.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import { CheckpointError, fmtShape } from "../errors.ts";
import { readFileOrThrow, readFileOrThrowSync } from "./_read.ts";
import { tensor } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import {
  Allowance,
  clip,
  describeStart,
  halfToFloatTable,
  LITTLE_ENDIAN,
  preview,
  sniff,
} from "./_dtype.ts";
import {
  describe,
  PickleError,
  PyDict,
  PyGlobal,
  type StorageRef,
  TensorSpec,
  unpickle,
} from "./_pickle.ts";
import { type ZipEntry, ZipFormatError, ZipReader } from "./_zip.ts";

/** Options of `loadTorch` and `parseTorch`. */
export interface LoadTorchOptions {
  /** Device to create the tensors on (default: the current one). */
  device?: DeviceName;
  /**
   * For a checkpoint that nests its state dict (`{"model": state_dict,
   * "epoch": 3}`), the top-level key holding it. The other entries are
   * still parsed (under the same allow-list) but not returned.
   */
  key?: string;
  /**
   * The most bytes the file may make the reader materialise: zip entries
   * read (inflated or stored) plus 4 bytes for each tensor value decoded
   * (views, stride-0 expansions included, are copied). Default: 16 times
   * the file's size, at least 1 MiB, which honest `torch.save` files stay
   * well inside; raise it for a trusted file that needs more (a heavily
   * compressed archive, large expanded views).
   */
  maxBytes?: number;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

function fail(name: string, msg: string, cause?: unknown): never {
  const err = new CheckpointError(`Cannot read PyTorch file ${name}: ${msg}`);
  if (cause !== undefined) err.cause = cause;
  throw err;
}

type Source = (ref: StorageRef) => Uint8Array;

interface Decoded {
  key: string;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Reads a storage persistent id: `('storage', cls, key, location, numel[, view])`. */
function storageRef(
  pid: unknown,
  legacy: boolean,
  seen: Map<string, StorageRef>,
): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== "storage") {
    const what = Array.isArray(pid) ? describe(pid[0]) : typeof pid;
    throw new PickleError(
      what === '"module"'
        ? "the file holds a whole pickled nn.Module (its source code and objects), not a state dict: save model.state_dict() instead"
        : `the pickle names a persistent object of type ${what}; only storages are read`,
    );
  }
  const [, cls, key, location, numel, view] = pid;
  if (!(cls instanceof PyGlobal) || !cls.storage) {
    throw new PickleError(
      `a storage has class ${describe(cls)}, not a torch.*Storage class`,
    );
  }
  if (typeof key !== "string" || !/^[\w.-]{1,256}$/.test(key)) {
    throw new PickleError(`a storage has key ${describe(key)}`);
  }
  if (!Number.isSafeInteger(numel) || (numel as number) < 0) {
    throw new PickleError(
      `storage "${key}" declares ${describe(numel)} elements`,
    );
  }
  const prior = seen.get(key);
  if (prior && prior.kind !== cls.storage) {
    throw new PickleError(
      `storage "${key}" is named as both ${prior.kind.name} and ${cls.storage.name}`,
    );
  }
  const base: StorageRef = prior ?? {
    key,
    kind: cls.storage,
    numel: numel as number,
    location: typeof location === "string" ? clip(location) : "?",
  };
  seen.set(key, base);
  if (legacy && view !== null && view !== undefined) {
    // (view_key, offset, view_size): a slice of storage `key`
    if (
      !Array.isArray(view) || view.length !== 3 ||
      !view.slice(1).every((v) => Number.isSafeInteger(v) && v >= 0)
    ) {
      throw new PickleError(`storage "${key}" has a malformed view`);
    }
    return { ...base, view: { offset: view[1], numel: view[2] } };
  }
  return base;
}

/** Writes element `i` of the output from byte `p` of the storage. */
type Put = (i: number, p: number) => void;

function decodeTensor(
  name: string,
  key: string,
  spec: TensorSpec,
  storageBytes: Uint8Array,
  bigEndian: boolean,
  allowance: Allowance,
): Decoded {
  const { storage, shape, stride } = spec;
  const { kind } = storage;
  const size = kind.itemSize;
  // at most 64 dims (the unpickler's limit)
  const what = `tensor ${preview(key)} (${kind.dtype}, shape ${
    fmtShape(shape)
  })`;
  const holds = Math.floor(storageBytes.length / size);
  if (holds < storage.numel) {
    fail(
      name,
      `storage "${storage.key}" (${kind.name}) declares ${storage.numel} elements (${
        storage.numel * size
      } bytes) but holds only ${storageBytes.length} bytes: the file is truncated or corrupt`,
    );
  }
  let base = 0;
  let available = storage.numel;
  if (storage.view) {
    if (storage.view.offset + storage.view.numel > storage.numel) {
      fail(
        name,
        `a view of storage "${storage.key}" (elements ${storage.view.offset} to ${
          storage.view.offset + storage.view.numel
        }) lies outside its ${storage.numel} elements`,
      );
    }
    base = storage.view.offset;
    available = storage.view.numel;
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(numel) || numel > 2 ** 31 - 1) {
    fail(name, `${what} has too many elements`);
  }
  const isFloat = kind.dtype === "float32" || kind.dtype === "float64" ||
    kind.dtype === "float16" || kind.dtype === "bfloat16";
  if (numel === 0) {
    return {
      key,
      shape: [...shape],
      data: isFloat ? new Float32Array(0) : new Int32Array(0),
    };
  }
  let last = spec.offset;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
  if (last >= available) {
    fail(
      name,
      `${what} with storage offset ${spec.offset} and stride ${
        fmtShape(stride)
      } reads element ${last} of storage "${storage.key}", which holds only ${available} (${kind.name}): the storage is shorter than its tensor`,
    );
  }
  // the copy is charged before it is made: views are copied, so a stride-0
  // view costs its full size
  allowance.take(
    4 * numel,
    numel > available
      ? `${what} expands ${available} storage elements to ${numel} values through stride-0 dims; the copy`
      : what,
  );
  const out = isFloat ? new Float32Array(numel) : new Int32Array(numel);
  const little = !bigEndian;
  const start = (base + spec.offset) * size;
  // size-1 dims move nothing; without them every dim has 2 or more
  // elements, so the walk below does O(numel) steps
  const dims = shape.flatMap((n, d) => n === 1 ? [] : [[n, stride[d]]]);
  let contiguous = true;
  for (let d = dims.length - 1, s = 1; d >= 0; s *= dims[d][0], d--) {
    if (dims[d][1] !== s) contiguous = false;
  }
  if (
    contiguous && little === LITTLE_ENDIAN &&
    (kind.dtype === "float32" || kind.dtype === "int32")
  ) {
    new Uint8Array(out.buffer).set(
      storageBytes.subarray(start, start + 4 * numel),
    );
    return { key, shape: [...shape], data: out };
  }
  const src = new DataView(
    storageBytes.buffer,
    storageBytes.byteOffset,
    storageBytes.byteLength,
  );
  const put = putFor(name, what, kind.dtype, src, little, out);
  // an odometer over the dims, in row-major order
  const counter = new Array<number>(dims.length).fill(0);
  let at = start;
  for (let i = 0; i < numel; i++) {
    put(i, at);
    for (let d = dims.length - 1; d >= 0; d--) {
      if (++counter[d] < dims[d][0]) {
        at += dims[d][1] * size;
        break;
      }
      at -= (dims[d][0] - 1) * dims[d][1] * size;
      counter[d] = 0;
    }
  }
  return { key, shape: [...shape], data: out };
}

/** How one storage dtype is read into the float32 or int32 output. */
function putFor(
  name: string,
  what: string,
  dtype: string,
  src: DataView,
  little: boolean,
  out: Float32Array | Int32Array,
): Put {
  // float32 and bfloat16 are written as bits, so NaN payloads survive
  const bits = new Uint32Array(out.buffer);
  switch (dtype) {
    case "float32":
      return (i, p) => bits[i] = src.getUint32(p, little);
    case "float64":
      return (i, p) => out[i] = src.getFloat64(p, little);
    case "float16": {
      const table = halfToFloatTable();
      return (i, p) => out[i] = table[src.getUint16(p, little)];
    }
    case "bfloat16":
      return (i, p) => bits[i] = src.getUint16(p, little) << 16;
    case "int64":
      return (i, p) => {
        const v = src.getBigInt64(p, little);
        if (v < -2147483648n || v > 2147483647n) {
          fail(
            name,
            `${what} holds ${v} at flat index ${i}, outside the int32 range kdeno reads integers into`,
          );
        }
        out[i] = Number(v);
      };
    case "int32":
      return (i, p) => out[i] = src.getInt32(p, little);
    case "int16":
      return (i, p) => out[i] = src.getInt16(p, little);
    case "int8":
      return (i, p) => out[i] = src.getInt8(p);
    case "uint8":
      return (i, p) => out[i] = src.getUint8(p);
    case "bool":
      return (i, p) => out[i] = src.getUint8(p) ? 1 : 0;
    default:
      fail(name, `${what} has dtype ${dtype}, which kdeno does not read`);
  }
}

/** The first keys of a dict, for a message. */
function keyList(dict: PyDict): string {
  const keys: string[] = [];
  for (const k of dict.items.keys()) {
    if (keys.length === 8) {
      keys.push(`... (${dict.items.size} in all)`);
      break;
    }
    keys.push(typeof k === "string" ? clip(k) : describe(k));
  }
  return keys.join(", ");
}

/** Picks the state dict out of the unpickled value and decodes its tensors. */
function collect(
  name: string,
  value: unknown,
  options: LoadTorchOptions,
  source: Source,
  bigEndian: boolean,
  allowance: Allowance,
): Decoded[] {
  let dict = value;
  if (options.key !== undefined) {
    if (!(dict instanceof PyDict) || !dict.items.has(options.key)) {
      fail(
        name,
        `the file has no top-level key ${JSON.stringify(options.key)}${
          dict instanceof PyDict ? ` (its keys: ${keyList(dict)})` : ""
        }`,
      );
    }
    dict = dict.items.get(options.key);
  }
  const where = options.key === undefined
    ? "the file"
    : `key ${JSON.stringify(options.key)}`;
  if (!(dict instanceof PyDict)) {
    fail(
      name,
      `${where} holds ${
        dict instanceof TensorSpec ? "a single tensor" : "something"
      } other than a state dict (a dict of tensors)`,
    );
  }
  const out: Decoded[] = [];
  const cache = new Map<string, Uint8Array>();
  for (const [k, v] of dict.items) {
    if (typeof k !== "string") {
      fail(name, `${where} has the key ${describe(k)}, not a string`);
    }
    if (!(v instanceof TensorSpec)) {
      const kind = v instanceof PyDict
        ? "a dict"
        : Array.isArray(v)
        ? "a sequence"
        : v === null
        ? "None"
        : typeof v;
      fail(
        name,
        `entry ${preview(k)} of ${where} is ${kind}, not a tensor${
          v instanceof PyDict && options.key === undefined
            ? `: for a checkpoint that nests its state dict, pass { key: ${
              preview(k)
            } }`
            : ""
        }`,
      );
    }
    let bytes = cache.get(v.storage.key);
    if (!bytes) {
      bytes = source(v.storage);
      cache.set(v.storage.key, bytes);
    }
    out.push(decodeTensor(name, k, v, bytes, bigEndian, allowance));
  }
  return out;
}

function parseZip(
  bytes: Uint8Array,
  name: string,
  options: LoadTorchOptions,
  allowance: Allowance,
): Decoded[] {
  const zip = new ZipReader(bytes);
  // every entry is charged at its declared size before it is read (and
  // the reader inflates no further than that)
  const read = (entry: ZipEntry) => {
    allowance.take(entry.size, `zip entry ${preview(entry.name)}`);
    return zip.read(entry);
  };
  const pkl = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkl.length !== 1) {
    fail(
      name,
      pkl.length
        ? `the archive has ${pkl.length} data.pkl files`
        : `the zip archive has no <archive>/data.pkl (entries: ${
          zip.entries.slice(0, 5).map((e) => clip(e.name)).join(", ")
        }${
          zip.entries.length > 5 ? ", ..." : ""
        }); it is not a torch.save file`,
    );
  }
  const prefix = pkl[0].name.slice(0, -"data.pkl".length);
  const order = zip.get(`${prefix}byteorder`);
  let bigEndian = false;
  if (order) {
    const text = new TextDecoder().decode(read(order)).trim();
    if (text !== "little" && text !== "big") {
      fail(name, `the byteorder entry says ${preview(text)}`);
    }
    bigEndian = text === "big";
  }
  const seen = new Map<string, StorageRef>();
  const { value } = unpickle(
    read(pkl[0]),
    0,
    allowance,
    (pid) => storageRef(pid, false, seen),
  );
  return collect(
    name,
    value,
    options,
    (ref) => {
      const entry = zip.get(`${prefix}data/${ref.key}`);
      if (!entry) {
        fail(
          name,
          `storage "${ref.key}" has no entry ${
            clip(prefix)
          }data/${ref.key} in the archive`,
        );
      }
      return read(entry);
    },
    bigEndian,
    allowance,
  );
}

function parseLegacy(
  bytes: Uint8Array,
  name: string,
  options: LoadTorchOptions,
  allowance: Allowance,
): Decoded[] {
  const magic = unpickle(bytes, 0, allowance);
  if (magic.value !== LEGACY_MAGIC) {
    fail(
      name,
      "the file is a pickle but not a PyTorch checkpoint (no torch.save magic number); kdeno does not read arbitrary pickles",
    );
  }
  const protocol = unpickle(bytes, magic.end, allowance);
  if (protocol.value !== LEGACY_PROTOCOL) {
    fail(
      name,
      `the legacy format's protocol version is ${
        describe(protocol.value)
      }, not ${LEGACY_PROTOCOL}`,
    );
  }
  const sys = unpickle(bytes, protocol.end, allowance);
  let bigEndian = false;
  if (sys.value instanceof PyDict) {
    const little = sys.value.items.get("little_endian");
    if (little === false) bigEndian = true;
  }
  const seen = new Map<string, StorageRef>();
  const main = unpickle(
    bytes,
    sys.end,
    allowance,
    (pid) => storageRef(pid, true, seen),
  );
  const keysPickle = unpickle(bytes, main.end, allowance);
  const keys = keysPickle.value;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) {
    fail(name, "the legacy storage key list is not a list of strings");
  }
  // the storages follow in key order: an int64 element count, then data
  const data = new Map<string, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = keysPickle.end;
  for (const key of keys as string[]) {
    const ref = seen.get(key);
    if (!ref) fail(name, `storage ${preview(key)} is listed but never used`);
    if (at + 8 > bytes.length) {
      fail(
        name,
        `the file ends before storage "${key}" (at byte ${at} of ${bytes.length}): it is truncated`,
      );
    }
    const count = view.getBigInt64(at, !bigEndian);
    const n = Number(count) * ref.kind.itemSize;
    if (count < 0n || at + 8 + n > bytes.length) {
      fail(
        name,
        `storage "${key}" (${count} × ${ref.kind.itemSize} bytes at byte ${
          at + 8
        }) runs past the end of the file (${bytes.length} bytes): it is truncated`,
      );
    }
    data.set(key, bytes.subarray(at + 8, at + 8 + n));
    at += 8 + n;
  }
  return collect(
    name,
    main.value,
    options,
    (ref) => {
      const d = data.get(ref.key);
      if (!d) fail(name, `storage "${ref.key}" is missing from the file`);
      return d;
    },
    bigEndian,
    allowance,
  );
}

/**
 * Reads a PyTorch state dict already in memory (the bytes of a
 * `torch.save` file). Nothing in the file is executed.
 *
 * Limits, for untrusted files: the zip entries read and the tensors decoded
 * (4 bytes a value, views copied) may total at most `maxBytes` (default 16
 * times the file's size, at least 1 MiB); a DEFLATE entry inflates no
 * further than its declared size; a tensor has at most 64 dims and 2^31 - 1
 * values; the pickle's work is linear in its size (text integers of at
 * most 4300 digits).
 *
 * @param bytes The whole file.
 * @param name The file's path, for messages.
 * @param options `device` for the tensors; `key` to pick a nested state
 * dict; `maxBytes` to let a trusted file materialise more.
 * @returns The tensors by state-dict key, in the file's order.
 * @throws CheckpointError naming the file and what is wrong: a global off
 * the allow-list, a truncated archive, a storage shorter than its tensor,
 * an int64 value outside int32, more bytes than the file may materialise.
 */
export function parseTorch(
  bytes: Uint8Array,
  name: string,
  options: LoadTorchOptions = {},
): Record<string, Tensor> {
  const allowance = new Allowance(
    bytes.length,
    options.maxBytes,
    (msg) => fail(name, msg),
  );
  let decoded: Decoded[];
  try {
    const kind = sniff(bytes);
    if (kind === "zip") {
      decoded = parseZip(bytes, name, options, allowance);
    } else if (kind === "pickle") {
      decoded = parseLegacy(bytes, name, options, allowance);
    } else if (kind === "tar") {
      fail(
        name,
        "it is in the tar layout of PyTorch before 0.4, which kdeno does not read: load and re-save it with a current PyTorch",
      );
    } else if (kind === "safetensors") {
      fail(
        name,
        "it is a safetensors file, not a torch.save file: read it with io.loadSafetensors or io.loadWeights",
      );
    } else {
      fail(
        name,
        kind === "empty"
          ? "the file is empty (0 bytes long)"
          : `it is neither a torch.save zip archive nor a legacy torch.save pickle (it ${
            describeStart(bytes)
          })`,
      );
    }
  } catch (e) {
    if (e instanceof PickleError || e instanceof ZipFormatError) {
      fail(name, e.message, e);
    }
    throw e;
  }
  // every tensor decoded before any is created: a bad file creates none
  return Object.fromEntries(
    decoded.map((d) => [
      d.key,
      tensor(d.data, { shape: d.shape, device: options.device }),
    ]),
  );
}

/**
 * Reads a PyTorch `.pt`/`.pth` file holding a state dict, as
 * `torch.load(path, weights_only=True)` would, without PyTorch and without
 * running any of the file's code. Both the zip layout (PyTorch ≥ 1.6) and
 * the legacy stream layout are read.
 *
 * Floating-point tensors (float32, float64, float16, bfloat16) become
 * float32; integer and boolean ones become int32 (an int64 value outside
 * int32 is an error). Non-contiguous and offset views are gathered.
 *
 * Untrusted files get bounded work and memory: the zip entries read and
 * the tensors decoded (4 bytes a value; views, stride-0 ones included, are
 * copied) may total at most `maxBytes`, by default 16 times the file's
 * size and at least 1 MiB; a DEFLATE entry inflates no further than its
 * declared size; a tensor has at most 64 dims and 2^31 - 1 values; the
 * pickle's work is linear in its size. Anything else is refused with a
 * `CheckpointError` naming the file.
 *
 * @param path The file.
 * @param options `device` for the tensors; `key` to pick a nested state dict
 * (e.g. `"model"` in `{"model": ..., "epoch": 3}`); `maxBytes` to let a
 * trusted file materialise more than 16 times its size.
 * @returns The tensors by state-dict key, in the file's order.
 * @throws CheckpointError naming the file and what is wrong.
 *
 * @example Load torchvision weights into a kdeno model
 * ```ts ignore
 * import { io, models } from "@kdeno/kdeno";
 *
 * const state = await io.loadTorch("resnet18-f37072fd.pth");
 * const net = models.resnet18({ weights: state });
 * ```
 */
export async function loadTorch(
  path: string | URL,
  options: LoadTorchOptions = {},
): Promise<Record<string, Tensor>> {
  const { bytes, name } = await readFileOrThrow(path, "PyTorch file");
  return parseTorch(bytes, name, options);
}

/**
 * Reads a PyTorch state dict file synchronously; see `loadTorch`.
 *
 * @param path The file.
 * @param options `device`, `key` and `maxBytes`, as for `loadTorch`.
 * @returns The tensors by state-dict key.
 * @throws CheckpointError naming the file and what is wrong.
 */
export function loadTorchSync(
  path: string | URL,
  options: LoadTorchOptions = {},
): Record<string, Tensor> {
  const { bytes, name } = readFileOrThrowSync(path, "PyTorch file");
  return parseTorch(bytes, name, options);
}
