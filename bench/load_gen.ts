/**
 * Foreign CPU load for benchmarks that measure behaviour on a shared
 * machine: a separate process whose Workers each keep one core busy with
 * arithmetic (no memory traffic to speak of) for a given time, as another
 * user's job would.
 *
 * Command line:
 *
 * ```sh
 * deno run bench/load_gen.ts --workers 2 --seconds 60
 * ```
 *
 * From a benchmark, {@linkcode startLoad} starts that process and returns a
 * handle whose `stop()` ends it (`bench/threads_bench.ts`).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Busy-loops until `Date.now()` passes the deadline posted to it. */
const SPIN = `self.onmessage = (e) => {
  const end = e.data;
  let x = 1;
  while (Date.now() < end) {
    for (let i = 0; i < 100000; i++) x = Math.sqrt(x + i) * 1.0000001;
  }
  self.postMessage(x);
};`;

/**
 * Keeps `workers` threads of this process busy for `seconds`.
 *
 * @param workers How many cores to load.
 * @param seconds For how long.
 * @returns Once every worker has stopped.
 */
export async function spin(workers: number, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000;
  const url = `data:application/javascript,${encodeURIComponent(SPIN)}`;
  await Promise.all(
    Array.from({ length: workers }, () =>
      new Promise<void>((resolve) => {
        const w = new Worker(url, { type: "module" });
        w.onmessage = () => {
          w.terminate();
          resolve();
        };
        w.postMessage(end);
      })),
  );
}

/** A running load generator. */
export interface Load {
  /** The number of busy workers. */
  readonly workers: number;
  /** Ends the load generator and waits for its process to exit. */
  stop(): Promise<void>;
}

/**
 * Starts this script as a separate process loading `workers` cores, and
 * waits until its workers have started.
 *
 * @param workers How many cores to load (0 starts nothing).
 * @param seconds The most it runs if never stopped.
 * @returns The handle to stop it.
 */
export async function startLoad(
  workers: number,
  seconds = 3600,
): Promise<Load> {
  if (workers <= 0) return { workers: 0, stop: () => Promise.resolve() };
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-lock",
      new URL(import.meta.url).pathname,
      "--workers",
      String(workers),
      "--seconds",
      String(seconds),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // the child prints one line once its workers spin
  const reader = child.stdout.getReader();
  await reader.read();
  reader.releaseLock();
  void child.stdout.cancel().catch(() => {});
  return {
    workers,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
      await child.status;
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      workers: { type: "string", default: "2" },
      seconds: { type: "string", default: "60" },
    },
  });
  const workers = Number(values.workers);
  const seconds = Number(values.seconds);
  if (!(Number.isInteger(workers) && workers >= 1 && seconds > 0)) {
    console.error(
      "usage: deno run bench/load_gen.ts --workers N --seconds T",
    );
    Deno.exit(2);
  }
  const done = spin(workers, seconds);
  // give the workers a moment to start before saying so
  await new Promise((r) => setTimeout(r, 200));
  console.log(`loading ${workers} core(s) for ${seconds} s`);
  await done;
}
