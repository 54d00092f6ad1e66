/**
 * Hand-built pickles and zip archives for the hostile-file tests: what a
 * crafted `.pth` could hold that `torch.save` never writes.
 */
import { constants, deflateRawSync } from "node:zlib";
import { crc32 } from "../../src/io/_zip.ts";

const enc = new TextEncoder();

/** Pickle opcodes, as bytes. */
export const op = {
  proto: (v = 2): number[] => [0x80, v],
  mark: [0x28],
  stop: [0x2e],
  emptyDict: [0x7d],
  emptyTuple: [0x29],
  emptyList: [0x5d],
  tuple: [0x74],
  setitems: [0x75],
  appends: [0x65],
  reduce: [0x52],
  binpersid: [0x51],
  newFalse: [0x89],
  none: [0x4e],
  newobj: [0x81],
  stackGlobal: [0x93],
  global: (module: string, name: string): number[] => [
    0x63,
    ...enc.encode(`${module}\n${name}\n`),
  ],
  str: (s: string): number[] => {
    const b = enc.encode(s);
    const n = new Uint8Array(new Uint32Array([b.length]).buffer);
    return [0x58, ...n, ...b];
  },
  int: (v: number): number[] => [
    0x4a,
    ...new Uint8Array(new Int32Array([v]).buffer),
  ],
};

