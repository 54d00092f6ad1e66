/**
 * Run by `ddp_test.ts`, alone (a world of one) or under `mpirun -np N`:
 * 5 SGD steps on one fixed global batch of 32, each rank taking its
 * 32 / N rows, through `DistributedDataParallel` (and, for `student`,
 * `SyncBatchNorm`). Rank 0 prints the final parameters and buffers as one
 * JSON line, to be compared across world sizes.
 *
 * Usage: deno run -A _ddp_rank.ts <mlp|student> [noSync|plain|-] [cuda]
 * (`cuda`: the `"nccl"` backend on CUDA tensors)
 *
 * @module
 */

import {
  distributed,
  Generator,
  manualSeed,
  models,
  nn,
  optim,
  tensor,
} from "../../mod.ts";

const kind = Deno.args[0] ?? "mlp";
const accumulate = Deno.args[1] === "noSync";
// "plain": no DDP (each rank trains alone): must NOT match one process
const plain = Deno.args[1] === "plain";
const device = Deno.args[2] === "cuda" ? "cuda" : "cpu";
const { rank, worldSize } = distributed.init({
  backend: device === "cuda" ? "nccl" : "mpi",
});
const GLOBAL = 32;
if (GLOBAL % worldSize !== 0) throw new Error(`world ${worldSize} ∤ 32`);
const per = GLOBAL / worldSize;

// the same global batch on every rank; each takes rows [rank*per, ...)
const gen = new Generator(1234);
const size = kind === "student" ? 8 : 1;
const features = kind === "student" ? 3 * size * size : 12;
const xs = Float32Array.from({ length: GLOBAL * features }, () => gen.normal());
const ys = Int32Array.from({ length: GLOBAL }, () => gen.below(2));
const shape = kind === "student" ? [per, 3, size, size] : [per, features];
const x = tensor(xs.slice(rank * per * features, (rank + 1) * per * features), {
  shape,
  device,
});
const y = tensor(ys.slice(rank * per, (rank + 1) * per), {
  shape: [per],
  device,
});

// different initial weights per rank: DDP must broadcast rank 0's
manualSeed(7 + rank);
let net: nn.Module = kind === "student"
  ? new models.StudentNet({ inputSize: size, numClasses: 2 })
  : new nn.Sequential(
    new nn.Linear(features, 16),
    new nn.ReLU(),
    new nn.Linear(16, 2),
  );
net.to(device);
if (kind === "student") {
  net = distributed.SyncBatchNorm.convertSyncBatchNorm(net) as nn.Module;
}
const ddp = plain ? null : new distributed.DistributedDataParallel(net, {
  // small buckets so that several are in flight during backward
  bucketCapMB: 0.0002,
  firstBucketCapMB: 0.0001,
});
const model = ddp ?? net;
const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
const ce = nn.functional.crossEntropy;
for (let step = 0; step < 5; step++) {
  opt.zeroGrad();
  if (accumulate) {
    // two half batches, the first without synchronisation
    const h = per / 2;
    const rows = (t: typeof x, a: number) => t.slice(0, a, a + h);
    ddp!.noSync(() => {
      ce(model.call(rows(x, 0)), rows(y, 0)).mul(0.5).backward();
    });
    ce(model.call(rows(x, h)), rows(y, h)).mul(0.5).backward();
  } else {
    ce(model.call(x), y).backward();
  }
  opt.step();
}
const state = Object.fromEntries(
  Object.entries(net.stateDict()).map(([k, t]) => [k, [...t.data()]]),
);
if (rank === 0) {
  console.log(
    JSON.stringify({ worldSize, buckets: ddp?.bucketCount ?? 0, state }),
  );
}
distributed.destroy();
