// loadTorch(): PyTorch 1.13 files from the committed generator
// (tests/fixtures/pth/make_pth.py) in the zip, legacy and DEFLATE layouts,
// every storage type, strided/offset/shared views; then hostile and broken
// files, each refused with a CheckpointError and nothing executed.
import assert from "node:assert/strict";
import { CheckpointError } from "../../src/errors.ts";
import { setBackend } from "../../src/backend/registry.ts";
import { loadTorch, loadTorchSync, parseTorch } from "../../src/io/mod.ts";
import { nn, noGrad, type Tensor } from "../../mod.ts";
import { availableBackends, missingBackends } from "../_helpers.ts";
import {
  f32bytes,
  op,
  pickle,
  pth,
  stateDictPickle,
  tensorOps,
  zip,
} from "./_craft.ts";

const FIXTURES = new URL("../fixtures/pth/", import.meta.url);
const fixture = (name: string) => new URL(name, FIXTURES).pathname;

interface Expected {
  dtype: "float32" | "int32";
  shape: number[];
  values: (number | string)[];
}

const expected = (JSON.parse(
  await Deno.readTextFile(new URL("expected.json", FIXTURES)),
) as { tensors: Record<string, Expected> }).tensors;

function checkAll(sd: Record<string, Tensor>, file: string): void {
  assert.deepEqual(Object.keys(sd), Object.keys(expected), file);
  for (const [k, e] of Object.entries(expected)) {
    const t = sd[k];
    assert.equal(t.dtype, e.dtype, `${file} ${k} dtype`);
    assert.deepEqual(t.shape, e.shape, `${file} ${k} shape`);
    const special: Record<string, number> = {
      inf: Infinity,
      "-inf": -Infinity,
      nan: NaN,
    };
    const want = e.values.map((v) => typeof v === "string" ? special[v] : v);
    // float32 values compare exactly: each is a float32 (or a float16 /
    // bfloat16 widened exactly); float64 ones are rounded to float32 here
    const got = Array.from(t.data());
    const wantRounded = e.dtype === "float32"
      ? Array.from(Float32Array.from(want))
      : want;
    assert.deepEqual(got, wantRounded, `${file} ${k} values`);
  }
}

async function expectRefusal(
  bytes: Uint8Array,
  pattern: RegExp,
): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".pth" });
  try {
    await Deno.writeFile(path, bytes);
    await assert.rejects(() => loadTorch(path), (e: Error) => {
      assert.ok(e instanceof CheckpointError, `${e.name}: ${e.message}`);
      assert.match(e.message, pattern);
      assert.ok(e.message.includes(path), `names the file: ${e.message}`);
      return true;
    });
  } finally {
    await Deno.remove(path);
  }
}

for (const backend of availableBackends()) {
  Deno.test(`[${backend}] loadTorch() reads torch.save's layouts exactly`, async (t) => {
    setBackend(backend);
    for (
      const file of ["state_zip", "state_legacy", "state_deflate", "state_p4"]
    ) {
      await t.step(file, async () => {
        const sd = await loadTorch(fixture(`${file}.pth`), {
          device: backend,
        });
        checkAll(sd, file);
        for (const x of Object.values(sd)) {
          assert.equal(x.device, backend);
          x.dispose();
        }
      });
    }
  });
}
for (const [backend, reason] of missingBackends()) {
  Deno.test({
    name: `[${backend}] loadTorch() skipped: ${reason}`,
    ignore: true,
    fn() {},
  });
}

Deno.test("loadTorch() state dict loads into the matching kdeno module", async () => {
  const sd = await loadTorch(fixture("state_zip.pth"));
  const net = new nn.Sequential(
    new nn.Conv2d(2, 3, 3),
    new nn.BatchNorm2d(3),
    new nn.Flatten(),
    new nn.Linear(12, 2),
  );
  const keys = Object.keys(net.stateDict());
  const own = Object.fromEntries(keys.map((k) => [k, sd[k]]));
  net.loadStateDict(own);
  assert.deepEqual(
    Array.from(net.stateDict()["1.running_mean"].data()),
    Array.from(
      Float32Array.from(expected["1.running_mean"].values as number[]),
    ),
  );
  assert.equal(net.stateDict()["1.num_batches_tracked"].item(), 7);
});

Deno.test("loadTorchSync() and parseTorch() match loadTorch()", async () => {
  const a = await loadTorch(fixture("state_zip.pth"));
  const b = loadTorchSync(fixture("state_zip.pth"));
  const c = parseTorch(await Deno.readFile(fixture("state_zip.pth")), "mem");
  for (const k of Object.keys(a)) {
    assert.deepEqual(b[k].toArray(), a[k].toArray(), k);
    assert.deepEqual(c[k].toArray(), a[k].toArray(), k);
  }
});

