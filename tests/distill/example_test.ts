import assert from "node:assert/strict";
import { join } from "node:path";
import { models } from "../../mod.ts";
import { op, pickle, pth, tensorOps } from "../io/_craft.ts";

const example = new URL("../../examples/distill.ts", import.meta.url).pathname;
const trainLoop =
  new URL("../../examples/train_loop.ts", import.meta.url).pathname;

async function distill(...args: string[]) {
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", example, ...args],
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return {
    code: run.code,
    stdout: dec.decode(run.stdout),
    stderr: dec.decode(run.stderr),
  };
}

const FLAGS = [
  "data",
  "size",
  "epochs",
  "teacher-epochs",
  "batch-size",
  "lr",
  "temperature",
  "alpha",
  "preset",
  "device",
  "seed",
  "seeds",
  "workers",
  "out",
  "teacher",
  "freeze-backbone",
  "labeled",
  "transfer",
  "resume",
  "max-train",
  "help",
];

Deno.test("examples/distill.ts --help: every flag, with its meaning and default", async () => {
  const { code, stdout, stderr } = await distill("--help");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^Usage: deno run -A examples\/distill\.ts \[flags\]$/m);
  const listed = [...stdout.matchAll(/^ {2}--([a-z-]+)/gm)].map((m) => m[1]);
  assert.deepEqual(listed, FLAGS);
  // the example's own table: a flag added there without help would show here
  const source = await Deno.readTextFile(example);
  const table = source.slice(
    source.indexOf("const FLAGS = {"),
    source.indexOf("} as const satisfies"),
  );
  const declared = [...table.matchAll(/^ {2}"?([a-z-]+)"?: \{/gm)].map((m) =>
    m[1]
  );
  assert.deepEqual(declared, FLAGS);
  // every flag has a meaning under it; defaults as the example applies them
  const blocks = stdout.split(/^ {2}--/m).slice(1);
  assert.equal(blocks.length, FLAGS.length);
  const help = new Map(blocks.map((b) => {
    const [head, ...text] = b.split("\n");
    assert.ok(text[0]?.startsWith("      "), b);
    return [head, text.join(" ").replace(/\s+/g, " ").trim()];
  }));
  for (
    const [flag, def] of [
      ["epochs N", "6"],
      ["batch-size N", "32"],
      ["lr X", "0.001"],
      ["preset tutorial|recommended", "recommended"],
      ["device cpu|cuda", "the default backend"],
      ["seed N", "0"],
      ["seeds N", "3"],
      ["workers N", "0"],
      ["out DIR", "out/distill"],
      [
        "size N",
        "28 for the bundled data; with --data, 224 as in the tutorial",
      ],
      ["temperature X", "from --preset"],
      ["alpha X", "from --preset"],
    ]
  ) {
    assert.ok(
      help.get(flag)?.endsWith(`(default: ${def})`),
      `${flag}: ${help.get(flag)}`,
    );
  }
  assert.match(help.get("teacher FILE")!, /safetensors or PyTorch \.pth/);
});

Deno.test("examples/distill.ts: a misspelled flag names the closest one, in one line, exit code 2", async () => {
  for (
    const [typed, meant] of [
      ["--lrr", "--lr"],
      ["--epoch", "--epochs"],
      ["--batchsize", "--batch-size"],
      ["--freeze-backbon", "--freeze-backbone"],
      ["--teachr", "--teacher"],
    ]
  ) {
    const { code, stdout, stderr } = await distill(typed, "1");
    assert.equal(code, 2, typed);
    assert.equal(stdout, "");
    assert.equal(
      stderr,
      `distill: unknown flag ${typed} (did you mean ${meant}?)\n`,
    );
  }
});

