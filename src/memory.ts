/**
 * What kdeno knows about the memory tensors hold: live tensors and bytes per
 * device, where live tensors were made (with `KDENO_DEBUG_MEMORY=1`), a
 * forced collection for leak checks, and the growth watch the trainer runs.
 *
 * Who frees what (the design; `docs/architecture.md` has the long form):
 *
 * - A tensor that nothing references any more is reclaimed, as in PyTorch.
 *   Each backend's storage reclaims itself when it becomes unreachable: a
 *   CPU tensor's typed array is ordinary garbage-collected memory, which V8
 *   counts, so the collector runs when it grows; CUDA storage carries a
 *   host-side `ArrayBuffer` of its size over memory nothing reads, so V8
 *   counts device bytes as well, and a `FinalizationRegistry` returns the
 *   block to the caching allocator.
 * - The accounting here learns of a collected tensor from a
 *   `FinalizationRegistry` callback. Callbacks run when the event loop
 *   turns (the `DataLoader` yields to it once per batch), so until then
 *   `memory()` still counts a collected tensor.
 * - `dispose()`, `using` and `tidy()` release storage at once (the CPU
 *   backend recycles the array, CUDA the block): the deterministic path.
 *
 * @module
 */

import * as nodeV8 from "node:v8";
import * as nodeVm from "node:vm";
import { setImmediate } from "node:timers";

/** Live tensors and their bytes on one device. */
export interface DeviceMemory {
  /** Live tensors. */
  tensors: number;
  /** Bytes of storage they hold (views of one storage count once). */
  bytes: number;
}

/** Where live tensors were made, from the largest holder down. */
export interface CreationSite {
  /** `file:line:column` of the kdeno code that made the tensor, and of the
   * caller's code that led there when that is elsewhere. */
  site: string;
  /** Live tensors made there. */
  tensors: number;
  /** Bytes they hold. */
  bytes: number;
}

/** What {@linkcode memory} returns. */
export interface MemoryInfo extends DeviceMemory {
  /** The same counts per device: `cpu` always, `cuda` once it was used. */
  devices: Record<string, DeviceMemory>;
  /**
   * With `KDENO_DEBUG_MEMORY=1`, the creation sites of live tensors, largest
   * first (at most `top` of them); otherwise absent.
   */
  sites?: CreationSite[];
}

/**
 * The shared lifetime of one storage: a tensor and its views. It holds no
 * reference to the storage itself, so a finalization callback that carries
 * it keeps nothing alive.
 */
export interface Lifetime {
  /** Live tensors using the storage. */
  refs: number;
  /** Bytes of the storage. */
  readonly bytes: number;
  /** The device's counters. */
  readonly device: DeviceMemory;
  /** Creation site (debug mode only). */
  readonly site?: string;
}

const total: DeviceMemory = { tensors: 0, bytes: 0 };
const devices = new Map<string, DeviceMemory>();
const sites = new Map<string, DeviceMemory>();

function envFlag(name: string): boolean {
  try {
    return Deno.env.get(name) === "1";
  } catch {
    return false; // no --allow-env
  }
}

/** Whether creation sites are recorded (`KDENO_DEBUG_MEMORY=1`). */
export const DEBUG_MEMORY: boolean = envFlag("KDENO_DEBUG_MEMORY");

/** The counters of a device, made on first use. */
export function deviceCounters(name: string): DeviceMemory {
  let d = devices.get(name);
  if (!d) devices.set(name, d = { tensors: 0, bytes: 0 });
  return d;
}
deviceCounters("cpu"); // always reported

// Frames inside these files are kdeno's plumbing, not a creation site.
const PLUMBING =
  /\/src\/(tensor|memory|autograd)\.ts|\/src\/ops\/|\/src\/backend\/|ext:/;
const OWN = /\/src\//;

function creationSite(): string {
  const stack = new Error().stack?.split("\n").slice(2) ?? [];
  const frames = stack.map((l) => {
    const m = l.match(/\(?((?:file|https?|jsr|npm):[^)\s]+|\/[^)\s]+)\)?$/);
    return m ? m[1].replace(/^file:\/\//, "") : "";
  }).filter((f) => f !== "");
  const site = frames.find((f) => !PLUMBING.test(f)) ?? frames[0] ??
    "unknown";
  const user = frames.find((f) => !OWN.test(f) && !/^ext:/.test(f));
  return user && user !== site ? `${site} <- ${user}` : site;
}

