/**
 * The backend registry: which backends exist, which one is current, and why
 * an absent one is absent. Backends are constructed on first use, so
 * importing kdeno never opens a native library.
 *
 * @module
 */

import type { Backend, DeviceName } from "./backend.ts";
import { CpuBackend } from "./cpu/mod.ts";
import { createCudaBackend } from "./cuda/mod.ts";
import { BackendUnavailableError } from "../../ffi/find_library.ts";

const factories: Record<DeviceName, () => Backend> = {
  cpu: () => new CpuBackend(),
  cuda: () => createCudaBackend(),
};

const instances = new Map<DeviceName, Backend>();
const failures = new Map<DeviceName, Error>();
let current: DeviceName | null = null;

function isDeviceName(name: string): name is DeviceName {
  return name === "cpu" || name === "cuda";
}

/**
 * Returns the backend for a device, constructing it on first use.
 *
 * @param name `"cpu"` or `"cuda"`.
 * @returns The backend.
 * @throws BackendUnavailableError when the device cannot be used here.
 */
export function getBackend(name: DeviceName): Backend {
  const have = instances.get(name);
  if (have) return have;
  if (!isDeviceName(name)) {
    throw new BackendUnavailableError(
      `device "${name}"`,
      [],
      'Known devices are "cpu" and "cuda"',
    );
  }
  const failed = failures.get(name);
  if (failed) throw failed;
  try {
    const b = factories[name]();
    instances.set(name, b);
    return b;
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    failures.set(name, err);
    throw err;
  }
}

/**
 * Says whether a device can be used, and if not, why.
 *
 * @param name The device.
 * @returns `{ available: true }` or `{ available: false, reason }`.
 */
export function backendStatus(
  name: DeviceName,
): { available: boolean; reason?: string } {
  try {
    getBackend(name);
    return { available: true };
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
}

/**
 * Makes `name` the device new tensors are created on.
 *
 * @param name `"cpu"` or `"cuda"`.
 * @throws BackendUnavailableError when the device cannot be used here.
 */
export function setBackend(name: DeviceName): void {
  getBackend(name);
  current = name;
}

/**
 * The device new tensors go to: the one set with `setBackend`, else the
 * `KDENO_DEVICE` environment variable, else `cuda` when it loads and a device
 * answers, else `cpu`.
 *
 * @returns The current device name.
 */
export function currentDevice(): DeviceName {
  if (current) return current;
  let env: string | undefined;
  try {
    env = Deno.env.get("KDENO_DEVICE");
  } catch {
    env = undefined;
  }
  if (env === "cpu" || env === "cuda") {
    setBackend(env);
    return env;
  }
  current = backendStatus("cuda").available ? "cuda" : "cpu";
  return current;
}
