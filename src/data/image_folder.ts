/**
 * `ImageFolder`: a folder per class of image files, read as
 * `torchvision.datasets.ImageFolder` reads it, and `imageFolderSplits` for the
 * usual `train/`, `val/`, `test/` layout.
 *
 * @module
 */

import { join } from "node:path";
import { DataError } from "../errors.ts";
import {
  type FolderInternals,
  folderInternals,
  label,
  loadMainThread,
} from "./_folder_access.ts";
import { type Generator, globalGenerator } from "../random.ts";
import { tensor } from "../ops/creation.ts";
import type { Tensor } from "../tensor.ts";
import type { Dataset } from "./dataset.ts";
import { checkIndex } from "./_check.ts";
import { IMAGE_EXTENSIONS, readImage } from "./decode.ts";
import { resolveMaxImagePixels } from "./_limits.ts";
import type { RawImage } from "./image.ts";
import { buildPipeline, planPipeline } from "./_pipeline.ts";
import {
  flattenTransforms,
  type Transform,
  type TransformLike,
} from "./transforms.ts";

/** What to do with an image that cannot be read or decoded. */
export type OnError = "raise" | "skip";

/** A file that was skipped under `onError: "skip"`. */
export interface SkippedFile {
  /** The sample's index in the dataset. */
  index: number;
  /** The file. */
  path: string;
  /** Why (the `DataError` message). */
  reason: string;
}

/** Options of {@linkcode ImageFolder}. */
export interface ImageFolderOptions {
  /**
   * Transform of each image (a `Compose`, one transform, a list, or a
   * function). Without one, `get` returns `ToTensor()` of the image.
   */
  transform?: TransformLike | readonly TransformLike[];
  /** Transform of each label. */
  targetTransform?: (target: number) => number;
  /**
   * File extensions to load, case-insensitive, with or without the dot
   * (default: jpg, jpeg, jpe, jfif, png, gif: what imagescript decodes).
   * Files with other extensions are ignored, as in torchvision.
   */
  extensions?: readonly string[];
  /**
   * `"raise"` (default): a bad image throws a `DataError` naming it.
   * `"skip"`: a `DataLoader` drops it from its batch, counts it and reports
   * it at the end of the epoch; the dataset lists it in `skipped`.
   */
  onError?: OnError;
  /**
   * Keep each image's output of the deterministic leading transforms (e.g.
   * decoded and resized to 224×224) in memory, so later epochs only run the
   * random ones. Costs `H × W` bytes per gray image, `3 × H × W` per colour
   * one.
   */
  cache?: boolean;
  /**
   * JPEG draft, as PIL's `Image.draft` (torchvision does not use it): when
   * the first transform is a `Resize`, a JPEG is decoded at 1/2, 1/4 or 1/8
   * scale in the DCT domain (much faster for X-ray-sized files) as long as
   * it stays at least `draft` times the resize's output on both sides.
   * `0` (default) decodes at full size: the output is PIL + torchvision's,
   * within 1/255 (JPEG decoder rounding). `2` was measured at 1.5-2x the
   * speed on 1300-2400 px X-ray-like JPEGs, off by at most 4/255 (mean
   * 0.3/255) from torchvision; `1` is faster still, off by up to 8/255.
   */
  draft?: number;
  /** Accept class folders with no images (default false: a `DataError`). */
  allowEmpty?: boolean;
  /**
   * The most pixels an image (or a GIF's first frame) may declare, checked
   * from its header before decoding: a larger one is a decompression bomb
   * and gives a `DecompressionBombError` (a `DataError`: skipped and counted
   * under `onError: "skip"`). Default 89,478,485 (`MAX_IMAGE_PIXELS`,
   * Pillow's); `null` or `Infinity` lifts it, for trusted files. Workers
   * get the folder's limit.
   */
  maxImagePixels?: number | null;
}

/** Folder names that are never classes (and never walked into). */
const JUNK_DIRS = new Set([
  "__MACOSX",
  "@eaDir",
  "$RECYCLE.BIN",
  "System Volume Information",
  "lost+found",
]);

