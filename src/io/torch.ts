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
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import { CheckpointError, fmtShape } from "../errors.ts";
import { tensor } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import { halfToFloatTable, LITTLE_ENDIAN } from "./_dtype.ts";
import {
  PickleError,
  PyDict,
  PyGlobal,
  type StorageRef,
  TensorSpec,
  unpickle,
} from "./_pickle.ts";
import { ZipFormatError, ZipReader } from "./_zip.ts";

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
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** A view larger than its storage (stride 0) is copied up to this size. */
const MAX_EXPANSION = 2 ** 24;

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
    const what = Array.isArray(pid) ? JSON.stringify(pid[0]) : typeof pid;
    throw new PickleError(
      what === '"module"'
        ? "the file holds a whole pickled nn.Module (its source code and objects), not a state dict: save model.state_dict() instead"
        : `the pickle names a persistent object of type ${what}; only storages are read`,
    );
  }
  const [, cls, key, location, numel, view] = pid;
  if (!(cls instanceof PyGlobal) || !cls.storage) {
    throw new PickleError(
      `a storage has class ${String(cls)}, not a torch.*Storage class`,
    );
  }
  if (typeof key !== "string" || !/^[\w.-]+$/.test(key)) {
    throw new PickleError(`a storage has key ${JSON.stringify(key)}`);
  }
  if (!Number.isSafeInteger(numel) || (numel as number) < 0) {
    throw new PickleError(
      `storage "${key}" declares ${JSON.stringify(numel)} elements`,
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
    location: String(location),
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

function decodeTensor(
  name: string,
  key: string,
  spec: TensorSpec,
  storageBytes: Uint8Array,
  bigEndian: boolean,
): Decoded {
  const { storage, shape, stride } = spec;
  const { kind } = storage;
  const size = kind.itemSize;
  const what = `tensor "${key}" (${kind.dtype}, shape ${fmtShape(shape)})`;
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
  const out = kind.dtype === "float32" || kind.dtype === "float64" ||
      kind.dtype === "float16" || kind.dtype === "bfloat16"
    ? new Float32Array(numel)
    : new Int32Array(numel);
  if (numel === 0) return { key, shape, data: out };
  let last = spec.offset;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
  if (numel > available && numel > MAX_EXPANSION) {
    fail(
      name,
      `${what} expands ${available} storage elements to ${numel} values through stride-0 dims; kdeno copies views and refuses expansions beyond ${MAX_EXPANSION} values`,
    );
  }
  if (last >= available) {
    fail(
      name,
      `${what} with storage offset ${spec.offset} and stride ${
        fmtShape(stride)
      } reads element ${last} of storage "${storage.key}", which holds only ${available} (${kind.name}): the storage is shorter than its tensor`,
    );
  }
  // copy the spanned elements into an aligned buffer, fixing byte order
  const first = base + spec.offset;
  const span = last - spec.offset + 1;
  const raw = storageBytes.slice(first * size, (first + span) * size);
  if (bigEndian !== !LITTLE_ENDIAN && size > 1) {
    for (let i = 0; i < raw.length; i += size) {
      raw.subarray(i, i + size).reverse();
    }
  }
  // source index of each output element, row-major
  const contiguous = (() => {
    let s = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (shape[d] !== 1 && stride[d] !== s) return false;
      s *= shape[d];
    }
    return true;
  })();
  let index: (i: number) => number;
  if (contiguous) {
    index = (i) => i;
  } else {
    const idx = new Float64Array(numel);
    const counter = new Array<number>(shape.length).fill(0);
    let at = 0;
    for (let i = 0; i < numel; i++) {
      idx[i] = at;
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++counter[d] < shape[d]) {
          at += stride[d];
          break;
        }
        at -= (shape[d] - 1) * stride[d];
        counter[d] = 0;
      }
    }
    index = (i) => idx[i];
  }
  const buf = raw.buffer;
  switch (kind.dtype) {
    case "float32": {
      const src = new Float32Array(buf);
      if (contiguous) out.set(src.subarray(0, numel));
      else for (let i = 0; i < numel; i++) out[i] = src[index(i)];
      break;
    }
    case "float64": {
      const src = new Float64Array(buf);
      for (let i = 0; i < numel; i++) out[i] = src[index(i)];
      break;
    }
    case "float16": {
      const src = new Uint16Array(buf);
      const table = halfToFloatTable();
      for (let i = 0; i < numel; i++) out[i] = table[src[index(i)]];
      break;
    }
    case "bfloat16": {
      const src = new Uint16Array(buf);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < numel; i++) bits[i] = src[index(i)] << 16;
      break;
    }
    case "int64": {
      const src = new BigInt64Array(buf);
      for (let i = 0; i < numel; i++) {
        const v = src[index(i)];
        if (v < -2147483648n || v > 2147483647n) {
          fail(
            name,
            `${what} holds ${v} at flat index ${i}, outside the int32 range kdeno reads integers into`,
          );
        }
        out[i] = Number(v);
      }
      break;
    }
    case "int32": {
      const src = new Int32Array(buf);
      if (contiguous) out.set(src.subarray(0, numel));
      else for (let i = 0; i < numel; i++) out[i] = src[index(i)];
      break;
    }
    case "int16": {
      const src = new Int16Array(buf);
      for (let i = 0; i < numel; i++) out[i] = src[index(i)];
      break;
    }
    case "int8": {
      const src = new Int8Array(buf);
      for (let i = 0; i < numel; i++) out[i] = src[index(i)];
      break;
    }
    case "uint8": {
      const src = new Uint8Array(buf);
      for (let i = 0; i < numel; i++) out[i] = src[index(i)];
      break;
    }
    case "bool": {
      const src = new Uint8Array(buf);
      for (let i = 0; i < numel; i++) out[i] = src[index(i)] ? 1 : 0;
      break;
    }
    default:
      fail(name, `${what} has dtype ${kind.dtype}, which kdeno does not read`);
  }
  return { key, shape: [...shape], data: out };
}

