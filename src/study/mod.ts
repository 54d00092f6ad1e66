/**
 * `study`: experiments built on training and evaluation. The
 * knowledge-distillation study of the tutorial (`runDistillationStudy`:
 * teacher, students without and with KD over several seeds, the paired
 * comparison, `results.json`, `results.md` and `report.html`), and its
 * protocol as plain functions (`summarizeArm`, `compareArms`, the results
 * table). It sits above `train/` and `eval/`; nothing in `src/` imports it.
 *
 * @module
 */

export {
  ARM_NAMES,
  type DistillationStudyOptions,
  type DistillationStudyResult,
  runDistillationStudy,
  type StudyDataset,
  type StudyLoaders,
  type StudyResults,
} from "./distillation.ts";
export {
  type ArmComparison,
  type ArmSummary,
  compareArms,
  formatPoints,
  markdownTable,
  type ModelCost,
  RESULT_COLUMNS,
  resultRow,
  type StudyRun,
  summarizeArm,
  type TeacherSummary,
} from "./protocol.ts";
export {
  imageFolderStudyData,
  type StudyData,
  type StudyDataOptions,
} from "./data.ts";
