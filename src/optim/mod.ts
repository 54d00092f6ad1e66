/**
 * Optimizers and learning-rate schedulers: `SGD`, `Adam`, `AdamW`,
 * `StepLR`, `CosineAnnealingLR`, `ReduceLROnPlateau`.
 *
 * @module
 */

export * from "./optimizer.ts";
export * from "./sgd.ts";
export * from "./adam.ts";
export * from "./lr_scheduler.ts";
