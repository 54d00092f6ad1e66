/**
 * Moving a tensor between devices.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import { getBackend } from "../backend/registry.ts";
import { record } from "../autograd.ts";
import type { Tensor } from "../tensor.ts";
import { fromStorage } from "./_util.ts";

/**
 * Copies a tensor to another device (or returns it when it is already
 * there), as `tensor.to(device)` does in PyTorch; the gradient flows back to
 * the source device.
 *
 * @param x The tensor.
 * @param device `"cpu"` or `"cuda"`.
 * @returns The tensor on `device`.
 */
export function toDevice(x: Tensor, device: DeviceName): Tensor {
  if (x.device === device) return x;
  const dst = getBackend(device);
  const y = fromStorage(dst, dst.upload(x.data(), x.dtype), x.shape);
  return record(y, [x], "to", (g) => [toDevice(g, x.device)]);
}
