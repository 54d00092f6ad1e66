/**
 * `distill`: knowledge distillation only. Losses (KD with the tutorial's
 * and the recommended settings, DKD, FitNets hints, attention transfer)
 * and the teacher-output cache. The `Trainer` that runs them is in
 * `train`; metrics, statistics, cost and the report are in `evaluation`.
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
  type IndexedDataset,
  TeacherCache,
  type TeacherCacheOptions,
  type TeacherCacheStats,
} from "./teacher_cache.ts";
