/**
 * The process group behind `distributed`: Open MPI (always: it launches the
 * ranks, carries host buffers and bootstraps NCCL) and, with the `"nccl"`
 * backend, one NCCL communicator for CUDA tensors.
 *
 * Every MPI collective is issued as its nonblocking form (`MPI_I*`) and then
 * polled with `MPI_Test` until it completes or the group's timeout passes.
 * A timeout means another rank failed or stopped calling collectives: the
 * rank prints what it was waiting for and calls `MPI_Abort`, which ends every
 * rank, instead of hanging (PyTorch's watchdog does the same). An uncaught
 * error on any rank also calls `MPI_Abort` once it is printed.
 *
 * @module
 */

import {
  MPI_MAX_ERROR_STRING,
  MPI_THREAD_MULTIPLE,
  MPI_THREAD_SERIALIZED,
  type MpiLib,
  openMpi,
} from "../../ffi/mpi.ts";
import {
  NCCL_AVG,
  NCCL_FLOAT32,
  NCCL_INT32,
  NCCL_MAX,
  NCCL_MIN,
  NCCL_SUM,
  NCCL_UNIQUE_ID_BYTES,
  type NcclLib,
  openNccl,
} from "../../ffi/nccl.ts";
import { DistributedError } from "./errors.ts";

/** A reduction. */
export type ReduceOp = "sum" | "avg" | "max" | "min";

/** The engine behind the group. */
export type BackendName = "mpi" | "nccl";

type Mpi = MpiLib["symbols"];

/** One outstanding MPI request and the buffers it uses (kept alive). */
export interface Pending {
  /** `MPI_Request`, written by `MPI_I*`. */
  readonly request: BigUint64Array;
  /** What it is, for messages. */
  readonly what: string;
  /** Buffers MPI reads or writes until it completes. */
  readonly keep: unknown[];
  /** Set once `MPI_Test` reported completion. */
  done: boolean;
}

/** The state of an initialised group. */
export interface Group {
  /** The engine for CUDA tensors (`"mpi"`: none). */
  readonly backend: BackendName;
  /** This process's rank. */
  readonly rank: number;
  /** Number of ranks. */
  readonly worldSize: number;
  /** Rank among this job's processes on this machine. */
  readonly localRank: number;
  /** Milliseconds a collective may wait before the job is aborted. */
  readonly timeoutMs: number;
  /** The MPI library's symbols. */
  readonly mpi: Mpi;
  /** The path MPI was loaded from. */
  readonly mpiPath: string;
  /** NCCL, with the `"nccl"` backend. */
  readonly nccl: NcclState | null;
}

/** NCCL's library and communicator. */
export interface NcclState {
  /** The symbols. */
  readonly lib: NcclLib["symbols"];
  /** The path it was loaded from. */
  readonly path: string;
  /** `ncclGetVersion`, e.g. 22707 for 2.27.7. */
  readonly version: number;
  /** The communicator. */
  readonly comm: Deno.PointerValue;
}

let group: Group | null = null;
let finalized = false;
let removeHooks: (() => void) | null = null;

/**
 * The current group, or throws naming the call that needed it.
 *
 * @param what The call.
 * @returns The group.
 */
export function current(what: string): Group {
  if (!group) {
    throw new DistributedError(
      `${what}: the process group is not initialised; call distributed.init() first`,
    );
  }
  return group;
}

/**
 * The current group or null.
 *
 * @returns The group, or null before `init`.
 */
export function maybeGroup(): Group | null {
  return group;
}