Deno.test("loadTorch() picks a nested state dict with { key }", async () => {
  const path = fixture("nested.pth");
  const sd = await loadTorch(path, { key: "model" });
  assert.deepEqual(Object.keys(sd), ["0.weight", "3.bias", "i64"]);
  assert.deepEqual(sd["i64"].toArray(), expected["i64"].values);
  await assert.rejects(
    () => loadTorch(path),
    /entry "model" of the file is a dict, not a tensor: .*pass \{ key: "model" \}/,
  );
  await assert.rejects(
    () => loadTorch(path, { key: "optimizer" }),
    /no top-level key "optimizer" \(its keys: model, epoch, lr, tags\)/,
  );
});

Deno.test("loadTorch() refuses hostile pickles without running them", async (t) => {
  const marker = "/tmp/kdeno_pickle_pwned";
  await Deno.remove(marker).catch(() => {});

  await t.step("torch.save of an object reducing to os.system", async () => {
    await assert.rejects(
      () => loadTorch(fixture("hostile_system.pth")),
      (e: Error) => {
        assert.ok(e instanceof CheckpointError);
        assert.match(
          e.message,
          /global posix\.system, which is not on the allow-list/,
        );
        return true;
      },
    );
    await assert.rejects(() => Deno.stat(marker), Deno.errors.NotFound);
  });

  await t.step("GLOBAL os.system called through REDUCE", () =>
    expectRefusal(
      pth(pickle(
        op.proto(),
        op.global("os", "system"),
        op.str(`touch ${marker}`),
        [0x85], // TUPLE1
        op.reduce,
        op.stop,
      )),
      /the global os\.system, which is not on the allow-list/,
    ));

  await t.step("STACK_GLOBAL builtins.eval", () =>
    expectRefusal(
      pth(pickle(
        op.proto(4),
        op.str("builtins"),
        op.str("eval"),
        op.stackGlobal,
        op.stop,
      )),
      /the global builtins\.eval/,
    ));

  await t.step("a global where a storage class belongs", () =>
    expectRefusal(
      pth(pickle(
        op.proto(),
        op.emptyDict,
        op.str("w"),
        op.global("torch._utils", "_rebuild_tensor_v2"),
        op.global("subprocess", "Popen"),
        op.stop,
      )),
      /the global subprocess\.Popen/,
    ));

  await t.step(
    "calling an allowed class that is not a function",
    () =>
      expectRefusal(
        pth(pickle(
          op.proto(),
          op.global("torch", "FloatStorage"),
          op.emptyTuple,
          op.reduce,
          op.stop,
        )),
        /calls torch\.FloatStorage, which kdeno does not call/,
      ),
  );

  await t.step("object-building opcodes (NEWOBJ)", () =>
    expectRefusal(
      pth(pickle(
        op.proto(),
        op.global("collections", "OrderedDict"),
        op.emptyTuple,
        op.newobj,
        op.stop,
      )),
      /opcode NEWOBJ/,
    ));

  await t.step("a whole pickled nn.Module", () =>
    expectRefusal(
      Deno.readFileSync(fixture("module.pth")),
      /global torch\.nn\.modules\.linear\.Linear/,
    ));

  await assert.rejects(() => Deno.stat(marker), Deno.errors.NotFound);
});

Deno.test("loadTorch() refuses truncated and corrupt files", async (t) => {
  const good = await Deno.readFile(fixture("state_zip.pth"));
  const legacy = await Deno.readFile(fixture("state_legacy.pth"));
  for (const cut of [1, 22, 200, Math.floor(good.length / 2)]) {
    await t.step(`zip without its last ${cut} bytes`, () =>
      expectRefusal(
        good.subarray(0, good.length - cut),
        /truncated|end-of-central-directory/,
      ));
  }
  await t.step(
    "zip with only its first 100 bytes",
    () => expectRefusal(good.subarray(0, 100), /truncated/),
  );
  for (const cut of [1, 100, Math.floor(legacy.length / 2)]) {
    await t.step(
      `legacy file without its last ${cut} bytes`,
      () => expectRefusal(legacy.subarray(0, legacy.length - cut), /truncated/),
    );
  }
  await t.step("a flipped byte in a storage fails the CRC", async () => {
    const data = f32bytes([1, 2, 3, 4]);
    const bytes = pth(
      stateDictPickle({ w: { key: "0", numel: 4, size: [4], stride: [1] } }),
      { "0": data },
    );
    const at = bytes.findIndex((_, i) =>
      data.every((b, j) => bytes[i + j] === b)
    );
    assert.ok(at > 0);
    bytes[at + 2] ^= 0xff;
    await expectRefusal(
      bytes,
      /entry "archive\/data\/0" fails its CRC-32 check .*corrupt/,
    );
  });
  await t.step("a storage cut short (zip)", () =>
    expectRefusal(
      Deno.readFileSync(fixture("short_storage.pth")),
      /storage "0" \(FloatStorage\) declares 54 elements \(216 bytes\) but holds only 8 bytes/,
    ));
  await t.step("empty and foreign files", async () => {
    await expectRefusal(new Uint8Array(0), /0 bytes long/);
    await expectRefusal(
      new TextEncoder().encode('{"not": "torch"}'),
      /neither a torch\.save zip archive nor a legacy torch\.save pickle/,
    );
    await expectRefusal(
      zip({ "a/b.txt": new Uint8Array(3) }),
      /no <archive>\/data\.pkl/,
    );
    await expectRefusal(
      pickle(op.proto(), op.int(3), op.stop),
      /not a PyTorch checkpoint/,
    );
  });
});

