/**
 * The CPU backend's thread count (`setNumThreads`, `getNumThreads`,
 * `KDENO_NUM_THREADS`): that it reaches what OpenBLAS, OpenMP (oneDNN's
 * runtime) and the native kernels report, that bad counts are refused, that
 * results do not depend on it, that the default follows the cores the
 * process may use, and the environment the libraries are loaded under
 * (passive waiting, printed by libgomp's `OMP_DISPLAY_ENV`), in fresh
 * processes where loading order matters.
 */
import assert from "node:assert/strict";
import type { Conv2dGeometry } from "../../src/backend/backend.ts";
import { getNumThreads, setNumThreads } from "../../mod.ts";
import { openBlas } from "../../ffi/openblas.ts";
import { openMp } from "../../ffi/openmp.ts";
import { oneDnn } from "../../ffi/onednn.ts";
import { nativeKernels } from "../../src/backend/cpu/native.ts";
import { sgemm } from "../../src/backend/cpu/gemm.ts";
import {
  conv2dBackwardData,
  conv2dBackwardFilter,
  conv2dForward,
} from "../../src/backend/cpu/conv.ts";
import { convImplementations } from "../../src/backend/cpu/onednn_conv.ts";
import { batchNormTrain } from "../../src/backend/cpu/batch_norm.ts";
import { threadInfo } from "../../src/backend/cpu/_threads.ts";

const MOD_URL = new URL("../../mod.ts", import.meta.url).href;
const OPENBLAS_URL = new URL("../../ffi/openblas.ts", import.meta.url).href;
const OPENMP_URL = new URL("../../ffi/openmp.ts", import.meta.url).href;
const NATIVE_URL =
  new URL("../../src/backend/cpu/native.ts", import.meta.url).href;
const OPENMP_OPENBLAS =
  "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0";
const PTHREAD_OPENBLAS =
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0";

/** Deterministic values in [-1, 1). */
function values(len: number, seed: number): Float32Array {
  const a = new Float32Array(len);
  let s = seed >>> 0;
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

function assertClose(
  a: Float32Array,
  b: Float32Array,
  what: string,
  tol = 1e-5,
): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let worst = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(
    worst <= tol,
    `${what}: element ${at} is ${a[at]} with 1 thread, ${b[at]} with 2`,
  );
}

/** Runs `fn` with `n` threads, putting the count back afterwards. */
function withThreads<T>(n: number, fn: () => T): T {
  const before = getNumThreads();
  setNumThreads(n);
  try {
    return fn();
  } finally {
    setNumThreads(before);
  }
}

function reported(): { blas: number; omp: number; native: number } {
  const blas = openBlas();
  const omp = openMp();
  const k = nativeKernels();
  assert.ok(blas?.symbols.openblas_get_num_threads, "OpenBLAS did not load");
  assert.ok(omp, "libgomp did not load");
  assert.ok(k, "the native kernels did not load");
  return {
    blas: blas.symbols.openblas_get_num_threads(),
    omp: omp.symbols.omp_get_max_threads(),
    native: k.kd_threads(),
  };
}

Deno.test("setNumThreads reaches OpenBLAS, OpenMP and the native kernels", () => {
  oneDnn(); // loaded too: its loops run on libgomp's pool
  for (const n of [1, 2, 3, 1]) {
    withThreads(n, () => {
      assert.equal(getNumThreads(), n);
      assert.deepEqual(reported(), { blas: n, omp: n, native: n });
    });
  }
});

Deno.test("Debian's OpenMP OpenBLAS is preferred, so all three share one pool", () => {
  assert.ok(
    Deno.statSync(OPENMP_OPENBLAS).isFile,
    `${OPENMP_OPENBLAS} is missing: apt-get install libopenblas0-openmp ` +
      "(.ci/run installs it)",
  );
  const blas = openBlas();
  assert.equal(blas?.path, OPENMP_OPENBLAS);
  assert.equal(blas?.threading, "openmp");
  assert.equal(threadInfo().openBlas, "openmp");
});

