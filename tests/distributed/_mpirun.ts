/**
 * Runs a script under `mpirun` (or alone) as a subprocess, with the flags
 * Open MPI needs here: `--oversubscribe` (more ranks than cores),
 * `--bind-to none` (Deno has several threads) and, as root, the two
 * `OMPI_ALLOW_RUN_AS_ROOT*` variables.
 *
 * @module
 */

const dec = new TextDecoder();

/** What a run printed and how it ended. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** Wall-clock seconds. */
  seconds: number;
}

/**
 * Runs `deno run -A <script> ...args` on `np` ranks (`np` 0: without
 * `mpirun`, a world of one), killed after `timeoutMs`.
 *
 * @param script Path relative to this folder.
 * @param args Script arguments.
 * @param np Ranks, or 0 for a plain process.
 * @param env Extra environment.
 * @param timeoutMs Kill after this long.
 * @returns The outcome.
 */
export async function mpirun(
  script: string,
  args: string[],
  np: number,
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<RunResult> {
  const path = new URL(script, import.meta.url).pathname;
  const deno = Deno.execPath();
  const cmd = np > 0 ? "mpirun" : deno;
  const full = np > 0
    ? [
      "--oversubscribe",
      "--bind-to",
      "none",
      "-np",
      String(np),
      deno,
      "run",
      "-A",
      "--no-check",
      path,
      ...args,
    ]
    : ["run", "-A", "--no-check", path, ...args];
  const t0 = performance.now();
  const child = new Deno.Command(cmd, {
    args: full,
    env: {
      OMPI_ALLOW_RUN_AS_ROOT: "1",
      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
      OMPI_MCA_rmaps_base_oversubscribe: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The JSON lines a run printed.
 *
 * @param r The run.
 * @returns Parsed lines (others skipped).
 */
export function jsonLines(r: RunResult): Record<string, unknown>[] {
  return r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l)
  );
}
