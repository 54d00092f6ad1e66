/**
 * The gradient reducer behind `DistributedDataParallel` (and the trainer):
 * parameters in buckets, filled in reverse order of registration (roughly
 * the order backward produces gradients), each bucket averaged across ranks
 * as soon as all its gradients are final, the buckets started in index
 * order on every rank and waited for at the end of `backward()`.
 *
 * CPU gradients: each bucket is one `Float32Array`; the gradients are
 * copied in scaled by 1/world, a nonblocking `MPI_Iallreduce` (sum) starts,
 * later gradient-ready hooks call `MPI_Test` on the buckets in flight (Open
 * MPI advances nonblocking collectives only inside MPI calls), and the end
 * of backward waits (with the group's timeout) and copies the averages back
 * into `.grad`. CUDA gradients: each bucket is concatenated on the device
 * and averaged with NCCL (or through the host with MPI) when it is ready.
 *
 * @module
 */

import type { CpuStorage } from "../backend/cpu/backend.ts";
import {
  noGrad,
  queueBackwardCallback,
  registerGradReadyHook,
} from "../autograd.ts";
import { cat } from "../ops/shape.ts";
import { fromStorage, keep, type Tensor } from "../tensor.ts";
import {
  current,
  type Group,
  type Pending,
  startAllReduce,
  test,
  wait,
} from "./_group.ts";
import { allReduce } from "./collectives.ts";
import { DistributedError } from "./errors.ts";

/** Options of {@linkcode GradientReducer}. */
export interface ReducerOptions {
  /** Bucket size in MiB (default 25, as PyTorch). */
  bucketCapMB?: number;
  /** The first bucket's size in MiB (default 1, as PyTorch). */
  firstBucketCapMB?: number;
  /**
   * Parameters that get no gradient in a backward pass are reduced as
   * zeros instead of raising (default false).
   */
  findUnusedParameters?: boolean;
  /** Parameter names, for messages. */
  names?: readonly string[];
}

interface Bucket {
  readonly params: Tensor[];
  readonly offsets: number[];
  readonly numel: number;
  readonly device: string;
  flat: Float32Array | null; // CPU buckets
  ready: number;
  pending: Pending | null;
  launched: boolean;
  deviceFlat: Tensor | null; // CUDA buckets, reduced already
}

/** Averages gradients across ranks during `backward()`, bucket by bucket. */
export class GradientReducer {
  /** Whether the next backward passes reduce (false inside `noSync`). */
  requireSync = true;
  readonly #buckets: Bucket[] = [];
  readonly #bucketOf = new Map<Tensor, number>();
  readonly #names = new Map<Tensor, string>();
  readonly #handles: { remove(): void }[] = [];
  readonly #findUnused: boolean;
  readonly #seen = new Set<Tensor>();
  #active = false;
  #next = 0;
  /** Backward passes reduced, and milliseconds spent starting and waiting. */
  readonly stats = { backwardPasses: 0, launchMs: 0, waitMs: 0 };

