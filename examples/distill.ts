/**
 * The knowledge-distillation tutorial, end to end: train a ResNet-18
 * teacher (or load one), then the tutorial's StudentNet without KD and with
 * KD from the same initial weights (over several seeds), evaluate all three
 * on the test split, and print and write the results table.
 *
 * With no flags it runs on the bundled Fashion-MNIST pair
 * (examples/data/fashion-binary: T-shirt/top vs Shirt, 28×28) in a few
 * minutes on 2 CPU cores:
 *
 * ```sh
 * deno run -A examples/distill.ts
 * ```
 *
 * The same command runs the chest X-ray data set of the tutorial:
 *
 * ```sh
 * deno run -A examples/distill.ts --data path/to/chest_xray --size 224 --epochs 30
 * ```
 *
 * There the 16-image `val/` split is replaced by a stratified split of
 * `train/` grouped by patient (file names `person123_...`), and the run says
 * so.
 *
 * Flags: `--data DIR` (train/val/test class folders), `--size N` (input
 * side, default 28), `--epochs N` (default 6; `--teacher-epochs N` for the
 * teacher alone), `--batch-size N` (32), `--lr X` (Adam, 0.001, with a
 * cosine schedule over the epochs),
 * `--temperature T`, `--alpha A`, `--preset tutorial|recommended` (default
 * recommended), `--device cpu|cuda`, `--seed N` (0), `--seeds N` (students
 * trained with seeds seed..seed+N-1, default 3), `--workers N` (decoding
 * Workers, 0), `--out DIR` (default out/distill), `--teacher FILE`
 * (safetensors weights, torchvision keys: a 2-class teacher is used as is,
 * an ImageNet one gets a new head and is fine-tuned), `--freeze-backbone`
 * (train only the head, BatchNorm statistics frozen too: what the
 * tutorial's `requires_grad_ = False` meant), `--labeled N` (students get N
 * labeled training images), `--transfer DIR|rest` (unlabeled images, in
 * class folders whose names are ignored, or `rest`: the training images
 * not kept by `--labeled`; the KD student also learns the teacher's soft
 * labels on them), `--resume` (continue the checkpoints in `--out`),
 * `--max-train N` (a stratified subset of the training images, for quick
 * tests).
 *
 * `--out` receives `results.json`, `results.md`, `report.html` (the run on
 * one self-contained page: training curves, confusion matrices, ROC
 * curves, the results tables and the configuration), `metrics.jsonl` (one
 * JSON line per model, run, epoch and phase, appended as training goes),
 * the teacher's and the last student's weights, and the checkpoints.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { basename, join } from "node:path";
import {
  currentDevice,
  data,
  distill,
  evaluation,
  io,
  manualSeed,
  models,
  nn,
  optim,
  setBackend,
  type Tensor,
  tensor,
  train,
  transforms as T,
} from "../mod.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    data: {
      type: "string",
      default: new URL("./data/fashion-binary", import.meta.url).pathname,
    },
    size: { type: "string", default: "28" },
    epochs: { type: "string", default: "6" },
    "teacher-epochs": { type: "string" },
    "batch-size": { type: "string", default: "32" },
    lr: { type: "string", default: "0.001" },
    temperature: { type: "string" },
    alpha: { type: "string" },
    preset: { type: "string", default: "recommended" },
    device: { type: "string" },
    seed: { type: "string", default: "0" },
    seeds: { type: "string", default: "3" },
    workers: { type: "string", default: "0" },
    out: { type: "string", default: "out/distill" },
    teacher: { type: "string" },
    "freeze-backbone": { type: "boolean", default: false },
    labeled: { type: "string" },
    transfer: { type: "string" },
    resume: { type: "boolean", default: false },
    "max-train": { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log(
    "deno run -A examples/distill.ts [--data DIR] [--size N] [--epochs N] [--teacher-epochs N]\n" +
      "  [--batch-size N] [--lr X] [--temperature T] [--alpha A] [--preset tutorial|recommended]\n" +
      "  [--device cpu|cuda] [--seed N] [--seeds N] [--workers N] [--out DIR] [--teacher FILE]\n" +
      "  [--freeze-backbone] [--labeled N] [--transfer DIR|rest] [--resume] [--max-train N]\n" +
      "Writes results.json, results.md, report.html and metrics.jsonl to --out (default out/distill).",
  );
  Deno.exit(0);
}

function int(name: string, v: string | undefined, min = 0): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer ≥ ${min}, got ${v}`);
    Deno.exit(2);
  }
  return n;
}

const size = int("size", flags.size, 2);
const epochs = int("epochs", flags.epochs, 1);
const batchSize = int("batch-size", flags["batch-size"], 1);
const lr = Number(flags.lr);
const seed = int("seed", flags.seed);
const nSeeds = int("seeds", flags.seeds, 1);
const workers = int("workers", flags.workers);
const outDir = flags.out!;
const preset = flags.preset as distill.KdPreset;
if (preset !== "tutorial" && preset !== "recommended") {
  console.error(`--preset must be tutorial or recommended, got ${preset}`);
  Deno.exit(2);
}
const kdOptions: distill.KdOptions = {
  preset,
  ...(flags.temperature ? { temperature: Number(flags.temperature) } : {}),
  ...(flags.alpha ? { alpha: Number(flags.alpha) } : {}),
};
const kd = distill.resolveKdOptions(kdOptions);
if (flags.device) setBackend(flags.device as "cpu" | "cuda");
await Deno.mkdir(outDir, { recursive: true });
if (!flags.resume) {
  // a fresh run starts a fresh metrics.jsonl (a resumed one appends to it)
  await Deno.remove(join(outDir, "metrics.jsonl")).catch(() => {});
}
const started = performance.now();
const say = (l: string) => console.log(l);

// ---- data -------------------------------------------------------------------

// ImageNet statistics, as the tutorial (its teacher is ImageNet-pretrained)
const normalize = new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
const evalTf = [new T.Resize([size, size]), new T.ToTensor(), normalize];
const trainTf = [
  new T.Resize([size, size]),
  new T.RandomHorizontalFlip(),
  new T.ToTensor(),
  normalize,
];
const root = flags.data!;
const splits = data.imageFolderSplits(root, {
  splits: ["train", "test"],
  transforms: { train: trainTf, test: evalTf },
  cache: true,
});
const trainAug = splits.train;
const trainEval = new data.ImageFolder(join(root, "train"), {
  transform: evalTf,
  cache: true,
});
const classes = [...trainAug.classes];
const numClasses = classes.length;
let trainSet: data.Dataset<[Tensor, number]> = trainAug;
let valSet: data.Dataset<[Tensor, number]>;
let valSource: string;
let valFolder: data.ImageFolder | undefined;
try {
  valFolder = new data.ImageFolder(join(root, "val"), {
    transform: evalTf,
    cache: true,
  });
} catch {
  valFolder = undefined;
}
if (valFolder && valFolder.length >= 100) {
  valSet = valFolder;
  valSource = `${join(root, "val")} (${valFolder.length} images)`;
} else {
  // The chest X-ray val/ has 16 images: one image is 6 points of accuracy.
  const patient = (i: number): string => {
    const name = basename(trainAug.samples[i][0]);
    const m = /^(person\d+)_/.exec(name) ??
      /^((?:NORMAL2-)?IM-\d+)-/.exec(name);
    return m ? m[1] : name;
  };
  const grouped = trainAug.samples.some((_, i) =>
    patient(i) !== basename(trainAug.samples[i][0])
  );
  const [tr, va] = data.stratifiedSplit(trainAug, [0.9, 0.1], {
    seed,
    groups: patient,
  });
  trainSet = tr;
  valSet = new data.Subset(trainEval, va.indices);
  valSource = `a stratified 10% split of ${
    join(root, "train")
  } (${va.length} images)${
    grouped ? ", grouped by patient id from the file names" : ""
  }, replacing ${
    valFolder
      ? `the ${valFolder.length}-image val/ folder`
      : "the missing val/ folder"
  }`;
}
if (flags["max-train"]) {
  // for quick tests: a stratified subset of the training images
  const n = int("max-train", flags["max-train"], 2);
  if (n < trainSet.length) {
    const t = trainSet.length;
    trainSet = data.stratifiedSplit(trainSet, [n, t - n], { seed })[0];
  }
}
// students may get fewer labels (the rest can become unlabeled transfer data)
let studentSet = trainSet;
let transferSet: data.Dataset<[Tensor, number]> | null = null;
if (flags.labeled) {
  const n = int("labeled", flags.labeled, 2);
  if (n < trainSet.length) {
    const [kept, rest] = data.stratifiedSplit(trainSet, [
      n,
      trainSet.length - n,
    ], { seed });
    studentSet = kept;
    if (flags.transfer === "rest") transferSet = rest;
  }
}
if (flags.transfer && flags.transfer !== "rest") {
  transferSet = new data.ImageFolder(flags.transfer, {
    transform: trainTf,
    cache: true,
  });
}
if (flags.transfer === "rest" && !transferSet) {
  console.error("--transfer rest needs --labeled N below the training size");
  Deno.exit(2);
}
const loader = (ds: data.Dataset<[Tensor, number]>, shuffle: boolean) =>
  new data.DataLoader(ds, {
    batchSize,
    shuffle,
    numWorkers: workers,
    persistentWorkers: workers > 0,
  });
// no `seed` on the loaders: their order and flips come from the process-wide
// generator, which checkpoints save, so a resumed run repeats them exactly
const teacherTrain = loader(trainSet, true);
const studentTrain = loader(studentSet, true);
const transferLoader = transferSet ? loader(transferSet, true) : null;
const valLoader = loader(valSet, false);
// the tutorial shuffles its test loader; kdeno does not (paired comparisons)
const testLoader = loader(splits.test, false);

say(`kdeno distillation: ${root}`);
say(
  `classes: ${
    classes.map((c, i) => `${i}=${c}`).join(", ")
  } (positive class for sensitivity: ${classes[1] ?? classes[0]})`,
);
say(
  `train ${trainSet.length}${
    studentSet !== trainSet ? ` (students: ${studentSet.length} labeled)` : ""
  }${
    transferSet ? `, transfer ${transferSet.length} unlabeled` : ""
  }, test ${splits.test.length}; validation: ${valSource}`,
);
say(
  `KD loss: preset ${kd.preset}, T=${kd.temperature}, alpha=${kd.alpha} (weight of the distillation term), reduction ${kd.reduction}, T² ${
    kd.scaleByT2 ? "on" : "off"
  }`,
);

// ---- the teacher --------------------------------------------------------------

/** ResNet-18 whose backbone is frozen, BatchNorm statistics included. */
class FrozenBackboneResNet extends models.ResNet {
  constructor(classes: number) {
    super([2, 2, 2, 2], { numClasses: classes });
    this.requiresGrad(false);
    this.fc.requiresGrad(true);
  }
  override train(mode = true): this {
    super.train(mode);
    for (const m of this.modules()) {
      if (m instanceof nn.BatchNorm2d) m.training = false;
    }
    return this;
  }
}

