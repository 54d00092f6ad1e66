/**
 * The loader's side of an `ImageFolder`: its pipeline, cache and skip list,
 * reached without making them public members.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { Generator } from "../random.ts";
import type { FloatImage, RawImage } from "./image.ts";
import {
  type Pipeline,
  type PipelinePlan,
  runSample,
  type SampleResult,
} from "./_pipeline.ts";
import { asFloatImage, type Transform } from "./transforms.ts";

/** What these functions read of an `ImageFolder`. */
export interface FolderLike {
  /** `[path, label]` per sample. */
  readonly samples: readonly (readonly [string, number])[];
  /** The label transform. */
  readonly targetTransform?: (target: number) => number;
  /** What happens to bad images. */
  readonly onError: "raise" | "skip";
}

/** Each `ImageFolder`'s internals, registered by its constructor. */
export const folderInternals: WeakMap<object, FolderInternals> = new WeakMap();

function internalsOf(f: FolderLike): FolderInternals {
  const i = folderInternals.get(f);
  if (!i) throw new TypeError("Not an ImageFolder");
  return i;
}

/** What an `ImageFolder` keeps for its loader. */
export interface FolderInternals {
  plan: PipelinePlan;
  pipeline: Pipeline;
  tail: Transform[];
  cache?: Map<number, RawImage>;
  bad: Map<number, string>;
  skip(index: number, reason: string): void;
}

/**
 * The label of one sample, without loading its image.
 *
 * @param f An image folder.
 * @param index A sample index.
 * @returns The sample's label after `targetTransform`.
 */
export function label(f: FolderLike, index: number): number {
  const t = f.samples[index][1];
  return f.targetTransform ? f.targetTransform(t) : t;
}

/** The loader's view of an image folder. */
export interface FolderAccess {
  /** The Worker-side plan. */
  plan: PipelinePlan;
  /** Cached prefix output of a sample, if any. */
  cached(index: number): RawImage | undefined;
  /** Whether the folder caches. */
  caching: boolean;
  /** Whether head outputs are final (no main-thread tail), so Workers may pack them. */
  packable: boolean;
  /** Stores a prefix output. */
  store(index: number, img: RawImage): void;
  /** The reason a sample failed before, if it did. */
  bad(index: number): string | undefined;
  /** Records a failure (skip mode). */
  skip(index: number, reason: string): void;
  /** Finishes a head result on the main thread: tail transforms, to float. */
  finish(r: Omit<SampleResult, "cache">): FloatImage;
}

/**
 * The internals of an `ImageFolder` that `DataLoader` uses.
 *
 * @param f An image folder.
 * @returns Access to its pipeline, cache and skip list for `DataLoader`.
 */
export function folderAccess(f: FolderLike): FolderAccess {
  const i = internalsOf(f);
  return {
    plan: i.plan,
    cached: (k) => i.cache?.get(k),
    caching: i.cache !== undefined,
    packable: i.tail.length === 0,
    store: (k, img) => i.cache?.set(k, img),
    bad: (k) => i.bad.get(k),
    skip: i.skip,
    finish: (r) => {
      let x = r.out;
      if (i.tail.length) {
        const g = new Generator(0);
        g.setState(r.state);
        for (const t of i.tail) x = t.apply(x, g);
      }
      return asFloatImage(x);
    },
  };
}

/**
 * Makes one sample on the main thread, through the cache, exactly as a
 * Worker would.
 *
 * @param f The folder.
 * @param index The sample.
 * @param seed The sample's generator seed.
 * @returns The float image.
 * @throws {DataError} When the image cannot be read or decoded (recorded
 * under `onError: "skip"`).
 */
export async function loadMainThread(
  f: FolderLike,
  index: number,
  seed: number,
): Promise<FloatImage> {
  const i = internalsOf(f);
  const a = folderAccess(f);
  const path = f.samples[index][0];
  const known = i.bad.get(index);
  if (known !== undefined) throw new DataError(known);
  let r: SampleResult;
  try {
    r = await runSample(
      i.pipeline,
      { path, cached: i.cache?.get(index), seed },
      i.cache !== undefined,
    );
  } catch (e) {
    if (e instanceof DataError && f.onError === "skip") {
      i.skip(index, e.message);
    }
    throw e;
  }
  if (r.cache) i.cache?.set(index, r.cache);
  return a.finish(r);
}
