/**
 * One process, one knowledge-distillation run of the tutorial's configuration
 * on the bundled data: images resized to 224, batch 32, shuffled, random
 * horizontal flips, the teacher (ResNet-18) in inference mode on each batch,
 * StudentNet trained with the tutorial's loss (T = 1, alpha = 0.25, KLDiv
 * 'mean') and Adam (lr 1e-3). Data loading and decoding are inside the timed
 * epoch, as in the tutorial's loop.
 *
 * Prints one JSON line: images/s of the first epoch (nothing cached), of the
 * last epoch (with `--cache`: the teacher-output cache and the decoded-image
 * cache warm), and the process's peak resident memory (VmHWM).
 * `deno task compare` runs it beside `kd_epoch_torch.py`.
 *
 * `--mode student` trains StudentNet alone (cross-entropy, Adam), with no
 * teacher: the data-bound epoch. `--cache` then keeps the decoded, resized
 * images (`ImageFolder`'s `cache`), so epochs after the first skip JPEG
 * decoding; `rates` lists every epoch. `--draft` decodes JPEGs with a DCT
 * draft (Pillow's `Image.draft("RGB", (224, 224))`). `--data` takes an
 * ImageFolder root, e.g. the chest X-ray stand-in's `train/`
 * (bench/make_xray_standin.ts).
 *
 * Usage: deno run -A bench/kd_epoch.ts [--data DIR] [--epochs N] [--cache]
 *   [--workers N] [--max N] [--mode kd|student] [--size 224] [--draft]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  data,
  distill,
  manualSeed,
  models,
  nn,
  noGrad,
  optim,
  type Tensor,
  tidy,
  transforms as T,
} from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    data: { type: "string", default: "examples/data/fashion-binary/train" },
    epochs: { type: "string", default: "1" },
    cache: { type: "boolean", default: false },
    workers: { type: "string", default: "0" },
    max: { type: "string" },
    mode: { type: "string", default: "kd" },
    size: { type: "string", default: "224" },
    draft: { type: "boolean", default: false },
  },
});
const mode = values.mode;
if (mode !== "kd" && mode !== "student") {
  throw new RangeError(`--mode must be kd or student, got ${mode}`);
}
const size = Number(values.size);

manualSeed(0);
const normalize = new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
const folder = new data.ImageFolder(values.data!, {
  transform: [
    new T.Resize([size, size]),
    new T.RandomHorizontalFlip(),
    new T.ToTensor(),
    normalize,
  ],
  cache: values.cache,
  draft: values.draft ? 1 : 0,
});
const ds = values.max
  ? new data.Subset(
    folder,
    Array.from({ length: Number(values.max) }, (_, i) => i),
  )
  : folder;
const loader = new data.DataLoader(ds, {
  batchSize: 32,
  shuffle: true,
  numWorkers: Number(values.workers),
  persistentWorkers: Number(values.workers) > 0,
  seed: 0,
});
const teacher = mode === "kd"
  ? models.resnet18({ numClasses: folder.classes.length })
  : null;
teacher?.eval();
const student = new models.StudentNet({
  inputSize: size,
  numClasses: folder.classes.length,
});
student.train();
const opt = new optim.Adam(student.parameters(), { lr: 1e-3 });
const kd = new distill.DistillationLoss({ preset: "tutorial" });
const cache = values.cache && teacher
  ? new distill.TeacherCache(teacher, { log: () => {} })
  : null;

async function epoch(): Promise<number> {
  const t0 = performance.now();
  let seen = 0;
  for await (const [x, y, info] of loader) {
    tidy(() => {
      // the cache recognises each (image, flip) by the batch's index and outcome
      opt.zeroGrad();
      let loss: Tensor;
      if (teacher) {
        const teacherLogits: Tensor = cache
          ? cache.logits(x, info)
          : noGrad(() => teacher.call(x));
        loss = kd.call(student.call(x), teacherLogits, y);
      } else {
        loss = nn.functional.crossEntropy(student.call(x), y);
      }
      loss.backward();
      opt.step();
    });
    seen += x.shape[0];
    x.dispose();
    y.dispose();
  }
  return seen / ((performance.now() - t0) / 1000);
}

function peakRssMb(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

const rates: number[] = [];
const epochs = Math.max(1, Number(values.epochs));
for (let e = 0; e < epochs; e++) {
  rates.push(await epoch());
  cache?.endEpoch(e);
}
loader.close();
console.log(JSON.stringify({
  first: rates[0],
  last: rates[rates.length - 1],
  rates,
  peakRssMb: peakRssMb(),
  images: ds.length,
}));