Deno.test("setNumThreads refuses bad counts with a RangeError and keeps the count", () => {
  const before = getNumThreads();
  for (const bad of [0, -1, 1.5, NaN, Infinity, 1025, "2" as unknown]) {
    assert.throws(
      () => setNumThreads(bad as number),
      (e: unknown) =>
        e instanceof RangeError &&
        /whole number from 1 to 1024/.test(e.message),
      `setNumThreads(${String(bad)})`,
    );
    assert.equal(getNumThreads(), before);
  }
});

Deno.test("a GEMM gives the same result with 1 and 2 threads", () => {
  const [m, n, k] = [257, 301, 263];
  const a = values(m * k, 1);
  const b = values(k * n, 2);
  const run = (threads: number) =>
    withThreads(threads, () => {
      const c = new Float32Array(m * n);
      sgemm(false, true, m, n, k, 1, a, k, values(n * k, 2), k, 0, c, n);
      const d = new Float32Array(m * n);
      sgemm(false, false, m, n, k, 1, a, k, b, n, 0, d, n);
      return [c, d];
    });
  const [one, two] = [run(1), run(2)];
  assertClose(one[0], two[0], "A @ B^T");
  assertClose(one[1], two[1], "A @ B");
});

Deno.test("a convolution and its gradients are the same with 1 and 2 threads", () => {
  const g: Conv2dGeometry = {
    n: 4,
    c: 16,
    h: 28,
    w: 28,
    k: 32,
    r: 3,
    s: 3,
    oh: 14,
    ow: 14,
    stride: [2, 2],
    padding: [1, 1],
    dilation: [1, 1],
    groups: 1,
  };
  const x = values(g.n * g.c * g.h * g.w, 3);
  const w = values(g.k * g.c * g.r * g.s, 4);
  const bias = values(g.k, 5);
  const dy = values(g.n * g.k * g.oh * g.ow, 6);
  const run = (threads: number) =>
    withThreads(threads, () => [
      conv2dForward(x, w, bias, g),
      conv2dBackwardData(dy, w, g),
      conv2dBackwardFilter(x, dy, g),
    ]);
  const [one, two] = [run(1), run(2)];
  assertClose(one[0], two[0], "conv2d forward");
  assertClose(one[1], two[1], "conv2d backward data");
  assertClose(one[2], two[2], "conv2d backward filter", 1e-4);
  // oneDNN ran each pass with each count, one primitive per count
  const keys = Object.entries(convImplementations())
    .filter(([k, impl]) =>
      k.includes(" n4 c16 28x28 k32 3x3 s2,2 ") && impl !== "(typescript)"
    )
    .map(([k]) => `${k.split(" ")[0]} ${k.split(" ").at(-1)}`);
  assert.deepEqual(keys.sort(), [
    "bwdData t1",
    "bwdData t2",
    "bwdWeights t1",
    "bwdWeights t2",
    "fwdBias t1",
    "fwdBias t2",
  ]);
});

Deno.test("batch norm's statistics are the same with 1 and 2 threads", () => {
  const n = 8, c = 16, hw = 32 * 32;
  const x = values(n * c * hw, 7);
  const run = (threads: number) =>
    withThreads(threads, () => {
      const out = batchNormTrain(x, {
        weight: values(c, 8),
        bias: values(c, 9),
        runningMean: null,
        runningVar: null,
      }, { n, c, hw, eps: 1e-5, momentum: 0.1, activation: "none" });
      return out.y;
    });
  assert.deepEqual(run(1), run(2));
});

interface Probe {
  threads?: number;
  source?: string;
  blas?: number;
  omp?: number;
  native?: number;
  threading?: string;
  envAfter?: Record<string, string | null>;
  error?: string;
  errorName?: string;
  stderr: string;
}

