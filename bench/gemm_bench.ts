// GEMM: the TypeScript kernel (baseline) against OpenBLAS through FFI.
//
//   deno bench -A bench/gemm_bench.ts     one group per size
//   deno run -A bench/gemm_bench.ts       a GFLOP/s summary table
//   sh bench/gemm_c.sh                    OpenBLAS from C, same sizes
//
// Square row-major C = A @ B, float32.

import {
  gemmBackend,
  setGemmImpl,
  sgemm,
  sgemmTs,
} from "../src/backend/cpu/gemm.ts";
import { openBlas, openBlasError } from "../ffi/openblas.ts";
import { throughputBench } from "./_throughput.ts";

const SIZES = [256, 512, 1024, 2048];

function randn(n: number): Float32Array {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

function operands(n: number): [Float32Array, Float32Array, Float32Array] {
  return [randn(n * n), randn(n * n), new Float32Array(n * n)];
}

function runTs(n: number, a: Float32Array, b: Float32Array, c: Float32Array) {
  sgemmTs(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
}

function runBlas(
  n: number,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
) {
  sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n);
}

const hasBlas = (() => {
  try {
    return openBlas() !== null;
  } catch {
    return false;
  }
})();

if (import.meta.main) {
  // `deno run`: time each size (best of several runs) and print GFLOP/s.
  setGemmImpl("openblas");
  if (!hasBlas) console.log(`OpenBLAS not loaded: ${openBlasError()}`);
  else console.log(`OpenBLAS: ${openBlas()!.path} (${openBlas()!.config})`);
  console.log("size  typescript GFLOP/s  openblas-via-deno GFLOP/s");
  for (const n of SIZES) {
    const [a, b, c] = operands(n);
    const flop = 2 * n * n * n;
    const best = (f: () => void, reps: number) => {
      f();
      let t = Infinity;
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        f();
        t = Math.min(t, performance.now() - t0);
      }
      return flop / (t / 1000) / 1e9;
    };
    const tsReps = n >= 2048 ? 1 : n >= 1024 ? 2 : 5;
    const ts = best(() => runTs(n, a, b, c), tsReps);
    const blas = hasBlas
      // the same repetitions as bench/c/gemm_openblas.c
      ? best(
        () => runBlas(n, a, b, c),
        Math.min(200, Math.max(3, Math.floor(2e10 / flop))),
      )
      : NaN;
    console.log(
      `${String(n).padEnd(6)}${ts.toFixed(2).padStart(18)}${
        (hasBlas ? blas.toFixed(2) : "n/a").padStart(27)
      }`,
    );
  }
  setGemmImpl("auto");
} else {
  setGemmImpl("openblas");
  for (const n of SIZES) {
    const [a, b, c] = operands(n);
    const group = `gemm ${n} (${(2 * n ** 3 / 1e9).toFixed(3)} GFLOP)`;
    // the TypeScript GEMM takes 0.4 s at 1024 and 3 s at 2048
    const few = n >= 2048
      ? { n: 1, warmup: 0 }
      : n >= 1024
      ? { n: 2, warmup: 1 }
      : {};
    const work = { unit: "GFLOP", amount: 2 * n ** 3 / 1e9 } as const;
    throughputBench({
      origin: import.meta.url,
      group,
      name: "typescript",
      baseline: true,
      ...few,
      work,
      backend: () => "TypeScript",
      fn: () => runTs(n, a, b, c),
    });
    throughputBench({
      origin: import.meta.url,
      group,
      name: "openblas",
      ignore: !hasBlas,
      work,
      backend: () => gemmBackend() === "openblas" ? "OpenBLAS" : "TypeScript",
      fn: () => runBlas(n, a, b, c),
    });
  }
}
