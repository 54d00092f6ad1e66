/**
 * `autocast`: a scope in which matrix products run in half precision, as
 * `torch.autocast`.
 *
 * @module
 */

import type { DeviceName } from "../backend/types.ts";
import { currentDevice } from "../backend/registry.ts";
import { setCudaAutocastDtype } from "../backend/cuda/autocast_state.ts";

/** The half-precision types autocast computes in. */
export type HalfDType = "float16" | "bfloat16";

/** Options of {@link autocast}. */
export interface AutocastOptions {
  /**
   * The device whose ops are autocast (default the current device), as
   * `torch.autocast(device_type)`.
   */
  device?: DeviceName;
  /**
   * The half type (default `"float16"` on `cuda`, `"bfloat16"` on `cpu`, as
   * PyTorch's defaults).
   */
  dtype?: HalfDType;
  /** False runs `fn` without autocast (default true). */
  enabled?: boolean;
}

const state: Record<DeviceName, HalfDType | null> = { cpu: null, cuda: null };

function check(o: AutocastOptions): { device: DeviceName; dtype: HalfDType } {
  const device = o.device ?? currentDevice();
  if (device !== "cpu" && device !== "cuda") {
    throw new RangeError(
      `Cannot autocast: device "${device}" is not "cpu" or "cuda"`,
    );
  }
  const dtype = o.dtype ?? (device === "cuda" ? "float16" : "bfloat16");
  if (dtype !== "float16" && dtype !== "bfloat16") {
    throw new RangeError(
      `Cannot autocast: dtype "${dtype}" is not "float16" or "bfloat16"`,
    );
  }
  return { device, dtype };
}

/**
 * Runs `fn` with autocast on, as `with torch.autocast(device, dtype):`.
 *
 * On `cuda`, matrix products (`matmul`, `bmm`, `linear`) take their float32
 * inputs rounded to `dtype` and run on tensor cores through `cublasGemmEx`,
 * accumulating and returning float32 (PyTorch returns the half type; kdeno
 * tensors have no half dtype yet, so the output stays float32, which costs
 * memory but not precision). Everything else stays float32, as on PyTorch's
 * float32 list: reductions, softmax, log-softmax, losses, batch norm, and
 * the optimizer's state. Convolutions stay float32 for now (cuDNN's half
 * descriptors are not wired), which is PyTorch's main difference.
 *
 * On `cpu`, autocast records the scope and computes in float32: the CPU
 * kernels (OpenBLAS, oneDNN and the TypeScript fallbacks) have no half
 * paths, and rounding inputs to half without half arithmetic would cost
 * precision and time for nothing.
 *
 * Scopes nest; the previous setting comes back when `fn` returns, throws,
 * or (for an async `fn`) settles. Gradients computed by `backward()` after
 * the scope run in float32.
 *
 * @example bfloat16 matrix products on the current device
 * ```ts
 * import { amp, matmul, ones } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const y = amp.autocast({ dtype: "bfloat16" }, () =>
 *   matmul(ones([2, 3]), ones([3, 2]))
 * );
 * assert.equal(y.dtype, "float32");
 * assert.equal(amp.isAutocastEnabled(), false);
 * ```
 *
 * @param options Device, dtype, enabled.
 * @param fn The work.
 * @returns What `fn` returns.
 * @throws RangeError for an unknown device or dtype.
 */
export function autocast<T>(options: AutocastOptions, fn: () => T): T {
  const { device, dtype } = check(options);
  const on = options.enabled ?? true;
  const prev = state[device];
  const set = (d: HalfDType | null) => {
    state[device] = d;
    if (device === "cuda") setCudaAutocastDtype(d);
  };
  set(on ? dtype : null);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    set(prev);
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => set(prev)) as T;
  }
  set(prev);
  return result;
}

/**
 * Whether an autocast scope is open for a device, as
 * `torch.is_autocast_enabled()`.
 *
 * @param device The device (default the current device).
 * @returns True inside an enabled scope.
 */
export function isAutocastEnabled(device?: DeviceName): boolean {
  return state[device ?? currentDevice()] != null;
}

/**
 * The half type of the open autocast scope of a device, or null outside
 * one.
 *
 * @param device The device (default the current device).
 * @returns The type, or null.
 */
export function autocastDtype(device?: DeviceName): HalfDType | null {
  return state[device ?? currentDevice()] ?? null;
}
