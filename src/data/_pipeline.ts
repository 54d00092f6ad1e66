/**
 * How one sample is made: read, decode (with a JPEG draft when the first
 * transform is a `Resize`), the cached deterministic prefix, the random rest.
 * The same code runs on the main thread and on Workers, so a seeded sample is
 * the same bytes either way.
 *
 * Worker-safe: no tensor imports.
 *
 * @module
 */

import { readImage } from "./decode.ts";
import { recycleDecoded } from "./_turbojpeg.ts";
import type { ImageLike, RawImage } from "./image.ts";
import {
  fromSpec,
  fuse,
  RecordingGenerator,
  Resize,
  type Transform,
  type TransformSpec,
} from "./transforms.ts";

/** The part of a pipeline that can run on Workers, and what it caches. */
export interface PipelinePlan {
  /** Worker-side transforms, as specs. */
  specs: TransformSpec[];
  /** How many leading specs are deterministic 8-bit steps (their output is cached). */
  cacheAt: number;
  /** JPEG draft margin (decoded size ≥ margin × Resize's output), or 0 for none. */
  draft: number;
  /** The decoder's pixel limit (`Infinity` for none): structured-cloned to Workers. */
  maxImagePixels: number;
}

/**
 * Splits a transform list into the Worker-side head (every transform up to
 * the first one without a spec) and the main-thread tail.
 *
 * @param ts The flattened transforms.
 * @param decoding `draft`, the JPEG draft margin (0: full-size decoding),
 * and `maxImagePixels`, the decoder's pixel limit (`Infinity` for none).
 * @returns The plan and the tail.
 */
export function planPipeline(
  ts: readonly Transform[],
  decoding: { draft: number; maxImagePixels: number },
): { plan: PipelinePlan; head: Transform[]; tail: Transform[] } {
  const specs: TransformSpec[] = [];
  let k = 0;
  for (; k < ts.length; k++) {
    const s = ts[k].spec();
    if (!s) break;
    specs.push(s);
  }
  const head = ts.slice(0, k);
  let cacheAt = 0;
  while (
    cacheAt < head.length && !head[cacheAt].random &&
    !["ToTensor", "Normalize"].includes(specs[cacheAt].name)
  ) cacheAt++;
  const { draft, maxImagePixels } = decoding;
  return {
    plan: { specs, cacheAt, draft, maxImagePixels },
    head,
    tail: ts.slice(k),
  };
}

/** A pipeline ready to run. */
export interface Pipeline {
  /** The head transforms (fused where possible). */
  head: Transform[];
  /** Leading head transforms whose output is cached. */
  cacheAt: number;
  /** JPEG draft for decoding. */
  draft?: (w: number, h: number) => { width: number; height: number };
  /** The decoder's pixel limit (`Infinity` for none). */
  maxImagePixels: number;
}

/**
 * Builds the runnable head of a plan (on a Worker, from specs).
 *
 * @param plan The plan.
 * @param head Already-built transforms (main thread), or rebuilt from specs.
 * @returns The pipeline.
 */
export function buildPipeline(
  plan: PipelinePlan,
  head?: Transform[],
): Pipeline {
  const ts = head ?? plan.specs.map(fromSpec);
  const first = ts[0];
  let draft: Pipeline["draft"];
  if (plan.draft > 0 && first instanceof Resize) {
    draft = (w, h) => {
      const [ow, oh] = first.outputSize(w, h);
      return { width: ow * plan.draft, height: oh * plan.draft };
    };
  }
  // Fusing keeps the cache boundary: it only merges ToTensor + Normalize,
  // which come after it.
  const cached = ts.slice(0, plan.cacheAt);
  return {
    head: [...cached, ...fuse(ts.slice(plan.cacheAt))],
    cacheAt: plan.cacheAt,
    draft,
    maxImagePixels: plan.maxImagePixels,
  };
}

/** One sample to make. */
export interface SampleJob {
  /** The image file. */
  path: string;
  /** The cached output of the deterministic prefix, when there is one. */
  cached?: RawImage;
  /** Seed of this sample's generator. */
  seed: number;
}

/** A made sample. */
export interface SampleResult {
  /** The head's output. */
  out: ImageLike;
  /** The prefix's output, to cache (only when the job had none). */
  cache?: RawImage;
  /** The generator's state after the head, for the main-thread tail. */
  state: number[];
  /**
   * What the head's random transforms drew: their outcomes in order, joined
   * by spaces (`"rrcrop=1,2,20,20 hflip=1"`, `""` without random transforms),
   * or null when a random transform recorded none (it cannot say what it
   * did). See `RecordingGenerator`.
   */
  augmentation: string | null;
}

/**
 * Makes one sample through the head of a pipeline.
 *
 * @param p The pipeline.
 * @param job What to make.
 * @param keepCache Whether to return the prefix output for caching.
 * @returns The result.
 * @throws {DataError} When the file cannot be read or decoded (a
 * `DecompressionBombError` over the plan's pixel limit).
 */
export async function runSample(
  p: Pipeline,
  job: SampleJob,
  keepCache: boolean,
): Promise<SampleResult> {
  const g = new RecordingGenerator(job.seed);
  let x: ImageLike;
  let cache: RawImage | undefined;
  let decoded: RawImage | undefined;
  if (job.cached) x = job.cached;
  else {
    x = decoded = await readImage(job.path, {
      draft: p.draft,
      maxImagePixels: p.maxImagePixels,
    });
    for (let i = 0; i < p.cacheAt; i++) x = p.head[i].apply(x, g);
    if (keepCache) {
      cache = x as RawImage;
      // a decoded image may sit in a larger recycled buffer: cache its bytes
      if (cache.data.byteLength !== cache.data.buffer.byteLength) {
        cache = { ...cache, data: cache.data.slice() };
      }
    }
  }
  let described = true;
  for (let i = p.cacheAt; i < p.head.length; i++) {
    const n = g.outcomes.length;
    x = p.head[i].apply(x, g);
    if (p.head[i].random && g.outcomes.length === n) described = false;
  }
  // The decoded pixels, when nothing kept them (a resize made its own),
  // serve the next decode of this thread.
  if (
    decoded && decoded !== x && decoded !== cache &&
    x.data.buffer !== decoded.data.buffer &&
    cache?.data.buffer !== decoded.data.buffer
  ) recycleDecoded(decoded.data);
  return {
    out: x,
    cache,
    state: g.getState(),
    augmentation: described ? g.outcomes.join(" ") : null,
  };
}
