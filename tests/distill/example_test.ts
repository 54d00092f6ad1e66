import assert from "node:assert/strict";
import { join } from "node:path";
import { models } from "../../mod.ts";
import { deflateSync } from "node:zlib";
import { op, pickle, pth, tensorOps } from "../io/_craft.ts";
import { png } from "../data/_craft.ts";

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
  "label-scarce",
  "balance",
  "resume",
  "max-train",
  "subset",
  "full",
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
      [
        "epochs N",
        "6 for the bundled data; with --data, 30 as in the tutorial",
      ],
      ["batch-size N", "32"],
      ["lr X", "0.001"],
      [
        "preset tutorial|recommended",
        "recommended for the bundled data; with --data, tutorial as in the tutorial",
      ],
      [
        "subset N",
        "500 with --data on the CPU (--full: every image); else all",
      ],
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
      ["balance none|sampler|loss|both", "none"],
      [
        "label-scarce N",
        "100 with the bundled data and none of --labeled, --transfer, --max-train; else 0",
      ],
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
      [
        ["--full", "--subset", "100"],
        /^distill: --full and --subset N exclude each other$/,
      ],
      [["--subset", "1"], /^distill: --subset must be an integer ≥ 2, got 1$/],
      [
        ["--label-scarce", "50", "--labeled", "20"],
        /^distill: --label-scarce N sets its own labels and transfer images; leave out --labeled and --transfer$/,
      ],
      [
        ["--balance", "weights"],
        /^distill: --balance must be none or sampler or loss or both, got weights$/,
      ],
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

Deno.test("examples/distill.ts: a short run on the bundled data beats chance, writes well-formed results, metrics.jsonl and report.html, and the label-scarce run beside it", async () => {
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
      "--label-scarce",
      "40",
      "--out",
      out,
    ],
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(run.stdout);
  assert.equal(run.code, 0, new TextDecoder().decode(run.stderr) + stdout);
  assert.doesNotMatch(stdout, /\b1 (epochs|seeds|runs)\b/);
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
  // the majority-class baseline (the training split is balanced: 50%) and
  // balanced accuracy beside accuracy
  assert.equal(results.majorityBaseline.accuracy, 0.5);
  assert.equal(results.majorityBaseline.className, "shirt");
  assert.ok(Array.isArray(results.warnings));
  for (const key of ["student", "studentKd"]) {
    assert.equal(results[key].perClassSensitivity.length, 2);
    assert.equal(results[key].perClassSpecificity.length, 2);
    assert.equal(results[key].dominantPrediction.length, 2);
    assert.ok(results[key].balancedAccuracy > 0.5);
  }
  assert.match(
    stdout,
    /^\| Model \| Test accuracy % \| Balanced acc\. % \| Sens\. \/ spec\. % \|/m,
  );
  assert.match(
    stdout,
    /^\| Majority class \(always shirt\) \| 50\.0 \| 50\.0 \| 0\.0 \/ 100\.0 \|/m,
  );
  // a teacher below the student trained alone is said in words
  const teacherBelow = results.teacher.accuracy < results.student.accuracy;
  assert.equal(
    stdout.includes("Warning: The teacher is less accurate on the test set"),
    teacherBelow,
  );
  // the label-scarce run: the same teacher, 40 labels, 152 transfer images
  assert.match(stdout, /^==== Run 2 of 2: label-scarce/m);
  const scarce = JSON.parse(
    await Deno.readTextFile(join(out, "label-scarce", "results.json")),
  );
  assert.equal(scarce.dataset.labeled, 40);
  assert.equal(scarce.dataset.transfer, 152);
  assert.equal(scarce.teacher.accuracy, results.teacher.accuracy);
  assert.equal(scarce.teacher.epochs, 0);
  assert.equal(scarce.config.teacherEpochs, 0);
  // both side by side, each with its verdict
  const side = stdout.slice(stdout.indexOf("==== Both runs"));
  assert.match(
    side,
    /^\| Setting \| Students' labels \| Teacher % \| Student, no KD % \| Student, KD % \| Majority class % \| KD − no KD, points \(95% CI\) \| Verdict \|$/m,
  );
  assert.match(side, /^\| Tutorial replication \| 192 \| /m);
  assert.match(
    side,
    /^\| Label-scarce: 40 labels \+ the rest unlabeled \| 40 \+ 152 unlabeled \| /m,
  );
  assert.match(
    side,
    /^Tutorial replication: KD (did not beat|did not reliably beat|beat) the student/m,
  );
  assert.match(
    side,
    /^Label-scarce: 40 labels \+ the rest unlabeled: KD (did not beat|did not reliably beat|beat) the student/m,
  );
  assert.match(side, /^2 runs in \d+ s wall, \d+ s CPU/m);
  const runs = JSON.parse(await Deno.readTextFile(join(out, "runs.json")));
  assert.deepEqual(
    runs.runs.map((r: { setting: string; dir: string }) => [r.setting, r.dir]),
    [
      ["Tutorial replication", out],
      [
        "Label-scarce: 40 labels + the rest unlabeled",
        join(out, "label-scarce"),
      ],
    ],
  );
  assert.ok(runs.wallSeconds > 0 && runs.cpuSeconds > 0);
  const md = await Deno.readTextFile(join(out, "results.md"));
  assert.match(md, /\| Teacher \(ResNet-18\) \|/);
  assert.match(md, /\| Majority class \(always shirt\) \|/);
  assert.match(md, /^Majority-class baseline: always answering "shirt"/m);
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
  assert.match(html, /<th scope="col">Balanced acc\. %<\/th>/);
  assert.match(html, /<td>Majority class \(always shirt\)<\/td>/);
  assert.equal(html.includes('<section id="warnings"'), teacherBelow);
  assert.match(
    html,
    /KD (did not beat|did not reliably beat|beat) the student/,
  );
  assert.match(html, /<th scope="row">kdeno version<\/th>/);
  await Deno.remove(out, { recursive: true });
});