/** Picks the state dict out of the unpickled value and decodes its tensors. */
function collect(
  name: string,
  value: unknown,
  options: LoadTorchOptions,
  source: Source,
  bigEndian: boolean,
): Decoded[] {
  let dict = value;
  if (options.key !== undefined) {
    if (!(dict instanceof PyDict) || !dict.items.has(options.key)) {
      fail(
        name,
        `the file has no top-level key ${JSON.stringify(options.key)}${
          dict instanceof PyDict
            ? ` (its keys: ${[...dict.items.keys()].join(", ")})`
            : ""
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
      fail(name, `${where} has the key ${String(k)}, not a string`);
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
        `entry "${k}" of ${where} is ${kind}, not a tensor${
          v instanceof PyDict && options.key === undefined
            ? `: for a checkpoint that nests its state dict, pass { key: ${
              JSON.stringify(k)
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
    out.push(decodeTensor(name, k, v, bytes, bigEndian));
  }
  return out;
}

function parseZip(
  bytes: Uint8Array,
  name: string,
  options: LoadTorchOptions,
): Decoded[] {
  const zip = new ZipReader(bytes);
  const pkl = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkl.length !== 1) {
    fail(
      name,
      pkl.length
        ? `the archive has ${pkl.length} data.pkl files`
        : `the zip archive has no <archive>/data.pkl (entries: ${
          zip.entries.slice(0, 5).map((e) => e.name).join(", ")
        }${
          zip.entries.length > 5 ? ", ..." : ""
        }); it is not a torch.save file`,
    );
  }
  const prefix = pkl[0].name.slice(0, -"data.pkl".length);
  const order = zip.get(`${prefix}byteorder`);
  let bigEndian = false;
  if (order) {
    const text = new TextDecoder().decode(zip.read(order)).trim();
    if (text !== "little" && text !== "big") {
      fail(name, `the byteorder entry says ${JSON.stringify(text)}`);
    }
    bigEndian = text === "big";
  }
  const seen = new Map<string, StorageRef>();
  const { value } = unpickle(
    zip.read(pkl[0]),
    0,
    (pid) => storageRef(pid, false, seen),
  );
  return collect(name, value, options, (ref) => {
    const entry = zip.get(`${prefix}data/${ref.key}`);
    if (!entry) {
      fail(
        name,
        `storage "${ref.key}" has no entry ${prefix}data/${ref.key} in the archive`,
      );
    }
    return zip.read(entry);
  }, bigEndian);
}

function parseLegacy(
  bytes: Uint8Array,
  name: string,
  options: LoadTorchOptions,
): Decoded[] {
  const magic = unpickle(bytes, 0);
  if (magic.value !== LEGACY_MAGIC) {
    fail(
      name,
      "the file is a pickle but not a PyTorch checkpoint (no torch.save magic number); kdeno does not read arbitrary pickles",
    );
  }
  const protocol = unpickle(bytes, magic.end);
  if (protocol.value !== LEGACY_PROTOCOL) {
    fail(
      name,
      `the legacy format's protocol version is ${
        String(protocol.value)
      }, not ${LEGACY_PROTOCOL}`,
    );
  }
  const sys = unpickle(bytes, protocol.end);
  let bigEndian = false;
  if (sys.value instanceof PyDict) {
    const little = sys.value.items.get("little_endian");
    if (little === false) bigEndian = true;
  }
  const seen = new Map<string, StorageRef>();
  const main = unpickle(
    bytes,
    sys.end,
    (pid) => storageRef(pid, true, seen),
  );
  const keysPickle = unpickle(bytes, main.end);
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
    if (!ref) fail(name, `storage "${key}" is listed but never used`);
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
  return collect(name, main.value, options, (ref) => {
    const d = data.get(ref.key);
    if (!d) fail(name, `storage "${ref.key}" is missing from the file`);
    return d;
  }, bigEndian);
}

/**
 * Reads a PyTorch state dict already in memory (the bytes of a
 * `torch.save` file). Nothing in the file is executed.
 *
 * @param bytes The whole file.
 * @param name The file's path, for messages.
 * @param options `device` for the tensors; `key` to pick a nested state dict.
 * @returns The tensors by state-dict key, in the file's order.
 * @throws CheckpointError naming the file and what is wrong: a global off
 * the allow-list, a truncated archive, a storage shorter than its tensor,
 * an int64 value outside int32.
 */
export function parseTorch(
  bytes: Uint8Array,
  name: string,
  options: LoadTorchOptions = {},
): Record<string, Tensor> {
  let decoded: Decoded[];
  try {
    if (
      bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b &&
      (bytes[2] === 3 || bytes[2] === 5)
    ) {
      decoded = parseZip(bytes, name, options);
    } else if (bytes.length >= 2 && bytes[0] === 0x80) {
      decoded = parseLegacy(bytes, name, options);
    } else if (
      bytes.length >= 262 &&
      new TextDecoder().decode(bytes.subarray(257, 262)) === "ustar"
    ) {
      fail(
        name,
        "it is in the tar layout of PyTorch before 0.4, which kdeno does not read: load and re-save it with a current PyTorch",
      );
    } else {
      fail(
        name,
        bytes.length < 4
          ? `the file is ${bytes.length} bytes long`
          : "it is neither a torch.save zip archive nor a legacy torch.save pickle",
      );
    }
  } catch (e) {
    if (e instanceof PickleError || e instanceof ZipFormatError) {
      fail(name, e.message, e);
    }
    throw e;
  }
  // every tensor decoded before any is created: a bad file creates none
  const out: Record<string, Tensor> = {};
  for (const d of decoded) {
    out[d.key] = tensor(d.data, { shape: d.shape, device: options.device });
  }
  return out;
}

async function readAll(path: string | URL, name: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    fail(name, (e as Error).message, e);
  }
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
 * @param path The file.
 * @param options `device` for the tensors; `key` to pick a nested state dict
 * (e.g. `"model"` in `{"model": ..., "epoch": 3}`).
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
  const name = path instanceof URL ? path.pathname : path;
  return parseTorch(await readAll(path, name), name, options);
}

/**
 * Reads a PyTorch state dict file synchronously; see `loadTorch`.
 *
 * @param path The file.
 * @param options `device` for the tensors; `key` to pick a nested state dict.
 * @returns The tensors by state-dict key.
 * @throws CheckpointError naming the file and what is wrong.
 */
export function loadTorchSync(
  path: string | URL,
  options: LoadTorchOptions = {},
): Record<string, Tensor> {
  const name = path instanceof URL ? path.pathname : path;
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (e) {
    fail(name, (e as Error).message, e);
  }
  return parseTorch(bytes, name, options);
}
