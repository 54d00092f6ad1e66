// Pretrained teachers: models.resnet18({ weights }) from safetensors and
// state dicts (no PyTorch needed), head replacement, refusals that leave no
// model; and, where /usr/bin/python3 can import torch, a torchvision
// ResNet-18 .pth laid out like resnet18-f37072fd.pth, generated at test time
// by tests/fixtures/pth/make_resnet18.py, whose logits must match
// torchvision's.
import assert from "node:assert/strict";
import { join } from "node:path";
import { CheckpointError } from "../../src/errors.ts";
import {
  loadPretrained,
  loadTorch,
  loadWeights,
  saveSafetensors,
} from "../../src/io/mod.ts";
import { models, noGrad, type Tensor } from "../../mod.ts";
import { assertClose } from "../_helpers.ts";
import { initFormula, inputFormula } from "../nn/_formula.ts";

type Snapshot = Record<string, Float32Array | Int32Array>;

function snapshot(sd: Record<string, Tensor>): Snapshot {
  return Object.fromEntries(
    Object.entries(sd).map(([k, t]) => [k, t.data().slice()]),
  ) as Snapshot;
}

/** Bitwise equality of two snapshots (11M values: no deepEqual). */
function assertSame(a: Snapshot, b: Snapshot, skip = ""): void {
  assert.deepEqual(Object.keys(a), Object.keys(b));
  for (const k of Object.keys(a)) {
    if (skip && k.startsWith(skip)) continue;
    const x = new Uint32Array(a[k].buffer);
    const y = new Uint32Array(b[k].buffer);
    assert.equal(x.length, y.length, k);
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== y[i]) assert.fail(`${k}[${i}]: ${a[k][i]} !== ${b[k][i]}`);
    }
  }
}

function captureWarnings<T>(fn: () => T): { value: T; warnings: string[] } {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.join(" "));
  try {
    return { value: fn(), warnings };
  } finally {
    console.warn = original;
  }
}

const dir = await Deno.makeTempDir({ prefix: "kdeno_pretrained_" });
const source = models.resnet18();
initFormula(source);
const sourceState = snapshot(source.stateDict());
const safetensorsPath = join(dir, "resnet18.safetensors");
await saveSafetensors(safetensorsPath, source.stateDict());

Deno.test("resnet18({ weights }) loads a .safetensors path with every tensor", () => {
  const { value: net, warnings } = captureWarnings(() =>
    models.resnet18({ weights: safetensorsPath })
  );
  assert.deepEqual(warnings, []);
  assert.deepEqual(net.fc.weight.shape, [1000, 512]); // numClasses from the file
  assertSame(snapshot(net.stateDict()), sourceState);
  const x = inputFormula([1, 3, 32, 32]);
  source.eval();
  net.eval();
  noGrad(() =>
    assert.deepEqual(net.call(x).toArray(), source.call(x).toArray())
  );
});

Deno.test("resnet18({ numClasses: 2, weights }) replaces the head and says so", async () => {
  const { value: net, warnings } = captureWarnings(() =>
    models.resnet18({ numClasses: 2, weights: safetensorsPath })
  );
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    /resnet18: .*different head: fc keeps its fresh initialisation \(fc\.weight \[1000, 512\] -> \[2, 512\], fc\.bias \[1000\] -> \[2\]\); the other 120 tensors were loaded/,
  );
  assert.deepEqual(net.fc.weight.shape, [2, 512]);
  assertSame(snapshot(net.stateDict()), sourceState, "fc.");
  // the same through io.loadPretrained with a loaded state dict: a note,
  // no warning, and the caller's dict left usable
  const dict = await loadWeights(safetensorsPath);
  const other = models.resnet18({ numClasses: 2 });
  const r = loadPretrained(other, dict, { head: "fc" });
  assert.deepEqual(r.replacedKeys, ["fc.weight", "fc.bias"]);
  assert.equal(r.loadedKeys.length, 120);
  assert.match(r.note ?? "", /fc keeps its fresh initialisation/);
  assert.deepEqual(dict["conv1.weight"].shape, [64, 3, 7, 7]);
});

Deno.test("resnet18({ weights: stateDict }) accepts files without num_batches_tracked", () => {
  const dict: Record<string, Tensor> = { ...source.stateDict() };
  for (const k of Object.keys(dict)) {
    if (k.endsWith("num_batches_tracked")) delete dict[k];
  }
  assert.equal(Object.keys(dict).length, 102); // torchvision's published file
  const net = models.resnet18({ weights: dict });
  assert.equal(net.stateDict()["bn1.num_batches_tracked"].item(), 0);
  assert.deepEqual(
    net.stateDict()["layer4.1.bn2.running_var"].data(),
    sourceState["layer4.1.bn2.running_var"],
  );
  assert.equal(dict["conv1.weight"].isDisposed, false); // caller's tensors kept
});

