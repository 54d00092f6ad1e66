/**
 * A restricted unpickler: a pure interpreter for the pickle opcodes that
 * PyTorch state dicts use (protocols 0 to 5), with an allow-list of globals
 * instead of Python's import machinery. Nothing in a pickle is ever run: a
 * `GLOBAL` outside the allow-list is refused as soon as it is read, and the
 * allowed callables (OrderedDict, the tensor rebuild functions) are
 * re-implemented here to return plain descriptions of what they would build.
 *
 * Work and memory are charged to the file's allowance (`_dtype.ts`), so a
 * pickle cannot make the reader allocate more than its file may
 * materialise: each opcode is charged `OPCODE_BYTES` (more than the value
 * the costliest opcode makes takes in V8; without this, 2 bytes of pickle
 * could make a dict of hundreds), and the calls that copy a container the
 * pickle may pass any number of times through its memo (`OrderedDict(items)`,
 * a tensor's size and stride) are charged `ELEMENT_BYTES` an element, which
 * keeps their work linear too. Text integers are limited to 4300 digits, as
 * Python's are. Messages show at most a short prefix of any value the
 * pickle supplies.
 *
 * Refusals are `PickleError`s; the PyTorch reader wraps them in a
 * `CheckpointError` naming the file.
 *
 * @module
 */

import { type Allowance, clip, MAX_DIMS, preview } from "./_dtype.ts";

/** What each opcode is charged to the allowance, in bytes. */
export const OPCODE_BYTES = 64;
/** What each element a call copies is charged, in bytes. */
export const ELEMENT_BYTES = 16;

/** A refused or malformed pickle. */
export class PickleError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "PickleError";
  }
}

/** A PyTorch storage element type, as a `torch.*Storage` class names it. */
export interface StorageKind {
  /** The storage class, e.g. `"FloatStorage"`. */
  name: string;
  /** PyTorch's dtype name, e.g. `"float32"`. */
  dtype: string;
  /** Bytes per element. */
  itemSize: number;
}

const STORAGE_KINDS: StorageKind[] = [
  ["FloatStorage", "float32", 4],
  ["DoubleStorage", "float64", 8],
  ["HalfStorage", "float16", 2],
  ["BFloat16Storage", "bfloat16", 2],
  ["LongStorage", "int64", 8],
  ["IntStorage", "int32", 4],
  ["ShortStorage", "int16", 2],
  ["CharStorage", "int8", 1],
  ["ByteStorage", "uint8", 1],
  ["BoolStorage", "bool", 1],
].map(([name, dtype, itemSize]) => ({
  name: name as string,
  dtype: dtype as string,
  itemSize: itemSize as number,
}));

/** The dtypes a pickle may name as `torch.<dtype>` constants. */
const DTYPE_NAMES = [
  "float32",
  "float",
  "float64",
  "double",
  "float16",
  "half",
  "bfloat16",
  "int64",
  "long",
  "int32",
  "int",
  "int16",
  "short",
  "int8",
  "uint8",
  "bool",
];

