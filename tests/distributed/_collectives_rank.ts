/**
 * Run by `collectives_test.ts` under `mpirun -np N`: every collective on
 * values each rank can compute for every other rank, checked here against
 * those local values; prints one JSON line per rank.
 *
 * @module
 */

import { distributed, tensor } from "../../mod.ts";

const info = distributed.init();
const { rank, worldSize: n } = info;
const fails: string[] = [];
const close = (got: ArrayLike<number>, want: number[], what: string) => {
  for (let i = 0; i < want.length; i++) {
    if (Math.abs(got[i] - want[i]) > 1e-5 * Math.max(1, Math.abs(want[i]))) {
      fails.push(`${what}: [${Array.from(got)}] != [${want}]`);
      return;
    }
  }
};
const ranks = Array.from({ length: n }, (_, k) => k);
// rank k holds (k + 1) * [1, 2, 3, 4] (float32) and [k, -k, 10 * k] (int32)
const base = [1, 2, 3, 4];
const mine = () => tensor(base.map((v) => v * (rank + 1)), { shape: [2, 2] });
const sumF = base.map((v) => v * ranks.reduce((s, k) => s + k + 1, 0));
close(distributed.allReduce(mine()).data(), sumF, "sum");
close(
  distributed.allReduce(mine(), "avg").data(),
  sumF.map((v) => v / n),
  "avg",
);
close(
  distributed.allReduce(mine(), "max").data(),
  base.map((v) => v * n),
  "max",
);
close(distributed.allReduce(mine(), "min").data(), base, "min");
const ints = tensor(new Int32Array([rank, -rank, 10 * rank]), { shape: [3] });
const s = ranks.reduce((a, k) => a + k, 0);
close(distributed.allReduce(ints).data(), [s, -s, 10 * s], "int32 sum");
const b = tensor(base.map((v) => v + rank * 100), { shape: [4] });
close(
  distributed.broadcast(b, n - 1).data(),
  base.map((v) => v + (n - 1) * 100),
  "broadcast",
);
const g = distributed.allGather(tensor([rank, rank * 2], { shape: [2] }));
if (g.shape.join() !== `${n},2`) fails.push(`allGather shape ${g.shape}`);
close(g.data(), ranks.flatMap((k) => [k, 2 * k]), "allGather");
// a large buffer: 1 Mi floats
const big = new Float32Array(1 << 20).fill(rank + 1);
const bt = tensor(big, { shape: [big.length] });
distributed.allReduce(bt);
const bd = bt.data();
const want = ranks.reduce((a, k) => a + k + 1, 0);
if (bd[0] !== want || bd[bd.length - 1] !== want) fails.push(`big ${bd[0]}`);
distributed.barrier();
console.log(JSON.stringify({ rank, worldSize: n, fails }));
distributed.destroy();