/** A gray PNG, `value` everywhere, or noise from `seed`. */
function grayPng(size: number, fill: number | { seed: number }): Uint8Array {
  const row = 1 + size;
  const raw = new Uint8Array(size * row);
  let s = typeof fill === "number" ? 0 : fill.seed * 2654435761 >>> 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      raw[y * row + 1 + x] = typeof fill === "number" ? fill : s >>> 24;
    }
  }
  return png({ width: size, height: size, idat: deflateSync(raw) });
}

Deno.test("examples/distill.ts warns when every model answers one class and none beats the majority baseline (--balance both)", async () => {
  // training 3 to 1; a test split of 8 identical images, 4 of each class:
  // every model gives them all the same class, so each scores 50%, the
  // majority-class baseline ("a", the larger training class, is half of test)
  const root = await Deno.makeTempDir();
  for (const [c, n] of [["a", 30], ["b", 10]] as const) {
    await Deno.mkdir(join(root, "train", c), { recursive: true });
    await Deno.mkdir(join(root, "test", c), { recursive: true });
    for (let i = 0; i < n; i++) {
      await Deno.writeFile(
        join(root, "train", c, `${c}${i}.png`),
        grayPng(16, { seed: c === "a" ? i : 100 + i }),
      );
    }
    for (let i = 0; i < 4; i++) {
      await Deno.writeFile(
        join(root, "test", c, `${c}${i}.png`),
        grayPng(16, 128),
      );
    }
  }
  const out = join(root, "out");
  const { code, stdout, stderr } = await distill(
    "--data",
    root,
    "--size",
    "16",
    "--epochs",
    "1",
    "--seeds",
    "2",
    "--balance",
    "both",
    "--out",
    out,
  );
  assert.equal(code, 0, stderr + stdout);
  // one run only with --data; the balance settings are said
  assert.doesNotMatch(stdout, /Run 2 of 2/);
  // with --data the tutorial's loss by default (its epochs too, here --epochs 1)
  assert.match(
    stdout,
    /^KD loss: preset tutorial, T=1, alpha=0\.25 \(weight of the distillation term\), reduction mean, T² off$/m,
  );
  // where the time went, printed and in results.json
  assert.match(
    stdout,
    /^Time: setup [\d.]+ s; teacher training [\d.]+ s \(data [\d.]+ s\); students without KD .*; students with KD [\d.]+ s \(data [\d.]+ s, teacher forwards [\d.]+ s\); test evaluation .*; measuring the models' cost [\d.]+ s; waiting for batches in all [\d.]+ s$/m,
  );
  assert.match(stdout, /^class counts: train 27 a \/ 9 b; test 4 a \/ 4 b$/m);
  assert.match(
    stdout,
    /^balance: labeled training batches are drawn with a WeightedRandomSampler/m,
  );
  assert.match(
    stdout,
    /^balance: cross-entropy class weights n \/ \(classes × count\): teacher 0\.667 \/ 2\.000, students 0\.667 \/ 2\.000$/m,
  );
  assert.match(stdout, /^Loss: CrossEntropy\(weight=\[0\.6667, 2\]\)$/m);
  assert.match(
    stdout,
    /^Loss: DistillationLoss\(.*, weight=\[0\.6667, 2\]\)$/m,
  );
  assert.match(
    stdout,
    /^\| Majority class \(always a\) \| 50\.0 \| 50\.0 \| 0\.0 \/ 100\.0 \|/m,
  );
  const results = JSON.parse(
    await Deno.readTextFile(join(out, "results.json")),
  );
  assert.equal(results.majorityBaseline.className, "a");
  assert.equal(results.config.balance, "both");
  assert.equal(results.config.kd.preset, "tutorial");
  const phases = results.timing.phases;
  for (const k of ["teacher", "student", "studentKd", "evaluation"]) {
    assert.ok(phases[k].seconds > 0, k);
    assert.ok(
      phases[k].dataSeconds > 0 && phases[k].dataSeconds <= phases[k].seconds,
      k,
    );
  }
  assert.ok(phases.dataSeconds > 0);
  const w: string[] = results.warnings;
  for (
    const model of ["Teacher (ResNet-18)", "Student, no KD", "Student, KD"]
  ) {
    const seeds = model.startsWith("Student")
      ? " \\(2 of 2 seeds: 0, 1\\)"
      : "";
    const below = new RegExp(
      `^${
        model.replace(/[()]/g, "\\$&")
      }: test accuracy 50\\.0% does not beat the majority-class baseline of 50\\.0% \\(always answering "a", the most frequent class in training\\)`,
    );
    const one = new RegExp(
      `^${
        model.replace(/[()]/g, "\\$&")
      } predicts (?:"[ab]"|one class \\("a" or "b", depending on the seed\\)) for 100% of the test images${seeds}: it answers \\(nearly\\) one class`,
    );
    assert.ok(w.some((x) => below.test(x)), `${model} below: ${w.join("\n")}`);
    assert.ok(
      w.some((x) => one.test(x)),
      `${model} one class: ${w.join("\n")}`,
    );
    // on the console and in the report too
    assert.ok(
      stdout.split("\n").some((l) =>
        l.startsWith("Warning: ") && below.test(l.slice(9))
      ),
      model,
    );
  }
  const html = await Deno.readTextFile(join(out, "report.html"));
  assert.match(
    html,
    /<section id="warnings" class="warnings" role="note"><h2>Warnings<\/h2><ul><li>Teacher \(ResNet-18\): test accuracy 50\.0% does not beat/,
  );
  const md = await Deno.readTextFile(join(out, "results.md"));
  assert.match(md, /^\*\*Warnings\*\*$/m);
  await Deno.remove(root, { recursive: true });
});