/** A reference to an allowed global (a storage class, a dtype, a function). */
export class PyGlobal {
  /**
   * Creates the reference.
   *
   * @param module The module, e.g. `"torch._utils"`.
   * @param name The attribute, e.g. `"_rebuild_tensor_v2"`.
   * @param storage The storage kind, for `torch.*Storage` classes.
   */
  constructor(
    readonly module: string,
    readonly name: string,
    readonly storage?: StorageKind,
  ) {}
  /** @returns `module.name`. */
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python dict or OrderedDict: insertion-ordered keys. */
export class PyDict {
  #items: Map<unknown, unknown> | undefined;
  /** The items (a Map made on first use: an empty dict stays small). */
  get items(): Map<unknown, unknown> {
    return this.#items ??= new Map();
  }
}

/** Python bytes: only their length is kept, as state dicts never use them. */
export class PyBytes {
  /**
   * Creates the stand-in.
   *
   * @param length The number of bytes.
   */
  constructor(readonly length: number) {}
}

/** A storage named by a persistent id, resolved by the caller. */
export interface StorageRef {
  /** The storage's key (its file name in a zip checkpoint). */
  key: string;
  /** Its element type. */
  kind: StorageKind;
  /** Its declared element count. */
  numel: number;
  /** The device it was saved from (informational). */
  location: string;
  /** For legacy views of a storage: element offset and count. */
  view?: { offset: number; numel: number };
}

/** What `torch._utils._rebuild_tensor_v2` would build: a strided view. */
export class TensorSpec {
  /**
   * Creates the description.
   *
   * @param storage The storage it views.
   * @param offset Element offset into the storage.
   * @param shape Sizes.
   * @param stride Element strides.
   */
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** A tuple, kept apart from lists only by type. */
class PyTuple extends Array<unknown> {}

/** Resolves a persistent id (the tuple a pickle's `BINPERSID` names). */
export type PersistentLoad = (pid: unknown) => unknown;

function isInt(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x);
}

/**
 * A short description of an unpickled value for messages: its kind, or a
 * bounded preview of a scalar.
 *
 * @param x The value.
 * @returns The description.
 */
export function describe(x: unknown): string {
  if (x === null) return "None";
  if (x instanceof PyGlobal) return clip(x.toString(), 80);
  if (x instanceof TensorSpec) return "a tensor";
  if (x instanceof PyDict) return "a dict";
  if (Array.isArray(x)) return `a ${x instanceof PyTuple ? "tuple" : "list"}`;
  if (x instanceof PyBytes) return "bytes";
  if (typeof x === "object") return "an object";
  return preview(x, 40);
}

function tupleArg(
  fn: string,
  args: unknown,
  min: number,
  max: number,
): unknown[] {
  if (!Array.isArray(args) || args.length < min || args.length > max) {
    throw new PickleError(
      `${fn} is called with ${describe(args)} of ${
        Array.isArray(args) ? args.length : "?"
      } arguments; it takes ${min === max ? min : `${min} to ${max}`}`,
    );
  }
  return args;
}

/** Charges `n` elements a call copies to the file's allowance. */
type Charge = (n: number, what: string) => void;

function intList(
  fn: string,
  what: string,
  x: unknown,
  charge: Charge,
): number[] {
  if (!Array.isArray(x)) {
    throw new PickleError(
      `${fn} gets ${what} ${describe(x)}, not a tuple of non-negative ints`,
    );
  }
  if (x.length > MAX_DIMS) {
    throw new PickleError(
      `${fn} gets a ${what} of ${x.length} dims; kdeno reads at most ${MAX_DIMS}`,
    );
  }
  charge(x.length, fn);
  if (!x.every((v) => isInt(v) && v >= 0)) {
    throw new PickleError(
      `${fn} gets ${what} ${preview(x)}, not a tuple of non-negative ints`,
    );
  }
  return [...x] as number[];
}

function rebuildTensor(
  fn: string,
  args: unknown[],
  charge: Charge,
): TensorSpec {
  const [storage, offset, size, stride] = args;
  if (
    storage === null || typeof storage !== "object" ||
    !("kind" in storage) || !("key" in storage)
  ) {
    throw new PickleError(
      `${fn} gets ${describe(storage)} where a storage belongs`,
    );
  }
  if (!isInt(offset) || offset < 0) {
    throw new PickleError(
      `${fn} gets storage offset ${describe(offset)}, not an int >= 0`,
    );
  }
  const shape = intList(fn, "size", size, charge);
  const strides = intList(fn, "stride", stride, charge);
  if (shape.length !== strides.length) {
    throw new PickleError(
      `${fn} gets size ${preview(shape)} and stride ${
        preview(strides)
      } of different lengths`,
    );
  }
  return new TensorSpec(storage as StorageRef, offset, shape, strides);
}

type Callable = (args: unknown, charge: Charge) => unknown;

const REBUILD_V2 = "torch._utils._rebuild_tensor_v2";

/** The callables a pickle may `REDUCE`, re-implemented without side effects. */
const CALLABLES: Record<string, Callable> = {
  "collections.OrderedDict": (args, charge) => {
    const fn = "collections.OrderedDict";
    const [items] = tupleArg(fn, args, 0, 1);
    const d = new PyDict();
    if (items === undefined) return d;
    if (items instanceof PyDict) {
      charge(items.items.size, fn);
      for (const [k, v] of items.items) d.items.set(k, v);
      return d;
    }
    if (!Array.isArray(items)) {
      throw new PickleError(`${fn} is called with ${describe(items)}`);
    }
    charge(items.length, fn);
    for (const pair of items) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new PickleError(
          "collections.OrderedDict is called with an item that is not a pair",
        );
      }
      d.items.set(pair[0], pair[1]);
    }
    return d;
  },
  [REBUILD_V2]: (args, charge) =>
    // (storage, storage_offset, size, stride, requires_grad,
    //  backward_hooks[, metadata])
    rebuildTensor(REBUILD_V2, tupleArg(REBUILD_V2, args, 6, 7), charge),
  "torch._utils._rebuild_tensor": (args, charge) =>
    rebuildTensor(
      "torch._utils._rebuild_tensor",
      tupleArg("torch._utils._rebuild_tensor", args, 4, 4),
      charge,
    ),
  "torch._utils._rebuild_parameter": (args) => {
    const fn = "torch._utils._rebuild_parameter";
    const [data] = tupleArg(fn, args, 3, 3);
    if (!(data instanceof TensorSpec)) {
      throw new PickleError(`${fn} gets ${describe(data)}, not a tensor`);
    }
    return data;
  },
  "torch._utils._rebuild_parameter_with_state": (args) => {
    const fn = "torch._utils._rebuild_parameter_with_state";
    const [data] = tupleArg(fn, args, 4, 4);
    if (!(data instanceof TensorSpec)) {
      throw new PickleError(`${fn} gets ${describe(data)}, not a tensor`);
    }
    return data;
  },
};