/**
 * Starts the lifetime of a new storage and counts its first tensor.
 *
 * @param device The device's counters.
 * @param bytes The storage's size.
 * @returns The lifetime shared by the tensor and its future views.
 */
export function beginLifetime(device: DeviceMemory, bytes: number): Lifetime {
  total.tensors++;
  total.bytes += bytes;
  device.tensors++;
  device.bytes += bytes;
  if (!DEBUG_MEMORY) return { refs: 1, bytes, device };
  const site = creationSite();
  const s = sites.get(site) ?? { tensors: 0, bytes: 0 };
  s.tensors++;
  s.bytes += bytes;
  sites.set(site, s);
  return { refs: 1, bytes, device, site };
}

/**
 * Counts one more tensor on an existing storage (a view).
 *
 * @param life The storage's lifetime.
 */
export function addView(life: Lifetime): void {
  life.refs++;
  total.tensors++;
  life.device.tensors++;
  if (life.site) sites.get(life.site)!.tensors++;
}

/**
 * Counts one tensor gone (disposed or collected).
 *
 * @param life Its storage's lifetime.
 * @returns True when it was the storage's last tensor.
 */
export function endTensor(life: Lifetime): boolean {
  total.tensors--;
  life.device.tensors--;
  const s = life.site ? sites.get(life.site) : undefined;
  if (s) s.tensors--;
  if (--life.refs > 0) return false;
  total.bytes -= life.bytes;
  life.device.bytes -= life.bytes;
  if (s) {
    s.bytes -= life.bytes;
    if (s.tensors === 0) sites.delete(life.site!);
  }
  return true;
}

function topSites(top: number): CreationSite[] {
  return [...sites].map(([site, m]) => ({ site, ...m }))
    .sort((a, b) => b.bytes - a.bytes || b.tensors - a.tensors)
    .slice(0, top);
}

const MB = 1e6;

/**
 * The creation-site table as text (debug mode), or a hint to turn it on.
 *
 * @param top How many sites.
 * @returns The lines.
 */
export function formatSites(top = 10): string {
  if (!DEBUG_MEMORY) {
    return "  (run with KDENO_DEBUG_MEMORY=1 to record where tensors are made)";
  }
  const rows = topSites(top);
  if (rows.length === 0) return "  (no live tensors)";
  return rows.map((r) =>
    `  ${(r.bytes / MB).toFixed(1).padStart(9)} MB ${
      String(r.tensors).padStart(6)
    } tensor(s)  ${r.site}`
  ).join("\n");
}

/** Options of {@linkcode memory}. */
export interface MemoryOptions {
  /**
   * Print the creation sites holding the most bytes to stderr (needs
   * `KDENO_DEBUG_MEMORY=1` for the sites; prints the totals either way).
   */
  report?: boolean;
  /** How many sites to list (default 10). */
  top?: number;
}

/**
 * Counts live tensors and the bytes of storage they hold, in total and per
 * device, as `torch.cuda.memory_allocated` does for one device. A tensor
 * the garbage collector reclaimed is counted until the event loop next
 * turns (see the README's "Memory" section).
 *
 * With `KDENO_DEBUG_MEMORY=1` in the environment, kdeno records where each
 * tensor was made: `sites` lists the places still holding the most bytes,
 * `memory({ report: true })` prints them, and so does the process at exit.
 *
 * @param options `report` prints the table; `top` sizes it.
 * @returns `{ tensors, bytes, devices, sites? }`.
 *
 * @example Count what a computation leaves behind
 * ```ts
 * import { memory, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const before = memory();
 * using t = tensor([1, 2, 3]);
 * assert.equal(memory().tensors, before.tensors + 1);
 * assert.equal(memory().devices.cpu.bytes, before.devices.cpu.bytes + 12);
 * ```
 */
export function memory(options: MemoryOptions = {}): MemoryInfo {
  const top = options.top ?? 10;
  const info: MemoryInfo = {
    tensors: total.tensors,
    bytes: total.bytes,
    devices: Object.fromEntries(
      [...devices].map(([k, v]) => [k, { ...v }]),
    ),
  };
  if (DEBUG_MEMORY) info.sites = topSites(top);
  if (options.report) console.error(memoryReport(top));
  return info;
}

