/**
 * The knowledge-distillation tutorial, end to end: train a ResNet-18
 * teacher (or load one), then the tutorial's StudentNet without KD and with
 * KD from the same initial weights (over several seeds), evaluate all three
 * on the test split, and print and write the results table. This file
 * reads the flags, builds the teacher and calls the library:
 * `study.imageFolderStudyData` prepares the data and
 * `study.runDistillationStudy` runs the experiment (see their
 * documentation for the protocol).
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
 * tutorial's `requires_grad_ = False` meant; `Module.freeze`), `--labeled N` (students get N
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
import { distill, io, manualSeed, models, setBackend, study } from "../mod.ts";

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
const device = flags.device as "cpu" | "cuda" | undefined;
if (device) setBackend(device);
const started = performance.now();
const say = (l: string) => console.log(l);

// ---- data -------------------------------------------------------------------

const root = flags.data!;
let prepared: study.StudyData;
try {
  prepared = study.imageFolderStudyData(root, {
    size,
    batchSize,
    seed,
    workers,
    maxTrain: flags["max-train"]
      ? int("max-train", flags["max-train"], 2)
      : undefined,
    labeled: flags.labeled ? int("labeled", flags.labeled, 2) : undefined,
    transfer: flags.transfer,
  });
} catch (e) {
  if (!(e instanceof RangeError)) throw e;
  console.error(e.message);
  Deno.exit(2);
}
const { loaders, dataset } = prepared;
const numClasses = dataset.classes.length;
for (const line of prepared.description) say(line);
say(
  `KD loss: preset ${kd.preset}, T=${kd.temperature}, alpha=${kd.alpha} (weight of the distillation term), reduction ${kd.reduction}, T² ${
    kd.scaleByT2 ? "on" : "off"
  }`,
);

// ---- the teacher and the study ------------------------------------------------

manualSeed(seed);
const teacher = models.resnet18({ numClasses });
if (flags["freeze-backbone"]) {
  teacher.freeze({ except: ["fc"], batchNorm: "eval" });
}
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

const done = await study.runDistillationStudy({
  teacher,
  teacherEpochs,
  student: () => new models.StudentNet({ inputSize: size, numClasses }),
  loaders,
  dataset,
  inputShape: [3, size, size],
  epochs,
  lr,
  batchSize,
  kd: kdOptions,
  seed,
  seeds: nSeeds,
  device,
  outDir,
  resume: flags.resume,
  config: {
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
    labeled: dataset.labeled,
    transfer: dataset.transfer
      ? { source: flags.transfer, images: dataset.transfer }
      : null,
  },
  log: say,
  started,
});
if (!done) Deno.exit(130); // Ctrl-C: the checkpoints are kept (--resume)
for (const line of done.summary) say(line);
prepared.close();
