/**
 * The tutorial's models on the CUDA backend: ResNet-18 train step at 224
 * (batch 32 and 256, strict fp32 and TF32), StudentNet train step, and the
 * KD step (ResNet-18 inference + StudentNet train step on the KD loss).
 * Wall-clock images/s with a device synchronize around each timed loop, and
 * the allocator's peak live bytes per workload. `gpu_models_torch.py` runs
 * the same in PyTorch.
 *
 * Usage: deno run -A bench/gpu_models.ts [--json OUT] [--quick]
 *
 * @module
 */
import {
  manualSeed,
  models,
  nn,
  noGrad,
  optim,
  randint,
  randn,
  setBackend,
  type Tensor,
  tidy,
} from "../mod.ts";
import { getBackend } from "../src/backend/registry.ts";
import { type CudaBackend, setCudaMathMode } from "../src/backend/cuda/mod.ts";

const args = Deno.args;
const jsonPath = args.includes("--json")
  ? args[args.indexOf("--json") + 1]
  : undefined;
const quick = args.includes("--quick");
setBackend("cuda");
const be = getBackend("cuda") as CudaBackend;
const F = nn.functional;

interface Row {
  imgPerS: number;
  msPerStep: number;
  peakLiveMiB: number;
}
const results: Record<string, Row | { error: string }> = {};

function measure(
  name: string,
  batch: number,
  setup: () => () => void,
): void {
  const iters = quick ? 2 : batch >= 256 ? 10 : 20;
  try {
    const step = setup();
    for (let i = 0; i < 3; i++) step(); // algorithm search, kernel compiles
    be.synchronize();
    be.resetPeakMemory();
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) step();
    be.synchronize();
    const ms = (performance.now() - t0) / iters;
    const peak = be.memoryStats().peakLiveBytes / 2 ** 20;
    results[name] = {
      imgPerS: batch / (ms / 1000),
      msPerStep: ms,
      peakLiveMiB: peak,
    };
    console.log(
      `${name}: ${(batch / (ms / 1000)).toFixed(1)} img/s, ${
        ms.toFixed(2)
      } ms/step, peak ${peak.toFixed(0)} MiB`,
    );
  } catch (e) {
    results[name] = { error: String((e as Error).stack ?? e) };
    console.log(`${name}: FAILED ${(e as Error).message}`);
  }
  save();
}

function save(): void {
  if (jsonPath) {
    Deno.writeTextFileSync(
      jsonPath,
      JSON.stringify({ device: be.info.device, results }, null, 2),
    );
  }
}

function trainStep(model: nn.Module, x: Tensor, y: Tensor): () => void {
  const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  model.train();
  return () =>
    tidy(() => {
      opt.zeroGrad();
      F.crossEntropy(model.call(x), y).backward();
      opt.step();
    });
}

function kdStep(
  teacher: nn.Module,
  student: nn.Module,
  x: Tensor,
  y: Tensor,
): () => void {
  const opt = new optim.SGD(student.parameters(), { lr: 0.01, momentum: 0.9 });
  teacher.eval();
  student.train();
  const T = 4, alpha = 0.9;
  return () =>
    tidy(() => {
      const t = noGrad(() => teacher.call(x));
      opt.zeroGrad();
      const s = student.call(x);
      const kl = F.klDiv(
        F.logSoftmax(s.div(T), 1),
        F.softmax(t.div(T), 1),
        { reduction: "batchmean" },
      );
      const loss = F.crossEntropy(s, y).mul(1 - alpha).add(
        kl.mul(alpha * T * T),
      );
      loss.backward();
      opt.step();
    });
}

manualSeed(0);
for (const mode of ["fp32", "tf32"] as const) {
  setCudaMathMode(mode);
  for (const batch of [32, 256]) {
    if (mode === "tf32" && batch === 32) continue;
    measure(`resnet18_train_b${batch}_${mode}`, batch, () => {
      const x = randn([batch, 3, 224, 224]);
      const y = randint(0, 2, [batch]);
      return trainStep(models.resnet18({ numClasses: 2 }), x, y);
    });
  }
  measure(`kd_step_b256_${mode}`, 256, () => {
    const x = randn([256, 3, 224, 224]);
    const y = randint(0, 2, [256]);
    return kdStep(
      models.resnet18({ numClasses: 2 }),
      new models.StudentNet(),
      x,
      y,
    );
  });
}
setCudaMathMode("fp32");
measure("studentnet_train_b256_fp32", 256, () => {
  const x = randn([256, 3, 224, 224]);
  const y = randint(0, 2, [256]);
  return trainStep(new models.StudentNet(), x, y);
});
save();
