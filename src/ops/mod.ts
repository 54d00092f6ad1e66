/**
 * The ops layer: what each op means, its validation, its forward through
 * the backend and its gradient, written once for every backend. One file per
 * family; this module only gathers them.
 *
 * @module
 */

export * from "./elementwise.ts";
export * from "./reduce.ts";
export * from "./shape.ts";
export * from "./matmul.ts";
export * from "./softmax.ts";
export * from "./conv.ts";
export * from "./pool.ts";
export * from "./norm.ts";
export * from "./loss.ts";
export * from "./creation.ts";
export * from "./device.ts";
