/**
 * Device memory of StudentNet and a small conv net on the CUDA backend, as
 * `peaks_test.ts` and `bench/gpu_check.sh` read it: run as its own process
 * (on the emulated device, `KDENO_CUDA_LIB_DIRS` names the stand-in
 * libraries). Prints one JSON object: per case the allocator's live bytes
 * before, the peak during, and the live bytes after, for inference under
 * `noGrad` (once, then ten times without keeping the outputs) and for one
 * SGD-with-momentum training step.
 *
 * Usage: deno run -A tests/cuda/_peaks.ts [--batch 8] [--size 16]
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  cuda,
  manualSeed,
  models,
  nn,
  noGrad,
  optim,
  randint,
  randn,
  setBackend,
  type Tensor,
} from "../../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batch: { type: "string", default: "8" },
    size: { type: "string", default: "16" },
  },
});
const N = Number(values.batch);
const S = Number(values.size);
const CLASSES = 10;
setBackend("cuda");
manualSeed(0);

/** The small conv net of the peak tests (its shapes are in peaks_test.ts). */
function convNet(): nn.Module {
  return new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
    new nn.Conv2d(8, 16, 3, { padding: 1 }),
    new nn.BatchNorm2d(16),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Flatten(),
    new nn.Linear(16 * (S / 2) * (S / 2), CLASSES),
  );
}

function measure(make: () => nn.Module) {
  const net = make().to("cuda");
  const x = randn([N, 3, S, S], { device: "cuda" });
  const labels = randint(0, CLASSES, [N]);
  // inference
  net.eval();
  const outs: Tensor[] = [];
  outs.push(noGrad(() => net.call(x))); // first call: anything made once
  outs.pop()!.dispose();
  const base = cuda.memoryAllocated();
  cuda.resetPeakMemoryStats();
  const y = noGrad(() => net.call(x));
  const inference = {
    before: base,
    peak: cuda.maxMemoryAllocated(),
    after: cuda.memoryAllocated(),
  };
  y.dispose();
  // a plain loop that drops its outputs without disposing them
  const loopBefore = cuda.memoryAllocated();
  for (let i = 0; i < 10; i++) noGrad(() => net.call(x));
  const loopGrowth = cuda.memoryAllocated() - loopBefore;
  // one training step; a first one makes the optimizer state
  net.train();
  const opt = new optim.SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
  const step = () => {
    opt.zeroGrad();
    const loss = nn.functional.crossEntropy(net.call(x), labels);
    loss.backward();
    opt.step();
    loss.dispose();
  };
  step();
  const trainBefore = cuda.memoryAllocated();
  cuda.resetPeakMemoryStats();
  step();
  const training = {
    before: trainBefore,
    peak: cuda.maxMemoryAllocated(),
    after: cuda.memoryAllocated(),
  };
  const params = net.parameters().map((p) => p.numel());
  const buffers = net.buffers().map((b) => b.numel());
  return { inference, loopGrowth, training, params, buffers };
}

const student = measure(() =>
  new models.StudentNet({ inputSize: S, numClasses: CLASSES })
);
const conv = measure(convNet);
console.log(JSON.stringify({
  batch: N,
  size: S,
  classes: CLASSES,
  student,
  conv,
  stats: cuda.memoryStats(),
}));
