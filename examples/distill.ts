/**
 * The main job. Until the distillation trainer lands, this trains the
 * tutorial's StudentNet on a small generated task (bright left half vs
 * bright right half, with noise) and prints the loss falling.
 *
 * Run: deno run -A examples/distill.ts [--epochs 5] [--size 16]
 */
import { parseArgs } from "node:util";
import {
  manualSeed,
  models,
  nn,
  noGrad,
  optim,
  randn,
  tensor,
  tidy,
} from "../mod.ts";
import type { Tensor } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "5" },
    size: { type: "string", default: "16" },
    seed: { type: "string", default: "0" },
  },
});
const epochs = Number(values.epochs);
const size = Number(values.size);
manualSeed(Number(values.seed));

/** Images whose class is which half is brighter. */
function makeData(n: number): [Tensor, Tensor] {
  const noise = randn([n, 3, size, size]).data() as Float32Array;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const bright = (x < size / 2) === (labels[i] === 0) ? 0.1 : 0;
          noise[((i * 3 + c) * size + y) * size + x] += bright;
        }
      }
    }
  }
  return [tensor(noise, { shape: [n, 3, size, size] }), tensor(labels)];
}

const [trainX, trainY] = makeData(256);
const [testX, testY] = makeData(128);
const model = new models.StudentNet({ inputSize: size, numClasses: 2 });
const opt = new optim.SGD(model.parameters(), { lr: 0.002, momentum: 0.9 });
const batch = 32;
console.log(
  `StudentNet (${model.numParameters()} parameters) on a generated ${size}x${size} task`,
);
for (let epoch = 1; epoch <= epochs; epoch++) {
  model.train();
  let total = 0;
  for (let i = 0; i < 256; i += batch) {
    total += tidy(() => {
      const x = trainX.slice(0, i, i + batch);
      const y = trainY.slice(0, i, i + batch);
      opt.zeroGrad();
      const loss = nn.functional.crossEntropy(model.call(x), y);
      loss.backward();
      opt.step();
      return loss.item() * batch;
    });
  }
  model.eval();
  const acc = noGrad(() =>
    tidy(() => model.call(testX).argmax(1).eq(testY).float().mean().item())
  );
  console.log(
    `Epoch ${epoch}/${epochs} train Loss: ${
      (total / 256).toFixed(4)
    } test Acc: ${acc.toFixed(4)}`,
  );
}
