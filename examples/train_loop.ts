/**
 * A plain training loop, as in PyTorch's tutorials: StudentNet learns
 * T-shirt/top vs Shirt (the bundled 28×28 images) with SGD and prints the
 * loss and test accuracy of each epoch. The garbage collector frees the
 * tensors, as in PyTorch. Run: `deno run -A examples/train_loop.ts --epochs 3`
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  data,
  manualSeed,
  models,
  nn,
  noGrad,
  optim,
  transforms as T,
} from "../mod.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: { epochs: { type: "string", default: "3" } },
});
const root = new URL("./data/fashion-binary", import.meta.url).pathname;
manualSeed(0);

const transform = [
  new T.ToTensor(),
  new T.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
];
const trainSet = new data.ImageFolder(`${root}/train`, { transform });
const testSet = new data.ImageFolder(`${root}/test`, { transform });
const trainLoader = new data.DataLoader(trainSet, {
  batchSize: 32,
  shuffle: true,
});
const testLoader = new data.DataLoader(testSet, { batchSize: 100 });

const model = new models.StudentNet({ inputSize: 28, numClasses: 2 });
const optimizer = new optim.SGD(model.parameters(), {
  lr: 0.01,
  momentum: 0.9,
});

for (let epoch = 1; epoch <= Number(flags.epochs); epoch++) {
  model.train();
  let lossSum = 0;
  let batches = 0;
  for await (const [images, labels] of trainLoader) {
    optimizer.zeroGrad();
    const loss = nn.functional.crossEntropy(model.call(images), labels);
    loss.backward();
    optimizer.step();
    lossSum += loss.item();
    batches++;
  }

  model.eval();
  let correct = 0;
  for await (const [images, labels] of testLoader) {
    const predicted = noGrad(() => model.call(images).argmax(1));
    correct += predicted.eq(labels).sum().item();
  }
  console.log(
    `epoch ${epoch}: train loss ${(lossSum / batches).toFixed(4)}, ` +
      `test accuracy ${(correct / testSet.length).toFixed(4)}`,
  );
}
