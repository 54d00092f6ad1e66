/**
 * `DistributedDataParallel` and `SyncBatchNorm` against one process: five
 * SGD steps (momentum 0.9) on 2 ranks × batch 16 give the parameters of
 * 1 rank × batch 32 within 1e-5 (an MLP without batch norm, with and
 * without `noSync` accumulation; `StudentNet` with `SyncBatchNorm`, running
 * statistics included). Each rank starts from different weights, so the
 * construction-time broadcast is checked too.
 */

import assert from "node:assert/strict";
import { jsonLines, mpirun } from "./_mpirun.ts";

type State = Record<string, number[]>;

async function finalState(args: string[], np: number): Promise<State> {
  const r = await mpirun("_ddp_rank.ts", args, np);
  assert.equal(r.code, 0, r.stderr);
  const lines = jsonLines(r);
  assert.equal(lines.length, 1, r.stdout);
  assert.equal(lines[0].worldSize, np || 1);
  if (!args.includes("plain")) {
    assert.ok((lines[0].buckets as number) >= 2, "several buckets");
  }
  return lines[0].state as State;
}

function maxDiff(a: State, b: State): number {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  let m = 0;
  for (const k of Object.keys(a)) {
    assert.equal(a[k].length, b[k].length, k);
    a[k].forEach((v, i) => m = Math.max(m, Math.abs(v - b[k][i])));
  }
  return m;
}

const cases: [string, string[], string[]][] = [
  ["an MLP", ["mlp"], ["mlp"]],
  ["an MLP with noSync accumulation", ["mlp"], ["mlp", "noSync"]],
  ["StudentNet with SyncBatchNorm", ["student"], ["student"]],
];
for (const [name, one, two] of cases) {
  Deno.test(`DDP: 2 ranks × 16 equal 1 rank × 32 after 5 SGD steps (${name})`, async () => {
    const [a, b] = [await finalState(one, 0), await finalState(two, 2)];
    const d = maxDiff(a, b);
    assert.ok(d <= 1e-5, `max difference ${d}`);
  });
}

Deno.test("without DDP, 2 ranks × 16 do not match 1 rank × 32 (the comparison can fail)", async () => {
  const a = await finalState(["mlp"], 0);
  const b = await finalState(["mlp", "plain"], 2);
  assert.ok(maxDiff(a, b) > 1e-3, `max difference ${maxDiff(a, b)}`);
});
