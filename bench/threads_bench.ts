/**
 * Training steps on a shared machine: ResNet-18 and StudentNet at 28 px,
 * batch 32, with 1 and 2 threads (`setNumThreads`, and
 * `torch.set_num_threads` on the PyTorch side), first on an otherwise idle
 * machine and then beside a load generator keeping 2 cores busy
 * (`bench/load_gen.ts`, a separate process). Each round runs PyTorch
 * (`bench/threads_bench_torch.py`) and kdeno in fresh processes, one after
 * the other, alternating which goes first; the tables give medians over
 * the rounds, and how much each side slows down under load.
 *
 * ```sh
 * deno run -A bench/threads_bench.ts            # 3 rounds, 3 s per step timing
 * deno run -A bench/threads_bench.ts --rounds 5 --min-time 5 --json out.json
 * deno run -A bench/threads_bench.ts --kdeno-env OMP_WAIT_POLICY=ACTIVE
 * ```
 *
 * Flags: `--load N` (busy cores, default 2), `--rounds`, `--min-time`
 * (seconds of steps per timing), `--size`, `--batch`, `--models`
 * (`resnet18,student`), `--threads` (`1,2`), `--python` (default
 * `/usr/bin/python3`), `--kdeno-env K=V,...` (extra environment for the
 * kdeno side only, e.g. another OpenBLAS or wait policy), `--kdeno-only`
 * (no PyTorch side), `--json FILE`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { timeit } from "./_timing.ts";
import {
  manualSeed,
  models,
  nn,
  optim,
  randint,
  randn,
  setNumThreads,
  tidy,
} from "../mod.ts";
import { threadInfo } from "../src/backend/cpu/_threads.ts";
import { startLoad } from "./load_gen.ts";

/** What one side measures in one process. */
interface Config {
  models: string[];
  threads: number[];
  size: number;
  batch: number;
  minTime: number;
  minIters: number;
}

/** Seconds per step, keyed `"<model> t<threads>"`. */
type Timings = Record<string, number>;

/** The kdeno side, in a child process: prints its timings as JSON. */
function measure(cfg: Config): Timings {
  const out: Timings = {};
  for (const t of cfg.threads) {
    setNumThreads(t);
    for (const name of cfg.models) {
      manualSeed(0);
      const x = randn([cfg.batch, 3, cfg.size, cfg.size]);
      const y = randint(0, 2, [cfg.batch]);
      const model: nn.Module = name === "student"
        ? new models.StudentNet({ inputSize: cfg.size })
        : models.resnet18({ numClasses: 2 });
      model.train();
      const opt = new optim.SGD(model.parameters(), {
        lr: 0.01,
        momentum: 0.9,
      });
      out[`${name} t${t}`] = timeit(
        () =>
          tidy(() => {
            opt.zeroGrad();
            nn.functional.crossEntropy(model.call(x), y).backward();
            opt.step();
          }),
        cfg.minTime,
        cfg.minIters,
        2,
      );
      model.dispose();
      x.dispose();
      y.dispose();
    }
  }
  return out;
}

