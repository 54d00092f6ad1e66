/**
 * What `bench/throughput.ts` needs beyond `deno bench --json`'s times: for
 * each benchmark, the work one iteration does (images or GFLOP) and the
 * backend that actually ran it (OpenBLAS, oneDNN, native C, TypeScript,
 * CUDA). `throughputBench` registers a `Deno.bench` and, when
 * `KDENO_BENCH_THROUGHPUT` names a file (the reporter sets it), appends one
 * JSON line per benchmark to it, after the first call, so the backend is
 * the one that ran, not the one that was asked for.
 *
 * @module
 */

import { gemmBackend } from "../src/backend/cpu/gemm.ts";
import { nativeKernels } from "../src/backend/cpu/native.ts";
import { convImplementations } from "../src/backend/cpu/onednn_conv.ts";

/** The work one iteration of a benchmark does. */
export interface Work {
  /** Images per iteration (img/s) or GFLOP per iteration (GFLOP/s). */
  unit: "img" | "GFLOP";
  /** How many of `unit` one iteration processes. */
  amount: number;
}

/** One line of the side file that `bench/throughput.ts` reads. */
export interface ThroughputRecord {
  /** The bench file's URL, as `deno bench --json` reports it (`origin`). */
  origin: string;
  group?: string;
  name: string;
  /** The backend that ran the last call, or `skipped: ...`. */
  backend: string;
  unit?: Work["unit"];
  amount?: number;
}

const SIDE_FILE = (() => {
  try {
    return Deno.env.get("KDENO_BENCH_THROUGHPUT");
  } catch {
    return undefined;
  }
})();

/**
 * Appends a record to the side file (no-op when the reporter is not
 * running).
 *
 * @param rec The record.
 */
export function recordThroughput(rec: ThroughputRecord): void {
  if (!SIDE_FILE) return;
  Deno.writeTextFileSync(SIDE_FILE, JSON.stringify(rec) + "\n", {
    append: true,
  });
}

/** Options of {@linkcode throughputBench}. */
export interface ThroughputBenchOptions {
  /** The bench file's `import.meta.url`. */
  origin: string;
  group?: string;
  name: string;
  baseline?: boolean;
  n?: number;
  warmup?: number;
  ignore?: boolean;
  /** The work per iteration; omitted for benchmarks measured in time only. */
  work?: Work;
  /** The backend that ran the call just made (called after it). */
  backend: () => string;
  fn: () => void | Promise<void>;
}

/**
 * `Deno.bench` plus a throughput record: the record is written after the
 * first call (the warm-up) and again whenever the backend changes.
 *
 * @param o The benchmark.
 */
export function throughputBench(o: ThroughputBenchOptions): void {
  let last: string | undefined;
  const note = () => {
    const backend = o.backend();
    if (backend === last) return;
    last = backend;
    recordThroughput({
      origin: o.origin,
      group: o.group,
      name: o.name,
      backend,
      unit: o.work?.unit,
      amount: o.work?.amount,
    });
  };
  const fn = o.fn;
  Deno.bench({
    group: o.group,
    name: o.name,
    baseline: o.baseline,
    n: o.n,
    warmup: o.warmup,
    ignore: o.ignore,
    // deno bench awaits only functions declared async
    fn: fn.constructor.name === "AsyncFunction"
      ? async () => {
        await fn();
        note();
      }
      : () => {
        fn();
        note();
      },
  });
}

/**
 * Registers a placeholder row saying why a file's benchmarks did not run
 * (`skipped: no GPU`), so `deno bench` prints it instead of an empty table,
 * and records it for the reporter.
 *
 * @param origin The bench file's `import.meta.url`.
 * @param what The workloads that were skipped.
 * @param why The reason, e.g. `skipped: no GPU (libcuda.so.1 not found)`.
 */
export function skippedBench(origin: string, what: string, why: string): void {
  console.log(`${what}: ${why}`);
  recordThroughput({ origin, name: `${what}: ${why}`, backend: why });
  Deno.bench({ name: `${what}: ${why}`, n: 1, warmup: 0, fn: () => {} });
}

/**
 * What the CPU backend used so far, for whole-model benchmarks: oneDNN or
 * TypeScript convolutions, OpenBLAS or TypeScript GEMM, native C or
 * TypeScript elementwise kernels.
 *
 * @returns e.g. `oneDNN conv, OpenBLAS GEMM, native C elementwise`.
 */
export function cpuBackendLabel(): string {
  const conv = Object.values(convImplementations())
      .some((impl) => impl !== "(typescript)")
    ? "oneDNN"
    : "TypeScript";
  const gemm = gemmBackend() === "openblas" ? "OpenBLAS" : "TypeScript";
  const elementwise = nativeKernels() !== null ? "native C" : "TypeScript";
  return `${conv} conv, ${gemm} GEMM, ${elementwise} elementwise`;
}
