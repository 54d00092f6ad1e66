/**
 * The tutorial's models at 224×224, batch 32: StudentNet train step and
 * inference, ResNet-18 inference and train step. `deno task compare` runs
 * the same workloads beside PyTorch.
 */
import {
  manualSeed,
  models,
  nn,
  noGrad,
  optim,
  randint,
  randn,
  tidy,
} from "../mod.ts";
import { cpuBackendLabel, throughputBench } from "./_throughput.ts";

manualSeed(0);
const x = randn([32, 3, 224, 224]);
const y = randint(0, 2, [32]);

function trainStep(model: nn.Module): () => void {
  const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  model.train();
  return () =>
    tidy(() => {
      opt.zeroGrad();
      nn.functional.crossEntropy(model.call(x), y).backward();
      opt.step();
    });
}

function infer(model: nn.Module): () => void {
  model.eval();
  return () => noGrad(() => tidy(() => void model.call(x)));
}

const student = new models.StudentNet();
throughputBench({
  origin: import.meta.url,
  work: { unit: "img", amount: 32 },
  backend: cpuBackendLabel,
  group: "StudentNet 224 b32",
  name: "train step",
  n: 20,
  warmup: 2,
  fn: trainStep(student),
});
throughputBench({
  origin: import.meta.url,
  work: { unit: "img", amount: 32 },
  backend: cpuBackendLabel,
  group: "StudentNet 224 b32",
  name: "inference",
  n: 20,
  warmup: 2,
  fn: infer(new models.StudentNet()),
});
const teacher = models.resnet18({ numClasses: 2 });
throughputBench({
  origin: import.meta.url,
  work: { unit: "img", amount: 32 },
  backend: cpuBackendLabel,
  group: "ResNet-18 224 b32",
  name: "inference",
  n: 3,
  warmup: 1,
  fn: infer(teacher),
});
throughputBench({
  origin: import.meta.url,
  work: { unit: "img", amount: 32 },
  backend: cpuBackendLabel,
  group: "ResNet-18 224 b32",
  name: "train step",
  n: 2,
  warmup: 1,
  fn: trainStep(models.resnet18({ numClasses: 2 })),
});
