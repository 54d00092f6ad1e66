/**
 * The `"nccl"` backend against a stand-in `libnccl.so.2` (`mock_nccl.c`,
 * NCCL's prototypes, collectives carried out with MPI) on the emulated CUDA
 * device (`tests/cuda/_mock.ts`: device memory is host memory), under
 * `mpirun -np 2`: start-up (rank 0's unique id broadcast over MPI and passed
 * by value), every collective on CUDA tensors, `DistributedDataParallel`
 * and `SyncBatchNorm` on 2 ranks × 16 against 1 rank × 32, an NCCL error
 * carried into a `DistributedError`, and a missing NCCL named with every
 * path tried. A real GPU runs the single-rank NCCL stage of
 * `bench/gpu_check.sh` instead.
 */

import assert from "node:assert/strict";
import { jsonLines, mpirun } from "./_mpirun.ts";
import { MockCuda } from "../cuda/_mock.ts";

const MPI_INCLUDE = "/usr/lib/x86_64-linux-gnu/openmpi/include";

async function setup(): Promise<Record<string, string>> {
  const dir = await Deno.makeTempDir({ prefix: "kdeno_nccl_mock_" });
  const nccl = `${dir}/libnccl.so.2`;
  const src = new URL("mock_nccl.c", import.meta.url).pathname;
  const cc = Deno.env.get("CC") ?? "cc";
  const out = await new Deno.Command(cc, {
    args: [
      "-shared",
      "-fPIC",
      "-O1",
      "-o",
      nccl,
      src,
      `-I${MPI_INCLUDE}`,
      "-lmpi",
    ],
  }).output();
  assert.ok(
    out.success,
    `building the NCCL stand-in failed (needs libopenmpi-dev):\n${
      new TextDecoder().decode(out.stderr)
    }`,
  );
  const emu = (await MockCuda.emulated()).path;
  for (const name of ["libcuda.so.1", "libnvrtc.so.13", "libcublas.so.13"]) {
    await Deno.symlink(emu, `${dir}/${name}`);
  }
  return {
    KDENO_NCCL_LIB: nccl,
    LD_LIBRARY_PATH: dir,
    KDENO_CUDA_LIB_DIRS: dir,
    KDENO_CACHE_DIR: `${dir}/cache`,
  };
}

const env = await setup();

Deno.test("nccl: start-up and collectives on CUDA tensors (2 ranks)", async () => {
  const r = await mpirun("_nccl_rank.ts", [], 2, env);
  assert.equal(r.code, 0, r.stderr);
  const lines = jsonLines(r);
  assert.equal(lines.length, 2, r.stdout);
  for (const l of lines) {
    assert.equal(l.version, 22707);
    assert.deepEqual(l.fails, [], `rank ${l.rank}`);
  }
});

type State = Record<string, number[]>;
async function state(args: string[], np: number): Promise<State> {
  const r = await mpirun("_ddp_rank.ts", args, np, env, 300_000);
  assert.equal(r.code, 0, r.stderr);
  return jsonLines(r)[0].state as State;
}

for (const kind of ["mlp", "student"]) {
  Deno.test(`nccl: DDP 2 ranks × 16 equal 1 rank × 32 on CUDA tensors (${kind})`, async () => {
    const a = await state([kind, "-", "cuda"], 0);
    const b = await state([kind, "-", "cuda"], 2);
    let d = 0;
    for (const k of Object.keys(a)) {
      a[k].forEach((v, i) => d = Math.max(d, Math.abs(v - b[k][i])));
    }
    assert.ok(d <= 1e-5, `max difference ${d}`);
  });
}

Deno.test("nccl: one rank without mpirun or Open MPI runs the whole NCCL path", async () => {
  const r = await mpirun("_nccl_rank.ts", [], 0, {
    ...env,
    KDENO_MPI_LIB: "/nonexistent/libmpi.so.40",
  });
  assert.equal(r.code, 0, r.stderr);
  const [l] = jsonLines(r);
  assert.equal(l.worldSize, 1);
  assert.deepEqual(l.fails, []);
});

Deno.test("nccl: an NCCL error becomes a DistributedError with NCCL's text", async () => {
  const r = await mpirun("_nccl_rank.ts", [], 2, {
    ...env,
    MOCK_NCCL_FAIL_INIT: "1",
  }, 60_000);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /DistributedError: ncclCommInitRank \(rank \d of 2\) failed: invalid usage \(run with NCCL_DEBUG=WARN for details\) \(ncclResult_t 5\)/,
  );
});

Deno.test("nccl: a missing NCCL names every path tried", async () => {
  const r = await mpirun("_nccl_rank.ts", [], 0, {
    ...env,
    KDENO_NCCL_LIB: "/nonexistent/nccl",
  });
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /BackendUnavailableError: Cannot load NCCL \(libnccl\.so\.2\) named by KDENO_NCCL_LIB/,
  );
  assert.match(r.stderr, /\/nonexistent\/nccl\/libnccl\.so\.2: not found/);
});
