// Hostile and malformed checkpoints, crafted here from bytes: zip bombs,
// stride-0 amplification, pickles that multiply work through their memo,
// headers nested or sized to make error messages explode, values that
// JSON.stringify cannot print, files in the wrong format. Each is refused
// with a CheckpointError naming the file, after bounded work, or read as an
// honest file when the caller says so (maxBytes).
import assert from "node:assert/strict";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { CheckpointError } from "../../src/errors.ts";
import {
  loadPretrained,
  loadSafetensors,
  loadTorch,
  loadWeights,
  parseSafetensors,
  parseTorch,
  serializeSafetensors,
} from "../../src/io/mod.ts";
import { crc32 } from "../../src/io/_zip.ts";
import { models, nn, type Tensor, tensor } from "../../mod.ts";
import {
  concat,
  deflateBomb,
  f32bytes,
  op,
  pickle,
  pth,
  stateDictPickle,
  type TensorOps,
  zipRaw,
} from "./_craft.ts";

const enc = new TextEncoder();
const dir = await Deno.makeTempDir({ prefix: "kdeno_hostile_" });
globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});

let files = 0;
/** Writes `bytes` to a new file of the temp folder and returns its path. */
async function write(bytes: Uint8Array, suffix = ".pth"): Promise<string> {
  const path = join(dir, `file${files++}${suffix}`);
  await Deno.writeFile(path, bytes);
  return path;
}

/**
 * Asserts `load(path)` rejects with a CheckpointError naming the file, in a
 * message of at most 400 characters besides the path, whatever the file
 * holds.
 */
async function refuses(
  bytes: Uint8Array,
  pattern: RegExp,
  load: (path: string) => Promise<unknown> = loadTorch,
  suffix = ".pth",
): Promise<void> {
  const path = await write(bytes, suffix);
  await assert.rejects(() => load(path), (e: Error) => {
    assert.ok(e instanceof CheckpointError, `${e.name}: ${e.message}`);
    assert.ok(e.message.includes(path), `names the file: ${e.message}`);
    assert.match(e.message, pattern);
    const length = e.message.length - path.length;
    assert.ok(length <= 400, `${length} characters: ${e.message}`);
    return true;
  });
}

/** A safetensors file from a raw header text and its data. */
function safetensors(
  header: string,
  data: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const json = enc.encode(header);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  return concat(len, json, data);
}

/** `('storage', cls, key, location, numel)` then BINPERSID, from parts. */
function persistentStorage(parts: {
  cls?: number[];
  key?: number[];
  location?: number[];
  numel?: number[];
}): number[][] {
  return [
    op.mark,
    op.str("storage"),
    parts.cls ?? op.global("torch", "FloatStorage"),
    parts.key ?? op.str("0"),
    parts.location ?? op.str("cpu"),
    parts.numel ?? op.int(1),
    op.tuple,
    op.binpersid,
  ];
}

Deno.test("loadTorch() refuses a zip bomb before inflating it", async () => {
  // 1.5 MiB of DEFLATE that inflates to 1.5 GiB, its size declared honestly
  const bomb = deflateBomb(1536);
  const bytes = zipRaw({
    "archive/data.pkl": {
      data: stateDictPickle({
        w: { key: "0", numel: 4, size: [4], stride: [1] },
      }),
    },
    "archive/data/0": { data: bomb, method: 8, size: 1536 * 2 ** 20 },
  });
  await refuses(
    bytes,
    /zip entry "archive\/data\/0" needs 1\.5 GiB on top of [\d.]+ KiB already taken, more than the 2\d\.\d MiB a file of 1\.\d+ MiB may materialise \(16 times its size, at least 1 MiB\); if the file is trusted, pass a larger maxBytes/,
  );
});

Deno.test("loadTorch() inflates a zip entry no further than its declared size", async () => {
  // data.pkl declares 1 KiB but inflates to 64 MiB: the reader stops at
  // 1 KiB + 1 instead of inflating it all and comparing afterwards
  await refuses(
    zipRaw({
      "archive/data.pkl": {
        data: deflateBomb(64),
        method: 8,
        size: 1024,
        crc: 0,
      },
    }),
    /entry "archive\/data\.pkl" inflates past its declared 1024 bytes: the file is corrupt or a zip bomb/,
  );
});