const hostCopy = (m: nn.Module): Record<string, Tensor> =>
  Object.fromEntries(
    Object.entries(m.stateDict()).map((
      [k, t],
    ) => [k, tensor(t.data().slice(), { shape: t.shape, dtype: t.dtype })]),
  );

manualSeed(seed);
const teacher = flags["freeze-backbone"]
  ? new FrozenBackboneResNet(numClasses)
  : models.resnet18({ numClasses });
let teacherEpochs = flags["teacher-epochs"] !== undefined
  ? int("teacher-epochs", flags["teacher-epochs"])
  : epochs;
if (flags.teacher) {
  const weights = await io.loadSafetensors(flags.teacher);
  const fc = weights["fc.weight"];
  if (fc && fc.shape[0] !== numClasses) {
    delete weights["fc.weight"];
    delete weights["fc.bias"];
    teacher.loadStateDict(weights, { strict: false });
    say(
      `Teacher: loaded ${flags.teacher}; replaced its ${
        fc.shape[0]
      }-class head with a new Linear(512, ${numClasses}) and fine-tune it for ${teacherEpochs} epochs`,
    );
  } else {
    teacher.loadStateDict(weights);
    if (flags["teacher-epochs"] === undefined) teacherEpochs = 0;
    say(
      `Teacher: loaded ${flags.teacher}${
        teacherEpochs
          ? `, fine-tuned for ${teacherEpochs} epochs`
          : ", used as is"
      }`,
    );
  }
  for (const t of Object.values(weights)) t.dispose();
}
if (flags["freeze-backbone"]) {
  say(
    "Teacher: backbone frozen (parameters and BatchNorm statistics); only fc is trained",
  );
}
const config = {
  data: root,
  size,
  epochs,
  teacherEpochs,
  batchSize,
  lr,
  optimizer: "Adam, cosine schedule to 0 over the epochs",
  kd,
  seed,
  seeds: nSeeds,
  workers,
  device: flags.device ?? "default",
  teacherFile: flags.teacher ?? null,
  freezeBackbone: flags["freeze-backbone"],
  labeled: studentSet.length,
  transfer: transferSet
    ? { source: flags.transfer, images: transferSet.length }
    : null,
};
const TEACHER = "Teacher (ResNet-18)";
const ARM_NAMES = { student: "Student, no KD", studentKd: "Student, KD" };
// metrics.jsonl and a curves-only report.html as training goes; the full
// report replaces the page at the end
const trainer = new train.Trainer({
  progress: "auto",
  log: say,
  report: { dir: outDir, title: "kdeno distillation run", config },
});
let teacherSeconds = 0;
let teacherHistory: evaluation.EpochRecord[] | undefined;
if (teacherEpochs > 0) {
  say(`\n== Teacher: ResNet-18 (${teacher.numParameters()} parameters) ==`);
  const opt = new optim.Adam(
    teacher.parameters().filter((p) => p.requiresGrad),
    { lr },
  );
  const r = await trainer.fit({
    model: teacher,
    train: teacherTrain,
    val: valLoader,
    epochs: teacherEpochs,
    optimizer: opt,
    scheduler: new optim.CosineAnnealingLR(opt, { tMax: teacherEpochs }),
    checkpointDir: join(outDir, "checkpoints", "teacher"),
    resume: flags.resume && (await exists(
      join(outDir, "checkpoints", "teacher", "last.safetensors"),
    )),
    seed,
    name: TEACHER,
  });
  teacherSeconds = r.seconds;
  teacherHistory = r.history;
  if (r.interrupted) Deno.exit(130);
}
teacher.eval();
await io.saveSafetensors(
  join(outDir, "teacher.safetensors"),
  teacher.stateDict(),
);

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

