/**
 * A StudentNet training loop written the way a PyTorch user writes it, over
 * the bundled data, run as its own process by `loop_test.ts` so that its
 * resident memory is its own. After each epoch (a train pass and an eval
 * pass) it prints one JSON line: resident memory, and the live tensors and
 * bytes counted after a forced collection, and on CUDA the allocator's live
 * bytes and the epoch's peak.
 *
 * Usage: deno run -A tests/memory/_loop.ts --mode plain|tidy|using
 *   [--epochs 12] [--size 64] [--limit N] [--device cpu|cuda]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  collectGarbage,
  data,
  manualSeed,
  memory,
  models,
  nn,
  noGrad,
  optim,
  setBackend,
  tidy,
  transforms as T,
} from "../../mod.ts";
import { getBackend } from "../../src/backend/registry.ts";
import type { CudaBackend } from "../../src/backend/cuda/backend.ts";

const F = nn.functional;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string", default: "plain" },
    epochs: { type: "string", default: "12" },
    size: { type: "string", default: "64" },
    limit: { type: "string" },
    device: { type: "string", default: "cpu" },
  },
});
const mode = values.mode as "plain" | "tidy" | "using";
const size = Number(values.size);
const device = values.device as "cpu" | "cuda";
setBackend(device);
const cuda = device === "cuda" ? getBackend("cuda") as CudaBackend : null;

const root = new URL("../../examples/data/fashion-binary/", import.meta.url)
  .pathname;
const tf = [
  new T.Resize([size, size]),
  new T.ToTensor(),
  new T.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
];
const subset = <D extends data.ImageFolder>(ds: D) =>
  values.limit
    ? new data.Subset(ds, [...Array(Number(values.limit)).keys()])
    : ds;
const train = new data.DataLoader(
  subset(new data.ImageFolder(`${root}train`, { transform: tf })),
  { batchSize: 32, shuffle: true, seed: 0 },
);
const val = new data.DataLoader(
  subset(new data.ImageFolder(`${root}val`, { transform: tf })),
  { batchSize: 32 },
);

manualSeed(0);
const model = new models.StudentNet({ inputSize: size });
const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });

for (let epoch = 1; epoch <= Number(values.epochs); epoch++) {
  cuda?.resetPeakMemory();
  model.train();
  let correct = 0;
  if (mode === "plain") {
    for await (const [x, y] of train) {
      opt.zeroGrad();
      const loss = F.crossEntropy(model.forward(x), y);
      loss.backward();
      opt.step();
    }
    model.eval();
    await noGrad(async () => {
      for await (const [x, y] of val) {
        correct += model.forward(x).argmax(1).eq(y).sum().item();
      }
    });
  } else if (mode === "using") {
    for await (const batch of train) {
      using x = batch[0];
      using y = batch[1];
      opt.zeroGrad();
      using out = model.forward(x);
      using loss = F.crossEntropy(out, y);
      loss.backward();
      opt.step();
    }
    model.eval();
    for await (const batch of val) {
      using x = batch[0];
      using y = batch[1];
      using out = noGrad(() => model.forward(x));
      using hit = out.argmax(1);
      using eq = hit.eq(y);
      using n = eq.sum();
      correct += n.item();
    }
  } else {
    const own = ([x, y]: data.Batch) => {
      x.dispose();
      y.dispose();
    };
    for await (const batch of train) {
      tidy(() => {
        const [x, y] = batch;
        opt.zeroGrad();
        const loss = F.crossEntropy(model.forward(x), y);
        loss.backward();
        opt.step();
      });
      own(batch);
    }
    model.eval();
    for await (const batch of val) {
      correct += noGrad(() =>
        tidy(() => model.forward(batch[0]).argmax(1).eq(batch[1]).sum().item())
      );
      own(batch);
    }
  }
  const peak = cuda?.memoryStats().peakLiveBytes;
  await collectGarbage();
  const m = memory();
  console.log(JSON.stringify({
    epoch,
    rss: Deno.memoryUsage().rss,
    tensors: m.tensors,
    bytes: m.bytes,
    correct,
    ...(cuda
      ? { deviceLive: cuda.memoryStats().liveBytes, devicePeak: peak }
      : {}),
  }));
}
