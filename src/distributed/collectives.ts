/**
 * The process group and its collectives, as `torch.distributed`: `init`,
 * `rank`, `worldSize`, `allReduce`, `broadcast`, `allGather`, `barrier`,
 * `destroy`.
 *
 * Ranks are launched by Open MPI's `mpirun` (on one machine or, with a
 * hostfile, across machines); a script run without `mpirun` is a world of
 * one. `"mpi"` reduces host buffers with Open MPI (CPU tensors; CUDA tensors
 * are copied through the host); `"nccl"` reduces CUDA tensors with NCCL,
 * whose communicator is bootstrapped over MPI (rank 0's unique id is
 * broadcast). CPU tensors always go through MPI.
 *
 * Collectives are synchronous (PyTorch's default `async_op=False`) and must
 * be called in the same order with the same shapes on every rank. A
 * collective that waits longer than the timeout (default 30 minutes, as
 * PyTorch's) aborts every rank with a message, and an uncaught error on any
 * rank aborts every rank once it is printed, so a failure never leaves the
 * other ranks hanging.
 *
 * @module
 */

import type { CpuStorage } from "../backend/cpu/backend.ts";
import type { CudaStorage } from "../backend/cuda/runtime.ts";
import { DTypeError, ShapeError } from "../errors.ts";
import { fromStorage, type Tensor } from "../tensor.ts";
import {
  allGatherHost,
  allReduceHost,
  type BackendName as GroupBackendName,
  barrierHost,
  broadcastHost,
  current,
  destroyGroup,
  type Group,
  type HostArray,
  initGroup,
  maybeGroup,
  ncclAllGather,
  ncclAllReduce,
  ncclBroadcast,
  ncclOp,
  ncclType,
  type ReduceOp as GroupReduceOp,
} from "./_group.ts";
import { DistributedError } from "./errors.ts";

/** A reduction: `"sum"`, `"avg"` (float32), `"max"` or `"min"`. */
export type ReduceOp = GroupReduceOp;

/** The engine behind the group: `"mpi"` (host buffers) or `"nccl"` (CUDA). */
export type BackendName = GroupBackendName;

/** Options of {@linkcode init}. */
export interface InitOptions {
  /**
   * `"mpi"` (default): Open MPI on host buffers. `"nccl"`: NCCL for CUDA
   * tensors (one GPU per rank), bootstrapped over MPI.
   */
  backend?: BackendName;
  /**
   * How long a collective may wait before the job is aborted, in
   * milliseconds (default `KDENO_DIST_TIMEOUT_MS`, else 1,800,000: 30
   * minutes, PyTorch's default).
   */
  timeoutMs?: number;
}

/** What {@linkcode init} returns. */
export interface GroupInfo {
  /** This process's rank, 0 to `worldSize - 1`. */
  rank: number;
  /** Number of ranks. */
  worldSize: number;
  /** Rank among this job's processes on this machine (picks the GPU). */
  localRank: number;
  /** The backend. */
  backend: BackendName;
  /** Where Open MPI was loaded from. */
  mpiLibrary: string;
  /** Where NCCL was loaded from (`"nccl"` only). */
  ncclLibrary?: string;
  /** `ncclGetVersion`, e.g. 22707 (`"nccl"` only). */
  ncclVersion?: number;
}

const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

