/**
 * Optimizers and learning-rate schedulers: `SGD`, `Adam`, `AdamW`,
 * `StepLR`, `CosineAnnealingLR`, `ReduceLROnPlateau`.
 *
 * @module
 */

export {
  type GroupOptions,
  type GroupStateDict,
  Optimizer,
  type OptimizerStateDict,
  type ParamGroup,
  type ParamGroupInput,
  type Params,
  type ParamState,
  type StateSpec,
  type ZeroGradOptions,
} from "./optimizer.ts";
export { SGD, type SgdOptions } from "./sgd.ts";
export { Adam, type AdamOptions, AdamW } from "./adam.ts";
export {
  CosineAnnealingLR,
  type CosineAnnealingLrOptions,
  LRScheduler,
  ReduceLROnPlateau,
  type ReduceLrOnPlateauOptions,
  type SchedulerStateDict,
  StepLR,
  type StepLrOptions,
} from "./lr_scheduler.ts";
