/**
 * Test helper run as a subprocess: a long `Trainer.fit` on generated data
 * with checkpoints in `<dir>`, to be stopped with SIGINT. With `resume` as
 * the second argument it resumes and runs to `epochs` (third argument).
 *
 * @module
 */

import {
  distill,
  manualSeed,
  models,
  optim,
  train as training,
} from "../../mod.ts";
import { loaders } from "./_data.ts";

const [dir, mode, epochs] = Deno.args;
manualSeed(0);
const { train } = loaders(256, { batchSize: 4 });
const model = new models.StudentNet({ inputSize: 8 });
// about 10 ms per batch, so that the signal lands inside an epoch
const slow: distill.DistillCriterion = {
  name: "ce",
  terms(input) {
    const end = performance.now() + 10;
    while (performance.now() < end) { /* busy */ }
    return new distill.CrossEntropyCriterion().terms(input);
  },
};
const result = await new training.Trainer({
  progress: "none",
  checkpointDir: dir,
}).fit({
  model,
  train,
  epochs: Number(epochs ?? 1000),
  optimizer: new optim.SGD(model.parameters(), { lr: 0.01 }),
  loss: slow,
  resume: mode === "resume",
});
console.log(
  `done interrupted=${result.interrupted} epochs=${result.history.length}`,
);
