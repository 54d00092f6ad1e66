/**
 * Mixed precision on the CUDA backend, beside `gpu_amp_torch.py`:
 *
 * - `matmul_<dtype>`: a 512x512 product under `amp.autocast` against the
 *   product of the rounded inputs computed in float64 on the host (max
 *   relative error; cuBLAS accumulates in float32);
 * - `scaler`: the `GradScaler` scale after a scripted sequence of clean
 *   and inf steps (growthInterval 3), to compare with PyTorch's;
 * - `resnet18_train_b<batch>_amp_fp16`: ResNet-18 training steps at 224
 *   under `autocast` float16 with a `GradScaler` (img/s, ms/step, peak
 *   device MiB), and the same step in float32 for the ratio.
 *
 * Usage: deno run -A bench/gpu_amp.ts [--json OUT] [--batch 256] [--quick]
 *
 * @module
 */
import {
  amp,
  cuda,
  manualSeed,
  matmul,
  models,
  nn,
  optim,
  randint,
  randn,
  setBackend,
  type Tensor,
  tensor,
  tidy,
} from "../mod.ts";
import { getBackend } from "../src/backend/registry.ts";
import type { CudaBackend } from "../src/backend/cuda/mod.ts";

const args = Deno.args;
const opt = (name: string) =>
  args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
const jsonPath = opt("--json");
const batch = Number(opt("--batch") ?? 256);
const quick = args.includes("--quick");
setBackend("cuda");
const be = getBackend("cuda") as CudaBackend;
const F = nn.functional;
const results: Record<string, unknown> = {};

function save(): void {
  if (jsonPath) {
    Deno.writeTextFileSync(
      jsonPath,
      JSON.stringify({ device: be.info.device, results }, null, 2),
    );
  }
}

manualSeed(0);
for (const dtype of ["float16", "bfloat16"] as const) {
  const n = 512;
  const a = randn([n, n]), b = randn([n, n]);
  const y = amp.autocast({ dtype }, () => matmul(a, b)).data();
  const ra = amp.roundThrough(a.data(), dtype);
  const rb = amp.roundThrough(b.data(), dtype);
  let err = 0, scale = 0;
  for (let i = 0; i < n; i += 7) {
    for (let j = 0; j < n; j += 5) {
      let s = 0;
      for (let l = 0; l < n; l++) s += ra[i * n + l] * rb[l * n + j];
      err = Math.max(err, Math.abs(y[i * n + j] - s));
      scale = Math.max(scale, Math.abs(s));
    }
  }
  results[`matmul_${dtype}`] = { maxRelErr: err / scale };
  console.log(
    `matmul_${dtype}: max relative error ${(err / scale).toExponential(2)}`,
  );
}

// the GradScaler's scale over a scripted sequence: c = clean, i = inf grads
const script = "ccciccccccicc";
{
  const m = new nn.Linear(4, 2).to("cuda");
  const o = new optim.SGD(m.parameters(), { lr: 0.01 });
  const s = new amp.GradScaler({ growthInterval: 3 });
  const x = randn([8, 4]);
  const yl = randint(0, 2, [8]);
  const scales: number[] = [];
  for (const c of script) {
    o.zeroGrad();
    s.scale(F.crossEntropy(m.call(x), yl)).backward();
    if (c === "i") m.bias!.grad = tensor([Infinity, 0]);
    s.step(o);
    s.update();
    scales.push(s.getScale());
  }
  results.scaler = { script, scales };
  console.log(`scaler ${script}: ${scales.join(" ")}`);
}
save();

function trainStep(useAmp: boolean): () => void {
  const model = models.resnet18({ numClasses: 2 });
  const o = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const scaler = new amp.GradScaler({ enabled: useAmp });
  const x = randn([batch, 3, 224, 224]);
  const y = randint(0, 2, [batch]);
  model.train();
  return () =>
    tidy(() => {
      o.zeroGrad();
      const loss = amp.autocast(
        { dtype: "float16", enabled: useAmp },
        () => F.crossEntropy(model.call(x) as Tensor, y),
      );
      scaler.scale(loss).backward();
      scaler.step(o);
      scaler.update();
    });
}

for (const useAmp of [false, true]) {
  const name = `resnet18_train_b${batch}_${useAmp ? "amp_fp16" : "fp32"}`;
  try {
    const step = trainStep(useAmp);
    for (let i = 0; i < 3; i++) step();
    be.synchronize();
    cuda.resetPeakMemoryStats();
    const iters = quick ? 2 : 10;
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) step();
    be.synchronize();
    const ms = (performance.now() - t0) / iters;
    const peak = cuda.maxMemoryAllocated() / 2 ** 20;
    results[name] = {
      imgPerS: batch / (ms / 1000),
      msPerStep: ms,
      peakLiveMiB: peak,
    };
    console.log(
      `${name}: ${(batch / (ms / 1000)).toFixed(1)} img/s, peak ${
        peak.toFixed(0)
      } MiB`,
    );
  } catch (e) {
    results[name] = { error: String((e as Error).stack ?? e) };
    console.log(`${name}: FAILED ${(e as Error).message}`);
  }
  save();
}
