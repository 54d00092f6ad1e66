/**
 * `deno task compare`: the same workloads in kdeno and in PyTorch (Debian's
 * python3-torch, 2 threads), in one run on one machine. Prints
 * `<workload> kdeno=<x> pytorch=<y> ratio=<kdeno/pytorch>` (throughputs,
 * higher is better) and writes bench/results/compare.json.
 *
 * The KD-epoch rows run bench/kd_epoch.ts and bench/kd_epoch_torch.py as
 * separate processes (one tutorial KD epoch on the bundled data at 224,
 * data loading included), so each side's peak resident memory is its own.
 *
 * Each workload is measured in rounds (PyTorch, then kdeno; 3 by default,
 * `--kd-rounds` for the KD epoch, whose every round is two whole processes)
 * and the median of the per-round ratios is reported.
 *
 * The stand-in rows (`stand-in ...`) run the same two scripts on the chest
 * X-ray stand-in's `train/` (bench/make_xray_standin.ts; written once into
 * `$TMPDIR/kdeno_standin_<scale>` unless `--standin DIR` names one) with
 * `--standin-workers` decoding workers on both sides: a StudentNet epoch
 * (first epoch, and kdeno's later epochs with decoded images cached, beside
 * PyTorch's, which decodes every epoch), a KD epoch without and with the
 * teacher-output cache, and each one's peak resident memory.
 *
 * A run with `--only` or `--quick` writes bench/results/compare_partial.json
 * instead, so it never replaces the committed full run.
 *
 * Usage: deno task compare [--quick] [--only substring] [--kd-max N]
 *   [--rounds N] [--kd-rounds N] [--standin DIR] [--standin-scale 0.02]
 *   [--standin-workers 2]
 */
import { parseArgs } from "node:util";
import { timeit } from "./_timing.ts";
import {
  manualSeed,
  models,
  nn,
  noGrad,
  optim,
  randint,
  randn,
  type Tensor,
  tidy,
} from "../mod.ts";
import { gemmBackend, sgemm } from "../src/backend/cpu/gemm.ts";

import { oneDnn, oneDnnError } from "../ffi/onednn.ts";
import { nativeKernelsInfo } from "../src/backend/cpu/native.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    python: { type: "string", default: "/usr/bin/python3" },
    "kd-max": { type: "string" },
    rounds: { type: "string", default: "3" },
    "kd-rounds": { type: "string", default: "3" },
    standin: { type: "string" },
    "standin-scale": { type: "string", default: "0.02" },
    "standin-workers": { type: "string", default: "2" },
  },
});
const rounds = Math.max(1, Number(values.rounds));
const kdRounds = Math.max(1, Number(values["kd-rounds"]));
const minTime = values.quick ? 1 : 4;

interface Workload {
  name: string;
  kind:
    | "gemm"
    | "student-train"
    | "student-infer"
    | "resnet-infer"
    | "resnet-train";
  unit: string;
  n?: number;
  batch?: number;
  size?: number;
  minTime: number;
  minIters?: number;
}

const workloads: Workload[] = [
  ...[256, 512, 1024, 2048].map((n): Workload => ({
    name: `gemm ${n}`,
    kind: "gemm",
    unit: "GFLOP/s",
    n,
    minTime: minTime / 2,
  })),
  {
    name: "StudentNet train step 224 b32",
    kind: "student-train" as const,
    unit: "img/s",
    batch: 32,
    size: 224,
    minTime,
  },
  {
    name: "StudentNet inference 224 b32",
    kind: "student-infer" as const,
    unit: "img/s",
    batch: 32,
    size: 224,
    minTime,
  },
  {
    name: "ResNet-18 inference 224 b32",
    kind: "resnet-infer" as const,
    unit: "img/s",
    batch: 32,
    size: 224,
    minTime,
    minIters: 2,
  },
  {
    name: "ResNet-18 train step 224 b32",
    kind: "resnet-train" as const,
    unit: "img/s",
    batch: 32,
    size: 224,
    minTime,
    minIters: 2,
  },
].filter((w) => !values.only || w.name.includes(values.only));