Deno.test("examples/distill.ts: bad values are refused in one line each, before any data is read", async () => {
  for (
    const [args, message] of [
      [["--lr", "abc"], /^distill: --lr must be a number above 0, got abc$/],
      [["--device", "gpu"], /^distill: --device must be cpu or cuda, got gpu$/],
      [
        ["--data", "/no/such/folder"],
        /^distill: --data: no such folder: \/no\/such\/folder$/,
      ],
      [["--seeds", "0"], /^distill: --seeds must be an integer ≥ 1, got 0$/],
      [
        ["--epochs", "1.5"],
        /^distill: --epochs must be an integer ≥ 1, got 1\.5$/,
      ],
      [
        ["--alpha", "2"],
        /^distill: --alpha must be a number from 0 to 1, got 2$/,
      ],
      [
        ["--teacher", "/no/such.pth"],
        /^distill: --teacher: no such file: \/no\/such\.pth$/,
      ],
      [
        ["--preset", "tutoral"],
        /^distill: --preset must be tutorial or recommended, got tutoral \(did you mean tutorial\?\)$/,
      ],
      [["--transfer", "rest"], /^distill: --transfer rest needs --labeled N$/],
      [["--size"], /^distill: --size needs a value N$/],
      [["data/"], /^distill: unexpected argument data\/: /],
    ] as const
  ) {
    const { code, stdout, stderr } = await distill(...args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stdout, "", args.join(" ")); // nothing read, nothing printed
    assert.equal(stderr.trimEnd().split("\n").length, 1, stderr);
    assert.match(stderr.trimEnd(), message);
  }
});

