/**
 * Prints the README's CPU table from `deno task compare`'s output, so the
 * table is generated from a committed run, never typed by hand:
 *
 *   deno run -A bench/compare_table.ts [RESULTS.json] [--previous OLD.json]
 *
 * RESULTS defaults to bench/results/compare.json; `--previous` adds a column
 * with an earlier run's ratios (e.g. `git show REV:bench/results/compare.json
 * > /tmp/old.json`).
 *
 * @module
 */

import { parseArgs } from "node:util";

interface Row {
  workload: string;
  unit: string;
  /** Absent on rows that only report PyTorch (its worker processes' peak). */
  kdeno?: number;
  pytorch: number;
  ratio?: number;
  roundRatios?: number[];
}

interface Results {
  date: string;
  rows: Row[];
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { previous: { type: "string" } },
  allowPositionals: true,
});
const path = positionals[0] ??
  new URL("./results/compare.json", import.meta.url).pathname;
const read = (p: string): Results => JSON.parse(Deno.readTextFileSync(p));
const now = read(path);
const before = values.previous ? read(values.previous) : null;

const fmt = (v?: number) =>
  v === undefined ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1);
const r2 = (v?: number) => v === undefined ? "–" : v.toFixed(2);
const head = ["workload", "kdeno", "PyTorch", "ratio (rounds)"];
if (before) head.push(`previous run (${before.date.slice(0, 10)})`);
const lines = [head, head.map(() => "---")];
let lastUnit = "";
for (const row of now.rows) {
  const unit = row.unit === lastUnit ? "" : ` (${row.unit})`;
  lastUnit = row.unit;
  const rounds = row.ratio === undefined
    ? ""
    : row.roundRatios && row.roundRatios.length > 1
    ? ` (${row.roundRatios.map(r2).join(" ")})`
    : " (one run)";
  const cells = [
    `${row.workload}${unit}`,
    fmt(row.kdeno),
    fmt(row.pytorch),
    `${r2(row.ratio)}${rounds}`,
  ];
  if (before) {
    const old = before.rows.find((r) => r.workload === row.workload);
    cells.push(old ? r2(old.ratio) : "–");
  }
  lines.push(cells);
}
console.log(`Run of ${now.date}:\n`);
console.log(lines.map((l) => `| ${l.join(" | ")} |`).join("\n"));
