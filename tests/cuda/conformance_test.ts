/**
 * The op conformance suites (`tests/ops/`) on the CUDA backend: run in a
 * subprocess with `KDENO_DEVICE=cuda` and `KDENO_TEST_BACKENDS=cuda`, its
 * output printed, and required to pass with at least one CUDA test run (a
 * suite that only skipped does not count).
 *
 * Where the CUDA backend does not load, that test is ignored with the
 * reason, and the same suites run instead against the emulated device: the
 * stand-in driver with every kernel compiled for the host
 * (`tests/fixtures/ffi_mock/`), found as `libcuda.so.1`, `libnvrtc.so.13` and
 * `libcublas.so.13` through `LD_LIBRARY_PATH` and `KDENO_CUDA_LIB_DIRS` in the
 * subprocess. That checks the whole path from ops to kernels on CPU; it is no
 * substitute for the GPU run.
 *
 * `KDENO_CONFORMANCE_TIMEOUT_S` bounds each subprocess (default 300 s).
 */

import assert from "node:assert/strict";
import { createCudaBackend } from "../../src/backend/cuda/mod.ts";
import { emulationUnavailable, MockCuda } from "./_mock.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

let reason: string | null = null;
try {
  createCudaBackend();
} catch (e) {
  reason = String((e as Error).message).replace(/\s+/g, " ").slice(0, 300);
}

/** Runs `deno test -A tests/ops/` on the CUDA backend and checks the result. */
async function runOpSuites(env: Record<string, string>): Promise<void> {
  const limit = Number(Deno.env.get("KDENO_CONFORMANCE_TIMEOUT_S") ?? 300);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "tests/ops/"],
    cwd: ROOT,
    env: {
      ...env,
      KDENO_DEVICE: "cuda",
      KDENO_TEST_BACKENDS: "cuda",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, limit * 1000);
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  console.log(text);
  assert.ok(!timedOut, `deno test tests/ops/ ran past ${limit} s`);
  assert.ok(out.success, `deno test tests/ops/ failed (exit ${out.code})`);
  const lines = text.split("\n").filter((l) => l.startsWith("[cuda]"));
  assert.ok(
    lines.some((l) => / \.\.\. ok/.test(l)),
    "no [cuda] test ran in tests/ops/",
  );
  assert.deepEqual(
    lines.filter((l) => /skipped/.test(l)),
    [],
    "CUDA suites were skipped",
  );
}

if (!reason) {
  Deno.test("[cuda] the op suites in tests/ops/ pass on the CUDA backend", () =>
    runOpSuites({}));
} else {
  Deno.test({
    name: `[cuda] conformance skipped: ${reason}`,
    ignore: true,
    fn() {},
  });
  const noEmu = emulationUnavailable();
  Deno.test({
    name: "[cuda emulated on CPU] the op suites in tests/ops/ pass" +
      (noEmu ? ` (skipped: ${noEmu})` : ""),
    ignore: noEmu !== null,
    async fn() {
      const lib = (await MockCuda.emulated()).path;
      const dir = await Deno.makeTempDir({ prefix: "kdeno_emu_dev_" });
      for (
        const name of ["libcuda.so.1", "libnvrtc.so.13", "libcublas.so.13"]
      ) {
        await Deno.symlink(lib, `${dir}/${name}`);
      }
      await runOpSuites({
        LD_LIBRARY_PATH: dir,
        KDENO_CUDA_LIB_DIRS: dir,
        KDENO_CACHE_DIR: `${dir}/cache`,
      });
    },
  });
}
