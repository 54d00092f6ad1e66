// exportOnnx(): the exported StudentNet and ResNet-18 run in ONNX Runtime
// (npm:onnxruntime-node, its CPU binary from the npm package; its install
// script, which would download CUDA libraries, is not run) and give kdeno's
// logits within 1e-4, and so do a user's own modules (the exporter traces
// the ops a forward pass runs); the file's structure is read back with a
// small protobuf reader; the first op with no ONNX counterpart is refused
// by name. Where
// /usr/bin/python3 has Debian's python3-onnx, onnx.checker also validates
// the files.
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  exportOnnx,
  ONNX_OPSET,
  OnnxExportError,
  serializeOnnx,
} from "../../src/io/mod.ts";
import {
  cat,
  CheckpointError,
  indexSelect,
  manualSeed,
  matmul,
  maximum,
  minimum,
  models,
  nn,
  noGrad,
  randn,
  sub,
  type Tensor,
  tensor,
  where,
} from "../../mod.ts";
import { maxPool2d } from "../../src/ops/pool.ts";
import { dropout } from "../../src/ops/creation.ts";
import { assertClose } from "../_helpers.ts";
import { initFormula, inputFormula } from "../nn/_formula.ts";

type Ort = typeof import("npm:onnxruntime-node@1.30.0");
let ort: Ort | null = null;
let noOrt = "";
try {
  ort = await import("npm:onnxruntime-node@1.30.0");
} catch (e) {
  noOrt = `onnxruntime-node@1.30.0 does not load here: ${
    (e as Error).message.split("\n")[0]
  }`;
}

// ---- a minimal protobuf reader, to look inside the file ---------------------

type Fields = Map<number, (bigint | Uint8Array)[]>;

function decode(buf: Uint8Array): Fields {
  const out: Fields = new Map();
  let pos = 0;
  const varint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const [field, wire] = [key >> 3, key & 7];
    let v: bigint | Uint8Array;
    if (wire === 0) v = varint();
    else if (wire === 2) {
      const n = Number(varint());
      v = buf.subarray(pos, pos + n);
      pos += n;
    } else if (wire === 5) {
      v = BigInt(
        new DataView(buf.buffer, buf.byteOffset + pos).getUint32(0, true),
      );
      pos += 4;
    } else throw new Error(`wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), v]);
  }
  return out;
}

const text = (b: bigint | Uint8Array) =>
  new TextDecoder().decode(b as Uint8Array);

function summary(bytes: Uint8Array) {
  const model = decode(bytes);
  const graph = decode(model.get(7)![0] as Uint8Array);
  const opset = decode(model.get(8)![0] as Uint8Array);
  const nodes = (graph.get(1) ?? []).map((n) => decode(n as Uint8Array));
  const inits = (graph.get(5) ?? []).map((n) => decode(n as Uint8Array));
  return {
    irVersion: Number(model.get(1)![0]),
    opset: Number(opset.get(2)![0]),
    ops: nodes.map((n) => text(n.get(4)![0])),
    inputs: (graph.get(11) ?? []).map((v) =>
      text(decode(v as Uint8Array).get(1)![0])
    ),
    outputs: (graph.get(12) ?? []).map((v) =>
      text(decode(v as Uint8Array).get(1)![0])
    ),
    initializers: inits.map((t) => text(t.get(8)![0])),
  };
}

// ---- models ------------------------------------------------------------------

async function runOrt(bytes: Uint8Array, x: Tensor): Promise<number[]> {
  const session = await ort!.InferenceSession.create(bytes);
  const r = await session.run({
    input: new ort!.Tensor("float32", x.data() as Float32Array, [...x.shape]),
  });
  return Array.from(r.output.data as Float32Array);
}

function prepared<M extends nn.Module>(m: M): M {
  initFormula(m);
  return m.eval();
}

const dir = await Deno.makeTempDir({ prefix: "kdeno_onnx_" });

const cases = [
  {
    name: "StudentNet",
    model: () => prepared(new models.StudentNet()),
    shape: [2, 3, 224, 224],
    ops: ["Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm"],
  },
  {
    name: "ResNet-18",
    model: () => prepared(models.resnet18({ numClasses: 2 })),
    shape: [2, 3, 64, 64],
    ops: null,
  },
];

for (const c of cases) {
  Deno.test({
    name: ort
      ? `exportOnnx() ${c.name} runs in onnxruntime with kdeno's logits`
      : `exportOnnx() ${c.name} in onnxruntime skipped: ${noOrt}`,
    ignore: !ort,
    async fn() {
      manualSeed(0);
      const model = c.model();
      const path = join(dir, `${c.name}.onnx`);
      await exportOnnx(model, inputFormula(c.shape), path);
      const bytes = await Deno.readFile(path);
      // the sample's batch and another (the batch dim is symbolic)
      for (const batch of [c.shape[0], 3]) {
        const x = batch === c.shape[0]
          ? inputFormula(c.shape)
          : randn([batch, ...c.shape.slice(1)]);
        const want = noGrad(() => model.call(x));
        const got = await runOrt(bytes, x);
        assertClose(got, want.toArray() as number[][], {
          atol: 1e-4,
          rtol: 1e-4,
          msg: `${c.name} batch ${batch}`,
        });
      }
    },
  });
}

