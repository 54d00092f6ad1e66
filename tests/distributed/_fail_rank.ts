/**
 * Run by `collectives_test.ts` under `mpirun -np 2`: rank 1 fails while rank
 * 0 waits in a collective. `throw`: rank 1 throws an uncaught error.
 * `reject`: an unhandled promise rejection. `stall`: rank 1 stops calling
 * collectives (sleeps), so rank 0's collective times out.
 *
 * @module
 */

import { distributed, tensor } from "../../mod.ts";

const mode = Deno.args[0] ?? "throw";
const { rank } = distributed.init({ timeoutMs: 3000 });
distributed.barrier();
if (rank === 1) {
  if (mode === "throw") throw new Error("deliberate failure on rank 1");
  if (mode === "reject") {
    Promise.reject(new Error("deliberate rejection on rank 1"));
    await new Promise((r) => setTimeout(r, 60_000));
  }
  if (mode === "stall") await new Promise((r) => setTimeout(r, 60_000));
}
distributed.allReduce(tensor([1, 2, 3]));
console.log(`rank ${rank} finished (unexpected)`);