Deno.test("loadTorch() reads a trusted, highly compressed checkpoint with { maxBytes }", async () => {
  // 4 MiB of zeros compressed to about 4 KiB: honest, but 1000 times the
  // file's size, so it needs the caller's word
  const zeros = new Uint8Array(4 * 2 ** 20);
  const bytes = zipRaw({
    "archive/data.pkl": {
      data: stateDictPickle({
        w: { key: "0", numel: 2 ** 20, size: [1024, 1024], stride: [1024, 1] },
      }),
    },
    "archive/data/0": {
      data: new Uint8Array(deflateRawSync(zeros)),
      method: 8,
      size: zeros.length,
      crc: crc32(zeros),
    },
  });
  await refuses(bytes, /zip entry "archive\/data\/0" needs 4 MiB/);
  const path = await write(bytes);
  const { w } = await loadTorch(path, { maxBytes: 16 * 2 ** 20 });
  assert.deepEqual(w.shape, [1024, 1024]);
  assert.ok((w.data() as Float32Array).every((v) => v === 0));
  w.dispose();
  await refuses(
    bytes,
    /the maxBytes option is -1, not a number >= 0/,
    (p) => loadTorch(p, { maxBytes: -1 }),
  );
});

Deno.test("loadTorch() bounds stride-0 expansions across many tensors", async (t) => {
  // 16 tensors of [4096, 4096] over one float: 1 GiB from 3 KiB
  const views: Record<string, TensorOps> = {};
  for (let i = 0; i < 16; i++) {
    views[`w${i}`] = { key: "0", numel: 1, size: [4096, 4096], stride: [0, 0] };
  }
  const big = pth(stateDictPickle(views), { "0": f32bytes([0.5]) });
  await t.step("refused with the first expansion", () =>
    refuses(
      big,
      /tensor "w0" \(float32, shape \[4096, 4096\]\) expands 1 storage elements to 16777216 values through stride-0 dims; the copy needs 64 MiB on top of [\d.]+ KiB already taken, more than the 1 MiB a file of .* may materialise/,
    ));
  // 8 tensors of 256 KiB: each fits the 1 MiB a small file may use, all
  // together do not; read once the caller allows it
  const small: Record<string, TensorOps> = {};
  for (let i = 0; i < 8; i++) {
    small[`w${i}`] = {
      key: "0",
      numel: 2,
      offset: 1,
      size: [256, 256],
      stride: [0, 0],
    };
  }
  const bytes = pth(stateDictPickle(small), { "0": f32bytes([1, 2.5]) });
  await t.step("the total counts, not each tensor", () =>
    refuses(
      bytes,
      /tensor "w[1-7]" \(float32, shape \[256, 256\]\) expands 2 storage elements to 65536 values through stride-0 dims; the copy needs 256 KiB on top of \d+ KiB already taken, more than the 1 MiB/,
    ));
  await t.step("read with { maxBytes }", async () => {
    const sd = parseTorch(bytes, "views.pth", { maxBytes: 4 * 2 ** 20 });
    assert.deepEqual(Object.keys(sd), Object.keys(small));
    for (const x of Object.values(sd)) {
      assert.deepEqual(x.shape, [256, 256]);
      assert.ok((x.data() as Float32Array).every((v) => v === 2.5));
      x.dispose();
    }
    // a small broadcast buffer stays within the 1 MiB every file may use
    const one = pth(
      stateDictPickle({
        b: { key: "0", numel: 1, size: [3, 2], stride: [0, 0] },
      }),
      { "0": f32bytes([7]) },
    );
    const { b } = parseTorch(one, "broadcast.pth");
    assert.deepEqual(b.toArray(), [[7, 7], [7, 7], [7, 7]]);
    await Promise.resolve();
  });
});

