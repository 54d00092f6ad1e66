// safetensors reading and writing: a round trip, a file written by the
// committed Python generator (tests/fixtures/io/make_safetensors.py, PyTorch
// 1.13 values in every readable dtype), every malformed case, atomic writes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { CheckpointError } from "../../src/errors.ts";
import { tensor } from "../../src/ops/creation.ts";
import type { Tensor } from "../../src/tensor.ts";
import { setBackend } from "../../src/backend/registry.ts";
import {
  loadSafetensors,
  parseSafetensors,
  parseSafetensorsHeader,
  saveSafetensors,
  serializeSafetensors,
} from "../../src/io/mod.ts";
import { availableBackends, missingBackends } from "../_helpers.ts";

const FIXTURES = new URL("../fixtures/io/", import.meta.url);

interface Expected {
  dtype: "float32" | "int32";
  shape: number[];
  bits?: number[];
  values?: number[];
}

const sample = JSON.parse(
  await Deno.readTextFile(new URL("sample.json", FIXTURES)),
) as {
  metadata: Record<string, string>;
  tensors: Record<string, Expected>;
};

/** Builds a safetensors file by hand: header JSON, then data. */
function build(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  options: { headerLength?: number; raw?: string } = {},
): Uint8Array {
  const json = new TextEncoder().encode(
    options.raw ?? JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(
    0,
    BigInt(options.headerLength ?? json.length),
    true,
  );
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function f32(n: number): Uint8Array {
  return new Uint8Array(new Float32Array(n).buffer);
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "kdeno_safetensors_" });
}

function bitsOf(t: Tensor): number[] {
  const d = t.data() as Float32Array;
  return Array.from(new Uint32Array(d.buffer, d.byteOffset, d.length));
}