function envTimeout(): number | undefined {
  try {
    const v = Deno.env.get("KDENO_DIST_TIMEOUT_MS");
    return v && Number(v) > 0 ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Joins the process group (`torch.distributed.init_process_group`). Under
 * `mpirun -np N` every rank calls it; without `mpirun` it makes a world of
 * one. With `"nccl"`, call it before the first CUDA tensor is made: when
 * several ranks share a machine and `CUDA_VISIBLE_DEVICES` is unset, it sets
 * `CUDA_VISIBLE_DEVICES` to the local rank so that each rank gets its own
 * GPU as device 0.
 *
 * @param options The backend and the collective timeout.
 * @returns The rank, world size and libraries.
 * @throws BackendUnavailableError naming every path tried when Open MPI
 *   (or NCCL) cannot be loaded.
 * @throws DistributedError when already initialised, or when MPI or NCCL
 *   returns an error (with its text).
 *
 * @example A world of one without mpirun
 * ```ts ignore
 * import { distributed } from "@kdeno/kdeno";
 *
 * const { rank, worldSize } = distributed.init();
 * console.log(`rank ${rank} of ${worldSize}`);
 * distributed.destroy();
 * ```
 */
export function init(options: InitOptions = {}): GroupInfo {
  const backend = options.backend ?? "mpi";
  if (backend !== "mpi" && backend !== "nccl") {
    throw new DistributedError(
      `distributed.init(): unknown backend "${backend}" (expected "mpi" or "nccl")`,
    );
  }
  const timeoutMs = options.timeoutMs ?? envTimeout() ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) {
    throw new RangeError(
      `distributed.init(): timeoutMs must be positive, got ${timeoutMs}`,
    );
  }
  if (backend === "nccl") pickGpu();
  const g = initGroup({ backend, timeoutMs });
  return {
    rank: g.rank,
    worldSize: g.worldSize,
    localRank: g.localRank,
    backend: g.backend,
    mpiLibrary: g.mpiPath,
    ncclLibrary: g.nccl?.path,
    ncclVersion: g.nccl?.version,
  };
}

function pickGpu(): void {
  try {
    const local = Deno.env.get("OMPI_COMM_WORLD_LOCAL_RANK");
    const size = Number(Deno.env.get("OMPI_COMM_WORLD_LOCAL_SIZE") ?? "1");
    if (
      local !== undefined && size > 1 && !Deno.env.has("CUDA_VISIBLE_DEVICES")
    ) {
      Deno.env.set("CUDA_VISIBLE_DEVICES", local);
    }
  } catch {
    // no --allow-env: the user picks the device
  }
}

/**
 * Whether {@linkcode init} was called (and {@linkcode destroy} not yet).
 *
 * @returns True inside a process group.
 */
export function isInitialized(): boolean {
  return maybeGroup() !== null;
}

/**
 * This process's rank (0 without a group, as a world of one).
 *
 * @returns The rank.
 */
export function rank(): number {
  return maybeGroup()?.rank ?? 0;
}

/**
 * The number of ranks (1 without a group).
 *
 * @returns The world size.
 */
export function worldSize(): number {
  return maybeGroup()?.worldSize ?? 1;
}

/**
 * The rank among this job's processes on this machine (0 without a group).
 *
 * @returns The local rank.
 */
export function localRank(): number {
  return maybeGroup()?.localRank ?? 0;
}

/**
 * Whether this process is rank 0 (or there is no group): the one that
 * prints progress and writes checkpoints, results and reports.
 *
 * @returns True on rank 0 or without a group.
 */
export function isMainRank(): boolean {
  return rank() === 0;
}

/**
 * The current backend, or null without a group.
 *
 * @returns `"mpi"`, `"nccl"` or null.
 */
export function backend(): BackendName | null {
  return maybeGroup()?.backend ?? null;
}

function checkDtype(t: Tensor, op: ReduceOp, what: string): void {
  if (t.dtype !== "float32" && t.dtype !== "int32") {
    throw new DTypeError(
      `${what}: unsupported dtype ${t.dtype} (float32 or int32)`,
    );
  }
  if (op === "avg" && t.dtype !== "float32") {
    throw new DTypeError(
      `${what}: op "avg" needs a float32 tensor, got ${t.dtype} of shape [${
        t.shape.join(", ")
      }] (use "sum" and divide)`,
    );
  }
  if (!["sum", "avg", "max", "min"].includes(op)) {
    throw new DistributedError(
      `${what}: unknown op "${op}" (sum, avg, max or min)`,
    );
  }
}

function debugShapes(g: Group, t: Tensor, what: string): void {
  let on = false;
  try {
    on = Deno.env.get("KDENO_DIST_DEBUG") === "1";
  } catch {
    return;
  }
  if (!on || g.worldSize === 1) return;
  const mine = new Int32Array(9).fill(-1);
  mine[0] = t.dtype === "float32" ? 0 : 1;
  t.shape.slice(0, 8).forEach((d, i) => mine[i + 1] = d);
  const all = allGatherHost(g, mine, `${what} (shape check)`);
  const desc = (k: number) => {
    const row = all.subarray(k * 9, k * 9 + 9);
    const dims = [...row.subarray(1)].filter((d) => d >= 0);
    return `${row[0] === 0 ? "float32" : "int32"} [${dims.join(", ")}]`;
  };
  for (let k = 1; k < g.worldSize; k++) {
    if (desc(k) !== desc(0)) {
      throw new ShapeError(
        `${what}: ranks disagree: rank 0 has ${desc(0)}, rank ${k} has ${
          desc(k)
        }`,
      );
    }
  }
}

/** The host array behind a CPU tensor (shared, not copied). */
function hostView(t: Tensor): HostArray | null {
  if (t.device !== "cpu") return null;
  return (t.storage as CpuStorage).data as HostArray;
}

function writeBack(t: Tensor, host: HostArray): void {
  const be = t.backend;
  const s = be.upload(host as Float32Array | Int32Array);
  be.assign(t.storage, s);
  be.free(s);
}

function devicePointer(t: Tensor): Deno.PointerValue {
  return (t.storage as CudaStorage).pointer;
}

/**
 * Reduces `t` across ranks, in place, and returns it (`all_reduce`).
 *
 * @param t The tensor (same shape and dtype on every rank).
 * @param op `"sum"` (default), `"avg"` (float32), `"max"` or `"min"`.
 * @returns `t`, holding the result on every rank.
 * @throws DistributedError before `init` or when the engine fails.
 * @throws DTypeError for `"avg"` on int32.
 */
export function allReduce(t: Tensor, op: ReduceOp = "sum"): Tensor {
  const what = `allReduce(${op}) of [${t.shape.join(", ")}]`;
  const g = current("allReduce");
  checkDtype(t, op, what);
  debugShapes(g, t, what);
  if (t.device === "cuda" && g.nccl) {
    // also with one rank: the whole NCCL path runs (a single-GPU check)
    ncclAllReduce(
      g.nccl,
      devicePointer(t),
      t.numel(),
      ncclType(t.dtype),
      ncclOp(op),
    );
    return t;
  }
  const view = hostView(t);
  const host = view ?? (t.data() as HostArray);
  allReduceHost(g, host, op, what);
  if (!view) writeBack(t, host);
  return t;
}

/**
 * Copies rank `src`'s values of `t` into `t` on every rank (`broadcast`).
 *
 * @param t The tensor (same shape and dtype on every rank).
 * @param src The source rank (default 0).
 * @returns `t`.
 * @throws DistributedError before `init`, for a bad `src`, or when the
 *   engine fails.
 */
export function broadcast(t: Tensor, src = 0): Tensor {
  const what = `broadcast from rank ${src} of [${t.shape.join(", ")}]`;
  const g = current("broadcast");
  if (!Number.isInteger(src) || src < 0 || src >= g.worldSize) {
    throw new DistributedError(
      `${what}: src must be a rank in 0..${g.worldSize - 1}`,
    );
  }
  checkDtype(t, "sum", what);
  debugShapes(g, t, what);
  if (t.device === "cuda" && g.nccl) {
    ncclBroadcast(g.nccl, devicePointer(t), t.numel(), ncclType(t.dtype), src);
    return t;
  }
  if (g.worldSize === 1) return t;
  const view = hostView(t);
  const host = view ?? (t.data() as HostArray);
  broadcastHost(g, host, src, what);
  if (!view) writeBack(t, host);
  return t;
}

/**
 * Gathers `t` from every rank (`all_gather_into_tensor`, stacked).
 *
 * @param t This rank's tensor (same shape and dtype on every rank).
 * @returns A new tensor `[worldSize, ...t.shape]` on `t`'s device; row `k`
 *   is rank `k`'s tensor.
 * @throws DistributedError before `init` or when the engine fails.
 */
export function allGather(t: Tensor): Tensor {
  const what = `allGather of [${t.shape.join(", ")}]`;
  const g = current("allGather");
  checkDtype(t, "sum", what);
  debugShapes(g, t, what);
  const be = t.backend;
  const shape = [g.worldSize, ...t.shape];
  if (t.device === "cuda" && g.nccl) {
    const out = be.zeros(t.dtype, t.numel() * g.worldSize);
    ncclAllGather(
      g.nccl,
      devicePointer(t),
      (out as CudaStorage).pointer,
      t.numel(),
      ncclType(t.dtype),
    );
    return fromStorage(be, out, shape);
  }
  const host = hostView(t) ?? (t.data() as HostArray);
  const all = allGatherHost(g, host, what);
  return fromStorage(be, be.upload(all as Float32Array | Int32Array), shape);
}

/**
 * Waits until every rank reaches it (`barrier`).
 *
 * @throws DistributedError before `init`.
 */
export function barrier(): void {
  barrierHost(current("barrier"));
}

/**
 * Leaves the process group: destroys the NCCL communicator and finalises
 * MPI (`destroy_process_group`). Called automatically when the process
 * ends normally. MPI cannot be initialised again in the same process.
 */
export function destroy(): void {
  destroyGroup();
}

/**
 * Reduces plain numbers across ranks (float64 sums), for metrics: every
 * rank passes the same number of values. Without a group it returns a copy.
 *
 * @param values This rank's values.
 * @param op The reduction (default `"sum"`).
 * @returns The reduced values.
 */
export function allReduceNumbers(
  values: readonly number[],
  op: ReduceOp = "sum",
): number[] {
  const g = maybeGroup();
  const a = Float64Array.from(values);
  if (g && g.worldSize > 1) allReduceHost(g, a, op, `allReduceNumbers(${op})`);
  return [...a];
}
