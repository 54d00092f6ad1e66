/**
 * The backend registry: which backends exist, which one is current, and why
 * an absent one is absent. Backends are constructed on first use, so
 * importing kdeno never opens a native library.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import type { DeviceName } from "./types.ts";
import { CpuBackend } from "./cpu/mod.ts";
import { createCudaBackend } from "./cuda/mod.ts";
import { BackendUnavailableError } from "../../ffi/find_library.ts";

export type { DeviceName };

/**
 * The one list of backends: a device name and how to construct its backend.
 * A new backend is a folder under `src/backend/`, its line here and its name
 * in `DeviceName` (`types.ts`); `deviceNames()`, `isDeviceName` and the
 * error messages all follow from this map.
 */
const factories: { readonly [D in DeviceName]: () => Backend } = {
  cpu: () => new CpuBackend(),
  cuda: () => createCudaBackend(),
};

const names = Object.keys(factories) as DeviceName[];
const instances = new Map<DeviceName, Backend>();
const failures = new Map<DeviceName, Error>();
let current: DeviceName | null = null;

/**
 * The devices kdeno knows, in the registry's order (`cpu` first).
 *
 * @returns Their names.
 */
export function deviceNames(): DeviceName[] {
  return [...names];
}

/**
 * Says whether a string names a device kdeno knows.
 *
 * @param name Any string.
 * @returns True for a key of the registry's map.
 */
export function isDeviceName(name: string): name is DeviceName {
  return Object.hasOwn(factories, name);
}

/** The known devices for messages: `"cpu" and "cuda"`. */
function knownList(): string {
  const q = names.map((n) => `"${n}"`);
  return q.length < 2
    ? q.join("")
    : `${q.slice(0, -1).join(", ")} and ${q[q.length - 1]}`;
}

/**
 * Returns the backend for a device, constructing it on first use.
 *
 * @param name A device name (`"cpu"`, `"cuda"`).
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
      `Known devices are ${knownList()}`,
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
 * @param name A device name (`"cpu"`, `"cuda"`).
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
  if (env !== undefined && isDeviceName(env)) {
    setBackend(env);
    return env;
  }
  current = backendStatus("cuda").available ? "cuda" : "cpu";
  return current;
}