Deno.test("loadTorch() refuses a pickle that multiplies work through its memo", async () => {
  // a dict of 2000 items, then OrderedDict(that dict) called 2000 times
  // from 5 bytes each: 4 million copies from 22 KiB
  const n = 2000;
  const items: number[] = [];
  for (let i = 0; i < n; i++) items.push(...op.int(i), ...op.none);
  // BINGET 0, BINGET 1, TUPLE1, REDUCE, POP
  const call = [0x68, 0, 0x68, 1, 0x85, 0x52, 0x30];
  const bytes = pth(pickle(
    op.proto(),
    op.global("collections", "OrderedDict"),
    [0x71, 0, 0x30], // BINPUT 0, POP
    op.emptyDict,
    [0x71, 1], // BINPUT 1
    op.mark,
    items,
    op.setitems,
    Array.from({ length: n }, () => call).flat(),
    op.stop,
  ));
  await refuses(
    bytes,
    /collections\.OrderedDict copies 2000 elements, which needs 31\.3 KiB on top of .* more than the 1 MiB a file of/,
  );
});

Deno.test("loadTorch() refuses tensors of more than 64 dims", () =>
  refuses(
    pth(
      stateDictPickle({
        w: {
          key: "0",
          numel: 1,
          size: new Array(65).fill(1),
          stride: new Array(65).fill(1),
        },
      }),
      { "0": f32bytes([1]) },
    ),
    /_rebuild_tensor_v2 gets a size of 65 dims; kdeno reads at most 64/,
  ));

Deno.test("loadTorch() answers values JSON.stringify cannot print with a CheckpointError", async (t) => {
  await t.step("an element count beyond 2^64 (a BigInt)", () =>
    refuses(
      pth(pickle(
        op.proto(),
        ...persistentStorage({ numel: [0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1] }),
        op.stop,
      )),
      /storage "0" declares 18446744073709551616 elements/,
    ));
  await t.step("a key that is a list containing itself", () =>
    refuses(
      pth(pickle(
        op.proto(),
        ...persistentStorage({
          // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND: l = []; l.append(l)
          key: [0x5d, 0x71, 0, 0x68, 0, 0x61],
        }),
        op.stop,
      )),
      /a storage has key a list/,
    ));
  // 2 bytes a level: the pickle's values alone would take 20 times the
  // file's size, past its allowance, unless the caller allows more
  const depth = 200_000;
  const deep = new Array<number>(2 * depth - 1);
  deep.fill(0x5d, 0, depth).fill(0x61, depth); // EMPTY_LIST..., APPEND...
  const trusted = (p: string) => loadTorch(p, { maxBytes: 2 ** 30 });
  await t.step("a location nested 200000 lists deep", async () => {
    const bytes = pth(
      pickle(op.proto(), ...persistentStorage({ location: deep }), op.stop),
    );
    await refuses(
      bytes,
      /the pickle's opcode \d+ \(at byte \d+; each is charged 64 bytes\) needs 64 bytes on top of 6\.\d+ MiB already taken, more than the 6\.\d+ MiB a file of 391 KiB may materialise/,
    );
    await refuses(
      bytes,
      /the file holds something other than a state dict/,
      trusted,
    );
  });
  await t.step("a protocol version nested deep (legacy)", () => {
    const magic = [
      0x8a,
      10,
      0x6c,
      0xfc,
      0x9c,
      0x46,
      0xf9,
      0x20,
      0x6a,
      0xa8,
      0x50,
      0x19,
    ];
    return refuses(
      pickle(op.proto(), magic, op.stop, op.proto(), deep, op.stop),
      /the legacy format's protocol version is a list, not 1001/,
      trusted,
    );
  });
  await t.step("a zip64 extra field that runs past the end of the file", () => {
    // one entry whose sizes and offset are all in a zip64 extra field that
    // declares 24 bytes but has only 4, at the very end of the directory
    const name = enc.encode("archive/data.pkl");
    const data = pickle(op.proto(), op.none, op.stop);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint32(14, crc32(data), true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.length + 4);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint32(16, crc32(data), true);
    cv.setUint32(20, 0xffffffff, true);
    cv.setUint32(24, 0xffffffff, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, 4, true);
    cv.setUint32(42, 0xffffffff, true);
    central.set(name, 46);
    cv.setUint16(46 + name.length, 1, true); // zip64 extra field
    cv.setUint16(46 + name.length + 2, 24, true); // of 24 bytes
    const end = new Uint8Array(22);
    const ev = new DataView(end.buffer);
    ev.setUint32(0, 0x06054b50, true);
    ev.setUint16(8, 1, true);
    ev.setUint16(10, 1, true);
    ev.setUint32(12, central.length, true);
    ev.setUint32(16, local.length + data.length, true);
    return refuses(
      concat(local, data, central, end),
      /entry "archive\/data\.pkl" has an extra field of 24 bytes at byte \d+ that runs past its 4-byte extra area/,
    );
  });
});