Deno.test("serializeOnnx() writes opset 17 with torchvision's names", () => {
  const s = summary(
    serializeOnnx(
      prepared(new models.StudentNet({ inputSize: 8 })),
      inputFormula([1, 3, 8, 8]),
    ),
  );
  assert.equal(s.opset, ONNX_OPSET);
  assert.equal(s.irVersion, 8);
  assert.deepEqual(s.ops, cases[0].ops);
  assert.deepEqual(s.inputs, ["input"]);
  assert.deepEqual(s.outputs, ["output"]);
  assert.deepEqual(s.initializers, [
    "layer1.0.weight",
    "layer1.0.bias",
    "layer1.1.weight",
    "layer1.1.bias",
    "layer1.1.running_mean",
    "layer1.1.running_var",
    "fc.weight",
    "fc.bias",
  ]);

  const r = summary(
    serializeOnnx(models.resnet18({ numClasses: 2 }), randn([1, 3, 32, 32])),
  );
  const count = (op: string) => r.ops.filter((o) => o === op).length;
  assert.equal(count("Conv"), 20);
  assert.equal(count("BatchNormalization"), 20);
  assert.equal(count("Add"), 8);
  assert.equal(count("Relu"), 17);
  assert.deepEqual(r.ops.slice(-3), ["GlobalAveragePool", "Flatten", "Gemm"]);
  assert.equal(r.initializers.length, 20 + 4 * 20 + 2);
});

Deno.test("serializeOnnx() covers every core layer", async (t) => {
  const net = () =>
    prepared(
      new nn.Sequential(
        new nn.Conv2d(3, 4, 3, { stride: 2, padding: 1, bias: false }),
        new nn.BatchNorm2d(4, { affine: false }),
        new nn.ReLU(),
        new nn.AvgPool2d(2, { stride: 1, padding: 1, countIncludePad: false }),
        new nn.MaxPool2d(2, { ceilMode: false }),
        new nn.AdaptiveAvgPool2d(2),
        new nn.Dropout(0.5),
        new nn.Identity(),
        new nn.Flatten(),
        new nn.Linear(16, 5),
      ),
    );
  await t.step("the graph", () => {
    const s = summary(serializeOnnx(net(), randn([2, 3, 16, 16])));
    assert.deepEqual(s.ops, [
      "Conv",
      "BatchNormalization",
      "Relu",
      "AveragePool",
      "MaxPool",
      "AveragePool",
      "Flatten",
      "Gemm",
    ]);
  });
  await t.step({
    name: "in onnxruntime",
    ignore: !ort,
    fn: async () => {
      const m = net();
      const x = randn([2, 3, 16, 16]);
      const got = await runOrt(serializeOnnx(m, x), x);
      assertClose(got, noGrad(() => m.call(x)).toArray() as number[][], {
        atol: 1e-4,
      });
    },
  });
  await t.step({
    name: "Linear on 3-D input, Flatten of middle dims, fixed batch",
    ignore: !ort,
    fn: async () => {
      const m = prepared(
        new nn.Sequential(new nn.Flatten(2, 3), new nn.Linear(6, 2)),
      );
      const x = randn([2, 4, 2, 3]);
      const bytes = serializeOnnx(m, x, { dynamicBatch: false });
      assert.deepEqual(summary(bytes).ops, ["Reshape", "MatMul", "Add"]);
      assertClose(
        await runOrt(bytes, x),
        noGrad(() => m.call(x)).toArray() as number[][][],
        {
          atol: 1e-5,
        },
      );
    },
  });
  await t.step({
    name: "an identity model",
    ignore: !ort,
    fn: async () => {
      const x = tensor([[1, 2, 3]]);
      const bytes = serializeOnnx(new nn.Identity(), x);
      assert.deepEqual(await runOrt(bytes, x), [1, 2, 3]);
    },
  });
});