// ---- the students -------------------------------------------------------------

interface Run {
  seed: number;
  result: evaluation.EvaluateResult;
  fit: train.FitResult;
}
const runs: { student: Run[]; studentKd: Run[] } = {
  student: [],
  studentKd: [],
};
// one cache for every KD run: the teacher's logits of each training image,
// in each flip state, are computed once
const cache = new distill.TeacherCache(teacher, { log: say });
let lastStudent: models.StudentNet | null = null;
for (let s = seed; s < seed + nSeeds; s++) {
  manualSeed(s);
  const init = new models.StudentNet({ inputSize: size, numClasses });
  const initial = hostCopy(init);
  for (const arm of ["student", "studentKd"] as const) {
    const withKd = arm === "studentKd";
    say(
      `\n== StudentNet ${
        withKd ? "with KD" : "without KD"
      }, seed ${s} (${init.numParameters()} parameters) ==`,
    );
    const model = withKd
      ? new models.StudentNet({ inputSize: size, numClasses })
      : init;
    model.loadStateDict(initial); // the same initial weights in both arms
    const dir = join(outDir, "checkpoints", `${arm}-seed${s}`);
    const opt = new optim.Adam(model.parameters(), { lr });
    const fit = await trainer.fit({
      model,
      teacher: withKd ? teacher : null,
      train: studentTrain,
      transfer: withKd ? transferLoader : null,
      val: valLoader,
      epochs,
      optimizer: opt,
      scheduler: new optim.CosineAnnealingLR(opt, { tMax: epochs }),
      loss: withKd ? new distill.DistillationLoss(kdOptions) : undefined,
      teacherCache: cache,
      checkpointDir: dir,
      resume: flags.resume && await exists(join(dir, "last.safetensors")),
      // the same data order and flips in both arms
      seed: 1000 + s,
      name: ARM_NAMES[arm],
      runLabel: `seed ${s}`,
    });
    if (fit.interrupted) Deno.exit(130);
    const result = await evaluation.evaluate(model, testLoader);
    say(
      `test Acc: ${result.accuracy.toFixed(4)} (sensitivity ${
        result.sensitivity?.toFixed(4)
      }, specificity ${result.specificity?.toFixed(4)})`,
    );
    runs[arm].push({ seed: s, result, fit });
    lastStudent = model;
  }
  for (const t of Object.values(initial)) t.dispose();
}

