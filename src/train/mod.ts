/**
 * `train`: the `Trainer` (any model, any loss; a teacher when distilling),
 * training checkpoints written atomically and resumed all or nothing, and
 * the progress display.
 *
 * @module
 */

export {
  type EarlyStoppingOptions,
  type FitOptions,
  type FitResult,
  NonFiniteLossError,
  Trainer,
  type TrainerOptions,
  type TrainerReportOptions,
} from "./trainer.ts";
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
