/**
 * The ops layer: what each op means, its validation, its forward through
 * the backend and its gradient, written once for every backend.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import { getBackend } from "../backend/registry.ts";
import { record } from "../autograd.ts";
import type { Tensor } from "../tensor.ts";
import { fromStorage } from "./_util.ts";

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

/** Copies a tensor to another device; the gradient flows back. */
export function toDevice(x: Tensor, device: DeviceName): Tensor {
  if (x.device === device) return x;
  const dst = getBackend(device);
  const y = fromStorage(dst, dst.upload(x.data()), x.shape);
  return record(y, [x], "to", (g) => [toDevice(g, x.device)]);
}