function envInt(name: string): number | undefined {
  try {
    const v = Deno.env.get(name);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}

function errorString(mpi: Mpi, code: number): string {
  const buf = new Uint8Array(MPI_MAX_ERROR_STRING + 1);
  const len = new Int32Array(1);
  if (mpi.MPI_Error_string(code, buf, len) !== 0) return `MPI error ${code}`;
  return new TextDecoder().decode(buf.subarray(0, len[0]));
}

/**
 * Throws a `DistributedError` for a nonzero MPI return code.
 *
 * @param g The group (or the raw symbols before one exists).
 * @param rc The return code.
 * @param what The call, for the message.
 */
export function check(g: Group | Mpi, rc: number, what: string): void {
  if (rc === 0) return;
  const mpi = "mpi" in g ? g.mpi : g;
  const rank = "rank" in g ? ` on rank ${g.rank}` : "";
  throw new DistributedError(
    `${what} failed${rank}: ${errorString(mpi, rc)} (MPI error ${rc})`,
  );
}

function world(mpi: Mpi): Deno.PointerValue {
  return mpi.ompi_mpi_comm_world;
}

/**
 * Prints why and ends every rank with `MPI_Abort` (does not return).
 *
 * @param g The group.
 * @param message What happened.
 * @param code The exit code.
 */
export function abortAll(g: Group, message: string, code = 1): never {
  try {
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `kdeno.distributed: rank ${g.rank}/${g.worldSize}: ${message}\n` +
          `kdeno.distributed: rank ${g.rank} is aborting the whole job (MPI_Abort)\n`,
      ),
    );
  } catch {
    // stderr closed: abort anyway
  }
  g.mpi.MPI_Abort(world(g.mpi), code);
  Deno.exit(code); // MPI_Abort does not return; in case it does
}

/**
 * Polls a request with `MPI_Test` until it completes; past the group's
 * timeout the job is aborted with a message naming the collective.
 *
 * @param g The group.
 * @param p The request.
 */
export function wait(g: Group, p: Pending): void {
  if (p.done) return;
  const flag = new Int32Array(1);
  const start = performance.now();
  let spins = 0;
  for (;;) {
    check(g, g.mpi.MPI_Test(p.request, flag, null), `MPI_Test (${p.what})`);
    if (flag[0]) {
      p.done = true;
      return;
    }
    if ((++spins & 255) === 0 && performance.now() - start > g.timeoutMs) {
      abortAll(
        g,
        `${p.what} did not complete within ${
          g.timeoutMs / 1000
        } s: another rank failed, exited or stopped calling collectives ` +
          "(a collective timeout; set init({ timeoutMs }) or KDENO_DIST_TIMEOUT_MS)",
        1,
      );
    }
  }
}

/**
 * Whether a request has completed (one `MPI_Test`, which also advances it).
 *
 * @param g The group.
 * @param p The request.
 * @returns True once complete.
 */
export function test(g: Group, p: Pending): boolean {
  if (p.done) return true;
  const flag = new Int32Array(1);
  check(g, g.mpi.MPI_Test(p.request, flag, null), `MPI_Test (${p.what})`);
  if (flag[0]) p.done = true;
  return p.done;
}

/** A host buffer MPI can reduce. */
export type HostArray = Float32Array | Int32Array | Float64Array;

function mpiType(g: Group, a: HostArray): Deno.PointerValue {
  if (a instanceof Float32Array) return g.mpi.ompi_mpi_float;
  if (a instanceof Float64Array) return g.mpi.ompi_mpi_double;
  return g.mpi.ompi_mpi_int;
}

function mpiOp(g: Group, op: ReduceOp): Deno.PointerValue {
  if (op === "max") return g.mpi.ompi_mpi_op_max;
  if (op === "min") return g.mpi.ompi_mpi_op_min;
  return g.mpi.ompi_mpi_op_sum; // avg: sum, then scaled by the caller
}

const IN_PLACE = Deno.UnsafePointer.create(1n); // MPI_IN_PLACE is ((void *) 1)

/**
 * Starts an in-place allreduce of a host array (`"avg"` is a sum here: the
 * caller scales).
 *
 * @param g The group.
 * @param a The values (every rank passes the same length).
 * @param op The reduction.
 * @param what For messages.
 * @returns The request.
 */
export function startAllReduce(
  g: Group,
  a: HostArray,
  op: ReduceOp,
  what: string,
): Pending {
  const request = new BigUint64Array(1);
  check(
    g,
    g.mpi.MPI_Iallreduce(
      IN_PLACE,
      a,
      a.length,
      mpiType(g, a),
      mpiOp(g, op),
      world(g.mpi),
      request,
    ),
    `MPI_Iallreduce (${what})`,
  );
  return { request, what, keep: [a], done: false };
}

