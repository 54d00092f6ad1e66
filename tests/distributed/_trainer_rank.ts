/**
 * Run by `trainer_test.ts`, alone or under `mpirun -np N`: an unchanged
 * `Trainer.fit` (knowledge distillation with the teacher cache, validation,
 * checkpoints and a report) on 64 training images in batches of 16 / N per
 * rank, so that every world size trains on the same samples per step.
 * Every rank prints one JSON line (history, lines logged); rank 0 writes
 * the final weights to `<outDir>/final_<args>.json`.
 *
 * Usage: deno run -A _trainer_rank.ts <outDir> <epochs> [resume]
 *
 * @module
 */

import {
  data,
  distributed,
  Generator,
  manualSeed,
  models,
  nn,
  optim,
  tensor,
  train,
} from "../../mod.ts";

const [outDir, epochsArg, resume] = Deno.args;
// OMPI_COMM_WORLD_SIZE: the trainer joins the group itself; read it here
// only to size the batches
const world = Number(Deno.env.get("OMPI_COMM_WORLD_SIZE") ?? "1");
const gen = new Generator(99);
const images = (n: number) =>
  tensor(Float32Array.from({ length: n * 3 * 4 * 4 }, () => gen.normal()), {
    shape: [n, 3, 4, 4],
  });
const labels = (n: number) =>
  tensor(Int32Array.from({ length: n }, () => gen.below(2)), { shape: [n] });
const [xt, yt, xv, yv] = [images(64), labels(64), images(21), labels(21)];
const trainLoader = new data.TensorLoader(xt, yt, { batchSize: 16 / world });
const valLoader = new data.TensorLoader(xv, yv, { batchSize: 4 });

manualSeed(3);
const teacher = new models.StudentNet({ inputSize: 4 }).eval();
const student = new nn.Sequential(
  new nn.Flatten(),
  new nn.Linear(48, 8),
  new nn.ReLU(),
  new nn.Linear(8, 2),
);
const lines: string[] = [];
const result = await new train.Trainer({
  progress: "lines",
  log: (l) => {
    lines.push(l);
    console.log(l);
  },
  checkpointDir: `${outDir}/ckpt`,
  report: { dir: outDir },
}).fit({
  model: student,
  teacher,
  train: trainLoader,
  val: valLoader,
  epochs: Number(epochsArg),
  optimizer: new optim.SGD(student.parameters(), { lr: 0.1, momentum: 0.9 }),
  resume: resume === "resume",
  seed: 5,
});
const weights = Object.fromEntries(
  Object.entries(student.stateDict()).map(([k, t]) => [k, [...t.data()]]),
);
const rank = distributed.rank();
const summary = {
  rank,
  worldSize: distributed.worldSize(),
  logged: lines.length,
  history: result.history.map((r) => ({
    trainN: r.train.n,
    trainLoss: r.train.loss,
    trainAcc: r.train.acc,
    valN: r.val?.n,
    valLoss: r.val?.loss,
    valAcc: r.val?.acc,
  })),
  cacheEntries: result.cache?.entries,
};
// each rank: one short line (mpirun may interleave long lines of two
// ranks); rank 0 also writes the weights to a file
console.log(JSON.stringify(summary));
if (rank === 0) {
  await Deno.writeTextFile(
    `${outDir}/final_${Deno.args.join("_").replaceAll("/", "")}.json`,
    JSON.stringify({ ...summary, weights }),
  );
}