function isJunk(name: string): boolean {
  return name.startsWith(".") || JUNK_DIRS.has(name);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * What an entry is, a symbolic link followed: a regular file, a folder, or
 * neither (a FIFO, socket or device, a broken or looping link), ignored.
 */
function kind(path: string, entry: Deno.DirEntry): "file" | "dir" | undefined {
  if (entry.isFile) return "file";
  if (entry.isDirectory) return "dir";
  if (!entry.isSymlink) return undefined;
  try {
    const st = Deno.statSync(path);
    return st.isFile ? "file" : st.isDirectory ? "dir" : undefined;
  } catch {
    return undefined;
  }
}

function realPath(path: string): string | undefined {
  try {
    return Deno.realPathSync(path);
  } catch {
    return undefined;
  }
}

function readDir(path: string, what: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(path)];
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such folder"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new DataError(`Cannot open ${what} ${path}: ${why}`);
  }
}

/**
 * The class folders of `root`, sorted (torchvision's `find_classes`, minus
 * hidden and system folders such as `.ipynb_checkpoints` and `__MACOSX`).
 *
 * @param root The dataset folder.
 * @returns Class names in index order.
 * @throws {DataError} When `root` is missing or has no class folders.
 */
export function findClasses(root: string): string[] {
  const entries = readDir(root, "image folder");
  const classes = entries
    .filter((e) => !isJunk(e.name) && kind(join(root, e.name), e) === "dir")
    .map((e) => e.name)
    .sort(cmp);
  if (classes.length === 0) {
    const files = entries.filter((e) => e.isFile && !isJunk(e.name)).length;
    throw new DataError(
      `Cannot find classes in ${root}: it has no class folders (expected ${root}/<class>/<image>` +
        (files
          ? `; it holds ${files} files directly: point root at the folder above)`
          : ")"),
    );
  }
  return classes;
}

/**
 * Every regular file under `dir`, in os.walk order with sorted names,
 * following links; a folder whose real path is in `seen`, or that holds the
 * dataset folder `top` (a real path), is not walked, so links cannot loop,
 * repeat a folder or climb above the dataset.
 */
function walk(
  dir: string,
  out: string[],
  seen: Set<string>,
  top: string,
): void {
  const real = realPath(dir) ?? dir;
  if (seen.has(real) || top.startsWith(real.replace(/\/?$/, "/"))) return;
  seen.add(real);
  const files: string[] = [];
  const dirs: string[] = [];
  for (const e of readDir(dir, "class folder")) {
    if (isJunk(e.name)) continue;
    const p = join(dir, e.name);
    const k = kind(p, e);
    if (k === "dir") dirs.push(p);
    else if (k === "file") files.push(p);
  }
  out.push(...files.sort(cmp));
  for (const d of dirs.sort(cmp)) walk(d, out, seen, top);
}

/**
 * A dataset of images laid out as `root/<class>/<image>`, as
 * `torchvision.datasets.ImageFolder`.
 *
 * Classes are the sorted names of the sub-folders (hidden folders,
 * `__MACOSX` and the like are skipped); samples are every file with an
 * image extension under each class folder, recursively, in torchvision's
 * order (hidden files such as `._x.jpg` are skipped). Images are decoded with
 * imagescript as PIL's `convert("RGB")` would see them: gray and palette
 * images become 3 channels, alpha is dropped.
 *
 * Links are followed, as torchvision's `os.walk(followlinks=True)` does, but
 * each real folder is walked at most once per class, and never the dataset
 * folder, a folder above it or another class's folder (compared by real
 * path): a link to `.`, to `..` or to a sibling class adds no sample, and a
 * link to a folder elsewhere adds its images once. Only regular files (or links to them) are
 * samples; FIFOs, sockets, devices and broken links are ignored.
 *
 * Untrusted files: an image that declares more than `maxImagePixels` pixels
 * (default 89,478,485, Pillow's) is refused from its header with a
 * `DecompressionBombError`, and one too small to hold the pixels it declares
 * with a `DataError`, before anything is decoded (see `decodeImage`); under
 * `onError: "skip"` both are skipped and counted.
 *
 * `get(i)` returns `[image, label]`: the transform's output as a float32
 * `[C, H, W]` tensor. A `DataLoader` over it decodes on Workers.
 *
 * @example The bundled Fashion-MNIST subset
 * ```ts
 * import { data, transforms as T } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const ds = new data.ImageFolder("examples/data/fashion-binary/train", {
 *   transform: new T.Compose([new T.Resize(56), new T.ToTensor()]),
 * });
 * assert.deepEqual(ds.classes, ["shirt", "tshirt"]);
 * const [x, y] = await ds.get(0);
 * assert.deepEqual(x.shape, [3, 56, 56]);
 * assert.equal(y, 0);
 * ```
 */