/**
 * Allreduces a host array in place and waits (with the timeout).
 *
 * @param g The group.
 * @param a The values.
 * @param op The reduction; `"avg"` divides by the world size (floats only).
 * @param what For messages.
 */
export function allReduceHost(
  g: Group,
  a: HostArray,
  op: ReduceOp,
  what: string,
): void {
  if (g.worldSize > 1) wait(g, startAllReduce(g, a, op, what));
  if (op === "avg") {
    const s = 1 / g.worldSize;
    for (let i = 0; i < a.length; i++) a[i] *= s;
  }
}

/**
 * Broadcasts a host array from `src` in place and waits.
 *
 * @param g The group.
 * @param a The values (every rank passes the same length).
 * @param src The rank whose values everyone gets.
 * @param what For messages.
 */
export function broadcastHost(
  g: Group,
  a: HostArray | Uint8Array,
  src: number,
  what: string,
): void {
  if (g.worldSize === 1) return;
  const request = new BigUint64Array(1);
  const type = a instanceof Uint8Array ? g.mpi.ompi_mpi_byte : mpiType(g, a);
  check(
    g,
    g.mpi.MPI_Ibcast(a, a.length, type, src, world(g.mpi), request),
    `MPI_Ibcast (${what})`,
  );
  wait(g, { request, what, keep: [a], done: false });
}

/**
 * Gathers every rank's array (same length on every rank) into one, rank by
 * rank, and waits.
 *
 * @param g The group.
 * @param a This rank's values.
 * @param what For messages.
 * @returns The concatenation in rank order.
 */
export function allGatherHost<T extends HostArray>(
  g: Group,
  a: T,
  what: string,
): T {
  const Ctor = a.constructor as { new (n: number): T };
  const out = new Ctor(a.length * g.worldSize);
  if (g.worldSize === 1) {
    out.set(a as never);
    return out;
  }
  const request = new BigUint64Array(1);
  const type = mpiType(g, a);
  check(
    g,
    g.mpi.MPI_Iallgather(
      a,
      a.length,
      type,
      out,
      a.length,
      type,
      world(g.mpi),
      request,
    ),
    `MPI_Iallgather (${what})`,
  );
  wait(g, { request, what, keep: [a, out], done: false });
  return out;
}

/**
 * Waits until every rank reaches the barrier (with the timeout).
 *
 * @param g The group.
 * @param what For messages.
 */
export function barrierHost(g: Group, what = "barrier"): void {
  if (g.worldSize === 1) return;
  const request = new BigUint64Array(1);
  check(
    g,
    g.mpi.MPI_Ibarrier(world(g.mpi), request),
    `MPI_Ibarrier (${what})`,
  );
  wait(g, { request, what, keep: [], done: false });
}

// ---- NCCL ----

function ncclCheck(
  n: NcclState | NcclLib["symbols"],
  rc: number,
  what: string,
) {
  if (rc === 0) return;
  const lib = "lib" in n ? n.lib : n;
  const p = lib.ncclGetErrorString(rc);
  const text = p ? Deno.UnsafePointerView.getCString(p) : `NCCL error ${rc}`;
  throw new DistributedError(`${what} failed: ${text} (ncclResult_t ${rc})`);
}

/**
 * NCCL's data type for a dtype.
 *
 * @param dtype The dtype.
 * @returns The `ncclDataType_t`.
 */
export function ncclType(
  dtype: "float32" | "int32" | "float16" | "bfloat16",
): number {
  if (dtype === "float16") return 6; // ncclFloat16
  if (dtype === "bfloat16") return 9; // ncclBfloat16
  return dtype === "float32" ? NCCL_FLOAT32 : NCCL_INT32;
}

/**
 * NCCL's reduction for an op.
 *
 * @param op The reduction.
 * @returns The `ncclRedOp_t`.
 */
