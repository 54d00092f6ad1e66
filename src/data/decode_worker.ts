/**
 * The `DataLoader`'s Worker: reads, decodes and transforms whole batches
 * with the Worker-side head of the dataset's pipeline, and sends the pixels
 * back as transferred `ArrayBuffer`s. It imports no tensor code.
 *
 * Messages in: `{ type: "init", plan }`, then `{ type: "batch", id, jobs,
 * keepCache }`. Out: `{ type: "batch", id, results }`, each result either
 * `{ ok: true, out, cache?, state, augmentation }` or `{ ok: false, name, message,
 * dataError }`: an error's class does not survive `postMessage`, so its
 * `name` goes along and the pool rebuilds the typed error from it.
 *
 * The plan carries the folder's `maxImagePixels`, so the Workers refuse the
 * same images as the main thread. A codec that cannot load (e.g. without
 * `--allow-env`) fails each sample with a `BackendUnavailableError` naming
 * the permission, rather than the Worker itself.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { jpegDecoder, loadCodecs } from "./decode.ts";
import { takeNotices } from "./_notices.ts";
import type { FloatImage, ImageLike, RawImage } from "./image.ts";
import { isFloatImage } from "./_image_util.ts";
import {
  buildPipeline,
  type Pipeline,
  type PipelinePlan,
  runSample,
  type SampleJob,
} from "./_pipeline.ts";

/** A message to the worker. */
export type WorkerRequest =
  | { type: "init"; plan: PipelinePlan }
  | {
    type: "batch";
    id: number;
    jobs: SampleJob[];
    keepCache: boolean;
    /** Pack same-shaped float outputs into one batch buffer. */
    pack: boolean;
  };

/** The successful outputs of a batch in one `[B, C, H, W]` buffer. */
export interface Packed {
  /** `B * C * H * W` values, B = the successful jobs, in order. */
  data: Float32Array;
  /** `[C, H, W]`. */
  shape: [number, number, number];
}

/** One sample's outcome, as sent back. */
export type WorkerResult =
  | {
    ok: true;
    /** The output; absent when it went into the packed buffer. */
    out?: ImageLike;
    cache?: RawImage;
    state: number[];
    /** What the random transforms drew (see `SampleResult`). */
    augmentation: string | null;
  }
  | {
    ok: false;
    /** The error's class name, e.g. `"DecompressionBombError"`. */
    name: string;
    message: string;
    /** Whether it is a `DataError` (a bad image: skippable). */
    dataError: boolean;
  };

let pipeline: Pipeline | undefined;

// The worker's global scope, typed here rather than with a triple-slash
// `deno.worker` lib reference (which JSR does not allow in a package).
const scope = self as unknown as {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: unknown, transfer: Transferable[]): void;
};

scope.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const msg = e.data;
  if (msg.type === "init") {
    pipeline = buildPipeline(msg.plan);
    // Early, off the first batch; a failure resurfaces, typed, per sample.
    // With TurboJPEG the WebAssembly codecs wait for the first PNG or GIF
    // (a JPEG data set never needs them, and each Worker start pays for them).
    let turbo = false;
    try {
      turbo = jpegDecoder() === "turbojpeg";
    } catch { /* KDENO_TURBOJPEG names a missing library: typed per sample */ }
    if (!turbo) await loadCodecs().catch(() => {});
    return;
  }
  const results: WorkerResult[] = [];
  const outs: ImageLike[] = [];
  for (const job of msg.jobs) {
    try {
      const r = await runSample(pipeline!, job, msg.keepCache);
      results.push({ ok: true, ...r });
      outs.push(r.out);
    } catch (err) {
      results.push({
        ok: false,
        name: err instanceof Error ? err.name : "Error",
        message: err instanceof Error ? err.message : String(err),
        dataError: err instanceof DataError,
      });
    }
  }
  const transfer = new Set<ArrayBuffer>();
  let packed: Packed | undefined;
  if (msg.pack && outs.length > 0 && outs.every(isFloatImage)) {
    const f = outs as FloatImage[];
    const { channels: c, height: h, width: w } = f[0];
    if (f.every((o) => o.channels === c && o.height === h && o.width === w)) {
      const data = new Float32Array(f.length * c * h * w);
      f.forEach((o, k) => data.set(o.data, k * c * h * w));
      packed = { data, shape: [c, h, w] };
      for (const r of results) if (r.ok) delete r.out;
      transfer.add(data.buffer);
    }
  }
  for (const r of results) {
    if (!r.ok) continue;
    if (r.out) transfer.add(r.out.data.buffer as ArrayBuffer);
    if (r.cache) transfer.add(r.cache.data.buffer as ArrayBuffer);
  }
  // A Set: a buffer shared by an output and its cache entry goes once.
  // One-line notices (e.g. JPEGs falling back to imagescript) go to the
  // main thread, which prints each once per process.
  const notices = takeNotices();
  scope.postMessage({ type: "batch", id: msg.id, results, packed, notices }, [
    ...transfer,
  ]);
};