/** Concatenates opcode arrays into a pickle. */
export function pickle(...parts: number[][]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

/** Options of `tensorOps`. */
export interface TensorOps {
  key: string;
  storageClass?: string;
  numel: number;
  offset?: number;
  size: number[];
  stride: number[];
}

/** The opcodes `torch.save` writes for one tensor (`_rebuild_tensor_v2`). */
export function tensorOps(t: TensorOps): number[][] {
  return [
    op.global("torch._utils", "_rebuild_tensor_v2"),
    op.mark,
    op.mark,
    op.str("storage"),
    op.global("torch", t.storageClass ?? "FloatStorage"),
    op.str(t.key),
    op.str("cpu"),
    op.int(t.numel),
    op.tuple,
    op.binpersid,
    op.int(t.offset ?? 0),
    op.mark,
    ...t.size.map(op.int),
    op.tuple,
    op.mark,
    ...t.stride.map(op.int),
    op.tuple,
    op.newFalse,
    op.global("collections", "OrderedDict"),
    op.emptyTuple,
    op.reduce,
    op.tuple,
    op.reduce,
  ];
}

/** A `{name: tensor, ...}` state-dict pickle. */
export function stateDictPickle(
  tensors: Record<string, TensorOps>,
): Uint8Array {
  const items = Object.entries(tensors).flatMap(([k, t]) => [
    op.str(k),
    ...tensorOps(t),
  ]);
  return pickle(
    op.proto(),
    op.emptyDict,
    op.mark,
    ...items,
    op.setitems,
    op.stop,
  );
}

/** One entry of `zipRaw`: its bytes as stored and what the directory says. */
export interface RawEntry {
  /** The bytes as stored (deflated for method 8). */
  data: Uint8Array;
  /** 0 (STORED) or 8 (DEFLATE); default 0. */
  method?: number;
  /** The declared uncompressed size; default `data.length`. */
  size?: number;
  /** The declared CRC-32; default that of `data`. */
  crc?: number;
}

/**
 * A zip archive of STORED entries, as `torch.save` writes; `zip64` puts
 * every size and offset in zip64 extra fields and zip64 end records, as
 * writers do for archives over 4 GiB.
 */
export function zip(
  files: Record<string, Uint8Array>,
  options: { zip64?: boolean } = {},
): Uint8Array {
  return zipRaw(
    Object.fromEntries(
      Object.entries(files).map(([k, data]) => [k, { data }]),
    ),
    options,
  );
}

/**
 * A zip archive whose entries say what the test wants: DEFLATE data, a
 * declared size or CRC that differs from the data's.
 */
export function zipRaw(
  files: Record<string, RawEntry>,
  options: { zip64?: boolean } = {},
): Uint8Array {
  const z64 = options.zip64 ?? false;
  const local: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, entry] of Object.entries(files)) {
    const { data, method = 0 } = entry;
    const size = entry.size ?? data.length;
    const n = enc.encode(name);
    const crc = entry.crc ?? crc32(data);
    const h = new Uint8Array(30 + n.length);
    const v = new DataView(h.buffer);
    v.setUint32(0, 0x04034b50, true);
    v.setUint16(4, 20, true);
    v.setUint16(8, method, true);
    v.setUint32(14, crc, true);
    v.setUint32(18, data.length, true);
    v.setUint32(22, Math.min(size, 0xffffffff), true);
    v.setUint16(26, n.length, true);
    h.set(n, 30);
    const extra = z64 ? 28 : 0;
    const c = new Uint8Array(46 + n.length + extra);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, 45, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, z64 ? 0xffffffff : data.length, true);
    cv.setUint32(24, z64 ? 0xffffffff : size, true);
    cv.setUint16(28, n.length, true);
    cv.setUint16(30, extra, true);
    cv.setUint32(42, z64 ? 0xffffffff : offset, true);
    c.set(n, 46);
    if (z64) {
      const x = 46 + n.length;
      cv.setUint16(x, 1, true);
      cv.setUint16(x + 2, 24, true);
      cv.setBigUint64(x + 4, BigInt(size), true); // size
      cv.setBigUint64(x + 12, BigInt(data.length), true); // compressed
      cv.setBigUint64(x + 20, BigInt(offset), true); // local header
    }
    local.push(h, data);
    central.push(c);
    offset += h.length + data.length;
  }
  const dirSize = central.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, z64 ? 0xffff : central.length, true);
  ev.setUint16(10, z64 ? 0xffff : central.length, true);
  ev.setUint32(12, z64 ? 0xffffffff : dirSize, true);
  ev.setUint32(16, z64 ? 0xffffffff : offset, true);
  const tail: Uint8Array[] = [end];
  if (z64) {
    const rec = new Uint8Array(56);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setBigUint64(24, BigInt(central.length), true);
    rv.setBigUint64(32, BigInt(central.length), true);
    rv.setBigUint64(40, BigInt(dirSize), true);
    rv.setBigUint64(48, BigInt(offset), true);
    const loc = new Uint8Array(20);
    const lv = new DataView(loc.buffer);
    lv.setUint32(0, 0x07064b50, true);
    lv.setBigUint64(8, BigInt(offset + dirSize), true);
    lv.setUint32(16, 1, true);
    tail.unshift(rec, loc);
  }
  return concat(...local, ...central, ...tail);
}

/**
 * Bytes joined.
 *
 * @param parts The pieces, in order.
 * @returns One array holding them all.
 */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A torch.save-style archive: `archive/data.pkl` plus `archive/data/<key>`. */
export function pth(
  pkl: Uint8Array,
  storages: Record<string, Uint8Array> = {},
): Uint8Array {
  const files: Record<string, Uint8Array> = { "archive/data.pkl": pkl };
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = v;
  return zip(files);
}

/**
 * A DEFLATE stream of `mib` MiB of zeros, about 1 KiB a MiB (deflate's
 * limit is 1032:1), made without ever holding the inflated data: one MiB
 * compressed with a full flush (byte-aligned, no back-references across
 * it), repeated, then an empty final block.
 */
export function deflateBomb(mib: number): Uint8Array {
  const block = deflateRawSync(new Uint8Array(2 ** 20), {
    level: 9,
    finishFlush: constants.Z_FULL_FLUSH,
  });
  const end = deflateRawSync(new Uint8Array(0));
  const out = new Uint8Array(block.length * mib + end.length);
  for (let i = 0; i < mib; i++) out.set(block, i * block.length);
  out.set(end, block.length * mib);
  return out;
}

/** float32 values as little-endian bytes. */
export function f32bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}