export function ncclOp(op: ReduceOp): number {
  return op === "sum"
    ? NCCL_SUM
    : op === "avg"
    ? NCCL_AVG
    : op === "max"
    ? NCCL_MAX
    : NCCL_MIN;
}

/**
 * Allreduces device memory with NCCL on `stream` (null: the legacy default
 * stream, which orders itself with kdeno's blocking stream).
 *
 * @param n NCCL.
 * @param ptr Device address (in place).
 * @param count Elements.
 * @param dtype `ncclDataType_t`.
 * @param op `ncclRedOp_t`.
 * @param stream The stream.
 */
export function ncclAllReduce(
  n: NcclState,
  ptr: Deno.PointerValue,
  count: number,
  dtype: number,
  op: number,
  stream: Deno.PointerValue = null,
): void {
  ncclCheck(
    n,
    n.lib.ncclAllReduce(ptr, ptr, BigInt(count), dtype, op, n.comm, stream),
    "ncclAllReduce",
  );
  asyncError(n);
}

/**
 * Broadcasts device memory from `root` with NCCL.
 *
 * @param n NCCL.
 * @param ptr Device address (in place).
 * @param count Elements.
 * @param dtype `ncclDataType_t`.
 * @param root The source rank.
 */
export function ncclBroadcast(
  n: NcclState,
  ptr: Deno.PointerValue,
  count: number,
  dtype: number,
  root: number,
): void {
  ncclCheck(
    n,
    n.lib.ncclBroadcast(ptr, ptr, BigInt(count), dtype, root, n.comm, null),
    "ncclBroadcast",
  );
  asyncError(n);
}

/**
 * Gathers `count` elements from every rank into `out` (count × world).
 *
 * @param n NCCL.
 * @param src Device address of this rank's values.
 * @param out Device address of the result.
 * @param count Elements per rank.
 * @param dtype `ncclDataType_t`.
 */
export function ncclAllGather(
  n: NcclState,
  src: Deno.PointerValue,
  out: Deno.PointerValue,
  count: number,
  dtype: number,
): void {
  ncclCheck(
    n,
    n.lib.ncclAllGather(src, out, BigInt(count), dtype, n.comm, null),
    "ncclAllGather",
  );
  asyncError(n);
}

function asyncError(n: NcclState): void {
  const e = new Int32Array(1);
  ncclCheck(n, n.lib.ncclCommGetAsyncError(n.comm, e), "ncclCommGetAsyncError");
  ncclCheck(n, e[0], "NCCL (asynchronous error)");
}

// ---- init / destroy ----

/** Options of {@linkcode initGroup}. */
export interface InitGroupOptions {
  /** `"mpi"` (CPU tensors) or `"nccl"` (CUDA tensors). */
  backend: BackendName;
  /** Collective timeout in milliseconds. */
  timeoutMs: number;
}

function initNccl(g: Omit<Group, "nccl">): NcclState {
  const { lib: opened, path } = openNccl();
  const lib = opened.symbols;
  const v = new Int32Array(1);
  ncclCheck(lib, lib.ncclGetVersion(v), "ncclGetVersion");
  const id = new Uint8Array(NCCL_UNIQUE_ID_BYTES);
  if (g.rank === 0) ncclCheck(lib, lib.ncclGetUniqueId(id), "ncclGetUniqueId");
  broadcastHost(g as Group, id, 0, "the NCCL unique id");
  const comm = new BigUint64Array(1);
  ncclCheck(
    lib,
    lib.ncclCommInitRank(comm, g.worldSize, id, g.rank),
    `ncclCommInitRank (rank ${g.rank} of ${g.worldSize})`,
  );
  return {
    lib,
    path,
    version: v[0],
    comm: Deno.UnsafePointer.create(comm[0]),
  };
}

