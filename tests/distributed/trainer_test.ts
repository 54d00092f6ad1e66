/**
 * `Trainer.fit` unchanged under `mpirun -np 2`: knowledge distillation with
 * the teacher cache, validation, checkpoints and a report on 2 ranks × 8
 * images per step gives the history and weights of 1 rank × 16 (the loss
 * sums, correct counts and sizes reduced over ranks; validation sharded
 * without padding, all 21 images counted once); only rank 0 prints and
 * writes; each rank caches its own shard of the teacher's logits; and a run
 * stopped after one epoch on 2 ranks resumes on 1 rank to the same weights.
 */

import assert from "node:assert/strict";
import { jsonLines, mpirun } from "./_mpirun.ts";

interface Summary {
  rank: number;
  worldSize: number;
  logged: number;
  cacheEntries?: number;
  history: Record<string, number>[];
  weights?: Record<string, number[]>;
}

async function run(dir: string, args: string[], np: number) {
  const r = await mpirun("_trainer_rank.ts", [dir, ...args], np);
  assert.equal(r.code, 0, r.stderr);
  const lines = jsonLines(r) as unknown as Summary[];
  assert.equal(lines.length, np || 1, r.stdout);
  const final = JSON.parse(
    await Deno.readTextFile(
      `${dir}/final_${[dir, ...args].join("_").replaceAll("/", "")}.json`,
    ),
  ) as Summary;
  return { lines, final, stdout: r.stdout };
}

function maxDiff(a: Summary, b: Summary): number {
  let m = 0;
  for (const [k, v] of Object.entries(a.weights!)) {
    v.forEach((x, i) => m = Math.max(m, Math.abs(x - b.weights![k][i])));
  }
  return m;
}

const base = await Deno.makeTempDir({ prefix: "kdeno_dist_trainer_" });
const one = await run(`${base}/one`, ["2"], 0);

Deno.test("Trainer.fit on 2 ranks equals 1 rank, rank 0 prints and writes", async () => {
  const two = await run(`${base}/two`, ["2"], 2);
  const d = maxDiff(one.final, two.final);
  assert.ok(d <= 1e-5, `max weight difference ${d}`);
  two.final.history.forEach((h, e) => {
    const ref = one.final.history[e];
    assert.equal(h.trainN, 64);
    assert.equal(h.valN, 21);
    assert.equal(h.trainAcc, ref.trainAcc);
    assert.equal(h.valAcc, ref.valAcc);
    assert.ok(Math.abs(h.trainLoss - ref.trainLoss) < 1e-5);
    assert.ok(Math.abs(h.valLoss - ref.valLoss) < 1e-5);
  });
  const byRank = Object.fromEntries(two.lines.map((l) => [l.rank, l]));
  assert.ok(byRank[0].logged > 5);
  assert.equal(byRank[1].logged, 0);
  assert.equal(two.stdout.split("Epoch 1/2").length - 1, 1);
  // the teacher cache is sharded: each rank holds its 32 of the 64 images
  assert.equal(one.lines[0].cacheEntries, 64);
  assert.equal(byRank[0].cacheEntries, 32);
  assert.equal(byRank[1].cacheEntries, 32);
  const files = [...Deno.readDirSync(`${base}/two`)].map((e) => e.name).sort();
  assert.deepEqual(files.filter((f) => !f.startsWith("final_")), [
    "ckpt",
    "metrics.jsonl",
    "report.html",
  ]);
});

Deno.test("Trainer.fit resumes a 2-rank run on 1 rank to the same weights", async () => {
  const dir = `${base}/resume`;
  await run(dir, ["1"], 2);
  const resumed = await run(dir, ["2", "resume"], 0);
  const d = maxDiff(one.final, resumed.final);
  assert.ok(d <= 1e-5, `max weight difference ${d}`);
  assert.match(
    resumed.stdout,
    /Resumed from .*last\.safetensors: 1 epoch\(s\) done/,
  );
});

Deno.test("Trainer.fit resumes a 1-rank run on 2 ranks to the same weights", async () => {
  const dir = `${base}/resume2`;
  await run(dir, ["1"], 0);
  const resumed = await run(dir, ["2", "resume"], 2);
  const d = maxDiff(one.final, resumed.final);
  assert.ok(d <= 1e-5, `max weight difference ${d}`);
});
addEventListener("unload", () => Deno.removeSync(base, { recursive: true }));