// ---- evaluation and costs -------------------------------------------------------

say("\n== Test set ==");
const teacherResult = await evaluation.evaluate(teacher, testLoader);
const inputShape = [3, size, size];
const cost = (m: nn.Module) => {
  const speed = evaluation.measureSpeed(m, {
    inputShape,
    device: flags.device as "cpu" | "cuda" | undefined,
  });
  return {
    params: m.numParameters(),
    macs: evaluation.countMacs(m, inputShape),
    sizeBytes: evaluation.modelSizeBytes(m),
    latencyMs: speed.latencyMs,
    latencyRangeMs: speed.latencyRangeMs,
    throughput: speed.throughput,
  };
};
const teacherCost = cost(teacher);
const studentCost = cost(lastStudent!);
await io.saveSafetensors(
  join(outDir, "student.safetensors"),
  lastStudent!.stateDict(),
);

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
function summarize(list: Run[]) {
  const accs = list.map((r) => r.result.accuracy);
  const ci = evaluation.meanConfidenceInterval(accs);
  const pick = (f: (r: evaluation.EvaluateResult) => number | undefined) =>
    mean(list.map((r) => f(r.result) ?? NaN));
  return {
    accuracy: ci.mean,
    accuracyCI95: nSeeds > 1 ? [ci.lo, ci.hi] : null,
    accuracyHalfWidth95: nSeeds > 1 ? ci.halfWidth : null,
    accuracyPerSeed: accs,
    seeds: list.map((r) => r.seed),
    sensitivity: pick((r) => r.sensitivity),
    specificity: pick((r) => r.specificity),
    balancedAccuracy: pick((r) => r.balancedAccuracy),
    rocAuc: pick((r) => r.rocAuc),
    ece: pick((r) => r.ece),
    macroF1: pick((r) => r.macroF1),
    confusion: list[0].result.confusion,
    bestEpochs: list.map((r) => r.fit.bestEpoch),
    trainSeconds: mean(list.map((r) => r.fit.seconds)),
    ...studentCost,
    speedup: teacherCost.latencyMs / studentCost.latencyMs,
  };
}
const [tLo, tHi] = evaluation.wilsonInterval(
  teacherResult.correct.reduce((a, b) => a + b, 0),
  teacherResult.n,
);
const teacherEntry = {
  accuracy: teacherResult.accuracy,
  accuracyCI95: [tLo, tHi],
  accuracyCIMethod: "Wilson interval over test images (one teacher)",
  sensitivity: teacherResult.sensitivity,
  specificity: teacherResult.specificity,
  balancedAccuracy: teacherResult.balancedAccuracy,
  rocAuc: teacherResult.rocAuc,
  ece: teacherResult.ece,
  macroF1: teacherResult.macroF1,
  confusion: teacherResult.confusion,
  trainSeconds: teacherSeconds,
  epochs: teacherEpochs,
  ...teacherCost,
  speedup: 1,
};
const student = summarize(runs.student);
const studentKd = summarize(runs.studentKd);
const diffs = runs.studentKd.map((r, i) =>
  r.result.accuracy - runs.student[i].result.accuracy
);
const diffCI = evaluation.meanConfidenceInterval(diffs);
const mcnemar = runs.studentKd.map((r, i) => {
  const m = evaluation.mcnemar(
    r.result.correct,
    runs.student[i].result.correct,
  );
  return {
    seed: r.seed,
    pValue: m.pValue,
    onlyKdRight: m.onlyA,
    onlyStudentRight: m.onlyB,
  };
});
const pts = (x: number) => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}`;
let verdict: string;
if (nSeeds > 1) {
  const range = `95% CI ${pts(diffCI.lo)} to ${
    pts(diffCI.hi)
  } points over ${nSeeds} seeds`;
  verdict = diffCI.lo > 0
    ? `KD beat the student trained alone: ${
      pts(diffCI.mean)
    } points (${range}).`
    : diffCI.mean > 0
    ? `KD did not reliably beat the student trained alone: ${
      pts(diffCI.mean)
    } points, but the ${range} includes zero.`
    : `KD did not beat the student trained alone: ${
      pts(diffCI.mean)
    } points (${range}).`;
} else {
  const p = mcnemar[0].pValue;
  verdict = diffs[0] > 0 && p < 0.05
    ? `KD beat the student trained alone: ${
      pts(diffs[0])
    } points (McNemar p = ${p.toPrecision(2)}, one seed).`
    : `KD did not beat the student trained alone: ${
      pts(diffs[0])
    } points (McNemar p = ${p.toPrecision(2)}, one seed).`;
}
const cacheStats = cache.stats;
const kdEpochs = runs.studentKd.flatMap((r) =>
  r.fit.history.map((h) => h.train.seconds)
);
const plainEpochs = runs.student.flatMap((r) =>
  r.fit.history.map((h) => h.train.seconds)
);
const results = {
  tutorial: "kdeno examples/distill.ts",
  date: new Date().toISOString(),
  config,
  dataset: {
    classes,
    positiveClass: classes[1] ?? classes[0],
    train: trainSet.length,
    val: valSet.length,
    valSource,
    test: splits.test.length,
  },
  teacher: teacherEntry,
  student,
  studentKd,
  comparison: {
    kdMinusStudent: {
      mean: diffCI.mean,
      ci95: nSeeds > 1 ? [diffCI.lo, diffCI.hi] : null,
      perSeed: diffs,
    },
    mcnemar,
    kdBetterSeeds: diffs.filter((d) => d > 0).length,
    verdict,
  },
  timing: {
    totalSeconds: (performance.now() - started) / 1000,
    teacherCache: cacheStats,
    studentEpochSeconds: mean(plainEpochs),
    kdEpochSeconds: mean(kdEpochs),
  },
};

// ---- the table ---------------------------------------------------------------------

const pct = (x: number) => (100 * x).toFixed(1);
const acc = (
  e: {
    accuracy: number;
    accuracyHalfWidth95?: number | null;
    accuracyCI95?: number[] | null;
  },
) =>
  e.accuracyHalfWidth95 != null
    ? `${pct(e.accuracy)} ± ${pct(e.accuracyHalfWidth95)}`
    : e.accuracyCI95
    ? `${pct(e.accuracy)} (${pct(e.accuracyCI95[0])}–${pct(e.accuracyCI95[1])})`
    : pct(e.accuracy);
const human = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} G`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(2)} M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)} k`
    : String(n);
const bytes = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`;
const columns = [
  "Model",
  "Test accuracy %",
  "Sens. / spec. %",
  "Params",
  "MACs/image",
  "Size",
  "Latency b=1 (ms)",
  "Throughput b=32 (img/s)",
  "Speedup",
];
const cells = (name: string, e: typeof teacherEntry | typeof student) => [
  name,
  acc(e),
  `${pct(e.sensitivity ?? NaN)} / ${pct(e.specificity ?? NaN)}`,
  human(e.params),
  human(e.macs),
  bytes(e.sizeBytes),
  e.latencyMs.toFixed(2),
  e.throughput.toFixed(0),
  `${e.speedup.toFixed(1)}×`,
];
const rows = [
  cells(TEACHER, teacherEntry),
  cells(ARM_NAMES.student, student),
  cells(ARM_NAMES.studentKd, studentKd),
];
const table = [
  `| ${columns.join(" | ")} |`,
  `|${columns.map(() => "---").join("|")}|`,
  ...rows.map((r) => `| ${r.join(" | ")} |`),
].join("\n");
const mcLine = mcnemar.map((m) =>
  `seed ${m.seed}: p = ${
    m.pValue.toPrecision(2)
  } (${m.onlyKdRight} images only KD got right, ${m.onlyStudentRight} only no-KD)`
).join("; ");
const md = `# kdeno distillation results

Data: \`${root}\` (${
  classes.join(" vs ")
}; positive class for sensitivity: ${results.dataset.positiveClass}), ${size}×${size}, train ${trainSet.length}${
  studentSet !== trainSet ? ` (students: ${studentSet.length} labeled)` : ""
}${
  transferSet ? ` + ${transferSet.length} unlabeled transfer images` : ""
}, test ${splits.test.length}; validation: ${valSource}.
KD: preset \`${kd.preset}\` (T = ${kd.temperature}, alpha = ${kd.alpha} on the distillation term, KL reduction \`${kd.reduction}\`, T² ${
  kd.scaleByT2 ? "on" : "off"
}). ${epochs} epochs, Adam lr ${lr} with a cosine schedule, batch ${batchSize}; teacher ${teacherEpochs} epochs.
Students: ${nSeeds} seed(s) (${
  runs.student.map((r) => r.seed).join(", ")
}), KD and no-KD from the same initial weights and data order; accuracy is the mean ± the 95% t-interval half-width over seeds (the teacher: one run, Wilson 95% interval over test images). Latency and throughput: ${
  flags.device ?? "default"
} device, warm-up excluded, no data loading.

${table}

**${verdict}**

KD − no KD per seed: ${
  diffs.map(pts).join(", ")
} points. McNemar's exact test on the same test images, ${mcLine}.
Compute ratio teacher/student: ${
  (teacherCost.macs / studentCost.macs).toFixed(0)
}× fewer MACs, ${
  (teacherCost.latencyMs / studentCost.latencyMs).toFixed(1)
}× lower latency at batch 1.
`;
// whole or not at all: a temporary file, then a rename
const utf8 = new TextEncoder();
await io.writeFileAtomic(
  join(outDir, "results.json"),
  utf8.encode(JSON.stringify(results, null, 2) + "\n"),
);
await io.writeFileAtomic(join(outDir, "results.md"), utf8.encode(md));