// a user's own module: the exporter traces its ops, it knows no layer
class Net extends nn.Module {
  conv1 = new nn.Conv2d(3, 4, 3, { padding: 1 });
  conv2 = new nn.Conv2d(4, 4, 3, { padding: 1, bias: false });
  bn = new nn.BatchNorm2d(4);
  fc = new nn.Linear(4 * 4 * 4, 5);
  override forward(x: Tensor): Tensor {
    const h = this.conv1.call(x).relu();
    const r = this.bn.call(this.conv2.call(h)).add(h).relu(); // residual
    return this.fc.call(maxPool2d(r, 2).flatten(1)).softmax(1);
  }
}

// many elementwise, shape and reduction ops in one forward pass
class Mixed extends nn.Module {
  w = nn.Parameter(randn([6]));
  override forward(x: Tensor): Tensor {
    const a = x.mul(0.5).sub(1).abs().add(0.1).sqrt(); // [n, 4, 6]
    const b = sub(2, x).div(x.square().add(1)).tanh();
    const c = x.sigmoid().mul(this.w).pow(2).neg().exp().log();
    const d = maximum(a, b).clamp(-0.5, 0.9).rsqrt();
    const e = where(x.gt(0), c, minimum(a, b));
    const f = cat([d, e.permute([0, 2, 1]).transpose(1, 2)], 1); // [n, 8, 6]
    const g = f.slice(1, 1, 7, 2).mean(1, { keepdim: true }); // [n, 1, 6]
    const h = f.sum(1).add(f.max(1)).sub(
      f.min(2).unsqueeze(2).expand([-1, -1, 6]).sum(1),
    );
    const m = matmul(g, f.permute([0, 2, 1])).squeeze(1); // [n, 8]
    const top = f.gather(2, f.argmax(2, { keepdim: true })).squeeze(2); // [n, 8]
    const picked = indexSelect(
      m.add(top),
      1,
      tensor([7, 0, 3, 3, 1, 2, 6, 5], {
        dtype: "int32",
      }),
    ).add(f.argmin().float());
    return cat([h, picked], 1).logSoftmax(1).mul(
      tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
    );
  }
}