const ALLOWED = new Map<string, PyGlobal>();
for (const name of Object.keys(CALLABLES)) {
  const dot = name.lastIndexOf(".");
  ALLOWED.set(name, new PyGlobal(name.slice(0, dot), name.slice(dot + 1)));
}
for (const kind of STORAGE_KINDS) {
  ALLOWED.set(`torch.${kind.name}`, new PyGlobal("torch", kind.name, kind));
}
for (const d of DTYPE_NAMES) {
  ALLOWED.set(`torch.${d}`, new PyGlobal("torch", d));
}

function resolveGlobal(module: string, name: string): PyGlobal {
  const g = ALLOWED.get(`${module}.${name}`);
  if (!g) {
    throw new PickleError(
      `the pickle references the global ${
        clip(`${module}.${name}`, 80)
      }, which is not on the allow-list (state dicts need only collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage and torch dtypes); kdeno never runs code from a checkpoint`,
    );
  }
  return g;
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The result of `unpickle`: the value and where the pickle ended. */
export interface Unpickled {
  /** The unpickled value. */
  value: unknown;
  /** Offset just past the STOP opcode. */
  end: number;
}

/**
 * Interprets one pickle starting at `start`.
 *
 * @param bytes The buffer holding the pickle.
 * @param start Where it starts.
 * @param allowance The file's allowance, charged for each opcode and each
 * element a call copies.
 * @param persistentLoad Resolves persistent ids (storages).
 * @returns The value and the offset just past the pickle.
 * @throws PickleError for a refused global or opcode, or a malformed pickle.
 */
export function unpickle(
  bytes: Uint8Array,
  start: number,
  allowance: Allowance,
  persistentLoad?: PersistentLoad,
): Unpickled {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = start;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const charge: Charge = (n, what) =>
    allowance.take(n * ELEMENT_BYTES, `${what} copies ${n} elements, which`);
  let opcodes = 0;
  const atOpcode = () =>
    `the pickle's opcode ${opcodes} (at byte ${pos}; each is charged ${OPCODE_BYTES} bytes)`;

  const need = (n: number, what: string) => {
    if (pos + n > bytes.length) {
      throw new PickleError(
        `the pickle ends inside ${what} at byte ${pos} (needs ${n} more bytes, ${
          bytes.length - pos
        } left): the data is truncated`,
      );
    }
  };
  const u8 = () => {
    need(1, "an opcode argument");
    return bytes[pos++];
  };
  const u16 = () => {
    need(2, "an opcode argument");
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4, "an opcode argument");
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8, "an opcode argument");
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) {
      throw new PickleError(
        `a length of ${v} at byte ${pos - 8} exceeds the data`,
      );
    }
    return Number(v);
  };
  const take = (n: number, what: string) => {
    need(n, what);
    const s = bytes.subarray(pos, pos + n);
    pos += n;
    return s;
  };
  const line = () => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) {
      throw new PickleError(
        `the pickle ends inside a text argument at byte ${pos}: the data is truncated`,
      );
    }
    const s = latin1.decode(bytes.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const str = (n: number) => {
    const raw = take(n, "a string");
    try {
      return utf8.decode(raw);
    } catch {
      throw new PickleError(`a string at byte ${pos - n} is not valid UTF-8`);
    }
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks.at(-1)!)) {
      throw new PickleError(`the pickle's stack underflows at byte ${pos - 1}`);
    }
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) {
      throw new PickleError(`the pickle's stack is empty at byte ${pos - 1}`);
    }
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) {
      throw new PickleError(`the pickle has no MARK for byte ${pos - 1}`);
    }
    return stack.splice(m);
  };
  const signed = (raw: Uint8Array): number | bigint => {
    if (raw.length === 0) return 0;
    let v = 0n;
    for (let i = raw.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]);
    if (raw[raw.length - 1] & 0x80) v -= 1n << BigInt(8 * raw.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) &&
        v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  };
  const textInt = (s: string): number | bigint | boolean => {
    if (s === "00") return false;
    if (s === "01") return true;
    const t = s.endsWith("L") ? s.slice(0, -1) : s;
    if (!/^[-+]?\d+$/.test(t)) {
      throw new PickleError(`${preview(s)} at byte ${pos} is not an integer`);
    }
    if (t.length > 4300) {
      throw new PickleError(
        `an integer of ${t.length} digits before byte ${pos} exceeds the 4300 digits Python reads`,
      );
    }
    const b = BigInt(t);
    return b >= BigInt(Number.MIN_SAFE_INTEGER) &&
        b <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(b)
      : b;
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (!(target instanceof PyDict)) {
      throw new PickleError(
        `the pickle sets items on ${describe(target)}, not a dict`,
      );
    }
    if (kv.length % 2) {
      throw new PickleError("the pickle sets a key without a value");
    }
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i];
      if (typeof k !== "string" && typeof k !== "number") {
        throw new PickleError(
          `the pickle uses ${
            describe(k)
          } as a dict key; only strings and ints are read`,
        );
      }
      target.items.set(k, kv[i + 1]);
    }
  };
  const persistent = (pid: unknown) => {
    if (!persistentLoad) {
      throw new PickleError("the pickle names a persistent object");
    }
    return persistentLoad(pid);
  };

  for (;;) {
    need(1, "an opcode");
    opcodes++;
    allowance.take(OPCODE_BYTES, atOpcode);
    const at = pos;
    const op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) {
          throw new PickleError(
            `pickle protocol ${bytes[pos - 1]} is newer than 5`,
          );
        }
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) {
          throw new PickleError(
            `the pickle stops with ${stack.length} values on its stack`,
          );
        }
        return { value: stack[0], end: pos };
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4, "BININT");
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(signed(take(u8(), "LONG1")));
        break;
      case 0x8b: { // LONG4
        const n = u32();
        if (n > 64) throw new PickleError(`a ${n}-byte integer is too large`);
        stack.push(signed(take(n, "LONG4")));
        break;
      }
      case 0x49: // INT
      case 0x4c: // LONG
        stack.push(textInt(line()));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8, "BINFLOAT");
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: { // FLOAT
        const s = line();
        const f = Number(s);
        if (Number.isNaN(f) && !/nan/i.test(s)) {
          throw new PickleError(`${preview(s)} at byte ${at} is not a float`);
        }
        stack.push(f);
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(str(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(str(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(str(u64()));
        break;
      case 0x56: // UNICODE (raw-unicode-escape; ASCII in practice)
        stack.push(line());
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(latin1.decode(take(u32(), "BINSTRING")));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8(), "SHORT_BINSTRING")));
        break;
      case 0x42: // BINBYTES
        stack.push(new PyBytes(take(u32(), "BINBYTES").length));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(new PyBytes(take(u8(), "SHORT_BINBYTES").length));
        break;
      case 0x8e: // BINBYTES8
        stack.push(new PyBytes(take(u64(), "BINBYTES8").length));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple());
        break;
      case 0x74: // TUPLE
        stack.push(PyTuple.from(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(PyTuple.of(pop()));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(PyTuple.of(pop(), b));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(PyTuple.of(pop(), b, c));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list) || list instanceof PyTuple) {
          throw new PickleError(`the pickle appends to ${describe(list)}`);
        }
        list.push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list) || list instanceof PyTuple) {
          throw new PickleError(`the pickle appends to ${describe(list)}`);
        }
        for (const v of items) list.push(v);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x64: { // DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x70: // PUT
        memo.set(Number(textInt(line())), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: // LONG_BINGET
      case 0x67: { // GET
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(
          textInt(line()),
        );
        if (!memo.has(k)) {
          throw new PickleError(`the pickle reads memo slot ${k}, never set`);
        }
        stack.push(memo.get(k));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          throw new PickleError("STACK_GLOBAL gets non-string names");
        }
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        const impl = fn instanceof PyGlobal ? CALLABLES[fn.toString()] : null;
        if (!impl) {
          throw new PickleError(
            `the pickle calls ${describe(fn)}, which kdeno does not call`,
          );
        }
        stack.push(impl(args, charge));
        break;
      }
      case 0x62: { // BUILD: set state; only dicts and tensors, state ignored
        const state = pop();
        const obj = top();
        if (!(obj instanceof PyDict) && !(obj instanceof TensorSpec)) {
          throw new PickleError(
            `the pickle sets the state of ${describe(obj)}`,
          );
        }
        void state;
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x50: // PERSID
        stack.push(persistent(line()));
        break;
      default: {
        const names: Record<number, string> = {
          0x81: "NEWOBJ",
          0x92: "NEWOBJ_EX",
          0x69: "INST",
          0x6f: "OBJ",
          0x82: "EXT1",
          0x83: "EXT2",
          0x84: "EXT4",
          0x96: "BYTEARRAY8",
          0x97: "NEXT_BUFFER",
          0x98: "READONLY_BUFFER",
          0x8f: "EMPTY_SET",
          0x90: "ADDITEMS",
          0x91: "FROZENSET",
        };
        throw new PickleError(
          `the pickle uses opcode ${
            names[op] ?? `0x${op.toString(16).padStart(2, "0")}`
          } at byte ${at}, which state dicts do not need and kdeno does not interpret`,
        );
      }
    }
  }
}