Deno.test("loadTorch() refuses tensors that overrun their storage", async (t) => {
  const four = f32bytes([1, 2, 3, 4]);
  const one = (size: number[], stride: number[], offset = 0) =>
    pth(
      stateDictPickle({ w: { key: "0", numel: 4, offset, size, stride } }),
      { "0": four },
    );
  await t.step("in bounds reads fine", async () => {
    const path = await Deno.makeTempFile({ suffix: ".pth" });
    await Deno.writeFile(path, one([2, 2], [1, 2]));
    const { w } = await loadTorch(path);
    assert.deepEqual(w.toArray(), [[1, 3], [2, 4]]);
    await Deno.remove(path);
  });
  await t.step("size larger than the storage", () =>
    expectRefusal(
      one([5], [1]),
      /tensor "w" \(float32, shape \[5\]\) .*reads element 4 of storage "0", which holds only 4 .*shorter than its tensor/,
    ));
  await t.step(
    "offset past the end",
    () => expectRefusal(one([2], [1], 3), /reads element 4 of storage "0"/),
  );
  await t.step(
    "stride past the end",
    () => expectRefusal(one([2, 2], [3, 1]), /reads element 4 of storage "0"/),
  );
  await t.step(
    "a stride-0 expansion to billions of values",
    () =>
      expectRefusal(
        one([40000, 40000], [0, 0]),
        /expands 4 storage elements to 1600000000 values/,
      ),
  );
  await t.step("big-endian storages (byteorder big)", () => {
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.5, false);
    new DataView(be.buffer).setFloat32(4, -2, false);
    const bytes = zip({
      "archive/data.pkl": stateDictPickle({
        w: { key: "0", numel: 2, size: [2], stride: [1] },
      }),
      "archive/byteorder": new TextEncoder().encode("big"),
      "archive/data/0": be,
    });
    const { w } = parseTorch(bytes, "big-endian.pth");
    assert.deepEqual(w.toArray(), [1.5, -2]);
  });
  await t.step("storage file shorter than declared", () =>
    expectRefusal(
      pth(
        stateDictPickle({ w: { key: "0", numel: 4, size: [4], stride: [1] } }),
        { "0": four.subarray(0, 12) },
      ),
      /declares 4 elements \(16 bytes\) but holds only 12 bytes/,
    ));
  await t.step("storage entry missing", () =>
    expectRefusal(
      pth(
        stateDictPickle({ w: { key: "7", numel: 4, size: [4], stride: [1] } }),
        { "0": four },
      ),
      /storage "7" has no entry archive\/data\/7/,
    ));
  await t.step("int64 beyond int32", () =>
    expectRefusal(
      Deno.readFileSync(fixture("int64_overflow.pth")),
      /tensor "big" \(int64, shape \[2\]\) holds 1099511627776 at flat index 1, outside the int32 range/,
    ));
  await t.step("not a dict of tensors", () =>
    expectRefusal(
      pth(
        pickle(
          op.proto(),
          op.emptyList,
          op.mark,
          ...tensorOps({ key: "0", numel: 4, size: [4], stride: [1] }),
          op.appends,
          op.stop,
        ),
        { "0": four },
      ),
      /the file holds something other than a state dict/,
    ));
});

Deno.test("a refused file leaves the model untouched", async () => {
  const net = new nn.Sequential(new nn.Conv2d(2, 3, 3), new nn.BatchNorm2d(3));
  const before = noGrad(() =>
    Object.values(net.stateDict()).map((x) => Array.from(x.data()))
  );
  for (const f of ["short_storage.pth", "hostile_system.pth"]) {
    await assert.rejects(
      async () => net.loadStateDict(await loadTorch(fixture(f))),
      CheckpointError,
    );
  }
  const after = Object.values(net.stateDict()).map((x) => Array.from(x.data()));
  assert.deepEqual(after, before);
});