Deno.test("serializeOnnx() traces a user's own modules and hooks", async (t) => {
  await t.step({
    name: "conv, relu, residual add, flatten, linear, softmax in onnxruntime",
    ignore: !ort,
    fn: async () => {
      manualSeed(1);
      const m = prepared(new Net());
      const x = randn([2, 3, 8, 8]);
      const bytes = serializeOnnx(m, x);
      const s = summary(bytes);
      assert.deepEqual(s.ops, [
        "Conv",
        "Relu",
        "Conv",
        "BatchNormalization",
        "Add",
        "Relu",
        "MaxPool",
        "Flatten",
        "Gemm",
        "Softmax",
      ]);
      assert.deepEqual(s.initializers, [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "fc.weight",
        "fc.bias",
      ]);
      for (const batch of [2, 3]) {
        const xb = batch === 2 ? x : randn([batch, 3, 8, 8]);
        assertClose(
          await runOrt(bytes, xb),
          noGrad(() => m.call(xb)).toArray() as number[][],
          { atol: 1e-4, rtol: 1e-4, msg: `batch ${batch}` },
        );
      }
    },
  });
  await t.step({
    name: "elementwise, shape and reduction ops in onnxruntime",
    ignore: !ort,
    fn: async () => {
      manualSeed(2);
      const m = new Mixed().eval();
      const x = randn([2, 4, 6]);
      const bytes = serializeOnnx(m, x);
      for (const batch of [2, 5]) {
        const xb = batch === 2 ? x : randn([batch, 4, 6]);
        assertClose(
          await runOrt(bytes, xb),
          noGrad(() => m.call(xb)).toArray() as number[][],
          { atol: 1e-4, rtol: 1e-4, msg: `batch ${batch}` },
        );
      }
    },
  });
  await t.step({
    name: "a subclass overriding forward() and a forward hook",
    ignore: !ort,
    fn: async () => {
      class LeakyBlock extends nn.Linear {
        override forward(x: Tensor): Tensor {
          return super.forward(x).relu();
        }
      }
      const relu = new nn.ReLU();
      relu.registerForwardHook((_m, _i, y) => y.mul(3));
      const m = new nn.Sequential(new LeakyBlock(2, 3), relu).eval();
      const x = randn([4, 2]);
      const bytes = serializeOnnx(m, x);
      assert.deepEqual(summary(bytes).ops, ["Gemm", "Relu", "Relu", "Mul"]);
      assertClose(
        await runOrt(bytes, x),
        noGrad(() => m.call(x)).toArray() as number[][],
        { atol: 1e-5 },
      );
    },
  });
});

Deno.test("serializeOnnx() names the first op with no ONNX counterpart", async (t) => {
  class Noisy extends nn.Module {
    fc = new nn.Linear(3, 3);
    override forward(x: Tensor): Tensor {
      return dropout(this.fc.call(x).relu(), { p: 0.5, training: true }).add(1);
    }
  }
  await t.step("an op without a counterpart", () =>
    assert.throws(
      () => serializeOnnx(new nn.Sequential(new Noisy()), randn([1, 3])),
      (e: Error) => {
        assert.ok(e instanceof OnnxExportError);
        assert.match(
          e.message,
          /^Cannot export Sequential to ONNX: its forward pass runs dropout \(op 3 of the trace, output \[1, 3\]\), which draws a random mask .*; the exporter writes conv2d, /,
        );
        return true;
      },
    ));
  await t.step("BatchNorm2d without running statistics", () =>
    assert.throws(
      () =>
        serializeOnnx(
          new nn.BatchNorm2d(3, { trackRunningStats: false }),
          randn([2, 3, 4, 4]),
        ),
      (e: Error) =>
        e instanceof OnnxExportError &&
        /runs batchNorm .*normalises with batch statistics/.test(e.message),
    ));
  await t.step("AdaptiveAvgPool2d with uneven windows", () =>
    assert.throws(
      () => serializeOnnx(new nn.AdaptiveAvgPool2d(3), randn([1, 1, 5, 5])),
      /runs adaptiveAvgPool2d .*output \[3, 3\] does not divide the input's \[5, 5\]/,
    ));
  await t.step("training mode is restored after export", () => {
    const m = new models.StudentNet({ inputSize: 4 });
    serializeOnnx(m, randn([1, 3, 4, 4]));
    assert.ok(m.modules().every((x) => x.training));
  });
});

async function pythonOnnx(): Promise<string | null> {
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import onnx"],
      stdout: "null",
      stderr: "null",
    }).output();
    return r.success
      ? null
      : "/usr/bin/python3 cannot import onnx (apt-get install python3-onnx)";
  } catch {
    return "/usr/bin/python3 is not installed";
  }
}
const noPythonOnnx = await pythonOnnx();