/**
 * The report `memory({ report: true })` prints.
 *
 * @param top How many creation sites.
 * @returns The text.
 */
export function memoryReport(top = 10): string {
  const per = [...devices].map(([k, v]) =>
    `${k} ${v.tensors} tensor(s) ${(v.bytes / MB).toFixed(1)} MB`
  ).join(", ");
  return `kdeno memory: ${total.tensors} live tensor(s), ${
    (total.bytes / MB).toFixed(1)
  } MB${per ? ` (${per})` : ""}; largest creation sites:\n${formatSites(top)}`;
}

if (DEBUG_MEMORY) {
  globalThis.addEventListener("unload", () => {
    console.error(`At exit, ${memoryReport()}`);
  });
}

let gcFn: (() => void) | null | undefined;

/** V8's collector, when this process can reach it; null otherwise. */
function fullGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === "function") return gcFn = g;
  try {
    // exposes `gc` in contexts made from now on, as `--expose-gc` would
    nodeV8.setFlagsFromString("--expose-gc");
    const f = nodeVm.runInNewContext("gc");
    gcFn = typeof f === "function" ? f : null;
  } catch {
    gcFn = null;
  }
  return gcFn ?? null;
}

/** Resolves on the next turn of the event loop (a few microseconds). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs a full garbage collection and lets the finalization callbacks run, so
 * that `memory()` counts only tensors something still references. For leak
 * checks and tests; ordinary programs never need it.
 *
 * @returns Whether a full collection could be forced (otherwise the event
 * loop only turned).
 *
 * @example Nothing referenced, nothing counted
 * ```ts
 * import { collectGarbage, memory, randn } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * await collectGarbage();
 * const before = memory().tensors;
 * for (let i = 0; i < 100; i++) randn([64, 64]).relu();
 * await collectGarbage();
 * assert.ok(memory().tensors <= before);
 * ```
 */
export async function collectGarbage(): Promise<boolean> {
  await nextTurn(); // WeakRef targets made in this turn stay alive until it ends
  const gc = fullGc();
  gc?.();
  await nextTurn(); // finalization callbacks run
  await nextTurn();
  return gc !== null;
}

/**
 * Watches live tensor memory across epochs and says once when it keeps
 * growing: {@linkcode MemoryWatch.check} after each epoch collects garbage,
 * then compares. Growth in `epochs` consecutive checks, adding up to more
 * than `minBytes`, is a leak: something keeps tensors alive.
 */
export class MemoryWatch {
  readonly #epochs: number;
  readonly #minBytes: number;
  readonly #history: number[] = [];
  #warned = false;

  /**
   * @param options `epochs` in a row that must grow (default 3), and the
   * least total growth over them worth a warning (default 1 MB).
   */
  constructor(options: { epochs?: number; minBytes?: number } = {}) {
    this.#epochs = options.epochs ?? 3;
    this.#minBytes = options.minBytes ?? 1e6;
  }

  /**
   * Records live bytes now (after a collection).
   *
   * @param label What just ended, for the message (e.g. `epoch 4`).
   * @returns The warning text when this check found a leak for the first
   * time, else null.
   */
  async check(label: string): Promise<string | null> {
    await collectGarbage();
    this.#history.push(total.bytes);
    if (this.#warned) return null;
    const h = this.#history.slice(-(this.#epochs + 1));
    if (h.length < this.#epochs + 1) return null;
    for (let i = 1; i < h.length; i++) if (h[i] <= h[i - 1]) return null;
    if (h[h.length - 1] - h[0] < this.#minBytes) return null;
    this.#warned = true;
    return `live tensor memory grew in each of the last ${this.#epochs} ` +
      `epochs, from ${(h[0] / MB).toFixed(1)} MB to ${
        (h[h.length - 1] / MB).toFixed(1)
      } MB at ${label}: something keeps tensors alive (a list of losses or ` +
      `outputs kept across steps? call .item() or .detach() on what you ` +
      `keep). Largest creation sites:\n${formatSites(5)}`;
  }
}