export class ImageFolder implements Dataset<[Tensor, number]> {
  /** The dataset folder. */
  readonly root: string;
  /** Class names, sorted; a label is an index into this. */
  readonly classes: readonly string[];
  /** Class name to label. */
  readonly classToIdx: Readonly<Record<string, number>>;
  /** `[path, label]` per sample. */
  readonly samples: readonly (readonly [string, number])[];
  /** The label of each sample. */
  readonly targets: readonly number[];
  /** The transforms, flattened. */
  readonly transforms: readonly Transform[];
  /** The label transform. */
  readonly targetTransform?: (target: number) => number;
  /** What happens to bad images. */
  readonly onError: OnError;
  /** The file extensions loaded (lower case, no dot). */
  readonly extensions: readonly string[];
  /** The decoder's pixel limit (`Infinity`: none). */
  readonly maxImagePixels: number;
  readonly #internals: FolderInternals;
  readonly #skipped = new Map<number, SkippedFile>();

  /**
   * Scans `root` (synchronously, as torchvision does).
   *
   * @param root The dataset folder, e.g. `"chest_xray/train"`.
   * @param options `transform`, `targetTransform`, `extensions`, `onError`,
   * `cache`, `draft`, `allowEmpty`, `maxImagePixels`.
   * @throws {DataError} When `root` is missing, has no class folders, or a
   * class folder has no images (unless `allowEmpty`).
   * @throws {RangeError} For an `onError` or `maxImagePixels` out of range.
   */
  constructor(root: string, options: ImageFolderOptions = {}) {
    this.root = root;
    this.onError = options.onError ?? "raise";
    if (this.onError !== "raise" && this.onError !== "skip") {
      throw new RangeError(
        `ImageFolder: onError must be "raise" or "skip", got "${this.onError}"`,
      );
    }
    this.maxImagePixels = resolveMaxImagePixels(
      options.maxImagePixels,
      "ImageFolder",
    );
    this.extensions = (options.extensions ?? IMAGE_EXTENSIONS).map((e) =>
      e.replace(/^\./, "").toLowerCase()
    );
    this.classes = findClasses(root);
    this.classToIdx = Object.fromEntries(this.classes.map((c, i) => [c, i]));
    // The dataset folder and every class folder, by real path: no class's
    // walk enters them through a link.
    const top = realPath(root) ?? root;
    const reserved = [top, ...this.classes.map((c) => join(root, c))]
      .map(realPath).filter((p) => p !== undefined);
    const samples: [string, number][] = [];
    for (const [label, cls] of this.classes.entries()) {
      const all: string[] = [];
      const dir = join(root, cls);
      const seen = new Set(reserved);
      seen.delete(realPath(dir) ?? dir);
      walk(dir, all, seen, top + "/");
      const ok = all.filter((p) => {
        const dot = p.lastIndexOf(".");
        return dot > p.lastIndexOf("/") &&
          this.extensions.includes(p.slice(dot + 1).toLowerCase());
      });
      if (ok.length === 0 && !options.allowEmpty) {
        throw new DataError(
          `Cannot use class folder ${
            join(root, cls)
          }: it has no images with extensions ${this.extensions.join(", ")}` +
            (all.length
              ? ` (it has ${all.length} other files)`
              : " (it is empty)"),
        );
      }
      for (const p of ok) samples.push([p, label]);
    }
    this.samples = samples;
    this.targets = samples.map((s) => s[1]);
    this.transforms = flattenTransforms(options.transform);
    this.targetTransform = options.targetTransform;
    const { plan, head, tail } = planPipeline(this.transforms, {
      draft: options.draft ?? 0,
      maxImagePixels: this.maxImagePixels,
    });
    this.#internals = {
      plan,
      pipeline: buildPipeline(plan, head),
      tail,
      cache: options.cache ? new Map() : undefined,
      bad: new Map(),
      skip: (index, reason) => {
        this.#internals.bad.set(index, reason);
        if (!this.#skipped.has(index)) {
          this.#skipped.set(index, {
            index,
            path: this.samples[index][0],
            reason,
          });
        }
      },
    };
    folderInternals.set(this, this.#internals);
  }

  /** Number of samples. */
  get length(): number {
    return this.samples.length;
  }

  /** Files skipped so far under `onError: "skip"` (each once). */
  get skipped(): SkippedFile[] {
    return [...this.#skipped.values()];
  }

  /** Number of cached images and the bytes they hold (0 without `cache`). */
  get cacheInfo(): { images: number; bytes: number } {
    let bytes = 0;
    const c = this.#internals.cache;
    for (const img of c?.values() ?? []) bytes += img.data.byteLength;
    return { images: c?.size ?? 0, bytes };
  }

  /** Empties the cache. */
  clearCache(): void {
    this.#internals.cache?.clear();
  }

  /**
   * Loads sample `index` through the transforms.
   *
   * @param index An index in `[0, length)`.
   * @param generator Random numbers for random transforms (default: the
   * process-wide generator; one number is drawn from it per call).
   * @returns `[image as a float32 [C, H, W] tensor, label]`.
   * @throws {DataError} When the image cannot be read or decoded, naming
   * it (also under `onError: "skip"`, which records it in `skipped`).
   */
  async get(
    index: number,
    generator: Generator = globalGenerator,
  ): Promise<[Tensor, number]> {
    checkIndex(index, this.length);
    const img = await loadMainThread(this, index, generator.nextUint32());
    return [
      tensor(img.data, { shape: [img.channels, img.height, img.width] }),
      label(this, index),
    ];
  }

  /**
   * Decodes sample `index` without transforms (PIL's `convert("RGB")`
   * image, full size).
   *
   * @param index An index in `[0, length)`.
   * @returns The 8-bit image.
   * @throws {DataError} When the image cannot be read or decoded.
   */
  async getImage(index: number): Promise<RawImage> {
    checkIndex(index, this.length);
    return await readImage(this.samples[index][0], {
      maxImagePixels: this.maxImagePixels,
    });
  }
}