Deno.test({
  name: noPythonOnnx
    ? `exportOnnx() files pass onnx.checker skipped: ${noPythonOnnx}`
    : "exportOnnx() files pass onnx.checker (full check)",
  ignore: noPythonOnnx !== null,
  async fn() {
    const check = async (model: nn.Module, x: Tensor, dims: RegExp) => {
      const path = join(dir, `checked-${model.constructor.name}.onnx`);
      await exportOnnx(model, x, path);
      const r = await new Deno.Command("/usr/bin/python3", {
        args: [
          "-c",
          "import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print(onnx.shape_inference.infer_shapes(m).graph.output[0].type.tensor_type.shape)",
          path,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(r.success, new TextDecoder().decode(r.stderr));
      assert.match(new TextDecoder().decode(r.stdout), dims);
    };
    await check(
      prepared(models.resnet18({ numClasses: 2 })),
      randn([1, 3, 32, 32]),
      /dim_param: "batch"[\s\S]*dim_value: 2/,
    );
    await check(
      prepared(new Net()),
      randn([2, 3, 8, 8]),
      /dim_param: "batch"[\s\S]*dim_value: 5/,
    );
    await check(
      new Mixed().eval(),
      randn([2, 4, 6]),
      /dim_param: "batch"[\s\S]*dim_value: 14/,
    );
  },
});

Deno.test("exportOnnx() to a path it cannot write throws CheckpointError naming that path", async (t) => {
  const root = await Deno.makeTempDir({ dir, prefix: "paths-" });
  const net = new nn.Sequential(new nn.Linear(2, 2));
  const x = tensor([[1, 2]]);
  const file = join(root, "a-file");
  await Deno.writeTextFile(file, "not a folder");
  const folder = join(root, "a-folder.onnx");
  await Deno.mkdir(folder);
  const cases: [string, string, string][] = [
    [
      "a missing folder",
      join(root, "missing", "model.onnx"),
      `folder ${join(root, "missing")} does not exist`,
    ],
    ["a folder", folder, "it is a folder"],
    [
      "a file as the folder",
      join(file, "model.onnx"),
      `${file} is a file, not a folder`,
    ],
  ];
  for (const [name, path, why] of cases) {
    await t.step(name, async () => {
      const err = await exportOnnx(net, x, path).then(
        () => assert.fail(`exportOnnx() wrote ${path}`),
        (e) => e,
      );
      assert.ok(
        err instanceof CheckpointError,
        `expected CheckpointError, got ${err?.name}: ${err?.message}`,
      );
      assert.equal(err.message, `Cannot write ONNX file ${path}: ${why}`);
      assert.doesNotMatch(err.message, /\.tmp/);
    });
  }
  await t.step(
    "a failed write names the path, not the temporary file",
    async () => {
      const path = join(root, `${"n".repeat(300)}.onnx`);
      const err = await exportOnnx(net, x, path).then(
        () => assert.fail("exportOnnx() wrote a 305-byte file name"),
        (e) => e,
      );
      assert.ok(err instanceof CheckpointError, String(err));
      assert.match(err.message, /^Cannot write ONNX file \/.*n\.onnx: \S/);
      assert.ok(err.message.startsWith(`Cannot write ONNX file ${path}: `));
      assert.doesNotMatch(err.message, /\.tmp/);
      assert.ok(err.cause instanceof Error);
    },
  );
  await t.step("nothing is left behind", async () => {
    const left = [];
    for await (const e of Deno.readDir(root)) left.push(e.name);
    assert.deepEqual(left.sort(), ["a-file", "a-folder.onnx"]);
    assert.equal(
      (await Deno.readDir(folder)[Symbol.asyncIterator]().next()).done,
      true,
    );
  });
  await t.step(
    "a file URL with an escaped space writes the named file",
    async () => {
      await Deno.mkdir(join(root, "with space"));
      const path = join(root, "with space", "model.onnx");
      const url = new URL(`file://${path}`);
      assert.match(url.href, /with%20space/);
      await exportOnnx(net, x, url);
      assert.ok((await Deno.stat(path)).size > 0);
    },
  );
});

globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});
