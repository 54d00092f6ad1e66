// The zip reader under loadTorch(): CRC-32, zip64 records, DEFLATE entries
// (the DEFLATE layout of a real torch file is in torch_test.ts) and the
// refusals.
import assert from "node:assert/strict";
import { deflateRawSync } from "node:zlib";
import {
  crc32,
  crc32Table,
  ZipFormatError,
  ZipReader,
} from "../../src/io/_zip.ts";
import { zip } from "./_craft.ts";

const enc = new TextEncoder();

Deno.test("crc32() matches the standard check value, native and in TypeScript", () => {
  const check = enc.encode("123456789");
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Table(check), 0xcbf43926);
  const data = new Uint8Array(100_003).map((_, i) => (i * 131) ^ (i >> 7));
  assert.equal(crc32Table(data), crc32(data));
  assert.equal(crc32(new Uint8Array(0)), 0);
});

Deno.test("ZipReader reads STORED entries through plain and zip64 directories", () => {
  const files = {
    "archive/data.pkl": enc.encode("pickle bytes"),
    "archive/data/0": new Uint8Array([1, 2, 3, 4]),
    "archive/empty": new Uint8Array(0),
  };
  for (const zip64 of [false, true]) {
    const r = new ZipReader(zip(files, { zip64 }));
    assert.deepEqual(r.entries.map((e) => e.name), Object.keys(files));
    for (const [name, data] of Object.entries(files)) {
      assert.deepEqual(r.read(r.get(name)!), data, `${name} zip64 ${zip64}`);
    }
  }
});

Deno.test("ZipReader inflates DEFLATE entries and checks them", () => {
  const data = enc.encode("abc".repeat(1000));
  const bytes = zip({ "a/x": data });
  // rewrite the one entry as DEFLATE by hand: method 8, new sizes
  const packed = new Uint8Array(deflateRawSync(data));
  const v = new DataView(bytes.buffer);
  const name = 3;
  const local = new Uint8Array(30 + name + packed.length);
  local.set(bytes.subarray(0, 30 + name));
  local.set(packed, 30 + name);
  const lv = new DataView(local.buffer);
  lv.setUint16(8, 8, true);
  lv.setUint32(18, packed.length, true);
  const dirAt = 30 + name + data.length;
  const dir = bytes.slice(dirAt, dirAt + 46 + name);
  const dv = new DataView(dir.buffer);
  dv.setUint16(10, 8, true);
  dv.setUint32(20, packed.length, true);
  const end = bytes.slice(dirAt + 46 + name);
  new DataView(end.buffer).setUint32(16, local.length, true);
  const out = new Uint8Array(local.length + dir.length + end.length);
  out.set(local);
  out.set(dir, local.length);
  out.set(end, local.length + dir.length);
  assert.equal(v.getUint32(0, true), 0x04034b50);
  const r = new ZipReader(out);
  assert.deepEqual(r.read(r.entries[0]), data);
  // garbage instead of a deflate stream
  out.fill(0xff, 30 + name, 30 + name + 8);
  assert.throws(() => r.read(r.entries[0]), ZipFormatError);
});

Deno.test("ZipReader refuses broken archives", () => {
  const good = zip({ "a/data.pkl": new Uint8Array(64).fill(7) });
  assert.throws(
    () => new ZipReader(good.subarray(0, good.length - 1)),
    /no end-of-central-directory record .*truncated/,
  );
  assert.throws(() => new ZipReader(new Uint8Array(10)), ZipFormatError);
  const moved = good.slice();
  // the directory offset now points past the end
  new DataView(moved.buffer).setUint32(moved.length - 6, 1 << 30, true);
  assert.throws(() => new ZipReader(moved), /runs past the end of the file/);
  const one = zip({ "a/x": new Uint8Array(1) });
  const r = new ZipReader(one);
  const e = { ...r.entries[0], flags: 1 };
  assert.throws(() => r.read(e), /is encrypted/);
  assert.throws(() => r.read({ ...r.entries[0], method: 12 }), /method 12/);
  assert.throws(
    () => r.read({ ...r.entries[0], compressedSize: 1 << 20 }),
    /runs past the end of the file/,
  );
});
