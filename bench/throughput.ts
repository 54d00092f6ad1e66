/**
 * `deno task bench`: runs `deno bench -A --json` over `bench/` (or the bench
 * files given), then prints one table with, for each benchmark, the
 * backend that actually ran it (OpenBLAS, oneDNN, native C, TypeScript,
 * CUDA), its time per iteration and its throughput in img/s or GFLOP/s.
 *
 * ```sh
 * deno task bench                            # every *_bench.ts, 85 s on 2 shared cores
 * deno task bench bench/gemm_bench.ts        # one file
 * deno bench -A bench/                       # deno's own tables, times only
 * ```
 *
 * The bench files register their benchmarks through
 * `bench/_throughput.ts`, which writes the work per iteration and the
 * backend used to the file named by `KDENO_BENCH_THROUGHPUT`; benchmarks
 * registered with plain `Deno.bench` (bench/memory_bench.ts) get a time
 * and no throughput.
 *
 * @module
 */

import { relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import type { ThroughputRecord } from "./_throughput.ts";

interface BenchJson {
  benches: {
    origin: string;
    group: string | null;
    name: string;
    results: {
      ok?: { n: number; avg: number; min: number };
      failed?: unknown;
    }[];
  }[];
}

const root = fromFileUrl(new URL("../", import.meta.url));
const paths = Deno.args.length > 0 ? Deno.args : ["bench/"];
const side = await Deno.makeTempFile({
  prefix: "kdeno-throughput-",
  suffix: ".jsonl",
});

console.error(`deno bench -A --json ${paths.join(" ")}`);
const child = new Deno.Command(Deno.execPath(), {
  args: ["bench", "-A", "--json", ...paths],
  cwd: root,
  env: { KDENO_BENCH_THROUGHPUT: side },
  stdout: "piped",
  stderr: "inherit",
}).spawn();

// Progress: the side file gains a line when a benchmark has run its first
// call; the JSON report only comes at the end.
let shown = 0;
const t0 = performance.now();
const progress = setInterval(() => {
  const lines = readRecords();
  for (const r of lines.slice(shown)) {
    const t = ((performance.now() - t0) / 1000).toFixed(0).padStart(4);
    console.error(`${t} s  ${r.group ? `${r.group} › ` : ""}${r.name}`);
  }
  shown = lines.length;
}, 1000);

// Echo what the bench files print (it precedes the JSON) and keep it all.
const chunks: Uint8Array[] = [];
let echoed = 0;
const decoder = new TextDecoder();
let text = "";
for await (const chunk of child.stdout) {
  chunks.push(chunk);
  text += decoder.decode(chunk, { stream: true });
  const json = text.indexOf('{\n  "version"');
  const upTo = json === -1 ? text.lastIndexOf("\n") + 1 : json;
  if (upTo > echoed) {
    await Deno.stdout.write(new TextEncoder().encode(text.slice(echoed, upTo)));
    echoed = upTo;
  }
}
const status = await child.status;
clearInterval(progress);

function readRecords(): ThroughputRecord[] {
  try {
    return Deno.readTextFileSync(side).split("\n").filter((l) => l)
      .map((l) => JSON.parse(l) as ThroughputRecord);
  } catch {
    return [];
  }
}

const records = new Map<string, ThroughputRecord>();
for (const r of readRecords()) {
  records.set(`${r.origin}\0${r.group ?? ""}\0${r.name}`, r); // last wins
}
await Deno.remove(side).catch(() => {});

const start = text.lastIndexOf('{\n  "version"');
if (start === -1) {
  console.error("deno bench printed no JSON report");
  Deno.exit(status.code || 1);
}
const report = JSON.parse(text.slice(start)) as BenchJson;

function time(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns.toFixed(0)} ns`;
}

function rate(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

const rows: string[][] = [];
const seen = new Set<string>();
for (const b of report.benches) {
  const k = `${b.origin}\0${b.group ?? ""}\0${b.name}`;
  seen.add(k);
  const rec = records.get(k);
  const file = relative(root, fromFileUrl(b.origin));
  const workload = `${file.replace(/^bench\//, "")}: ${
    b.group ? `${b.group} › ` : ""
  }${b.name}`;
  const ok = b.results[0]?.ok;
  if (rec?.backend.startsWith("skipped")) {
    rows.push([workload, "-", "-", rec.backend]);
    continue;
  }
  if (!ok) {
    rows.push([workload, rec?.backend ?? "-", "failed", "-"]);
    continue;
  }
  const perSecond = rec?.amount !== undefined
    ? `${rate(rec.amount / (ok.avg / 1e9))} ${rec.unit}/s`
    : "-";
  rows.push([workload, rec?.backend ?? "-", time(ok.avg), perSecond]);
}
// Benchmarks that recorded themselves but are not in the report (ignored).
for (const [k, rec] of records) {
  if (seen.has(k)) continue;
  if (!rec.backend.startsWith("skipped")) continue;
  rows.push([rec.name, "-", "-", rec.backend]);
}

const header = ["workload", "backend used", "time/iter (avg)", "throughput"];
const width = header.map((h, i) =>
  Math.max(h.length, ...rows.map((r) => r[i].length))
);
const line = (cells: string[]) =>
  "| " +
  cells.map((c, i) => i >= 2 ? c.padStart(width[i]) : c.padEnd(width[i]))
    .join(" | ") +
  " |";
console.log(`\nThroughput (${report.benches.length} benchmarks)\n`);
console.log(line(header));
console.log(
  "|" +
    width.map((w, i) => i >= 2 ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))
      .join("|") +
    "|",
);
for (const r of rows) console.log(line(r));
Deno.exit(status.code);
