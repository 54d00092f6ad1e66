/**
 * A fixed set of decode Workers, each taking whole batches (as PyTorch's
 * DataLoader workers do), answered by id.
 *
 * A batch in which a sample failed with anything but a `DataError` (a bad
 * image, which the loader may skip) is rejected with that error rebuilt as
 * its typed class, e.g. the `BackendUnavailableError` of codecs that cannot
 * load without `--allow-env`.
 *
 * @module
 */

import {
  BackendUnavailableError,
  CheckpointError,
  DataError,
  DecompressionBombError,
  DTypeError,
  ShapeError,
  TensorStateError,
} from "../errors.ts";
import type { PipelinePlan, SampleJob } from "./_pipeline.ts";
import { showNotice } from "./_notices.ts";
import type { Packed, WorkerRequest, WorkerResult } from "./decode_worker.ts";

/** A worker's answer for one batch. */
export interface BatchReply {
  /** One result per job. */
  results: WorkerResult[];
  /** The successful outputs packed into one buffer, when asked and possible. */
  packed?: Packed;
}

const TYPED: Record<string, new (message: string) => Error> = {
  CheckpointError,
  DataError,
  DecompressionBombError,
  DTypeError,
  ShapeError,
  TensorStateError,
  RangeError,
  TypeError,
};

/**
 * Rebuilds the error a Worker reported, as its class (only its name and
 * message cross `postMessage`).
 *
 * @param r The failed result.
 * @returns The typed error; a plain `Error` with the name for other classes.
 */
export function reviveError(r: { name: string; message: string }): Error {
  if (r.name === "BackendUnavailableError") {
    const e = new BackendUnavailableError("", []);
    e.message = r.message;
    return e;
  }
  const T = Object.hasOwn(TYPED, r.name) ? TYPED[r.name] : undefined;
  if (T) return new T(r.message);
  const e = new Error(r.message);
  e.name = r.name;
  return e;
}

interface Pending {
  resolve: (r: BatchReply) => void;
  reject: (e: Error) => void;
}

/** Workers running one pipeline plan. */
export class WorkerPool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;

  /**
   * Starts the workers and sends them the plan.
   *
   * @param size Number of workers.
   * @param plan The Worker-side pipeline.
   */
  constructor(readonly size: number, plan: PipelinePlan) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(
        new URL("./decode_worker.ts", import.meta.url).href,
        { type: "module" },
      );
      w.onmessage = (e: MessageEvent) => {
        const { id, results, packed, notices } = e.data as BatchReply & {
          id: number;
          notices?: string[];
        };
        for (const n of notices ?? []) showNotice(n);
        const p = this.#pending.get(id);
        this.#pending.delete(id);
        const fatal = results.find((r) => !r.ok && !r.dataError);
        if (fatal && !fatal.ok) p?.reject(reviveError(fatal));
        else p?.resolve({ results, packed });
      };
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#failAll(
          new Error(`DataLoader worker ${i} failed: ${e.message}`),
        );
      };
      w.postMessage({ type: "init", plan } satisfies WorkerRequest);
      this.#workers.push(w);
    }
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.close();
  }

  /**
   * Sends a batch to worker `worker`.
   *
   * @param worker Which worker (taken modulo the pool size).
   * @param jobs The samples.
   * @param keepCache Whether to send back the cacheable prefix outputs.
   * @param pack Whether to pack the outputs into one buffer.
   * @returns The results, in job order.
   */
  run(
    worker: number,
    jobs: SampleJob[],
    keepCache: boolean,
    pack: boolean,
  ): Promise<BatchReply> {
    if (this.#closed) {
      return Promise.reject(new Error("DataLoader workers are closed"));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#workers[worker % this.size].postMessage(
        { type: "batch", id, jobs, keepCache, pack } satisfies WorkerRequest,
      );
    });
  }

  /** Terminates the workers; pending batches are rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    for (const p of this.#pending.values()) {
      p.reject(new Error("DataLoader workers were closed"));
    }
    this.#pending.clear();
  }
}