Deno.test("loadTorch() keeps messages short whatever the file supplies", async (t) => {
  const long = "k".repeat(2 ** 20);
  await t.step("a 1 MiB key", async () => {
    await refuses(
      pth(
        pickle(
          op.proto(),
          op.emptyDict,
          op.str(long),
          op.none,
          [0x73],
          op.stop,
        ),
      ),
      /entry "k+\.\.\. of the file is None, not a tensor/,
    );
  });
  await t.step("a 1 MiB global name", async () => {
    await refuses(
      pth(pickle(op.proto(), op.global(long, "system"), op.stop)),
      /the global k{80}\.\.\., which is not on the allow-list/,
    );
  });
  await t.step("100000 top-level keys", async () => {
    const items: number[] = [];
    for (let i = 0; i < 100_000; i++) items.push(...op.str(`k${i}`), 0x4e);
    await refuses(
      pth(
        pickle(op.proto(), op.emptyDict, op.mark, items, op.setitems, op.stop),
      ),
      /no top-level key "model" \(its keys: k0, k1, k2, k3, k4, k5, k6, k7, \.\.\. \(100000 in all\)\)/,
      (p) => loadTorch(p, { key: "model" }),
    );
  });
});

Deno.test("loadSafetensors() refuses headers nested or sized to explode", async (t) => {
  const depth = 1_000_000;
  await t.step("a shape nested a million deep", async () => {
    await refuses(
      safetensors(
        `{"a":{"dtype":"F32","shape":${"[".repeat(depth)}${
          "]".repeat(depth)
        },"data_offsets":[0,0]}}`,
      ),
      /the header opens an array at nesting level 4 \(byte 37\); a safetensors header is an object of objects whose values are scalars or arrays of scalars/,
      loadSafetensors,
      ".safetensors",
    );
  });
  await t.step("metadata of a million empty lists", () =>
    refuses(
      safetensors(`{"__metadata__":{"k":[${"[],".repeat(depth)}[]]}}`),
      /opens an array at nesting level 4/,
      loadSafetensors,
      ".safetensors",
    ));
  await t.step("objects where tensors belong", () =>
    refuses(
      safetensors(`{"a":{"dtype":{"x":1}}}`),
      /opens an object at nesting level 3/,
      loadSafetensors,
      ".safetensors",
    ));
  await t.step("a 1 MiB tensor name and a million-element shape", async () => {
    const name = "n".repeat(2 ** 20);
    await refuses(
      safetensors(
        `{"${name}":{"dtype":"F32","shape":[${
          "1,".repeat(depth)
        }-1],"data_offsets":[0,4]}}`,
        f32bytes([1]),
      ),
      /tensor "n+\.\.\. has shape \[1,1,1,.*\.\.\., not a list of sizes/,
      loadSafetensors,
      ".safetensors",
    );
  });
  await t.step("more than 64 dims", () =>
    refuses(
      safetensors(
        `{"a":{"dtype":"F32","shape":[${
          new Array(65).fill(1)
        }],"data_offsets":[0,4]}}`,
        f32bytes([1]),
      ),
      /tensor "a" has 65 dims; kdeno reads at most 64/,
      loadSafetensors,
      ".safetensors",
    ));
  await t.step("a dtype named after an Object.prototype member", () =>
    refuses(
      safetensors(
        `{"a":{"dtype":"constructor","shape":[1],"data_offsets":[0,4]}}`,
        f32bytes([1]),
      ),
      /tensor "a" has unknown dtype "constructor"/,
      loadSafetensors,
      ".safetensors",
    ));
  await t.step("{ maxBytes } caps what the tensors take", () => {
    const bytes = serializeSafetensors({ w: tensor([1, 2, 3, 4]) });
    assert.throws(
      () => parseSafetensors(bytes, "capped.safetensors", { maxBytes: 8 }),
      /capped\.safetensors: tensor "w" \(F32\) needs 16 bytes, more than the 8 bytes set by the maxBytes option/,
    );
    const { w } = parseSafetensors(bytes, "capped.safetensors", {
      maxBytes: 16,
    });
    assert.deepEqual(w.toArray(), [1, 2, 3, 4]);
  });
});

