/**
 * Measures what the teacher-output cache saves: train-phase time of a
 * student-only epoch, a KD epoch with the teacher run live on every batch,
 * and KD epochs with the cache (the first fills it; with
 * `RandomHorizontalFlip` each image has two views, so the second epoch
 * still meets new ones; later epochs are all hits).
 *
 * ```sh
 * deno run -A examples/teacher_cache_speed.ts [--data DIR] [--size 28] [--epochs 8] [--teacher FILE]
 * ```
 *
 * The teacher is a ResNet-18 (random weights unless `--teacher` names a
 * safetensors file: the time does not depend on them).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  data,
  distill,
  io,
  manualSeed,
  models,
  optim,
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
    epochs: { type: "string", default: "8" },
    "batch-size": { type: "string", default: "32" },
    teacher: { type: "string" },
  },
});
const size = Number(flags.size);
const epochs = Number(flags.epochs);
const normalize = new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
const trainSet = new data.ImageFolder(join(flags.data!, "train"), {
  transform: [
    new T.Resize([size, size]),
    new T.RandomHorizontalFlip(),
    new T.ToTensor(),
    normalize,
  ],
  cache: true,
});
const loader = new data.DataLoader(trainSet, {
  batchSize: Number(flags["batch-size"]),
  shuffle: true,
});
manualSeed(0);
const teacher = models.resnet18({ numClasses: trainSet.classes.length });
if (flags.teacher) {
  teacher.loadStateDict(await io.loadSafetensors(flags.teacher));
}
teacher.eval();
// decode every image once, so that no phase pays for it
for await (const [x, y] of loader) {
  x.dispose();
  y.dispose();
}

const quiet = { progress: "none" as const, log: () => {} };
const trainer = new train.Trainer(quiet);
function newStudent(): models.StudentNet {
  manualSeed(1);
  return new models.StudentNet({
    inputSize: size,
    numClasses: trainSet.classes.length,
  });
}
/** Train-phase seconds of each epoch (one `fit` per epoch, one cache). */
async function epochTimes(
  withTeacher: boolean,
  cache: distill.TeacherCache | false,
  n: number,
): Promise<{ seconds: number; misses: number }[]> {
  const student = newStudent();
  const opt = new optim.Adam(student.parameters(), { lr: 0.001 });
  const out = [];
  for (let e = 0; e < n; e++) {
    const before = cache ? cache.stats.misses : 0;
    const r = await trainer.fit({
      model: student,
      teacher: withTeacher ? teacher : null,
      train: loader,
      epochs: 1,
      optimizer: opt,
      teacherCache: cache,
    });
    out.push({
      seconds: r.history[0].train.seconds,
      misses: cache
        ? cache.stats.misses - before
        : withTeacher
        ? trainSet.length
        : 0,
    });
  }
  return out;
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const alone = await epochTimes(false, false, 3);
const live = await epochTimes(true, false, 2);
const cache = new distill.TeacherCache(teacher, { log: () => {} });
const cached = await epochTimes(true, cache, epochs);
console.log(
  `${trainSet.length} training images, ${size}x${size}, RandomHorizontalFlip, ResNet-18 teacher, StudentNet student.`,
);
console.log("Train-phase seconds per epoch:");
console.log(
  `  student alone:                   ${
    alone.map((r) => r.seconds.toFixed(2)).join(", ")
  }`,
);
console.log(
  `  KD, teacher live on every batch: ${
    live.map((r) => r.seconds.toFixed(2)).join(", ")
  }`,
);
console.log(
  `  KD, cached (teacher runs per epoch): ${
    cached.map((r) => `${r.seconds.toFixed(2)} (${r.misses})`).join(", ")
  }`,
);
const last = cached.at(-1)!;
console.log(
  `Last cached epoch (${last.misses} teacher runs): ${
    (med(live.map((r) => r.seconds)) / last.seconds).toFixed(1)
  }x faster than live KD; ${
    (last.seconds / med(alone.map((r) => r.seconds))).toFixed(2)
  }x a student-alone epoch. Cache: ${cache.stats.entries} entries.`,
);
