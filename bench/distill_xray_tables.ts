/**
 * Writes the section "The tutorial at its own settings (chest X-ray
 * stand-in)" of docs/distillation.md from a committed run, so that its
 * figures are never typed by hand:
 *
 *   deno run -A bench/make_xray_standin.ts --out /tmp/xray --scale 0.02
 *   deno run -A examples/distill.ts --data /tmp/xray --size 224 --out out/xray
 *   cp out/xray/runs.json bench/results/distill_xray.json
 *   deno run -A bench/distill_xray_tables.ts [RUNS.json] [--check]
 *
 * RUNS defaults to bench/results/distill_xray.json. The part between the
 * `<!-- distill-xray:begin -->` and `<!-- distill-xray:end -->` lines of
 * docs/distillation.md is replaced: the command, wall and CPU time, the
 * settings, where the time went (setup, teacher training, the students
 * without and with KD, the teacher's forwards, test evaluation, cost; the
 * seconds spent waiting for batches in each), then the results table.
 * Before a run is committed the part holds a placeholder, and `--check`
 * accepts it; with a committed run `--check` writes nothing and exits 1
 * when the doc differs from what the run gives.
 *
 * @module
 */

import { markdownTable, plural } from "../src/study/protocol.ts";
import type { StudyPhases, StudyResults } from "../src/study/distillation.ts";
import { fmtMarkdown, runSection, type RunsFile } from "./distill_tables.ts";

/** The markers around the generated part of the doc. */
export const XRAY_BEGIN = "<!-- distill-xray:begin -->";
/** The end marker. */
export const XRAY_END = "<!-- distill-xray:end -->";

/** What the part holds until a run is committed. */
export const PLACEHOLDER =
  "_Not run yet: filled in from `bench/results/distill_xray.json`._";

const s1 = (x: number) => x < 10 ? x.toFixed(1) : x.toFixed(0);

/**
 * The table of where the wall time went.
 *
 * @param p `results.timing.phases` of the run.
 * @param total The run's wall seconds (the whole program).
 * @returns Markdown lines.
 */
export function phasesTable(p: StudyPhases, total: number): string[] {
  const rows: string[][] = [
    ["Setup (reading the folders, splitting)", s1(p.setupSeconds), "–"],
  ];
  if (p.teacher) {
    rows.push([
      "Teacher training (with its validation)",
      s1(p.teacher.seconds),
      s1(p.teacher.dataSeconds),
    ]);
  }
  rows.push(
    ["Students without KD", s1(p.student.seconds), s1(p.student.dataSeconds)],
    [
      `Students with KD (teacher forwards for KD: ${
        s1(p.studentKd.teacherSeconds)
      } s)`,
      s1(p.studentKd.seconds),
      s1(p.studentKd.dataSeconds),
    ],
    [
      "Test evaluation of every model",
      s1(p.evaluation.seconds),
      s1(p.evaluation.dataSeconds),
    ],
    ["Measuring cost (MACs, latency, throughput)", s1(p.costSeconds), "–"],
    ["Whole program", s1(total), s1(p.dataSeconds)],
  );
  return [
    markdownTable(
      [
        "Phase",
        "Wall s",
        "Of which waiting for batches (decode, resize, augment), s",
      ],
      rows,
    ),
    "",
  ];
}

/**
 * The generated part of the doc (between the markers, markers excluded).
 *
 * @param runs The committed `runs.json` of the run.
 * @returns Markdown, ending with a line break.
 * @throws Error when the run has no phase timings (written by an older
 * kdeno).
 */
export function renderXrayRun(runs: RunsFile): string {
  const r: StudyResults = runs.runs[0].results;
  const p = r.timing.phases;
  if (!p) {
    throw new Error(
      "the run's results.json has no timing.phases: run it again with this kdeno",
    );
  }
  const c = r.config as {
    size?: number;
    epochs?: number;
    teacherEpochs?: number;
    batchSize?: number;
    lr?: number;
    subset?: number | null;
    workers?: number;
    kd?: { preset: string; temperature: number; alpha: number };
  };
  const load = runs.loadAverage
    ? `; 1-minute load average ${
      runs.loadAverage.start[0].toFixed(1)
    } at the start, ${runs.loadAverage.end[0].toFixed(1)} at the end`
    : "";
  const d = r.dataset;
  const lines = [
    `Written by \`bench/distill_xray_tables.ts\` from \`bench/results/distill_xray.json\` (\`${runs.command}\`, ${
      r.date.slice(0, 10)
    }): ${s1(runs.wallSeconds)} s wall, ${s1(runs.cpuSeconds)} s CPU on ${
      plural(runs.cores, "core")
    }${load}.`,
    "",
    `Settings: ${c.size}×${c.size} images, teacher ${
      plural(c.teacherEpochs ?? 0, "epoch")
    }, students ${plural(c.epochs ?? 0, "epoch")} × ${
      plural(r.student.seeds.length, "seed")
    }, batch ${c.batchSize}, Adam lr ${c.lr}, KD loss preset ${c.kd?.preset} (T = ${c.kd?.temperature}, alpha = ${c.kd?.alpha}), ${
      plural(c.workers ?? 0, "decoding Worker")
    }; ${
      c.subset
        ? `subset: at most ${c.subset} training images and the same fraction of validation and test`
        : "every image"
    } (train ${d.train}, validation ${d.val}, test ${d.test}).`,
    "",
    "Where the time went:",
    "",
    ...phasesTable(p, runs.wallSeconds),
    ...runSection(r),
  ];
  return lines.join("\n");
}

/**
 * The doc with its generated part replaced (by the run's figures, or by
 * the placeholder when `runs` is null).
 *
 * @param doc The doc's text, holding both markers.
 * @param runs The committed `runs.json`, or null.
 * @returns The new text.
 * @throws Error when a marker is missing.
 */
export function updateXrayDoc(doc: string, runs: RunsFile | null): string {
  const a = doc.indexOf(XRAY_BEGIN);
  const b = doc.indexOf(XRAY_END);
  if (a < 0 || b < a) {
    throw new Error(
      `docs/distillation.md lacks the ${XRAY_BEGIN} ... ${XRAY_END} lines`,
    );
  }
  const body = runs ? renderXrayRun(runs) : PLACEHOLDER + "\n";
  return doc.slice(0, a + XRAY_BEGIN.length) + "\n\n" + body + "\n" +
    doc.slice(b);
}

if (import.meta.main) {
  const args = Deno.args.filter((a) => a !== "--check");
  const check = Deno.args.includes("--check");
  const runsPath = args[0] ??
    new URL("./results/distill_xray.json", import.meta.url).pathname;
  const docPath = new URL("../docs/distillation.md", import.meta.url).pathname;
  let runs: RunsFile | null = null;
  try {
    runs = JSON.parse(await Deno.readTextFile(runsPath));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound) || args[0]) throw e;
  }
  const doc = await Deno.readTextFile(docPath);
  const next = await fmtMarkdown(updateXrayDoc(doc, runs));
  if (check) {
    if (next !== doc) {
      console.error(
        "docs/distillation.md is out of date: run deno run -A bench/distill_xray_tables.ts",
      );
      Deno.exit(1);
    }
    console.log(
      runs
        ? "docs/distillation.md matches the committed chest X-ray stand-in run"
        : "docs/distillation.md holds the placeholder (no committed chest X-ray stand-in run)",
    );
  } else {
    await Deno.writeTextFile(docPath, next);
    console.log(
      runs
        ? `Wrote the chest X-ray stand-in run into ${docPath}`
        : `No ${runsPath}: wrote the placeholder into ${docPath}`,
    );
  }
}
