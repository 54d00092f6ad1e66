/**
 * `distill`: knowledge distillation. Losses (KD with the tutorial's and the
 * recommended settings, DKD, FitNets hints, attention transfer), the
 * `Trainer`, the teacher-output cache, metrics, cost measurements and the
 * HTML run report.
 *
 * @module
 */

export {
  type CriterionInput,
  CrossEntropyCriterion,
  DistillationLoss,
  type DistillCriterion,
  DKDLoss,
  dkdLoss,
  type DkdLossOptions,
  type DkdOptions,
  KD_PRESETS,
  kdLoss,
  type KdOptions,
  type KdPreset,
  type KdReduction,
  type KdTerms,
  kdTerms,
  type ResolvedKdOptions,
  resolveKdOptions,
} from "./losses.ts";
export {
  attentionMap,
  AttentionTransferLoss,
  attentionTransferLoss,
  type AttentionTransferOptions,
  FeatureHooks,
  findModule,
  HintLoss,
  hintLoss,
  type HintLossOptions,
} from "./feature_losses.ts";
export {
  type BatchInfo,
  type Loader,
  type LoaderBatch,
  moveBatch,
  TensorLoader,
  type TensorLoaderOptions,
} from "./loader.ts";
export {
  type IndexedDataset,
  TeacherCache,
  type TeacherCacheOptions,
  type TeacherCacheStats,
} from "./teacher_cache.ts";
export {
  type EarlyStoppingOptions,
  type EpochRecord,
  type FitOptions,
  type FitResult,
  NonFiniteLossError,
  type PhaseRecord,
  Trainer,
  type TrainerOptions,
  type TrainerReportOptions,
} from "./trainer.ts";
export {
  appendMetricsLines,
  escapeHtml,
  type MetricsLine,
  metricsLines,
  renderReport,
  type ReportData,
  type ReportEvaluation,
  reportEvaluation,
  type ReportModel,
  type ReportRun,
  type ReportTable,
  writeReport,
} from "./report.ts";
export {
  applyCheckpoint,
  type Checkpoint,
  CHECKPOINT_FORMAT,
  type CheckpointParts,
  decodeJson,
  disposeCheckpoint,
  encodeJson,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
export {
  Progress,
  type ProgressFigures,
  type ProgressMode,
} from "./progress.ts";
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