function runKdeno(w: Workload): number {
  manualSeed(0);
  if (w.kind === "gemm") {
    const n = w.n!;
    const a = randn([n, n]).data() as Float32Array;
    const b = randn([n, n]).data() as Float32Array;
    const c = new Float32Array(n * n);
    const s = timeit(
      () => sgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n),
      w.minTime,
    );
    return 2 * n ** 3 / s / 1e9;
  }
  const bs = w.batch!, size = w.size!;
  const x = randn([bs, 3, size, size]);
  const y = randint(0, 2, [bs]);
  const model: nn.Module = w.kind.startsWith("student")
    ? new models.StudentNet({ inputSize: size })
    : models.resnet18({ numClasses: 2 });
  let fn: () => void;
  if (w.kind.endsWith("train")) {
    model.train();
    const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    fn = () =>
      tidy(() => {
        opt.zeroGrad();
        const loss = nn.functional.crossEntropy(model.call(x), y);
        loss.backward();
        opt.step();
      });
  } else {
    model.eval();
    fn = () =>
      noGrad(() => tidy(() => void model.call(x) as unknown as Tensor));
  }
  const s = timeit(fn, w.minTime, w.minIters ?? 2);
  model.dispose();
  return bs / s;
}

async function runTorch(
  ws: Workload[],
): Promise<Record<string, number> | null> {
  try {
    const cmd = new Deno.Command(values.python!, {
      args: ["bench/compare_torch.py", JSON.stringify({ workloads: ws })],
      stdout: "piped",
      stderr: "piped",
    });
    const out = await cmd.output();
    if (!out.success) {
      console.error(new TextDecoder().decode(out.stderr));
      return null;
    }
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } catch (e) {
    console.error(
      `PyTorch side not run (${(e as Error).message}).\n` +
        "Install Debian's PyTorch with: apt-get install -y python3-torch python3-torchvision",
    );
    return null;
  }
}

const dnnl = oneDnn();
console.log(
  `kdeno GEMM backend: ${gemmBackend()}; convolutions: ${
    dnnl ? `oneDNN ${dnnl.version}` : `TypeScript (${oneDnnError()})`
  }; batch norm, pooling, ReLU: ${nativeKernelsInfo()}; PyTorch with 2 threads`,
);
const rows: Record<string, unknown>[] = [];
// PyTorch first (one process, all workloads), then kdeno, so they never overlap
// The machine is shared and its speed drifts over minutes, so each workload
// is measured in rounds, PyTorch then kdeno, and the median of the per-round
// ratios is reported (with the median throughputs).
const median = (v: number[]) => {
  const a = [...v].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};
for (const w of workloads) {
  const ks: number[] = [];
  const ps: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const p = (await runTorch([w]))?.[w.name];
    const k = runKdeno(w);
    ks.push(k);
    if (p) {
      ps.push(p);
      ratios.push(k / p);
    }
  }
  const k = median(ks);
  const p = ps.length ? median(ps) : undefined;
  const ratio = ratios.length ? median(ratios) : null;
  console.log(
    `${w.name} kdeno=${k.toFixed(2)} pytorch=${p?.toFixed(2) ?? "n/a"} ratio=${
      ratio?.toFixed(3) ?? "n/a"
    } (${w.unit}; ratios per round ${
      ratios.map((x) => x.toFixed(2)).join(" ")
    })`,
  );
  rows.push({
    workload: w.name,
    unit: w.unit,
    kdeno: k,
    pytorch: p ?? null,
    ratio,
    roundRatios: ratios,
  });
}
// ---- the KD epoch: whole processes, data loading included ------------------

interface EpochRun {
  first: number;
  last: number;
  peakRssMb: number;
  /** PyTorch: the largest peak RSS of its DataLoader worker processes. */
  workerPeakRssMb?: number;
  images: number;
}

async function runEpoch(
  cmd: string,
  args: string[],
): Promise<EpochRun | null> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop();
    if (!out.success || !text) {
      console.error(new TextDecoder().decode(out.stderr));
      return null;
    }
    return JSON.parse(text);
  } catch (e) {
    console.error(`${cmd} not run: ${(e as Error).message}`);
    return null;
  }
}

