/**
 * Writes the default run's tables into docs/distillation.md from a
 * committed run, so that they are never typed by hand:
 *
 *   deno run -A examples/distill.ts                  # writes out/distill/runs.json
 *   cp out/distill/runs.json bench/results/distill_default.json
 *   deno run -A bench/distill_tables.ts [RUNS.json] [--check]
 *
 * RUNS defaults to bench/results/distill_default.json. The tables go
 * between the `<!-- distill-default:begin -->` and
 * `<!-- distill-default:end -->` lines of docs/distillation.md, formatted
 * by `deno fmt` as the rest of the doc; `--check` writes nothing and exits
 * 1 when the doc differs from what the run gives.
 *
 * @module
 */

import { markdownTable, plural } from "../src/study/protocol.ts";
import {
  comparisonTable,
  resultsTableCells,
  type StudyResults,
  type StudySetting,
} from "../src/study/distillation.ts";

/** `runs.json`, as `examples/distill.ts` writes it. */
export interface RunsFile {
  /** The command line. */
  command: string;
  /** Wall-clock seconds of the whole program. */
  wallSeconds: number;
  /** CPU seconds (user + system) of the whole program. */
  cpuSeconds: number;
  /** Logical cores of the machine. */
  cores: number;
  /** Load averages at the start and the end. */
  loadAverage?: { start: number[]; end: number[] };
  /** The runs, in order. */
  runs: (StudySetting & { dir: string })[];
}

/** The markers around the generated part of the doc. */
export const BEGIN = "<!-- distill-default:begin -->";
/** The end marker. */
export const END = "<!-- distill-default:end -->";

const pct = (x: number) => (100 * x).toFixed(1);

/**
 * One run's part of a doc: its data line, results table, baseline,
 * verdict and warnings.
 *
 * @param r The run's `results.json`.
 * @returns Markdown lines.
 */
export function runSection(r: StudyResults): string[] {
  const { columns, rows } = resultsTableCells(r);
  const d = r.dataset;
  const b = r.majorityBaseline;
  const c = r.config as { epochs?: number; seeds?: number };
  const out = [
    `Data: train ${d.train}${
      d.labeled !== d.train ? ` (students: ${d.labeled} labeled)` : ""
    }${
      d.transfer ? ` + ${d.transfer} unlabeled transfer images` : ""
    }, test ${d.test}. Teacher: ${
      r.teacher.epochs
        ? `trained for ${plural(r.teacher.epochs, "epoch")}`
        : "the one trained in the first run"
    }; students: ${plural(c.epochs ?? 0, "epoch")}, ${
      plural(r.student.seeds.length, "seed")
    } (${r.student.seeds.join(", ")}).`,
    "",
    markdownTable(columns, rows),
    "",
  ];
  if (b) {
    out.push(
      `Majority-class baseline: always answering "${b.className}" (${
        b.tied
          ? "the classes are tied in training: the first one"
          : "the most frequent class in training"
      }) scores ${pct(b.accuracy)}% on test.`,
      "",
    );
  }
  out.push(`**${r.comparison.verdict}**`, "");
  for (const w of r.warnings) out.push(`- Warning: ${w}`);
  if (r.warnings.length) out.push("");
  return out;
}

/**
 * The generated part of the doc (between the markers, markers excluded).
 *
 * @param runs The committed `runs.json`.
 * @returns Markdown, ending with a line break.
 */
export function renderDefaultRun(runs: RunsFile): string {
  const first = runs.runs[0].results;
  const load = runs.loadAverage
    ? `; 1-minute load average ${
      runs.loadAverage.start[0].toFixed(1)
    } at the start, ${runs.loadAverage.end[0].toFixed(1)} at the end`
    : "";
  const lines = [
    `Written by \`bench/distill_tables.ts\` from \`bench/results/distill_default.json\` (\`${runs.command}\`, ${
      first.date.slice(0, 10)
    }): ${plural(runs.runs.length, "run")} in ${
      runs.wallSeconds.toFixed(0)
    } s wall, ${runs.cpuSeconds.toFixed(0)} s CPU on ${
      plural(runs.cores, "core")
    }${load}.`,
    "",
    "Test accuracy %: students mean ± 95% t-interval half-width over seeds, teacher with its Wilson 95% interval.",
    "",
    comparisonTable(runs.runs),
    "",
  ];
  for (const [i, r] of runs.runs.entries()) {
    lines.push(`#### ${i + 1}. ${r.setting}`, "", ...runSection(r.results));
  }
  return lines.join("\n");
}

/**
 * The doc with its generated part replaced.
 *
 * @param doc The doc's text, holding both markers.
 * @param runs The committed `runs.json`.
 * @returns The new text.
 * @throws Error when a marker is missing.
 */
export function updateDoc(doc: string, runs: RunsFile): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) {
    throw new Error(`docs/distillation.md lacks the ${BEGIN} ... ${END} lines`);
  }
  return doc.slice(0, a + BEGIN.length) + "\n\n" + renderDefaultRun(runs) +
    doc.slice(b);
}

/**
 * Formats Markdown as `deno fmt` does (the project's settings).
 *
 * @param text Markdown.
 * @returns The formatted text.
 */
export async function fmtMarkdown(text: string): Promise<string> {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "md", "-"],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await p.output();
  if (!out.success) {
    throw new Error(`deno fmt: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

if (import.meta.main) {
  const args = Deno.args.filter((a) => a !== "--check");
  const check = Deno.args.includes("--check");
  const runsPath = args[0] ??
    new URL("./results/distill_default.json", import.meta.url).pathname;
  const docPath = new URL("../docs/distillation.md", import.meta.url).pathname;
  const runs: RunsFile = JSON.parse(await Deno.readTextFile(runsPath));
  const doc = await Deno.readTextFile(docPath);
  const next = await fmtMarkdown(updateDoc(doc, runs));
  if (check) {
    if (next !== doc) {
      console.error(
        "docs/distillation.md is out of date: run deno run -A bench/distill_tables.ts",
      );
      Deno.exit(1);
    }
    console.log("docs/distillation.md matches the committed run");
  } else {
    await Deno.writeTextFile(docPath, next);
    console.log(`Wrote the default run's tables into ${docPath}`);
  }
}
