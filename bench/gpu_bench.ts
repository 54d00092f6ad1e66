/**
 * GPU throughput of the CUDA backend on the workloads `gpu_bench_torch.py`
 * runs in PyTorch: fp32 and TF32 GEMM at 1024 and 4096, and add / mul / exp
 * over 16M floats. Device time per call comes from CUDA events around a loop
 * of calls (outputs freed each time, as PyTorch's caching allocator would
 * recycle them), after warm-up calls.
 *
 * Under `deno bench` (`deno task bench`) it times the cuBLAS GEMMs for the
 * throughput table, or prints one `skipped: no GPU` row where CUDA does not
 * load.
 *
 * Usage: `deno run -A bench/gpu_bench.ts [--json OUT] [--info] [--quick]`
 * (`--info` prints the device and libraries and stops; `--quick` shrinks
 * every size, to check the script itself, not to measure).
 *
 * @module
 */

import { loadedFrom } from "../ffi/cuda_libs.ts";
import {
  createCudaBackend,
  type CudaBackend,
  setCudaMathMode,
} from "../src/backend/cuda/mod.ts";
import type { Storage } from "../src/backend/backend.ts";
import { skippedBench, throughputBench } from "./_throughput.ts";

/** One workload's result. */
interface Result {
  /** Milliseconds of device time per call. */
  ms: number;
  /** Throughput: TFLOP/s for GEMMs, GB/s for elementwise ops. */
  rate: number;
  /** Unit of `rate`. */
  unit: "TFLOP/s" | "GB/s";
}

function parseArgs(): { json?: string; info: boolean; quick: boolean } {
  const out = {
    json: undefined as string | undefined,
    info: false,
    quick: false,
  };
  for (let i = 0; i < Deno.args.length; i++) {
    if (Deno.args[i] === "--json") out.json = Deno.args[++i];
    else if (Deno.args[i] === "--info") out.info = true;
    else if (Deno.args[i] === "--quick") out.quick = true;
  }
  return out;
}

function info(b: CudaBackend): Record<string, unknown> {
  return {
    ...b.info,
    loadedFrom: Object.fromEntries(
      [
        "libcuda.so",
        "libnvrtc.so",
        "libnvrtc-builtins",
        "libcublas.so",
        "libcublasLt.so",
      ]
        .map((f) => [f, loadedFrom(f) ?? null]),
    ),
    memory: b.memoryStats(),
  };
}

function random(b: CudaBackend, n: number): Storage {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sin(i * 12.9898) * 0.5;
  return b.upload(x);
}

/** Device milliseconds per call of `fn` (its result freed each call). */
function timeIt(
  b: CudaBackend,
  fn: () => Storage,
  iters: number,
  warmup = 3,
): number {
  for (let i = 0; i < warmup; i++) b.free(fn());
  b.synchronize();
  const ms = b.time(() => {
    for (let i = 0; i < iters; i++) b.free(fn());
  });
  return ms / iters;
}

function benchGemm(
  b: CudaBackend,
  n: number,
  mode: "fp32" | "tf32",
  iters: number,
): Result {
  const a = random(b, n * n);
  const c = random(b, n * n);
  setCudaMathMode(mode);
  try {
    const o = {
      transA: false,
      transB: false,
      batch: 1,
      strideA: 0,
      strideB: 0,
    };
    const ms = timeIt(b, () => b.gemm(a, c, n, n, n, o), iters);
    return { ms, rate: (2 * n ** 3) / (ms * 1e-3) / 1e12, unit: "TFLOP/s" };
  } finally {
    setCudaMathMode("fp32");
    b.free(a);
    b.free(c);
  }
}

function benchElementwise(
  b: CudaBackend,
  op: "add" | "mul" | "exp",
  n: number,
  iters: number,
): Result {
  const x = random(b, n);
  const y = random(b, n);
  const run = op === "exp"
    ? () => b.unary("exp", x)
    : () => b.binary(op, x, [1], y, [1], [n]);
  const ms = timeIt(b, run, iters);
  const bytes = (op === "exp" ? 2 : 3) * 4 * n;
  b.free(x);
  b.free(y);
  return { ms, rate: bytes / (ms * 1e-3) / 1e9, unit: "GB/s" };
}

if (import.meta.main) {
  const args = parseArgs();
  const t0 = performance.now();
  const b = createCudaBackend();
  const openMs = performance.now() - t0;
  const compileMs = b.precompile();
  const about = { ...info(b), openMs, compileMs };
  console.log(JSON.stringify(about, null, 2));
  if (args.info) Deno.exit(0);
  const q = args.quick ? 16 : 1;
  const M16 = 16 * 1024 * 1024 / q / q;
  const workloads: [string, () => Result][] = [
    ["gemm1024_fp32", () => benchGemm(b, 1024 / q, "fp32", 50)],
    ["gemm4096_fp32", () => benchGemm(b, 4096 / q, "fp32", 10)],
    ["gemm1024_tf32", () => benchGemm(b, 1024 / q, "tf32", 50)],
    ["gemm4096_tf32", () => benchGemm(b, 4096 / q, "tf32", 10)],
    ["add_16M", () => benchElementwise(b, "add", M16, 50)],
    ["mul_16M", () => benchElementwise(b, "mul", M16, 50)],
    ["exp_16M", () => benchElementwise(b, "exp", M16, 50)],
  ];
  const results: Record<string, Result | { error: string }> = {};
  const save = () => {
    // after every workload, so a run cut short keeps what it measured
    if (args.json) {
      Deno.writeTextFileSync(
        args.json,
        JSON.stringify({ info: about, results }, null, 2),
      );
    }
  };
  save();
  for (const [name, run] of workloads) {
    try {
      const r = run();
      results[name] = r;
      console.log(
        `${name} kdeno ${r.ms.toFixed(4)} ms ${r.rate.toFixed(2)} ${r.unit}`,
      );
    } catch (e) {
      results[name] = { error: String((e as Error).message ?? e) };
      console.log(`${name} kdeno FAILED: ${(e as Error).message}`);
    }
    save();
  }
} else {
  // `deno bench`: the cuBLAS GEMMs, with their GFLOP/s in `deno task
  // bench`'s table, or one row saying why they did not run.
  let b: CudaBackend | null = null;
  let why = "";
  try {
    b = createCudaBackend();
  } catch (e) {
    why = String((e as Error).message ?? e).split("\n")[0]
      .split(": tried")[0];
  }
  if (b === null) {
    skippedBench(import.meta.url, "CUDA GEMM", `skipped: no GPU (${why})`);
  } else {
    const be = b;
    const o = {
      transA: false,
      transB: false,
      batch: 1,
      strideA: 0,
      strideB: 0,
    };
    for (const n of [1024, 4096]) {
      const a = random(be, n * n);
      const c = random(be, n * n);
      const gflop = 2 * n ** 3 / 1e9;
      for (const mode of ["fp32", "tf32"] as const) {
        throughputBench({
          origin: import.meta.url,
          group: `cuda gemm ${n} (${gflop.toFixed(3)} GFLOP)`,
          name: mode,
          n: n >= 4096 ? 20 : 100,
          warmup: 5,
          work: { unit: "GFLOP", amount: gflop },
          backend: () => `CUDA cuBLAS ${mode}`,
          fn: () => {
            setCudaMathMode(mode);
            try {
              be.free(be.gemm(a, c, n, n, n, o));
              be.synchronize();
            } finally {
              setCudaMathMode("fp32");
            }
          },
        });
      }
    }
  }
}