Deno.test("loadWeights() and resnet18({ weights }) say what a file is", async (t) => {
  const html = enc.encode("<!DOCTYPE html>\n<html><body>404</body></html>\n");
  const lfs = enc.encode(
    "version https://git-lfs.github.com/spec/v1\noid sha256:4f0c\nsize 46830571\n",
  );
  const good = pth(
    stateDictPickle({ w: { key: "0", numel: 2, size: [2], stride: [1] } }),
    { "0": f32bytes([1, 2]) },
  );
  await t.step("an empty file", async () => {
    await refuses(
      new Uint8Array(0),
      /Cannot read weights file .*\.bin: the file is empty \(0 bytes\)/,
      loadWeights,
      ".bin",
    );
    const path = await write(new Uint8Array(0), ".bin");
    assert.throws(
      () => models.resnet18({ weights: path }),
      (e: Error) =>
        e instanceof CheckpointError &&
        e.message ===
          `Cannot read weights file ${path}: the file is empty (0 bytes)`,
    );
  });
  await t.step("an HTML page saved as weights", async () => {
    await refuses(
      html,
      /it is neither safetensors nor a PyTorch checkpoint \(it starts with bytes 3c 21 44 4f 43 54 59 50 \("<!DOCTYPE html>\\n<html>.*\.\.\.\)\)$/,
      loadWeights,
      ".bin",
    );
    const path = await write(html, ".safetensors");
    assert.throws(
      () => models.resnet18({ weights: path }),
      /neither safetensors nor a PyTorch checkpoint/,
    );
  });
  await t.step(
    "a Git LFS pointer",
    () =>
      refuses(
        lfs,
        /: a Git LFS pointer, not the file it points to\)$/,
        loadWeights,
      ),
  );
  await t.step("a .pth given to loadSafetensors", () =>
    refuses(
      good,
      /it is a PyTorch checkpoint \(a zip archive\), not safetensors: read it with io\.loadTorch or io\.loadWeights/,
      loadSafetensors,
    ));
  await t.step("a .safetensors given to loadTorch", () =>
    refuses(
      serializeSafetensors({ w: tensor([1]) }),
      /it is a safetensors file, not a torch\.save file: read it with io\.loadSafetensors or io\.loadWeights/,
      loadTorch,
      ".safetensors",
    ));
  await t.step(
    "a safetensors header of 384 bytes starts with 0x80, like a pickle",
    async () => {
      const header = JSON.stringify({
        w: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      }).padEnd(384, " ");
      const bytes = safetensors(header, f32bytes([3, 4]));
      assert.equal(bytes[0], 0x80);
      const { w } = await loadWeights(await write(bytes, ".safetensors"));
      assert.deepEqual(w.toArray(), [3, 4]);
    },
  );
  await t.step("both formats still load", async () => {
    const a = await loadWeights(await write(good));
    const b = await loadWeights(
      await write(serializeSafetensors({ w: tensor([1, 2]) }), ".safetensors"),
    );
    assert.deepEqual(a.w.toArray(), [1, 2]);
    assert.deepEqual(b.w.toArray(), [1, 2]);
  });
});

Deno.test("loadPretrained() names at most 20 keys of each kind", () => {
  const net = new nn.Linear(2, 2);
  const weights: Record<string, Tensor> = { ...net.stateDict() };
  const extra = tensor([1]);
  for (let i = 0; i < 1000; i++) {
    weights[`extra.${"x".repeat(200)}${i}`] = extra;
  }
  assert.throws(
    () => loadPretrained(net, weights, { source: "many.pth" }),
    (e: Error) => {
      assert.ok(e instanceof CheckpointError, String(e));
      assert.match(
        e.message,
        /^Cannot load pretrained weights from many\.pth into Linear: unexpected keys: extra\.x{94}\.\.\., .*, \.\.\. \(1000 in all\)$/,
      );
      assert.ok(e.message.length < 2500, `${e.message.length} characters`);
      return true;
    },
  );
});