// ---- the report page ---------------------------------------------------------------

const positive = classes.length > 1 ? 1 : 0;
const armModel = (arm: "student" | "studentKd"): evaluation.ReportModel => ({
  name: ARM_NAMES[arm],
  runs: runs[arm].map((r) => ({
    label: `seed ${r.seed}`,
    history: r.fit.history,
    test: evaluation.reportEvaluation(r.result, positive),
  })),
});
await evaluation.writeReport(join(outDir, "report.html"), {
  title: "kdeno distillation run",
  summary: verdict,
  classes,
  positiveClass: positive,
  models: [
    {
      name: TEACHER,
      runs: [{
        history: teacherHistory,
        test: evaluation.reportEvaluation(teacherResult, positive),
      }],
    },
    armModel("student"),
    armModel("studentKd"),
  ],
  tables: [
    {
      caption:
        `Test set (${splits.test.length} images). Students: mean ± 95% t-interval half-width over ${nSeeds} seed(s); teacher: Wilson 95% interval.`,
      columns,
      rows,
    },
    {
      caption:
        "KD − no KD per seed, on the same test images (McNemar's exact test)",
      columns: [
        "Seed",
        "KD − no KD (points)",
        "Only KD right",
        "Only no-KD right",
        "McNemar p",
      ],
      rows: mcnemar.map((m, i) => [
        String(m.seed),
        pts(diffs[i]),
        String(m.onlyKdRight),
        String(m.onlyStudentRight),
        m.pValue.toPrecision(2),
      ]),
    },
  ],
  notes: [
    nSeeds > 1
      ? `KD − no KD: ${pts(diffCI.mean)} points, 95% CI ${pts(diffCI.lo)} to ${
        pts(diffCI.hi)
      } over ${nSeeds} seeds.`
      : `KD − no KD: ${pts(diffs[0])} points (one seed: no interval).`,
    `Compute ratio teacher/student: ${
      (teacherCost.macs / studentCost.macs).toFixed(0)
    }× fewer MACs, ${
      (teacherCost.latencyMs / studentCost.latencyMs).toFixed(1)
    }× lower latency at batch 1.`,
    `Validation: ${valSource}. Sensitivity is that of ${results.dataset.positiveClass} (class ${positive}).`,
  ],
  config,
  seeds: runs.student.map((r) => r.seed),
  device: currentDevice(),
  date: results.date,
});
say("\n" + table + "\n");
say(verdict);
say(
  `KD − no KD per seed: ${diffs.map(pts).join(", ")} points; McNemar ${mcLine}`,
);
say(
  `Teacher cache: ${cacheStats.entries} entries, ${cacheStats.hits} hits, ${cacheStats.misses} misses; mean train epoch ${
    results.timing.studentEpochSeconds.toFixed(2)
  } s without KD, ${results.timing.kdEpochSeconds.toFixed(2)} s with KD`,
);
say(
  `Wrote ${
    ["results.json", "results.md", "report.html", "metrics.jsonl"].map((f) =>
      join(outDir, f)
    ).join(", ")
  } (${results.timing.totalSeconds.toFixed(0)} s in all)`,
);
for (
  const l of [teacherTrain, studentTrain, transferLoader, valLoader, testLoader]
) {
  l?.close();
}