async function run(
  cmd: string,
  args: string[],
  env?: Record<string, string>,
): Promise<Timings | null> {
  try {
    const r = await new Deno.Command(cmd, {
      args,
      env,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    if (!r.success) {
      console.error(`${cmd} failed:\n${new TextDecoder().decode(r.stderr)}`);
      return null;
    }
    const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
    return JSON.parse(lines[lines.length - 1]);
  } catch (e) {
    console.error(`${cmd} not run: ${(e as Error).message}`);
    return null;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(x: number | undefined, digits = 0): string {
  return x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(digits);
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i].length))
  );
  const line = (r: string[]) =>
    "| " + r.map((c, i) => c.padEnd(w[i])).join(" | ") + " |";
  return [
    line(header),
    "| " + w.map((n) => "-".repeat(n)).join(" | ") + " |",
    ...rows.map(line),
  ].join("\n");
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      child: { type: "string" },
      load: { type: "string", default: "2" },
      rounds: { type: "string", default: "3" },
      "min-time": { type: "string", default: "3" },
      "min-iters": { type: "string", default: "5" },
      size: { type: "string", default: "28" },
      batch: { type: "string", default: "32" },
      models: { type: "string", default: "resnet18,student" },
      threads: { type: "string", default: "1,2" },
      python: { type: "string", default: "/usr/bin/python3" },
      "kdeno-env": { type: "string", default: "" },
      json: { type: "string" },
      "kdeno-only": { type: "boolean", default: false },
    },
  });
  if (values.child !== undefined) {
    const cfg: Config = JSON.parse(values.child);
    const out = measure(cfg);
    console.log(JSON.stringify({ ...out, info: threadInfo() }));
    return;
  }
  const cfg: Config = {
    models: values.models!.split(","),
    threads: values.threads!.split(",").map(Number),
    size: Number(values.size),
    batch: Number(values.batch),
    minTime: Number(values["min-time"]),
    minIters: Number(values["min-iters"]),
  };
  const load = Number(values.load);
  const rounds = Number(values.rounds);
  const kdenoEnv: Record<string, string> = {};
  for (const kv of values["kdeno-env"]!.split(",").filter(Boolean)) {
    const i = kv.indexOf("=");
    kdenoEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const self = new URL(import.meta.url).pathname;
  const kdenoArgs = ["run", "-A", "--no-lock", self, "--child"];
  const keys = cfg.threads.flatMap((t) => cfg.models.map((m) => `${m} t${t}`));
  // results[side][load][key] = seconds per round
  const results: Record<string, Record<number, Record<string, number[]>>> = {
    kdeno: {},
    torch: {},
  };
  let info: unknown;
  console.log(
    `${cfg.models.join(", ")} training steps, ${cfg.size} px, batch ` +
      `${cfg.batch}, threads ${
        cfg.threads.join(" and ")
      }; ${rounds} round(s); ` +
      `cores available: ${navigator.hardwareConcurrency}; ` +
      (Object.keys(kdenoEnv).length
        ? `kdeno env ${JSON.stringify(kdenoEnv)}`
        : "kdeno env as inherited"),
  );
  for (const busy of [0, load]) {
    const gen = await startLoad(busy);
    try {
      for (const side of ["kdeno", "torch"]) results[side][busy] = {};
      for (let r = 0; r < rounds; r++) {
        const order = values["kdeno-only"]
          ? ["kdeno"]
          : r % 2 === 0
          ? ["torch", "kdeno"]
          : ["kdeno", "torch"];
        for (const side of order) {
          const t = side === "torch"
            ? await run(values.python!, [
              new URL("threads_bench_torch.py", import.meta.url).pathname,
              JSON.stringify(cfg),
            ])
            : await run(Deno.execPath(), [...kdenoArgs, JSON.stringify(cfg)], {
              ...Deno.env.toObject(),
              ...kdenoEnv,
            });
          if (t === null) continue;
          if (side === "kdeno") info = (t as Record<string, unknown>).info;
          for (const k of keys) {
            (results[side][busy][k] ??= []).push(t[k]);
          }
          console.error(
            `  load ${busy}, round ${r + 1}, ${side}: ` +
              keys.map((k) => `${k} ${fmt(t[k] * 1000)} ms`).join(", "),
          );
        }
      }
    } finally {
      await gen.stop();
    }
  }
  console.log(`kdeno threads: ${JSON.stringify(info)}`);
  const med = (side: string, busy: number, k: string) => {
    const xs = results[side][busy]?.[k];
    return xs?.length ? median(xs) * 1000 : NaN;
  };
  const rows: string[][] = [];
  const slow: string[][] = [];
  for (const k of keys) {
    const [m, t] = k.split(" ");
    const kd0 = med("kdeno", 0, k), kd1 = med("kdeno", load, k);
    const pt0 = med("torch", 0, k), pt1 = med("torch", load, k);
    rows.push([
      m,
      t.slice(1),
      fmt(kd0),
      fmt(pt0),
      fmt(pt0 / kd0, 2),
      fmt(kd1),
      fmt(pt1),
      fmt(pt1 / kd1, 2),
    ]);
    const ks = kd1 / kd0, ps = pt1 / pt0;
    slow.push([
      m,
      t.slice(1),
      fmt(ks, 2),
      fmt(ps, 2),
      ks <= ps ? "yes" : `no (${fmt(ks / ps, 2)}×)`,
    ]);
  }
  console.log(
    `\nms per training step (median of ${rounds}); speed-up = PyTorch ms / ` +
      `kdeno ms, above 1 when kdeno is faster; loaded: ${load} other busy ` +
      "process core(s)\n",
  );
  console.log(table([
    "model",
    "threads",
    "kdeno idle",
    "PyTorch idle",
    "speed-up idle",
    `kdeno loaded`,
    `PyTorch loaded`,
    "speed-up loaded",
  ], rows));
  console.log("\nslow-down under load (loaded ms / idle ms)\n");
  console.log(table([
    "model",
    "threads",
    "kdeno",
    "PyTorch",
    "kdeno no worse",
  ], slow));
  const twoVsOne: string[][] = [];
  if (cfg.threads.includes(1) && cfg.threads.length > 1) {
    for (const m of cfg.models) {
      for (const t of cfg.threads.filter((t) => t !== 1)) {
        for (const busy of [0, load]) {
          twoVsOne.push([
            m,
            `${t} vs 1`,
            busy ? "loaded" : "idle",
            fmt(
              med("kdeno", busy, `${m} t${t}`) / med("kdeno", busy, `${m} t1`),
              2,
            ),
            fmt(
              med("torch", busy, `${m} t${t}`) / med("torch", busy, `${m} t1`),
              2,
            ),
          ]);
        }
      }
    }
    console.log(
      "\nmore threads: ms with N threads / ms with 1 (below 1 helps)\n",
    );
    console.log(
      table(["model", "threads", "machine", "kdeno", "PyTorch"], twoVsOne),
    );
  }
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify(
        { date: new Date().toISOString(), cfg, load, kdenoEnv, info, results },
        null,
        1,
      ),
    );
  }
}

if (import.meta.main) await main();
