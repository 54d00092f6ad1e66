/**
 * The process group on Open MPI: every collective under `mpirun -np 2` and
 * `-np 3` against values computed locally, a world of one without
 * `mpirun`, a failing rank and a stalled rank ending the whole job with a
 * message instead of hanging, and a missing library named in the error.
 */

import assert from "node:assert/strict";
import { jsonLines, mpirun } from "./_mpirun.ts";
import { distributed } from "../../mod.ts";
import { DistributedError } from "../../src/distributed/errors.ts";

for (const np of [0, 2, 3]) {
  Deno.test(`collectives match local values (${np || 1} rank(s)${np ? ", mpirun" : ""})`, async () => {
    const r = await mpirun("_collectives_rank.ts", [], np);
    assert.deepEqual(r.code, 0, r.stderr);
    const lines = jsonLines(r);
    assert.deepEqual(lines.length, np || 1, r.stdout);
    for (const l of lines) {
      assert.deepEqual(l.worldSize, np || 1);
      assert.deepEqual(l.fails, [], `rank ${l.rank}`);
    }
    assert.deepEqual(
      lines.map((l) => l.rank as number).sort(),
      Array.from({ length: np || 1 }, (_, k) => k),
    );
  });
}

for (const mode of ["throw", "reject", "stall"]) {
  Deno.test(`a rank that ${mode}s ends every rank with a message`, async () => {
    const r = await mpirun("_fail_rank.ts", [mode], 2, {}, 60_000);
    assert(r.code !== 0, `exit code ${r.code}`);
    assert(r.seconds < 50, `took ${r.seconds} s`);
    assert(!r.stdout.includes("finished"), r.stdout);
    assert.match(r.stderr, /is aborting the whole job \(MPI_Abort\)/);
    if (mode === "stall") {
      assert.match(
        r.stderr,
        /rank 0\/2: allReduce\(sum\) of \[3\] did not complete within 3 s/,
      );
    } else {
      assert.match(r.stderr, /rank 1\/2: uncaught error/);
      assert.match(r.stderr, /deliberate (failure|rejection) on rank 1/);
    }
  });
}

Deno.test("a missing Open MPI names every path tried", async () => {
  const r = await mpirun("_collectives_rank.ts", [], 0, {
    KDENO_MPI_LIB: "/nonexistent/libmpi.so.40",
  });
  assert(r.code !== 0);
  assert.match(r.stderr, /BackendUnavailableError/);
  assert.match(
    r.stderr,
    /Cannot load Open MPI \(libmpi\.so\.40\) named by KDENO_MPI_LIB/,
  );
  assert.match(r.stderr, /\/nonexistent\/libmpi\.so\.40: not found/);
});

Deno.test("collectives before init raise DistributedError; a world of one without a group", () => {
  assert.deepEqual(distributed.isInitialized(), false);
  assert.deepEqual(distributed.rank(), 0);
  assert.deepEqual(distributed.worldSize(), 1);
  assert.deepEqual(distributed.isMainRank(), true);
  assert.deepEqual(distributed.allReduceNumbers([1, 2]), [1, 2]);
  assert.throws(
    () => distributed.barrier(),
    (e) =>
      e instanceof DistributedError &&
      /call distributed.init\(\) first/.test(e.message),
  );
});