/** Options of {@linkcode imageFolderSplits}. */
export interface SplitFoldersOptions
  extends Omit<ImageFolderOptions, "transform"> {
  /** Split folder names (default `["train", "val", "test"]`). */
  splits?: readonly string[];
  /** A transform per split name (e.g. augmentation for `train` only). */
  transforms?: Readonly<
    Record<string, TransformLike | readonly TransformLike[]>
  >;
}

/**
 * Opens `root/<split>/` for each split as an `ImageFolder`, checking that
 * every split exists and has the first split's classes, so labels mean the
 * same everywhere (the chest X-ray layout: `train/`, `val/`, `test/`, each
 * with `NORMAL/` and `PNEUMONIA/`).
 *
 * @param root The folder holding the splits.
 * @param options `splits`, `transforms` per split, and `ImageFolder` options.
 * @returns One `ImageFolder` per split, by name.
 * @throws {DataError} When a split folder is missing, or its classes differ
 * from the first split's, naming the folder and the classes.
 *
 * @example
 * ```ts
 * import { data } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const s = data.imageFolderSplits("examples/data/fashion-binary");
 * assert.deepEqual(Object.keys(s), ["train", "val", "test"]);
 * assert.deepEqual(s.val.classes, s.train.classes);
 * ```
 */
export function imageFolderSplits(
  root: string,
  options: SplitFoldersOptions = {},
): Record<string, ImageFolder> {
  const { splits = ["train", "val", "test"], transforms = {}, ...rest } =
    options;
  const out: Record<string, ImageFolder> = {};
  let first: ImageFolder | undefined;
  for (const s of splits) {
    const dir = join(root, s);
    let st: Deno.FileInfo | undefined;
    try {
      st = Deno.statSync(dir);
    } catch { /* reported below */ }
    if (!st?.isDirectory) {
      let have = "";
      try {
        have = [...Deno.readDirSync(root)].filter((e) => e.isDirectory).map((
          e,
        ) => e.name)
          .sort(cmp).join(", ");
      } catch { /* root itself missing */ }
      throw new DataError(
        `Cannot open split folder ${dir}: no such folder` +
          (have ? ` (${root} has: ${have})` : ` (${root} does not exist)`),
      );
    }
    const f = new ImageFolder(dir, { ...rest, transform: transforms[s] });
    if (first && f.classes.join("\n") !== first.classes.join("\n")) {
      const missing = first.classes.filter((c) => !f.classes.includes(c));
      const extra = f.classes.filter((c) => !first!.classes.includes(c));
      throw new DataError(
        `Cannot use split folder ${dir}: its classes [${
          f.classes.join(", ")
        }] differ from ${join(root, splits[0])}'s [${
          first.classes.join(", ")
        }] (missing: ${missing.join(", ") || "none"}; extra: ${
          extra.join(", ") || "none"
        })`,
      );
    }
    first ??= f;
    out[s] = f;
  }
  return out;
}
