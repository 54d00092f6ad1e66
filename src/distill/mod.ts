/**
 * `distill`: knowledge distillation only. Losses (KD with the tutorial's
 * and the recommended settings, DKD, FitNets hints, attention transfer)
 * and the teacher-output cache. The `Trainer` that runs them is in
 * `train`; metrics, statistics, cost and the report are in `evaluation`.
 *
 * @module
 */

export * from "./losses.ts";
export * from "./feature_losses.ts";
export * from "./teacher_cache.ts";