function installHooks(g: Group): () => void {
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    const err = e.error;
    const text = err instanceof Error
      ? (err.stack ?? err.message)
      : String(err);
    abortAll(g, `uncaught error:\n${text}`, 1);
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    const err = e.reason;
    const text = err instanceof Error
      ? (err.stack ?? err.message)
      : String(err);
    abortAll(g, `uncaught error (promise rejection):\n${text}`, 1);
  };
  const onUnload = () => destroyGroup();
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("unload", onUnload);
  return () => {
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("unload", onUnload);
  };
}

/**
 * Initialises MPI (and NCCL), once per process.
 *
 * @param o The backend and timeout.
 * @returns The group.
 */
export function initGroup(o: InitGroupOptions): Group {
  if (group) {
    throw new DistributedError(
      "distributed.init(): the process group is already initialised; call destroy() first",
    );
  }
  if (finalized) {
    throw new DistributedError(
      "distributed.init(): MPI was finalised by destroy() and cannot be initialised twice in one process",
    );
  }
  let opened: ReturnType<typeof openMpi>;
  try {
    opened = openMpi();
  } catch (e) {
    // one GPU, no mpirun, no Open MPI: a single-rank NCCL group needs no
    // bootstrap (the unique id stays in this process)
    if (o.backend !== "nccl" || envInt("OMPI_COMM_WORLD_SIZE") !== undefined) {
      throw e;
    }
    return initSingleNccl(o);
  }
  const { lib, path } = opened;
  const mpi = lib.symbols;
  const provided = new Int32Array(1);
  check(
    mpi,
    mpi.MPI_Init_thread(null, null, MPI_THREAD_MULTIPLE, provided),
    "MPI_Init_thread",
  );
  if (provided[0] < MPI_THREAD_SERIALIZED) {
    throw new DistributedError(
      `MPI_Init_thread: ${path} provides thread level ${
        provided[0]
      }, kdeno needs MPI_THREAD_SERIALIZED (2) or more`,
    );
  }
  check(
    mpi,
    mpi.MPI_Comm_set_errhandler(world(mpi), mpi.ompi_mpi_errors_return),
    "MPI_Comm_set_errhandler",
  );
  const r = new Int32Array(1), n = new Int32Array(1);
  check(mpi, mpi.MPI_Comm_rank(world(mpi), r), "MPI_Comm_rank");
  check(mpi, mpi.MPI_Comm_size(world(mpi), n), "MPI_Comm_size");
  const base = {
    backend: o.backend,
    rank: r[0],
    worldSize: n[0],
    localRank: envInt("OMPI_COMM_WORLD_LOCAL_RANK") ?? 0,
    timeoutMs: o.timeoutMs,
    mpi,
    mpiPath: path,
  };
  let nccl: NcclState | null = null;
  try {
    if (o.backend === "nccl") nccl = initNccl(base);
  } catch (e) {
    mpi.MPI_Finalize();
    finalized = true;
    throw e;
  }
  group = { ...base, nccl };
  removeHooks = installHooks(group);
  return group;
}

/** Stand-ins for the MPI calls a group of one reaches without Open MPI. */
const NO_MPI = {
  MPI_Abort: (_comm: unknown, code: number) => Deno.exit(code),
  MPI_Finalize: () => 0,
  MPI_Error_string: () => 1,
  ompi_mpi_comm_world: null,
} as unknown as Mpi;

function initSingleNccl(o: InitGroupOptions): Group {
  const base = {
    backend: o.backend,
    rank: 0,
    worldSize: 1,
    localRank: 0,
    timeoutMs: o.timeoutMs,
    mpi: NO_MPI,
    mpiPath: "none (a single-rank NCCL group without Open MPI)",
  };
  group = { ...base, nccl: initNccl(base) };
  removeHooks = installHooks(group);
  return group;
}

/**
 * Destroys the NCCL communicator and finalises MPI (once). Does nothing
 * before `init`.
 */
export function destroyGroup(): void {
  const g = group;
  if (!g) return;
  group = null;
  removeHooks?.();
  removeHooks = null;
  if (g.nccl) g.nccl.lib.ncclCommDestroy(g.nccl.comm);
  g.mpi.MPI_Finalize();
  finalized = true;
}