  /**
   * Buckets `params` (those requiring gradients) and hooks their gradients.
   *
   * @param params The parameters, in registration order.
   * @param options Bucket sizes and unused-parameter handling.
   */
  constructor(params: readonly Tensor[], options: ReducerOptions = {}) {
    const cap = (options.bucketCapMB ?? 25) * 1024 * 1024;
    const first = (options.firstBucketCapMB ?? 1) * 1024 * 1024;
    if (!(cap > 0) || !(first > 0)) {
      throw new RangeError(
        `DistributedDataParallel: bucketCapMB (${options.bucketCapMB}) and firstBucketCapMB (${options.firstBucketCapMB}) must be positive`,
      );
    }
    this.#findUnused = options.findUnusedParameters ?? false;
    const trainable = params.filter((p) => p.requiresGrad);
    trainable.forEach((p, i) =>
      this.#names.set(p, options.names?.[params.indexOf(p)] ?? `#${i}`)
    );
    // reverse order: the last layers' gradients are ready first
    let cur: Tensor[] = [];
    let bytes = 0;
    const flush = () => {
      if (!cur.length) return;
      const offsets: number[] = [];
      let n = 0;
      for (const p of cur) {
        offsets.push(n);
        n += p.numel();
      }
      this.#buckets.push({
        params: cur,
        offsets,
        numel: n,
        device: cur[0].device,
        flat: null,
        ready: 0,
        pending: null,
        launched: false,
        deviceFlat: null,
      });
      cur = [];
      bytes = 0;
    };
    for (const p of [...trainable].reverse()) {
      if (p.dtype !== "float32") continue;
      if (cur.length && cur[0].device !== p.device) flush();
      cur.push(p);
      bytes += p.numel() * 4;
      if (bytes >= (this.#buckets.length === 0 ? first : cap)) flush();
    }
    flush();
    this.#buckets.forEach((b, i) => {
      for (const p of b.params) this.#bucketOf.set(p, i);
    });
    for (const p of trainable) {
      if (!this.#bucketOf.has(p)) continue;
      this.#handles.push(registerGradReadyHook(p, (leaf) => this.#ready(leaf)));
    }
  }

  /** The number of buckets. */
  get bucketCount(): number {
    return this.#buckets.length;
  }

  /**
   * The parameter count of each bucket, in reduction order.
   *
   * @returns Elements per bucket.
   */
  bucketSizes(): number[] {
    return this.#buckets.map((b) => b.numel);
  }

  /** Unhooks the parameters. */
  remove(): void {
    for (const h of this.#handles) h.remove();
    this.#handles.length = 0;
  }

  #ready(leaf: Tensor): void {
    if (!this.requireSync) return;
    const g = current("DistributedDataParallel backward");
    if (g.worldSize === 1) return;
    if (!this.#active) {
      this.#active = true;
      queueBackwardCallback(() => this.#finish(g));
    }
    if (this.#seen.has(leaf)) return;
    this.#seen.add(leaf);
    const b = this.#buckets[this.#bucketOf.get(leaf)!];
    b.ready++;
    this.#launchReady(g);
    // advance what is in flight (Open MPI has no progress thread)
    for (const other of this.#buckets) {
      if (other.pending && !other.pending.done) test(g, other.pending);
    }
  }

  #launchReady(g: Group): void {
    while (
      this.#next < this.#buckets.length &&
      this.#buckets[this.#next].ready ===
        this.#buckets[this.#next].params.length
    ) {
      this.#launch(g, this.#buckets[this.#next], this.#next);
      this.#next++;
    }
  }

  #launch(g: Group, b: Bucket, index: number): void {
    const t0 = performance.now();
    try {
      this.#start(g, b, index);
    } finally {
      this.stats.launchMs += performance.now() - t0;
    }
  }

  #start(g: Group, b: Bucket, index: number): void {
    b.launched = true;
    const scale = 1 / g.worldSize;
    const what =
      `gradient bucket ${index} (${b.params.length} tensors, ${b.numel} floats)`;
    if (b.device === "cpu") {
      const flat = b.flat ??= new Float32Array(b.numel);
      b.params.forEach((p, k) => {
        const off = b.offsets[k];
        const n = p.numel();
        if (!p.grad) {
          flat.fill(0, off, off + n);
          return;
        }
        const src = (p.grad.storage as CpuStorage).data;
        for (let i = 0; i < n; i++) flat[off + i] = src[i] * scale;
      });
      b.pending = startAllReduce(g, flat, "sum", what);
      return;
    }
    // CUDA: one device buffer per bucket, averaged now
    b.deviceFlat = noGrad(() => {
      const parts = b.params.map((p) =>
        p.grad ? p.grad.reshape([-1]) : p.detach().reshape([-1]).mul(0)
      );
      const flat = cat(parts);
      return allReduce(flat, "avg");
    });
  }

  #finish(g: Group): void {
    this.#active = false;
    const t0 = performance.now();
    this.stats.backwardPasses++;
    try {
      if (this.#next < this.#buckets.length) {
        const missing = this.#buckets.flatMap((b) =>
          b.params.filter((p) => !this.#seen.has(p))
        );
        if (!this.#findUnused) {
          throw new DistributedError(
            `DistributedDataParallel on rank ${g.rank}: ${missing.length} parameter(s) got no gradient in this backward pass (${
              missing.slice(0, 5).map((p) => this.#names.get(p)).join(", ")
            }${
              missing.length > 5 ? ", ..." : ""
            }), so their buckets were never reduced; pass findUnusedParameters: true if some parameters are unused`,
          );
        }
        for (const p of missing) this.#seen.add(p);
        for (const b of this.#buckets) b.ready = b.params.length;
        this.#launchReady(g);
      }
      for (const b of this.#buckets) {
        if (b.device === "cpu") {
          wait(g, b.pending!);
          const flat = b.flat!;
          b.params.forEach((p, k) => {
            const off = b.offsets[k];
            const view = flat.subarray(off, off + p.numel());
            if (!p.grad) {
              p.grad = fromHost(p, view);
              return;
            }
            (p.grad.storage as CpuStorage).data.set(view);
          });
          b.pending = null;
        } else {
          const flat = b.deviceFlat!;
          noGrad(() => {
            b.params.forEach((p, k) => {
              const part = flat.slice(0, b.offsets[k], b.offsets[k] + p.numel())
                .reshape(p.shape);
              if (!p.grad) p.grad = part;
              else {
                p.grad.backend.assign(p.grad.storage, part.storage);
                part.dispose();
              }
            });
          });
          flat.dispose();
          b.deviceFlat = null;
        }
        b.ready = 0;
        b.launched = false;
      }
    } finally {
      this.stats.waitMs += performance.now() - t0;
      this.#next = 0;
      this.#seen.clear();
      for (const b of this.#buckets) b.ready = 0;
    }
  }
}

function fromHost(p: Tensor, values: Float32Array): Tensor {
  const be = p.backend;
  return keep(fromStorage(be, be.upload(Float32Array.from(values)), p.shape));
}
