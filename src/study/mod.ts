/**
 * `study`: experiments built on training and evaluation. The
 * knowledge-distillation study of the tutorial (`runDistillationStudy`:
 * teacher, students without and with KD over several seeds, the paired
 * comparison, `results.json`, `results.md` and `report.html`), and its
 * protocol as plain functions (`summarizeArm`, `compareArms`, the results
 * table), the data preparation the example uses (`imageFolderStudyData`)
 * and the typed command-line flag parser of the examples (`parseFlags`,
 * `helpText`, `CliError` with the closest flag). It sits above `train/` and
 * `eval/`; nothing in `src/` imports it.
 *
 * @module
 */

export * from "./distillation.ts";
export * from "./protocol.ts";
export * from "./data.ts";
export * from "./cli.ts";