/** Runs a fresh Deno process that loads every CPU library and reports. */
async function probe(
  env: Record<string, string>,
  opts: { taskset?: string; body?: string } = {},
): Promise<Probe> {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { getNumThreads } from ${JSON.stringify(MOD_URL)};
import { openBlas } from ${JSON.stringify(OPENBLAS_URL)};
import { openMp, requestedThreadsSource } from ${JSON.stringify(OPENMP_URL)};
import { nativeKernels } from ${JSON.stringify(NATIVE_URL)};
let out;
try {
  ${opts.body ?? ""}
  const blas = openBlas();
  const k = nativeKernels();
  out = {
    threads: getNumThreads(),
    source: requestedThreadsSource(),
    blas: blas?.symbols.openblas_get_num_threads?.(),
    omp: openMp()?.symbols.omp_get_max_threads(),
    native: k?.kd_threads(),
    threading: blas?.threading,
    envAfter: Object.fromEntries(["OMP_WAIT_POLICY", "OMP_NUM_THREADS",
      "OPENBLAS_THREAD_TIMEOUT"].map((v) => [v, Deno.env.get(v) ?? null])),
  };
} catch (e) {
  out = { error: e.message, errorName: e.constructor.name };
}
console.log(JSON.stringify(out));`,
    );
    const deno = [Deno.execPath(), "run", "--no-lock", "-A", script];
    const [cmd, ...args] = opts.taskset
      ? ["taskset", "-c", opts.taskset, ...deno]
      : deno;
    const clean = { ...Deno.env.toObject() };
    for (
      const v of [
        "KDENO_NUM_THREADS",
        "OMP_NUM_THREADS",
        "OMP_WAIT_POLICY",
        "GOMP_SPINCOUNT",
        "OPENBLAS_THREAD_TIMEOUT",
        "OPENBLAS_NUM_THREADS",
        "KDENO_OPENBLAS",
      ]
    ) delete clean[v];
    const r = await new Deno.Command(cmd, {
      args,
      env: { ...clean, ...env },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(r.stderr);
    assert.ok(r.success, `probe exited with code ${r.code}: ${stderr}`);
    return { ...JSON.parse(new TextDecoder().decode(r.stdout)), stderr };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const CORES = navigator.hardwareConcurrency;

Deno.test("the libraries load with passive waiting, and the environment is put back", async () => {
  const p = await probe({ OMP_DISPLAY_ENV: "true" });
  assert.equal(p.error, undefined);
  assert.match(p.stderr, /OMP_WAIT_POLICY = 'PASSIVE'/);
  assert.match(p.stderr, new RegExp(`OMP_NUM_THREADS = '${CORES}'`));
  assert.equal(p.threading, "openmp");
  assert.deepEqual(p.envAfter, {
    OMP_WAIT_POLICY: null,
    OMP_NUM_THREADS: null,
    OPENBLAS_THREAD_TIMEOUT: null,
  });
  assert.deepEqual(
    [p.threads, p.blas, p.omp, p.native],
    [CORES, CORES, CORES, CORES],
  );
  assert.equal(p.source, "the available cores");
});

Deno.test("a wait policy or spin count the user set is kept", async () => {
  const active = await probe({
    OMP_DISPLAY_ENV: "true",
    OMP_WAIT_POLICY: "active",
  });
  assert.match(active.stderr, /OMP_WAIT_POLICY = 'ACTIVE'/);
  assert.equal(active.envAfter?.OMP_WAIT_POLICY, "active");
  // passive waiting is a spin count of 0; the user's own count stays
  const plain = await probe({ OMP_DISPLAY_ENV: "verbose" });
  assert.match(plain.stderr, /GOMP_SPINCOUNT = '0'/);
  const spin = await probe({
    OMP_DISPLAY_ENV: "verbose",
    GOMP_SPINCOUNT: "1000",
  });
  assert.match(spin.stderr, /GOMP_SPINCOUNT = '1000'/);
});

Deno.test("KDENO_NUM_THREADS and OMP_NUM_THREADS set the count, capped at the cores", async () => {
  const own = await probe({ KDENO_NUM_THREADS: "1" });
  assert.deepEqual([own.threads, own.blas, own.omp, own.native], [1, 1, 1, 1]);
  assert.equal(own.source, "KDENO_NUM_THREADS");
  const omp = await probe({ OMP_NUM_THREADS: "1,1" });
  assert.deepEqual([omp.threads, omp.blas, omp.omp, omp.native], [1, 1, 1, 1]);
  assert.equal(omp.source, "OMP_NUM_THREADS");
  assert.equal(omp.envAfter?.OMP_NUM_THREADS, "1,1");
  const many = await probe({ KDENO_NUM_THREADS: "64" });
  assert.equal(many.threads, Math.min(64, CORES));
  assert.equal(many.omp, Math.min(64, CORES));
  const both = await probe({ KDENO_NUM_THREADS: "1", OMP_NUM_THREADS: "2" });
  assert.equal(both.threads, 1);
  const call = await probe({ KDENO_NUM_THREADS: "1" }, {
    body: `(await import(${JSON.stringify(MOD_URL)})).setNumThreads(2);`,
  });
  assert.deepEqual([call.threads, call.blas, call.omp, call.native], [
    2,
    2,
    2,
    2,
  ]);
  assert.equal(call.source, "setNumThreads");
});

Deno.test("a bad KDENO_NUM_THREADS is a RangeError naming it, not a silent default", async () => {
  for (const bad of ["abc", "0", "2.5", "-1"]) {
    const p = await probe({ KDENO_NUM_THREADS: bad });
    assert.equal(p.errorName, "RangeError", `KDENO_NUM_THREADS=${bad}`);
    assert.match(p.error!, /KDENO_NUM_THREADS=/);
  }
  // an unreadable OMP_NUM_THREADS is ignored, as libgomp ignores it
  const omp = await probe({ OMP_NUM_THREADS: "lots" });
  assert.equal(omp.threads, CORES);
});

Deno.test("the default follows the process's affinity mask (taskset)", async () => {
  const p = await probe({}, { taskset: "0" });
  assert.deepEqual([p.threads, p.blas, p.omp, p.native], [1, 1, 1, 1]);
});

Deno.test("the pthread OpenBLAS stays usable and follows setNumThreads", async () => {
  assert.ok(
    Deno.statSync(PTHREAD_OPENBLAS).isFile,
    `${PTHREAD_OPENBLAS} is missing: apt-get install libopenblas0-pthread`,
  );
  const p = await probe({ KDENO_OPENBLAS: PTHREAD_OPENBLAS }, {
    body: `(await import(${JSON.stringify(MOD_URL)})).setNumThreads(1);`,
  });
  assert.equal(p.threading, "pthread");
  assert.deepEqual([p.threads, p.blas, p.omp, p.native], [1, 1, 1, 1]);
  assert.equal(p.envAfter?.OPENBLAS_THREAD_TIMEOUT, null);
});

Deno.test("a program that used only the OpenMP OpenBLAS exits cleanly", async () => {
  // before libgomp was pinned, Deno's closing of the library handles at the
  // end of the program unmapped it under its pool threads: SIGSEGV in about
  // 3 runs of 8
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/gemm.ts`;
    const gemmUrl = new URL("../../src/backend/cpu/gemm.ts", import.meta.url);
    await Deno.writeTextFile(
      script,
      `import { sgemm } from ${JSON.stringify(gemmUrl.href)};
import { openMpPinned } from ${JSON.stringify(OPENMP_URL)};
const n = 256;
const a = new Float32Array(n * n).fill(0.5);
const c = new Float32Array(n * n);
for (let i = 0; i < 100; i++) sgemm(false, false, n, n, n, 1, a, n, a, n, 0, c, n);
console.log(openMpPinned(), c[0]);`,
    );
    const runs = await Promise.all(
      Array.from({ length: 8 }, () =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--no-lock", "-A", script],
          stdout: "piped",
          stderr: "piped",
          stdin: "null",
        }).output()),
    );
    for (const r of runs) {
      assert.equal(
        r.signal,
        null,
        `died with ${r.signal}: ${new TextDecoder().decode(r.stderr)}`,
      );
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      assert.equal(new TextDecoder().decode(r.stdout).trim(), "true 64");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