for (const backend of availableBackends()) {
  Deno.test(`[${backend}] saveSafetensors() round trips float32 and int32`, async () => {
    setBackend(backend);
    const dir = await tempDir();
    try {
      const path = join(dir, "model.safetensors");
      const w = tensor([[1.5, -2], [Infinity, 3e-42]]);
      const idx = tensor(new Int32Array([2147483647, -2147483648, 0]));
      const scalar = tensor(7);
      const empty = tensor([], { shape: [0, 4] });
      await saveSafetensors(
        path,
        { "layer.weight": w, idx, scalar, empty },
        { epoch: "3" },
      );
      const back = await loadSafetensors(path, { device: backend });
      assert.deepEqual(Object.keys(back), [
        "empty",
        "idx",
        "layer.weight",
        "scalar",
      ]);
      assert.deepEqual(bitsOf(back["layer.weight"]), bitsOf(w));
      assert.deepEqual(back["layer.weight"].shape, [2, 2]);
      assert.equal(back.idx.dtype, "int32");
      assert.deepEqual(back.idx.toArray(), [2147483647, -2147483648, 0]);
      assert.deepEqual(back.scalar.shape, []);
      assert.equal(back.scalar.item(), 7);
      assert.deepEqual(back.empty.shape, [0, 4]);
      assert.equal(back["layer.weight"].device, backend);
      const header = parseSafetensorsHeader(await Deno.readFile(path), path);
      assert.deepEqual(header.metadata, { epoch: "3" });
      assert.equal(header.dataStart % 8, 0, "data starts 8-byte aligned");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`[${backend}] loadSafetensors() reads a PyTorch-made file`, async (t) => {
    setBackend(backend);
    const path = new URL("sample.safetensors", FIXTURES);
    const got = await loadSafetensors(path);
    assert.deepEqual(
      Object.keys(got).sort(),
      Object.keys(sample.tensors).sort(),
    );
    for (const [name, want] of Object.entries(sample.tensors)) {
      await t.step(
        `${name}: ${want.dtype} ${JSON.stringify(want.shape)}`,
        () => {
          const x = got[name];
          assert.deepEqual([...x.shape], want.shape);
          assert.equal(x.dtype, want.dtype);
          if (want.bits) assert.deepEqual(bitsOf(x), want.bits);
          else assert.deepEqual(Array.from(x.data()), want.values);
        },
      );
    }
    const header = parseSafetensorsHeader(await Deno.readFile(path), "sample");
    assert.deepEqual(header.metadata, sample.metadata);
    assert.equal(header.tensors.f16.dtype, "F16");
    assert.equal(header.tensors.bf16.dtype, "BF16");
    assert.equal(header.tensors.i64.dtype, "I64");
  });
}

Deno.test("serializeSafetensors() writes the reference layout", () => {
  const bytes = serializeSafetensors(
    { b: tensor([1, 2]), a: tensor(new Int32Array([3])) },
    { note: "x" },
  );
  const view = new DataView(bytes.buffer);
  const n = Number(view.getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(text, / *$/);
  assert.deepEqual(JSON.parse(text), {
    __metadata__: { note: "x" },
    a: { dtype: "I32", shape: [1], data_offsets: [0, 4] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  });
  assert.equal(bytes.length, 8 + n + 12);
  assert.deepEqual(
    Array.from(new Float32Array(bytes.slice(8 + n + 4).buffer)),
    [1, 2],
  );
});

Deno.test("serializeSafetensors() refuses what it cannot write", async (t) => {
  await t.step("a disposed tensor", () => {
    const x = tensor([1]);
    x.dispose();
    assert.throws(
      () => serializeSafetensors({ x }),
      (e) =>
        e instanceof TypeError &&
        /"x" of shape \[1\] was disposed/.test(e.message),
    );
  });
  await t.step("non-string metadata", () => {
    assert.throws(
      () => serializeSafetensors({}, { epoch: 3 as unknown as string }),
      (e) =>
        e instanceof TypeError && /metadata\.epoch is number/.test(e.message),
    );
  });
  await t.step("the reserved name", () => {
    assert.throws(
      () => serializeSafetensors({ __metadata__: tensor([1]) }),
      (e) => e instanceof TypeError && /__metadata__/.test(e.message),
    );
  });
});

Deno.test("loadSafetensors() rejects malformed files naming the file", async (t) => {
  const entry = (dtype: string, shape: number[], offsets: number[]) => ({
    dtype,
    shape,
    data_offsets: offsets,
  });
  const cases: [string, Uint8Array, RegExp][] = [
    ["an empty file", new Uint8Array(0), /0 bytes, too short/],
    ["a short header length", new Uint8Array(5), /5 bytes, too short/],
    [
      "a header length beyond the file",
      build({}, new Uint8Array(0), { headerLength: 1000 }),
      /header length 1000 runs past the end of the file/,
    ],
    [
      "a huge header length",
      (() => {
        const b = build({});
        new DataView(b.buffer).setUint32(4, 1, true);
        return b;
      })(),
      /header length 4294967298 runs past the end/,
    ],
    [
      "bad JSON",
      build(null, new Uint8Array(0), { raw: '{"a": {"dtype": ' }),
      /header is not valid JSON/,
    ],
    [
      "a header that is not an object",
      build(null, new Uint8Array(0), { raw: "[1, 2]" }),
      /does not start with "\{"/,
    ],
    [
      "invalid UTF-8",
      build(null, new Uint8Array(0), { raw: "{}" }).map((b, i) =>
        i === 9 ? 0xff : b
      ),
      /not valid UTF-8/,
    ],
    [
      "an unknown dtype",
      build({ x: entry("F8_E4M3", [2], [0, 2]) }, new Uint8Array(2)),
      /tensor "x" has unknown dtype "F8_E4M3"/,
    ],
    [
      "a bad shape",
      build({ x: entry("F32", [-1], [0, 4]) }, f32(1)),
      /tensor "x" has shape \[-1\]/,
    ],
    [
      "offsets out of range",
      build({ x: entry("F32", [4], [0, 16]) }, f32(2)),
      /tensor "x" has data_offsets \[0, 16\] beyond the data section \(8 bytes\)/,
    ],
    [
      "offsets reversed",
      build({ x: entry("F32", [1], [4, 0]) }, f32(1)),
      /data_offsets \[4,0\], not \[begin, end\]/,
    ],
    [
      "overlapping tensors",
      build({
        a: entry("F32", [2], [0, 8]),
        b: entry("F32", [2], [4, 12]),
      }, f32(3)),
      /tensor "b" \(bytes \[4, 12\]\) overlaps tensor "a"/,
    ],
    [
      "a gap between tensors",
      build({
        a: entry("F32", [1], [0, 4]),
        b: entry("F32", [1], [8, 12]),
      }, f32(3)),
      /bytes \[4, 8\] of the data section belong to no tensor/,
    ],
    [
      "trailing bytes no tensor covers",
      build({ a: entry("F32", [1], [0, 4]) }, f32(2)),
      /the tensors cover 4 bytes but the data section has 8/,
    ],
    [
      "a truncated data section",
      build({ a: entry("F32", [3], [0, 12]) }, f32(3)).slice(0, -2),
      /beyond the data section \(10 bytes\); the file is truncated/,
    ],
    [
      "shape times dtype size unequal to the span",
      build({ a: entry("F32", [2, 2], [0, 8]) }, f32(2)),
      /tensor "a" of shape \[2, 2\] and dtype F32 needs 16 bytes but data_offsets \[0, 8\] span 8/,
    ],
    [
      "an I64 value outside int32",
      build(
        { a: entry("I64", [2], [0, 16]) },
        new Uint8Array(new BigInt64Array([5n, 2n ** 31n]).buffer),
      ),
      /tensor "a" \(I64\) holds 2147483648 at flat index 1, outside the int32 range/,
    ],
    [
      "a U32 value outside int32",
      build(
        { a: entry("U32", [1], [0, 4]) },
        new Uint8Array(new Uint32Array([2 ** 32 - 1]).buffer),
      ),
      /holds 4294967295 at flat index 0/,
    ],
    [
      "non-string metadata",
      build({ __metadata__: { epoch: 3 } }),
      /__metadata__\.epoch is 3, not a string/,
    ],
  ];
  const dir = await tempDir();
  try {
    for (const [name, bytes, re] of cases) {
      await t.step(name, async () => {
        const path = join(dir, `${name.replaceAll(" ", "_")}.safetensors`);
        await Deno.writeFile(path, bytes);
        await assert.rejects(
          () => loadSafetensors(path),
          (e) => {
            assert.ok(e instanceof CheckpointError, `${e}`);
            assert.ok(e.message.includes(path), `names the file: ${e.message}`);
            assert.match(e.message, re);
            return true;
          },
        );
        assert.throws(
          () => parseSafetensors(bytes, "mem.safetensors"),
          (e) =>
            e instanceof CheckpointError &&
            e.message.startsWith(
              "Cannot read safetensors file mem.safetensors: ",
            ),
        );
      });
    }
    await t.step("a missing file", async () => {
      const path = join(dir, "missing.safetensors");
      await assert.rejects(
        () => loadSafetensors(path),
        (e) => e instanceof CheckpointError && e.message.includes(path),
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("saveSafetensors() writes atomically", async (t) => {
  const dir = await tempDir();
  const path = join(dir, "ckpt.safetensors");
  const entries = async () => {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    return names.sort();
  };
  try {
    await saveSafetensors(path, { a: tensor([1, 2, 3]) });
    const old = await Deno.readFile(path);

    await t.step("no temporary file is left behind", async () => {
      await saveSafetensors(path, { a: tensor([4, 5, 6]) });
      assert.deepEqual(await entries(), ["ckpt.safetensors"]);
      const { a } = await loadSafetensors(path);
      assert.deepEqual(a.toArray(), [4, 5, 6]);
      await saveSafetensors(path, { a: tensor([1, 2, 3]) });
    });

    await t.step(
      "the old file stays until the new one is complete",
      async () => {
        const rename = Deno.rename;
        const big = tensor(new Float32Array(1 << 16).fill(9));
        let checked = false;
        Deno.rename = async (from: string | URL, to: string | URL) => {
          // At rename time the target is untouched and the temporary file,
          // in the same folder, is complete.
          assert.deepEqual(await Deno.readFile(path), old);
          assert.equal(join(String(from), ".."), join(dir));
          const tmp = await loadSafetensors(String(from));
          assert.equal(tmp.big.numel(), 1 << 16);
          checked = true;
          return rename(from, to);
        };
        try {
          await saveSafetensors(path, { big });
        } finally {
          Deno.rename = rename;
        }
        assert.ok(checked);
        assert.deepEqual(await entries(), ["ckpt.safetensors"]);
        assert.equal((await loadSafetensors(path)).big.numel(), 1 << 16);
        await saveSafetensors(path, { a: tensor([1, 2, 3]) });
      },
    );

    await t.step(
      "a failed write keeps the old file and cleans up",
      async () => {
        const rename = Deno.rename;
        Deno.rename = () => Promise.reject(new Error("disk full (simulated)"));
        try {
          await assert.rejects(
            () => saveSafetensors(path, { a: tensor([7, 8, 9]) }),
            (e) =>
              e instanceof CheckpointError && e.message.includes(path) &&
              /disk full \(simulated\)/.test(e.message),
          );
        } finally {
          Deno.rename = rename;
        }
        assert.deepEqual(await Deno.readFile(path), old);
        assert.deepEqual(await entries(), ["ckpt.safetensors"]);
      },
    );

    await t.step(
      "a tensor that cannot be written touches nothing",
      async () => {
        const gone = tensor([1]);
        gone.dispose();
        await assert.rejects(() => saveSafetensors(path, { gone }), TypeError);
        assert.deepEqual(await Deno.readFile(path), old);
        assert.deepEqual(await entries(), ["ckpt.safetensors"]);
      },
    );

    await t.step(
      "a folder in the way is an error naming the path",
      async () => {
        const folder = join(dir, "taken");
        await Deno.mkdir(join(folder, "inside"), { recursive: true });
        await assert.rejects(
          () => saveSafetensors(folder, { a: tensor([1]) }),
          (e) => e instanceof CheckpointError && e.message.includes(folder),
        );
        assert.deepEqual(await entries(), ["ckpt.safetensors", "taken"]);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const [backend, reason] of missingBackends()) {
  Deno.test({
    name: `[${backend}] safetensors skipped: ${reason}`,
    ignore: true,
    fn() {},
  });
}