Deno.test("resnet18({ weights }) refuses weights that do not fit, loading nothing", async (t) => {
  const base = source.stateDict();
  const net = models.resnet18();
  const before = snapshot(net.stateDict());
  const refuse = (dict: Record<string, Tensor>, pattern: RegExp) => {
    assert.throws(
      () => loadPretrained(net, dict, { head: "fc" }),
      (e: Error) => {
        assert.ok(e instanceof CheckpointError, String(e));
        assert.match(e.message, pattern);
        return true;
      },
    );
    assertSame(snapshot(net.stateDict()), before);
  };
  await t.step("a missing backbone tensor (through the factory)", () => {
    const { "layer2.0.conv1.weight": _, ...rest } = base;
    assert.throws(
      () => models.resnet18({ weights: rest }),
      /missing keys: layer2\.0\.conv1\.weight/,
    );
  });
  await t.step("an unexpected key", () =>
    refuse(
      { ...base, "layer5.0.conv1.weight": base["conv1.weight"] },
      /unexpected keys: layer5\.0\.conv1\.weight/,
    ));
  await t.step("a wrong shape outside the head", () =>
    refuse(
      { ...base, "layer1.0.bn1.weight": base["layer2.0.bn1.weight"] },
      /shape mismatches: layer1\.0\.bn1\.weight: weights \[128\], model \[64\]/,
    ));
  await t.step("a safetensors header that lies about offsets", async () => {
    const header = new TextEncoder().encode(JSON.stringify({
      "fc.weight": { dtype: "F32", shape: [2, 512], data_offsets: [0, 4096] },
    }));
    const bytes = new Uint8Array(8 + header.length + 16);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    const path = join(dir, "lying.safetensors");
    await Deno.writeFile(path, bytes);
    assert.throws(
      () => models.resnet18({ weights: path }),
      (e: Error) =>
        e instanceof CheckpointError && e.message.includes(path) &&
        /beyond the data section/.test(e.message),
    );
  });
  await t.step("a missing file", () =>
    assert.throws(
      () => models.resnet18({ weights: join(dir, "absent.pth") }),
      (e: Error) =>
        e instanceof CheckpointError && /absent\.pth/.test(e.message),
    ));
});

// ---- a torchvision checkpoint, generated where PyTorch is installed --------

async function torchReason(): Promise<string | null> {
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import torch, torchvision"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success
      ? null
      : "/usr/bin/python3 cannot import torch and torchvision";
  } catch {
    return "/usr/bin/python3 is not installed";
  }
}

const noTorch = await torchReason();

Deno.test({
  name: noTorch
    ? `resnet18({ weights: torchvision .pth }) skipped: ${noTorch}`
    : "resnet18({ weights: torchvision .pth }) matches torchvision's logits",
  ignore: noTorch !== null,
  async fn(t) {
    const gen = new URL("../fixtures/pth/make_resnet18.py", import.meta.url);
    const r = await new Deno.Command("/usr/bin/python3", {
      args: [gen.pathname, dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    const ref = JSON.parse(
      await Deno.readTextFile(join(dir, "resnet18_logits.json")),
    ) as { inputShape: number[]; keys: number; logits: number[] };
    const x = inputFormula(ref.inputShape);
    for (const file of ["resnet18.pth", "resnet18_legacy.pth"]) {
      await t.step(file, async () => {
        const path = join(dir, file);
        const sd = await loadTorch(path);
        assert.equal(Object.keys(sd).length, ref.keys);
        assert.deepEqual(sd["fc.weight"].shape, [1000, 512]);
        const net = models.resnet18({ weights: path }).eval();
        const logits = noGrad(() => net.call(x));
        assertClose(logits, ref.logits, {
          rtol: 1e-4,
          atol: 1e-4,
          shape: [2, 1000],
          msg: file,
        });
      });
    }
    await t.step("numClasses 2 keeps the backbone", () => {
      const path = join(dir, "resnet18.pth");
      const { value: net, warnings } = captureWarnings(() =>
        models.resnet18({ numClasses: 2, weights: path })
      );
      assert.equal(warnings.length, 1);
      assert.ok(warnings[0].includes(path));
      assert.deepEqual(net.fc.weight.shape, [2, 512]);
    });
  },
});

globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});
