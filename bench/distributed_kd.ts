/**
 * The tutorial's knowledge-distillation epoch (bench/kd_epoch.ts: images
 * resized to 224, batch 32 in all, random flips, the ResNet-18 teacher in
 * inference mode on each batch, StudentNet with the tutorial's loss and
 * Adam) on one rank or several, to compare 1 rank × 2 threads with 2 ranks ×
 * 1 thread on the same cores. With N ranks each rank takes batches of 32 / N
 * from a `DistributedSampler` shard and the student is wrapped in
 * `DistributedDataParallel`; decoding is inside the timed epoch.
 *
 * Rank 0 prints one JSON line: images/s over all ranks, the epoch's seconds,
 * the student's gradient allreduce per step (DDP's exposed wait at the end
 * of backward, and a separate timing of one allreduce of the student's
 * gradient size), and one allreduce of ResNet-18's 44.7 MB of gradients
 * (the cost model's payload) on this machine.
 *
 *   KDENO_NUM_THREADS=2 deno run -A bench/distributed_kd.ts --max 256
 *   KDENO_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
 *     mpirun --oversubscribe --bind-to none -np 2 \
 *     deno run -A bench/distributed_kd.ts --max 256
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  data,
  distill,
  distributed,
  manualSeed,
  models,
  noGrad,
  optim,
  type Tensor,
  tensor,
  tidy,
  transforms as T,
} from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    data: { type: "string", default: "examples/data/fashion-binary/train" },
    max: { type: "string" },
    epochs: { type: "string", default: "1" },
    reps: { type: "string", default: "5" },
  },
});

const { rank, worldSize } = distributed.init();
manualSeed(0);
const normalize = new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
const folder = new data.ImageFolder(values.data!, {
  transform: [
    new T.Resize([224, 224]),
    new T.RandomHorizontalFlip(),
    new T.ToTensor(),
    normalize,
  ],
});
const ds = values.max
  ? new data.Subset(
    folder,
    Array.from({ length: Number(values.max) }, (_, i) => i),
  )
  : folder;
if (32 % worldSize !== 0) throw new RangeError("the world size must divide 32");
const sampler = new distributed.DistributedSampler(ds, { seed: 0 });
const loader = new data.DataLoader(ds, {
  batchSize: 32 / worldSize,
  sampler,
  seed: 0,
});
const teacher = models.resnet18({ numClasses: folder.classes.length }).eval();
const student = new distributed.DistributedDataParallel(
  new models.StudentNet({ inputSize: 224, numClasses: folder.classes.length }),
);
const opt = new optim.Adam(student.parameters(), { lr: 1e-3 });
const kd = new distill.DistillationLoss({ preset: "tutorial" });

const rates: number[] = [];
const seconds: number[] = [];
let steps = 0;
for (let e = 0; e < Number(values.epochs); e++) {
  sampler.setEpoch(e);
  distributed.barrier();
  const t0 = performance.now();
  let seen = 0;
  for await (const [x, y] of loader) {
    tidy(() => {
      opt.zeroGrad();
      const t: Tensor = noGrad(() => teacher.call(x));
      kd.call(student.call(x), t, y).backward();
      opt.step();
    });
    seen += x.shape[0];
    steps++;
    x.dispose();
    y.dispose();
  }
  distributed.barrier();
  const s = (performance.now() - t0) / 1000;
  const [all] = distributed.allReduceNumbers([seen]);
  seconds.push(s);
  rates.push(all / s);
}

/** Median milliseconds of one in-place allreduce of `n` floats. */
function allreduceMs(n: number, reps: number): number {
  const t = tensor(new Float32Array(n), { shape: [n] });
  distributed.allReduce(t); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    distributed.barrier();
    const t0 = performance.now();
    distributed.allReduce(t, "avg");
    ms.push(performance.now() - t0);
  }
  t.dispose();
  return ms.sort((a, b) => a - b)[ms.length >> 1];
}

const reps = Number(values.reps);
const studentFloats = student.module.numParameters();
const resnetFloats = 11_177_538; // ResNet-18 with 2 classes: 44.7 MB of fp32
const stats = student.commStats();
const result = {
  worldSize,
  threads: Deno.env.get("KDENO_NUM_THREADS") ?? "default",
  images: ds.length,
  imgPerS: rates,
  epochSeconds: seconds,
  steps,
  ddpWaitMsPerStep: stats.backwardPasses
    ? stats.waitMs / stats.backwardPasses
    : 0,
  ddpLaunchMsPerStep: stats.backwardPasses
    ? stats.launchMs / stats.backwardPasses
    : 0,
  studentGradMB: (studentFloats * 4) / 1e6,
  studentAllreduceMs: worldSize > 1 ? allreduceMs(studentFloats, reps) : 0,
  resnet18AllreduceMs: worldSize > 1 ? allreduceMs(resnetFloats, reps) : 0,
  loadavg: Deno.loadavg(),
};
if (rank === 0) console.log(JSON.stringify(result));
distributed.destroy();