Deno.test("examples/distill.ts: --data without --size uses 224 and says so", async () => {
  const dir = await Deno.makeTempDir();
  const { code, stdout, stderr } = await distill("--data", dir);
  assert.match(stdout, /^Input size: 224×224 \(the tutorial's/m);
  // the folder has no train/: refused in one line, not a stack trace
  assert.equal(code, 2);
  assert.match(stderr, /^distill: Cannot open split folder .*train/);
  assert.doesNotMatch(stderr, /\n {4}at /);
  await Deno.remove(dir, { recursive: true });
});

/** A torch.save-style .pth of a fresh 2-class ResNet-18 (no PyTorch needed). */
async function resnet18Pth(path: string): Promise<void> {
  const sd = models.resnet18({ numClasses: 2 }).stateDict();
  const items: number[][] = [];
  const storages: Record<string, Uint8Array> = {};
  for (const [i, [name, t]] of Object.entries(sd).entries()) {
    const key = String(i);
    const size = [...t.shape];
    const stride = size.map((_, d) =>
      size.slice(d + 1).reduce((a, b) => a * b, 1)
    );
    const numel = size.reduce((a, b) => a * b, 1);
    const d = t.data();
    const long = t.dtype !== "float32";
    items.push(
      op.str(name),
      ...tensorOps({
        key,
        storageClass: long ? "LongStorage" : "FloatStorage",
        numel,
        size,
        stride,
      }),
    );
    storages[key] = long
      ? new Uint8Array(BigInt64Array.from(d, (v) => BigInt(v)).buffer)
      : new Uint8Array(Float32Array.from(d).buffer);
  }
  const pkl = pickle(
    op.proto(),
    op.emptyDict,
    op.mark,
    ...items,
    op.setitems,
    op.stop,
  );
  await Deno.writeFile(path, pth(pkl, storages));
}

Deno.test("examples/distill.ts --teacher FILE.pth: a PyTorch checkpoint is read as such and used", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "teacher.pth");
  await resnet18Pth(file);
  const out = join(dir, "out");
  const { code, stdout, stderr } = await distill(
    "--teacher",
    file,
    "--max-train",
    "32",
    "--epochs",
    "1",
    "--seeds",
    "1",
    "--out",
    out,
  );
  assert.equal(code, 0, stderr + stdout);
  assert.match(stdout, /^Input size: 28×28 \(the bundled data's\)$/m);
  assert.ok(stdout.includes(`Teacher: loaded ${file}, used as is`), stdout);
  const results = JSON.parse(
    await Deno.readTextFile(join(out, "results.json")),
  );
  assert.equal(results.teacher.params, 11177538);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("examples/train_loop.ts: one epoch of the plain loop prints its loss and a test accuracy above chance", async () => {
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", trainLoop, "--epochs", "1"],
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr) + stdout);
  const m = /^epoch 1: train loss (\d\.\d{4}), test accuracy (\d\.\d{4})$/m
    .exec(stdout);
  assert.ok(m, stdout);
  assert.ok(Number.isFinite(Number(m[1])));
  assert.ok(Number(m[2]) > 0.6, `test accuracy ${m[2]} beats chance`);
});

Deno.test("examples/distill.ts: a short run on the bundled data beats chance and writes well-formed results, metrics.jsonl and report.html", async () => {
  const out = await Deno.makeTempDir();
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      example,
      "--max-train",
      "192",
      "--epochs",
      "2",
      "--teacher-epochs",
      "1",
      "--seeds",
      "2",
      "--out",
      out,
    ],
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr) + stdout);
  assert.match(stdout, /^Epoch 1\/1$/m);
  assert.match(stdout, /^train Loss: \d\.\d{4} Acc: \d\.\d{4}/m);
  assert.match(stdout, /^val Loss: \d\.\d{4} Acc: \d\.\d{4}$/m);
  assert.match(
    stdout,
    /KD (did not beat|did not reliably beat|beat) the student/,
  );
  const results = JSON.parse(
    await Deno.readTextFile(join(out, "results.json")),
  );
  for (const key of ["teacher", "student", "studentKd"]) {
    const e = results[key];
    for (const field of ["accuracy", "params", "latencyMs", "macs"]) {
      assert.equal(typeof e[field], "number", `${key}.${field}`);
      assert.ok(Number.isFinite(e[field]), `${key}.${field} = ${e[field]}`);
    }
    assert.ok(e.accuracy > 0.6, `${key} accuracy ${e.accuracy} beats chance`);
  }
  assert.equal(results.teacher.params, 11177538);
  assert.equal(results.student.accuracyPerSeed.length, 2);
  assert.equal(results.student.accuracyCI95.length, 2);
  assert.equal(results.comparison.mcnemar.length, 2);
  // latencies are measured, not compared (no timing assertions in tests)
  for (const key of ["teacher", "student"]) {
    const ms = results[key].latencyMs;
    assert.ok(Number.isFinite(ms) && ms > 0, `${key}.latencyMs = ${ms}`);
  }
  const md = await Deno.readTextFile(join(out, "results.md"));
  assert.match(md, /\| Teacher \(ResNet-18\) \|/);
  assert.match(md, /\| Student, KD \|/);
  assert.match(
    md,
    /\*\*KD (did not beat|did not reliably beat|beat) the student/,
  );
  // metrics.jsonl: per model, run, epoch and phase (teacher: 1 epoch;
  // 2 arms × 2 seeds × 2 epochs), train then val
  const lines = (await Deno.readTextFile(join(out, "metrics.jsonl")))
    .trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 2 + 2 * 2 * 2 * 2);
  assert.deepEqual(
    lines.slice(0, 4).map((l) => [l.model, l.run, l.epoch, l.phase]),
    [
      ["Teacher (ResNet-18)", null, 1, "train"],
      ["Teacher (ResNet-18)", null, 1, "val"],
      ["Student, no KD", "seed 0", 1, "train"],
      ["Student, no KD", "seed 0", 1, "val"],
    ],
  );
  for (const l of lines) {
    assert.ok(Number.isFinite(l.loss) && Number.isFinite(l.acc));
    assert.equal(typeof l.seconds, "number");
    assert.equal(typeof l.lr, "number");
  }
  // report.html: curves of the 3 models, their confusion matrices, ROC, tables
  const html = await Deno.readTextFile(join(out, "report.html"));
  const charts = [...html.matchAll(/<svg data-chart="([^"]+)"/g)].map((m) =>
    m[1]
  );
  assert.deepEqual(charts, [
    "loss-teacher-resnet-18",
    "accuracy-teacher-resnet-18",
    "loss-student-no-kd",
    "accuracy-student-no-kd",
    "loss-student-kd",
    "accuracy-student-kd",
    "roc",
  ]);
  assert.equal((html.match(/<table class="confusion"/g) ?? []).length, 3);
  assert.match(html, /<th scope="col">McNemar p<\/th>/);
  assert.match(
    html,
    /KD (did not beat|did not reliably beat|beat) the student/,
  );
  assert.match(html, /<th scope="row">kdeno version<\/th>/);
  await Deno.remove(out, { recursive: true });
});