const kdName = "KD epoch 224 b32, data included";
if (!values.only || kdName.includes(values.only)) {
  const max = values["kd-max"] ? ["--max", values["kd-max"]] : [];
  // rounds of whole processes, PyTorch then kdeno, as for the rows above;
  // the medians of the per-round ratios are reported
  const speed: number[] = [];
  const rss: number[] = [];
  const ks: EpochRun[] = [];
  const ps: EpochRun[] = [];
  for (let r = 0; r < kdRounds; r++) {
    const torchKd = await runEpoch(values.python!, [
      "bench/kd_epoch_torch.py",
      ...max,
    ]);
    const kd = await runEpoch(Deno.execPath(), [
      "run",
      "-A",
      "bench/kd_epoch.ts",
      ...max,
    ]);
    if (kd) ks.push(kd);
    if (torchKd) ps.push(torchKd);
    if (kd && torchKd) {
      speed.push(kd.first / torchKd.first);
      rss.push(kd.peakRssMb / torchKd.peakRssMb);
    }
  }
  // epoch 3 with the teacher-output cache (and decoded images) warm; the
  // first epoch fills it for one flip state of each image, the second for
  // most of the rest
  const cached = await runEpoch(Deno.execPath(), [
    "run",
    "-A",
    "bench/kd_epoch.ts",
    "--cache",
    "--epochs",
    "3",
    ...max,
  ]);
  const med = (runs: EpochRun[], f: (r: EpochRun) => number) =>
    runs.length ? median(runs.map(f)) : undefined;
  const emit = (
    workload: string,
    unit: string,
    k: number | undefined,
    p: number | undefined,
    ratios: number[],
  ) => {
    const ratio = ratios.length
      ? median(ratios)
      : k !== undefined && p
      ? k / p
      : null;
    console.log(
      `${workload} kdeno=${k?.toFixed(2) ?? "n/a"} pytorch=${
        p?.toFixed(2) ?? "n/a"
      } ratio=${ratio?.toFixed(3) ?? "n/a"} (${unit}${
        ratios.length
          ? `; ratios per round ${ratios.map((x) => x.toFixed(2)).join(" ")}`
          : ""
      })`,
    );
    rows.push({
      workload,
      unit,
      kdeno: k ?? null,
      pytorch: p ?? null,
      ratio,
      roundRatios: ratios,
    });
  };
  const torchFirst = med(ps, (r) => r.first);
  emit(kdName, "img/s", med(ks, (r) => r.first), torchFirst, speed);
  emit(
    "KD epoch, teacher-output cache warm (PyTorch uncached)",
    "img/s",
    cached?.last,
    torchFirst,
    [],
  );
  emit(
    "KD epoch peak resident memory",
    "MB, lower is better",
    med(ks, (r) => r.peakRssMb),
    med(ps, (r) => r.peakRssMb),
    rss,
  );
}

