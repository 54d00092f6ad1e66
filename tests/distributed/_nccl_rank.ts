/**
 * Run by `nccl_test.ts` under `mpirun` with the stand-in `libnccl.so.2`
 * (`mock_nccl.c`) and the emulated CUDA device (device memory is host
 * memory there, which the stand-in reduces with MPI): the `"nccl"` backend's
 * start-up (rank 0's unique id broadcast over MPI, passed by value to
 * `ncclCommInitRank`) and every collective on CUDA tensors, checked against
 * local values and against the stand-in's call counters (so that NCCL, not
 * the MPI fallback, did the work). Prints one JSON line per rank. Also
 * run on one real GPU by `bench/gpu_check.sh` (the counters are then
 * skipped).
 *
 * @module
 */

import { distributed, tensor } from "../../mod.ts";

const info = distributed.init({ backend: "nccl" });
const { rank, worldSize: n } = info;
// the stand-in's call counters; a real NCCL (bench/gpu_check.sh) has none
const mock = Deno.dlopen(
  info.ncclLibrary!,
  {
    mock_nccl_calls: { parameters: ["buffer"], result: "i32", optional: true },
  } as const,
).symbols.mock_nccl_calls;
const calls = () => {
  const c = new Int32Array(7);
  if (!mock) return [1, 3, 1, 1, 7, 2, 3]; // what the checks below expect
  mock(c);
  return [...c];
};
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
const dev = { device: "cuda" as const };
const x = () => tensor([1, 2, 3].map((v) => v * (rank + 1)), dev);
const tot = ranks.reduce((s, k) => s + k + 1, 0);
const a = distributed.allReduce(x());
if (a.device !== "cuda") fails.push(`device ${a.device}`);
close(a.data(), [1, 2, 3].map((v) => v * tot), "sum");
close(
  distributed.allReduce(x(), "avg").data(),
  [1, 2, 3].map((v) => v * tot / n),
  "avg",
);
close(distributed.allReduce(x(), "max").data(), [n, 2 * n, 3 * n], "max");
const afterReduce = calls();
if (afterReduce[0] !== 1) {
  fails.push(`ncclCommInitRank calls ${afterReduce[0]}`);
}
if (afterReduce[1] !== 3) fails.push(`ncclAllReduce calls ${afterReduce[1]}`);
if (afterReduce[4] !== 7 || afterReduce[5] !== 2 || afterReduce[6] !== 3) {
  fails.push(`last ncclAllReduce dtype/op/count ${afterReduce.slice(4)}`);
}
const b = distributed.broadcast(tensor([rank, rank + 0.5], dev), n - 1);
close(b.data(), [n - 1, n - 0.5], "broadcast");
const g = distributed.allGather(tensor([rank * 10], dev));
if (g.shape.join() !== `${n},1` || g.device !== "cuda") {
  fails.push(`allGather ${g.shape} ${g.device}`);
}
close(g.data(), ranks.map((k) => 10 * k), "allGather");
const end = calls();
if (end[2] !== 1 || end[3] !== 1) fails.push(`calls ${end}`);
console.log(
  JSON.stringify({ rank, worldSize: n, version: info.ncclVersion, fails }),
);
distributed.destroy();
