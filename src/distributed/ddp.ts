/**
 * `DistributedDataParallel`, as PyTorch's: one replica of the model per
 * rank, gradients averaged across ranks during `backward()`.
 *
 * @module
 */

import { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor.ts";
import { current } from "./_group.ts";
import { GradientReducer } from "./_reducer.ts";
import { broadcast } from "./collectives.ts";

/** Options of {@linkcode DistributedDataParallel}. */
export interface DistributedDataParallelOptions {
  /** Gradient bucket size in MiB (default 25, PyTorch's `bucket_cap_mb`). */
  bucketCapMB?: number;
  /** The first (smallest) bucket's size in MiB (default 1). */
  firstBucketCapMB?: number;
  /**
   * Broadcast rank 0's buffers (BatchNorm running statistics) to every rank
   * before each training forward (default true, PyTorch's
   * `broadcast_buffers`).
   */
  broadcastBuffers?: boolean;
  /**
   * Reduce parameters that got no gradient as zeros instead of raising
   * (default false, PyTorch's `find_unused_parameters`).
   */
  findUnusedParameters?: boolean;
}

/**
 * Wraps a module for data-parallel training. At construction rank 0's
 * parameters and buffers are broadcast to every rank, so all replicas
 * start equal. During every `backward()` the gradients are averaged across
 * ranks in buckets (25 MiB, the first 1 MiB, filled in reverse parameter
 * order), each bucket's reduction starting as soon as all its gradients are
 * final while the rest of the backward pass runs, and all of them finished
 * before `backward()` returns: after it, every rank holds the same averaged
 * `.grad` and the optimizer steps as usual. `call(x)` is the wrapped
 * module's `call(x)`. N ranks with batch B each then train like one
 * process with batch N·B and a mean-reduced loss.
 *
 * The wrapped module is `module` (its state-dict keys get the `module.`
 * prefix, as in PyTorch); save `ddp.module.stateDict()` for checkpoints that
 * load without the wrapper.
 *
 * @example Two ranks, one step
 * ```ts ignore
 * import { distributed, nn, optim, tensor } from "@kdeno/kdeno";
 *
 * distributed.init(); // mpirun -np 2 deno run -A train.ts
 * const net = new distributed.DistributedDataParallel(new nn.Linear(4, 2));
 * const opt = new optim.SGD(net.parameters(), { lr: 0.1 });
 * const x = tensor([[1, 2, 3, 4]]);
 * net.call(x).sum().backward(); // gradients averaged across ranks here
 * opt.step();
 * ```
 */
export class DistributedDataParallel extends Module {
  /** The wrapped module. */
  readonly module: Module;
  /** Whether buffers are broadcast from rank 0 before each forward. */
  readonly broadcastBuffers: boolean;
  readonly #reducer: GradientReducer;

  /**
   * Wraps `module` and makes every rank's copy equal to rank 0's.
   *
   * @param module The model (on this rank's device).
   * @param options Bucket sizes, buffer broadcast, unused parameters.
   * @throws DistributedError before `distributed.init()`.
   */
  constructor(module: Module, options: DistributedDataParallelOptions = {}) {
    super();
    current("DistributedDataParallel");
    this.module = module;
    this.broadcastBuffers = options.broadcastBuffers ?? true;
    syncModule(module, true);
    const named = module.namedParameters();
    this.#reducer = new GradientReducer(named.map(([, p]) => p), {
      bucketCapMB: options.bucketCapMB,
      firstBucketCapMB: options.firstBucketCapMB,
      findUnusedParameters: options.findUnusedParameters,
      names: named.map(([n]) => n),
    });
    this.training = module.training;
  }

  /** The number of gradient buckets. */
  get bucketCount(): number {
    return this.#reducer.bucketCount;
  }

  /**
   * Runs the wrapped module (`module.call(x)`), after broadcasting rank 0's
   * buffers in training mode when `broadcastBuffers` is on.
   *
   * @param x Input.
   * @returns The wrapped module's output.
   */
  override forward(x: Tensor): Tensor {
    if (this.training && this.broadcastBuffers) syncModule(this.module, false);
    return this.module.call(x);
  }

  /**
   * Runs `fn` without averaging gradients (PyTorch's `no_sync`): backward
   * passes inside only accumulate into `.grad`; the first backward pass
   * after it averages the accumulated gradients. `fn` may be async; the
   * synchronisation stays off until its promise settles.
   *
   * @param fn The work (forward and backward passes to accumulate).
   * @returns What `fn` returned.
   */
  noSync<T>(fn: () => T): T {
    const prev = this.#reducer.requireSync;
    this.#reducer.requireSync = false;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.#reducer.requireSync = prev;
      throw e;
    }
    if (result instanceof Promise) {
      return result.finally(() => {
        this.#reducer.requireSync = prev;
      }) as T;
    }
    this.#reducer.requireSync = prev;
    return result;
  }

  /**
   * Communication counters since construction: backward passes whose
   * gradients were averaged, milliseconds spent copying gradients into
   * buckets and starting their reductions (during backward), and
   * milliseconds spent at the end of backward waiting for the reductions
   * and copying the averages back (the exposed communication time).
   *
   * @returns The counters.
   */
  commStats(): { backwardPasses: number; launchMs: number; waitMs: number } {
    return { ...this.#reducer.stats };
  }

  /** Unhooks the gradients; the wrapped module is left as it is. */
  detachHooks(): void {
    this.#reducer.remove();
  }
}

/** Broadcasts rank 0's parameters (when `params`) and buffers to every rank. */
function syncModule(m: Module, params: boolean): void {
  const g = current("broadcast of parameters");
  if (g.worldSize === 1) return;
  const tensors = [...(params ? m.parameters() : []), ...m.buffers()];
  for (const t of tensors) broadcast(t, 0);
}
