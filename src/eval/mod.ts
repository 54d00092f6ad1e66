/**
 * `evaluation` (the folder is `eval/`): classification metrics and
 * `evaluate`, statistics for comparing runs (confidence intervals,
 * McNemar's test), a model's cost (parameters, MACs, size, latency), and
 * the HTML run report with `metrics.jsonl`.
 *
 * @module
 */

export {
  type ClassificationMetrics,
  classificationMetrics,
  type ClassMetrics,
  confusionMatrix,
  evaluate,
  type EvaluateOptions,
  type EvaluateResult,
  expectedCalibrationError,
  type MetricsOptions,
  rocAuc,
  type RocCurve,
  rocCurve,
} from "./metrics.ts";
export {
  incompleteBeta,
  logGamma,
  mcnemar,
  type McNemarResult,
  type MeanCI,
  meanConfidenceInterval,
  normalCdf,
  normalQuantile,
  studentTCdf,
  studentTQuantile,
  wilsonInterval,
} from "./stats.ts";
export {
  countMacs,
  measureSpeed,
  modelSizeBytes,
  type SpeedOptions,
  type SpeedResult,
} from "./cost.ts";
export {
  appendMetricsLines,
  type EpochRecord,
  escapeHtml,
  type MetricsLine,
  metricsLines,
  type PhaseRecord,
  renderReport,
  type ReportData,
  type ReportEvaluation,
  reportEvaluation,
  type ReportModel,
  type ReportRun,
  type ReportTable,
  writeReport,
} from "./report.ts";