// ---- the chest X-ray stand-in (bench/make_xray_standin.ts) ----
if (
  !values.only || values.only.includes("stand-in") ||
  "stand-in".includes(values.only)
) {
  const scale = Number(values["standin-scale"]);
  let root = values.standin;
  if (!root) {
    root = `${Deno.env.get("TMPDIR") ?? "/tmp"}/kdeno_standin_${scale}`;
    try {
      Deno.statSync(`${root}/train/PNEUMONIA`);
    } catch {
      const { makeStandin } = await import("./make_xray_standin.ts");
      console.error(
        `writing the chest X-ray stand-in (scale ${scale}) to ${root} ...`,
      );
      await makeStandin({ out: root, scale });
    }
  }
  const common = [
    "--data",
    `${root}/train`,
    "--workers",
    values["standin-workers"]!,
  ];
  const kdeno = (extra: string[]) =>
    runEpoch(Deno.execPath(), [
      "run",
      "-A",
      "bench/kd_epoch.ts",
      ...common,
      ...extra,
    ]);
  const torch = (extra: string[]) =>
    runEpoch(values.python!, ["bench/kd_epoch_torch.py", ...common, ...extra]);
  const row = (
    workload: string,
    unit: string,
    k: number[],
    p: number[],
    ratios: number[],
  ) => {
    const km = k.length ? median(k) : null, pm = p.length ? median(p) : null;
    const ratio = ratios.length ? median(ratios) : null;
    console.log(
      `${workload} kdeno=${km?.toFixed(2) ?? "n/a"} pytorch=${
        pm?.toFixed(2) ?? "n/a"
      } ratio=${ratio?.toFixed(3) ?? "n/a"} (${unit}; ratios per round ${
        ratios.map((x) => x.toFixed(2)).join(" ")
      })`,
    );
    rows.push({
      workload,
      unit,
      kdeno: km,
      pytorch: pm,
      ratio,
      roundRatios: ratios,
    });
  };
  for (const mode of ["student", "kd"] as const) {
    const name = mode === "student"
      ? "stand-in StudentNet epoch 224"
      : "stand-in KD epoch 224";
    const r = {
      first: [] as number[][],
      cached: [] as number[][],
      rss: [] as number[][],
      rssC: [] as number[][],
    };
    for (const v of Object.values(r)) v.push([], [], []); // kdeno, pytorch, ratios
    const workerRss: number[] = [];
    for (let round = 0; round < kdRounds; round++) {
      // PyTorch decodes every epoch (no cache); its later epochs are the
      // baseline for kdeno's cached ones
      const p = await torch([
        "--mode",
        mode,
        "--epochs",
        mode === "student" ? "2" : "1",
      ]);
      const k = await kdeno(["--mode", mode]);
      const kc = await kdeno(["--mode", mode, "--cache", "--epochs", "3"]);
      const add = (m: number[][], kv?: number, pv?: number) => {
        if (kv !== undefined) m[0].push(kv);
        if (pv !== undefined) m[1].push(pv);
        if (kv !== undefined && pv !== undefined) m[2].push(kv / pv);
      };
      add(r.first, k?.first, p?.first);
      add(r.cached, kc?.last, p?.last);
      add(r.rss, k?.peakRssMb, p?.peakRssMb);
      add(r.rssC, kc?.peakRssMb, p?.peakRssMb);
      if (p?.workerPeakRssMb) workerRss.push(p.workerPeakRssMb);
    }
    row(
      `${name}, first epoch (no cache)`,
      "img/s",
      ...(r.first as [number[], number[], number[]]),
    );
    row(
      `${name}, ${
        mode === "student"
          ? "decoded images"
          : "teacher outputs + decoded images"
      } cached (PyTorch uncached)`,
      "img/s",
      ...(r.cached as [number[], number[], number[]]),
    );
    row(
      `${name} peak resident memory`,
      "MB, lower is better",
      ...(r.rss as [number[], number[], number[]]),
    );
    row(
      `${name} peak resident memory, cached`,
      "MB, lower is better",
      ...(r.rssC as [number[], number[], number[]]),
    );
    if (workerRss.length) {
      // kdeno's Workers are threads of its one process; PyTorch's are
      // processes, not in its VmHWM
      const w = median(workerRss);
      console.log(
        `  (PyTorch's peak is its main process only; each of its ${
          values["standin-workers"]
        } worker processes peaked at ${
          w.toFixed(0)
        } MB more, shared pages included)`,
      );
      rows.push({
        workload: `${name} PyTorch worker process peak`,
        unit: "MB",
        pytorch: w,
      });
    }
  }
}
// ---- end of the stand-in rows ----

await Deno.mkdir("bench/results", { recursive: true });
// a partial run (--only, --quick) never replaces the committed full one
const path = values.only || values.quick
  ? "bench/results/compare_partial.json"
  : "bench/results/compare.json";
const tmp = `${path}.tmp`;
await Deno.writeTextFile(
  tmp,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      gemm: gemmBackend(),
      cpus: navigator.hardwareConcurrency,
      cpuModel: cpuModel(),
      rows,
    },
    null,
    2,
  ) + "\n",
);
await Deno.rename(tmp, path);
console.log(`wrote ${path}`);

function cpuModel(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return /^model name\s*:\s*(.+)$/m.exec(info)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}
