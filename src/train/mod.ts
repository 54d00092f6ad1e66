/**
 * `train`: the `Trainer` (any model, any loss; a teacher when distilling),
 * training checkpoints written atomically and resumed all or nothing, and
 * the progress display.
 *
 * @module
 */

export * from "./trainer.ts";
export * from "./checkpoint.ts";
export * from "./progress.ts";
