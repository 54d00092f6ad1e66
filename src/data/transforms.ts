/**
 * Image transforms with torchvision's names and semantics (torchvision 0.14 on
 * PIL images): `Compose`, `Resize`, `CenterCrop`, `Pad`, `RandomCrop`,
 * `RandomResizedCrop`, `RandomHorizontalFlip`, `RandomVerticalFlip`,
 * `RandomRotation`, `ColorJitter`, `Grayscale`, `ToTensor`, `Normalize`,
 * `Lambda`.
 *
 * Transforms work on plain images ({@linkcode RawImage}: 8-bit, like a PIL
 * image; {@linkcode FloatImage}: float32 CHW, like a tensor image), not on
 * `Tensor`s, so that a `DataLoader` can run them on Workers; the dataset turns
 * the final `FloatImage` into a `Tensor`. `ToTensor` is the step from one to
 * the other, as in torchvision.
 *
 * Random transforms draw from the {@linkcode Generator} passed to
 * `call(image, generator)` (default: the process-wide generator that
 * `manualSeed` seeds). A `DataLoader` gives every sample its own generator,
 * seeded from the loader's seed, so augmentations repeat exactly for a seed
 * whatever the number of workers. The random draws differ from torch's (a
 * different generator), the distributions are the same.
 *
 * Every built-in transform can describe itself (`spec()`) so that Workers can
 * rebuild it; a `Lambda` cannot, and it and everything after it run on the
 * main thread.
 *
 * Every built-in random transform also says what it drew when its generator
 * is a {@linkcode RecordingGenerator}: the outcome, not the numbers
 * (`"hflip=1"`, `"crop=3,5"`), so that the same image with the same outcome
 * can be recognised in another epoch (the teacher cache's key). Rotation
 * angles and colour-jitter factors are recorded as exact numbers (they
 * rarely repeat); a `Lambda` records nothing, which the loader reports as an
 * unknown outcome.
 *
 * @example The tutorial's training transform
 * ```ts
 * import { Generator, transforms as T } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const tf = new T.Compose([
 *   new T.Resize([224, 224]),
 *   new T.RandomHorizontalFlip(),
 *   new T.ToTensor(),
 *   new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
 * ]);
 * const gray = { width: 28, height: 28, channels: 1 as const, mode: "RGB" as const,
 *   data: new Uint8Array(28 * 28).fill(128) };
 * const out = tf.call(gray, new Generator(0)) as T.FloatImage;
 * assert.deepEqual([out.channels, out.height, out.width], [3, 224, 224]);
 * ```
 *
 * @module
 */

import { Generator, globalGenerator } from "../random.ts";
import type * as img from "./image.ts";
import { isFloatImage, newRawImage, outChannels } from "./_image_util.ts";
import type * as resize from "./_resize.ts";
import { resample } from "./_resize.ts";
import { pixelArray } from "./_pixel_arrays.ts";

/**
 * An 8-bit image as decoded, height × width × channels: what the transforms
 * before `ToTensor` take (the same type as `data.RawImage`).
 */
export type RawImage = img.RawImage;
/**
 * A float32 image, channels × height × width: what `ToTensor` returns and
 * the transforms after it take (the same type as `data.FloatImage`).
 */
export type FloatImage = img.FloatImage;
/** What a transform takes and returns: a `RawImage` or a `FloatImage`. */
export type ImageLike = img.ImageLike;
/** Resampling filters, named as `torchvision.transforms.InterpolationMode`. */
export type Interpolation = resize.Interpolation;

/** A transform's description, enough to rebuild it on a Worker. */
export interface TransformSpec {
  /** The class name, e.g. `"Resize"`. */
  name: string;
  /** Its constructor arguments (structured-clonable). */
  args: unknown[];
}

/** Base class of the transforms. */
export abstract class Transform {
  /** Whether `apply` draws random numbers (such transforms end the cached prefix). */
  readonly random: boolean = false;

  /**
   * Applies the transform.
   *
   * @param image The input image.
   * @param generator Random numbers for random transforms.
   * @returns A new image; the input is never modified.
   */
  abstract apply(image: ImageLike, generator: Generator): ImageLike;

  /**
   * Applies the transform, as calling a torchvision transform does.
   *
   * @param image The input image.
   * @param generator Random numbers (default: the process-wide generator).
   * @returns The transformed image.
   */
  call(image: ImageLike, generator: Generator = globalGenerator): ImageLike {
    return this.apply(image, generator);
  }

  /**
   * Describes the transform, for Workers to rebuild it.
   *
   * @returns The description, or `undefined` when it can only run on the
   * main thread.
   */
  spec(): TransformSpec | undefined {
    return undefined;
  }
}

/**
 * A {@linkcode Generator} that also keeps what each built-in random transform
 * drew from it, one entry per application, in order: `"hflip=1"` (flipped)
 * or `"hflip=0"`, `"vflip=…"`, `"crop=top,left"` (`RandomCrop`),
 * `"rrcrop=top,left,height,width"` (`RandomResizedCrop`), `"rotate=degrees"`
 * and `"jitter=b1.1,c0.9"` (the factors in the order applied). Each entry
 * determines the transform's output for a given input exactly. The numbers
 * drawn are the same as a plain `Generator`'s with the same seed.
 *
 * @example A flip that says whether it flipped
 * ```ts
 * import { transforms as T } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const g = new T.RecordingGenerator(0);
 * const img = { width: 2, height: 1, channels: 1 as const, mode: "L" as const,
 *   data: Uint8Array.from([1, 2]) };
 * const out = new T.RandomHorizontalFlip().call(img, g) as T.RawImage;
 * assert.equal(g.outcomes.length, 1);
 * assert.equal(g.outcomes[0] === "hflip=1", out.data[0] === 2);
 * ```
 */
export class RecordingGenerator extends Generator {
  /** The outcomes recorded so far. */
  readonly outcomes: string[] = [];
}

/** Records a random transform's outcome, when the generator keeps them. */
function record(g: Generator, outcome: string): void {
  if (g instanceof RecordingGenerator) g.outcomes.push(outcome);
}

/** A function used as a transform (wrapped in a `Lambda` by `Compose`). */
export type TransformFn = (image: ImageLike, generator: Generator) => ImageLike;

/** Anything `Compose` and `ImageFolder` accept as a transform. */
export type TransformLike = Transform | TransformFn;

// ---- helpers ---------------------------------------------------------------

function need8(name: string, x: ImageLike): RawImage {
  if (isFloatImage(x)) {
    throw new TypeError(
      `${name} expects an 8-bit image (a RawImage): place it before ToTensor()`,
    );
  }
  return x;
}

function pair(
  name: string,
  size: number | readonly number[],
): [number, number] {
  const [h, w] = typeof size === "number"
    ? [size, size]
    : size.length === 1
    ? [size[0], size[0]]
    : [size[0], size[1]];
  for (const v of [h, w]) {
    if (
      !Number.isInteger(v) || v <= 0 ||
      (typeof size !== "number" && size.length > 2)
    ) {
      throw new RangeError(
        `${name}: size must be a positive integer or [height, width], got ${
          JSON.stringify(size)
        }`,
      );
    }
  }
  return [h, w];
}

/** Python's `round` (half to even), which torchvision's crops use. */
function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `torch.randint(lo, hi)` on our generator: an integer in [lo, hi). */
function randint(g: Generator, lo: number, hi: number): number {
  return lo + g.below(hi - lo);
}

/** `uniform(lo, hi)`. */
function uniform(g: Generator, lo: number, hi: number): number {
  return lo + (hi - lo) * g.uniform();
}

/**
 * Crops `img` to the box at (`top`, `left`) of `height` × `width`; parts of
 * the box outside the image are black, as PIL's `crop` makes them.
 */
function crop(
  img: RawImage,
  top: number,
  left: number,
  height: number,
  width: number,
): RawImage {
  const ch = img.channels;
  const out = newRawImage(width, height, ch, img.mode);
  const x0 = Math.max(0, left), x1 = Math.min(img.width, left + width);
  if (x1 <= x0) return out;
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= img.height) continue;
    const s = (sy * img.width + x0) * ch;
    out.data.set(
      img.data.subarray(s, s + (x1 - x0) * ch),
      (y * width + (x0 - left)) * ch,
    );
  }
  return out;
}

/** Padding modes of `Pad` and `RandomCrop`, as in torchvision. */
export type PaddingMode = "constant" | "edge" | "reflect" | "symmetric";

function padImage(
  img: RawImage,
  [l, t, r, b]: readonly number[],
  fill: number | readonly number[],
  mode: PaddingMode,
): RawImage {
  const ch = img.channels;
  const w = img.width + l + r, h = img.height + t + b;
  let data = img;
  // A gray-stored RGB image padded with a coloured fill needs its 3 planes.
  if (
    mode === "constant" && typeof fill !== "number" && ch === 1 &&
    img.mode === "RGB"
  ) {
    if (fill[0] !== fill[1] || fill[1] !== fill[2]) data = expandGray(img);
  }
  const c = data.channels;
  const out = newRawImage(w, h, c, img.mode);
  const fills = typeof fill === "number" ? [fill, fill, fill] : [...fill];
  const src = (i: number, n: number): number => {
    if (mode === "edge") return Math.min(Math.max(i, 0), n - 1);
    if (mode === "reflect") {
      const p = 2 * (n - 1) || 1;
      i = ((i % p) + p) % p;
      return i < n ? i : p - i;
    }
    // symmetric
    const p = 2 * n;
    i = ((i % p) + p) % p;
    return i < n ? i : p - 1 - i;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * c;
      let sx = x - l, sy = y - t;
      const inside = sx >= 0 && sy >= 0 && sx < img.width && sy < img.height;
      if (!inside && mode === "constant") {
        for (let k = 0; k < c; k++) out.data[o + k] = fills[k] ?? fills[0];
        continue;
      }
      if (!inside) {
        sx = src(sx, img.width);
        sy = src(sy, img.height);
      }
      const s = (sy * img.width + sx) * c;
      for (let k = 0; k < c; k++) out.data[o + k] = data.data[s + k];
    }
  }
  return out;
}

function expandGray(img: RawImage): RawImage {
  const out = newRawImage(img.width, img.height, 3, img.mode);
  for (let i = 0, o = 0; i < img.data.length; i++) {
    const v = img.data[i];
    out.data[o++] = v;
    out.data[o++] = v;
    out.data[o++] = v;
  }
  return out;
}

function flipH(img: ImageLike): ImageLike {
  if (isFloatImage(img)) {
    const out = new Float32Array(img.data.length);
    const { width: w } = img;
    for (let r = 0; r < img.channels * img.height; r++) {
      const b = r * w;
      for (let x = 0; x < w; x++) out[b + x] = img.data[b + w - 1 - x];
    }
    return { ...img, data: out };
  }
  const { width: w, height: h, channels: c } = img;
  const out = newRawImage(w, h, c, img.mode);
  const s = img.data, d = out.data;
  if (c === 1) {
    for (let y = 0; y < h; y++) {
      const b = y * w;
      for (let x = 0; x < w; x++) d[b + x] = s[b + w - 1 - x];
    }
  } else {
    for (let y = 0; y < h; y++) {
      const b = y * w * 3;
      for (let x = 0; x < w; x++) {
        const o = b + 3 * x, i = b + 3 * (w - 1 - x);
        d[o] = s[i];
        d[o + 1] = s[i + 1];
        d[o + 2] = s[i + 2];
      }
    }
  }
  return out;
}

function flipV(img: ImageLike): ImageLike {
  const rowLen = isFloatImage(img) ? img.width : img.width * img.channels;
  const rows = isFloatImage(img) ? img.height : img.height;
  const planes = isFloatImage(img) ? img.channels : 1;
  const out = isFloatImage(img)
    ? { ...img, data: new Float32Array(img.data.length) }
    : newRawImage(img.width, img.height, img.channels, img.mode);
  for (let p = 0; p < planes; p++) {
    const base = p * rows * rowLen;
    for (let y = 0; y < rows; y++) {
      const s = base + (rows - 1 - y) * rowLen;
      // deno-lint-ignore no-explicit-any
      (out.data as any).set(
        img.data.subarray(s, s + rowLen),
        base + y * rowLen,
      );
    }
  }
  return out;
}

/** PIL's L from RGB: `(r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16`. */
function luma(img: RawImage): Uint8Array {
  if (img.channels === 1) return img.data;
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    out[i] = (d[3 * i] * 19595 + d[3 * i + 1] * 38470 + d[3 * i + 2] * 7471 +
      0x8000) >>> 16;
  }
  return out;
}

/**
 * PIL's `Image.blend(a, b, alpha)` = `a + alpha (b - a)`, truncated (and
 * clipped when alpha is outside [0, 1]).
 */
function blendInto(
  out: Uint8Array,
  a: (i: number) => number,
  b: Uint8Array,
  alpha: number,
): void {
  // C float arithmetic, as in Pillow's ImagingBlend.
  const f = Math.fround, al = f(alpha);
  for (let i = 0; i < b.length; i++) {
    const ai = a(i);
    const v = f(ai + f(al * (b[i] - ai)));
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : v;
  }
}

// ---- Compose and Lambda ------------------------------------------------------

/**
 * Applies transforms in order, as `torchvision.transforms.Compose` does.
 * Functions are accepted and wrapped in a {@linkcode Lambda}; nested
 * `Compose`s are flattened.
 */
export class Compose extends Transform {
  /** The transforms, flattened. */
  readonly transforms: readonly Transform[];
  /** Whether any part is random. */
  override readonly random: boolean;

  /**
   * Creates the transform.
   *
   * @param transforms Transforms or functions, applied in order.
   */
  constructor(transforms: readonly TransformLike[]) {
    super();
    const flat: Transform[] = [];
    for (const t of transforms) {
      const tt = toTransform(t);
      if (tt instanceof Compose) flat.push(...tt.transforms);
      else flat.push(tt);
    }
    this.transforms = flat;
    this.random = flat.some((t) => t.random);
  }

  /** Applies the transform (see the class description). */
  apply(image: ImageLike, generator: Generator): ImageLike {
    let x = image;
    for (const t of fuse(this.transforms)) x = t.apply(x, generator);
    return x;
  }
}

/**
 * A function as a transform, as `torchvision.transforms.Lambda`. It runs on
 * the main thread (functions cannot be sent to Workers), so it and every
 * transform after it do; it also ends the cached prefix.
 */
export class Lambda extends Transform {
  /** Assumed random: a Lambda ends the cached prefix. */
  override readonly random: boolean = true;
  /**
   * Creates the transform.
   *
   * @param fn `(image, generator) => image`.
   */
  constructor(readonly fn: TransformFn) {
    super();
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike, generator: Generator): ImageLike {
    return this.fn(image, generator);
  }
}

/**
 * Wraps a function in a `Lambda`; returns a transform as it is.
 *
 * @param t A transform or a function.
 * @returns It as a `Transform`.
 */
export function toTransform(t: TransformLike): Transform {
  if (t instanceof Transform) return t;
  if (typeof t === "function") return new Lambda(t);
  throw new TypeError(`Not a transform: ${String(t)}`);
}

/**
 * Flattens a transform into a list (a `Compose` into its parts).
 *
 * @param t A transform, function, list, or nothing.
 * @returns The transforms in order.
 */
export function flattenTransforms(
  t: TransformLike | readonly TransformLike[] | undefined,
): Transform[] {
  if (t === undefined) return [];
  if (Array.isArray(t)) return [...new Compose(t).transforms];
  const tt = toTransform(t as TransformLike);
  return tt instanceof Compose ? [...tt.transforms] : [tt];
}

// ---- geometry ----------------------------------------------------------------

/** Options of {@linkcode Resize}. */
export interface ResizeOptions {
  /** The filter (default `"bilinear"`, torchvision's default). */
  interpolation?: Interpolation;
  /** With an int size: the longest the long edge may become. */
  maxSize?: number;
}

/**
 * Resizes to `[height, width]`, or, given one number, makes the shorter edge
 * that long keeping the aspect ratio (torchvision's `Resize`). The filter is
 * PIL's (bilinear by default, with PIL's antialiasing when shrinking);
 * outputs are bit-identical to PIL's for the same decoded pixels.
 */
export class Resize extends Transform {
  readonly #size: number | [number, number];
  readonly #options: ResizeOptions;

  /**
   * Creates the transform.
   *
   * @param size `[height, width]`, or the shorter edge's length.
   * @param options `interpolation`, `maxSize`.
   */
  constructor(size: number | readonly number[], options: ResizeOptions = {}) {
    super();
    if (typeof size === "number" || size.length === 1) {
      this.#size = pair("Resize", size)[0];
    } else this.#size = pair("Resize", size);
    if (options.maxSize !== undefined && typeof this.#size !== "number") {
      throw new RangeError("Resize: maxSize needs an int size");
    }
    this.#options = { ...options };
  }

  /**
   * The output size for an input of `width` × `height`
   * (torchvision's `_compute_resized_output_size`).
   *
   * @param width Input width.
   * @param height Input height.
   * @returns `[outWidth, outHeight]`.
   */
  outputSize(width: number, height: number): [number, number] {
    const s = this.#size;
    if (typeof s !== "number") return [s[1], s[0]];
    const [short, long] = width <= height ? [width, height] : [height, width];
    let newShort = s, newLong = Math.trunc(s * long / short);
    const max = this.#options.maxSize;
    if (max !== undefined) {
      if (max <= s) {
        throw new RangeError(`Resize: maxSize ${max} must exceed size ${s}`);
      }
      if (newLong > max) {
        newShort = Math.trunc(max * newShort / newLong);
        newLong = max;
      }
    }
    return width <= height ? [newShort, newLong] : [newLong, newShort];
  }

  /** Applies the transform (see the class description). */
  apply(image: ImageLike): ImageLike {
    const img = need8("Resize", image);
    const [w, h] = this.outputSize(img.width, img.height);
    return resample(img, w, h, this.#options.interpolation ?? "bilinear");
  }

  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "Resize", args: [this.#size, this.#options] };
  }
}

/**
 * Crops the centre, padding with black when the image is smaller
 * (torchvision's `CenterCrop`).
 */
export class CenterCrop extends Transform {
  readonly #size: [number, number];
  /**
   * Creates the transform.
   *
   * @param size `[height, width]` or one number for a square.
   */
  constructor(size: number | readonly number[]) {
    super();
    this.#size = pair("CenterCrop", size);
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike): ImageLike {
    const img = need8("CenterCrop", image);
    const [ch, cw] = this.#size;
    // torchvision pads (floor on the left/top) then crops at round(d / 2);
    // PIL's crop outside the image gives the same black border.
    const padL = cw > img.width ? Math.floor((cw - img.width) / 2) : 0;
    const padT = ch > img.height ? Math.floor((ch - img.height) / 2) : 0;
    const w = img.width + (cw > img.width ? cw - img.width : 0);
    const h = img.height + (ch > img.height ? ch - img.height : 0);
    const top = pyRound((h - ch) / 2) - padT;
    const left = pyRound((w - cw) / 2) - padL;
    return crop(img, top, left, ch, cw);
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "CenterCrop", args: [this.#size] };
  }
}

/** Options of {@linkcode Pad}. */
export interface PadOptions {
  /** Fill value (or one per channel) for `"constant"` (default 0). */
  fill?: number | readonly number[];
  /** How to fill (default `"constant"`). */
  paddingMode?: PaddingMode;
}

function padding4(padding: number | readonly number[]): number[] {
  const p = typeof padding === "number"
    ? [padding, padding, padding, padding]
    : padding.length === 1
    ? [padding[0], padding[0], padding[0], padding[0]]
    : padding.length === 2
    ? [padding[0], padding[1], padding[0], padding[1]]
    : [...padding];
  if (p.length !== 4 || p.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new RangeError(
      `padding must be 1, 2 or 4 non-negative integers, got ${
        JSON.stringify(padding)
      }`,
    );
  }
  return p;
}

/** Pads the borders (torchvision's `Pad`): `[left, top, right, bottom]`. */
export class Pad extends Transform {
  readonly #padding: number[];
  readonly #options: PadOptions;
  /**
   * Creates the transform.
   *
   * @param padding One number for all sides, `[leftRight, topBottom]` or
   * `[left, top, right, bottom]`.
   * @param options `fill`, `paddingMode`.
   */
  constructor(padding: number | readonly number[], options: PadOptions = {}) {
    super();
    this.#padding = padding4(padding);
    this.#options = { ...options };
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike): ImageLike {
    return padImage(
      need8("Pad", image),
      this.#padding,
      this.#options.fill ?? 0,
      this.#options.paddingMode ?? "constant",
    );
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "Pad", args: [this.#padding, this.#options] };
  }
}

/** Options of {@linkcode RandomCrop}. */
export interface RandomCropOptions extends PadOptions {
  /** Padding applied before cropping, as for `Pad`. */
  padding?: number | readonly number[];
  /** Pad images smaller than the crop. */
  padIfNeeded?: boolean;
}

/** Crops a random box (torchvision's `RandomCrop`), optionally padding first. */
export class RandomCrop extends Transform {
  /** Draws random numbers. */
  override readonly random = true;
  readonly #size: [number, number];
  readonly #options: RandomCropOptions;
  /**
   * Creates the transform.
   *
   * @param size `[height, width]` or one number.
   * @param options `padding`, `padIfNeeded`, `fill`, `paddingMode`.
   */
  constructor(
    size: number | readonly number[],
    options: RandomCropOptions = {},
  ) {
    super();
    this.#size = pair("RandomCrop", size);
    this.#options = { ...options };
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike, g: Generator): ImageLike {
    let img = need8("RandomCrop", image);
    const o = this.#options;
    const fill = o.fill ?? 0, mode = o.paddingMode ?? "constant";
    if (o.padding !== undefined) {
      img = padImage(img, padding4(o.padding), fill, mode);
    }
    const [th, tw] = this.#size;
    if (o.padIfNeeded && img.width < tw) {
      const d = tw - img.width;
      img = padImage(img, [d, 0, d, 0], fill, mode);
    }
    if (o.padIfNeeded && img.height < th) {
      const d = th - img.height;
      img = padImage(img, [0, d, 0, d], fill, mode);
    }
    if (img.width < tw || img.height < th) {
      throw new RangeError(
        `RandomCrop: crop ${th}x${tw} is larger than the image ${img.height}x${img.width} (use padIfNeeded)`,
      );
    }
    if (img.width === tw && img.height === th) {
      record(g, "crop=0,0");
      return img;
    }
    const i = randint(g, 0, img.height - th + 1);
    const j = randint(g, 0, img.width - tw + 1);
    record(g, `crop=${i},${j}`);
    return crop(img, i, j, th, tw);
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "RandomCrop", args: [this.#size, this.#options] };
  }
}

/** Options of {@linkcode RandomResizedCrop}. */
export interface RandomResizedCropOptions {
  /** Range of the crop's area as a fraction of the image (default [0.08, 1]). */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (default [3/4, 4/3]). */
  ratio?: readonly [number, number];
  /** The resize filter (default `"bilinear"`). */
  interpolation?: Interpolation;
}

/**
 * Crops a random box of random area and aspect ratio and resizes it
 * (torchvision's `RandomResizedCrop`, with its 10 tries and centre-crop
 * fallback).
 */
export class RandomResizedCrop extends Transform {
  /** Draws random numbers. */
  override readonly random = true;
  readonly #size: [number, number];
  readonly #options: RandomResizedCropOptions;
  /**
   * Creates the transform.
   *
   * @param size Output `[height, width]` or one number.
   * @param options `scale`, `ratio`, `interpolation`.
   */
  constructor(
    size: number | readonly number[],
    options: RandomResizedCropOptions = {},
  ) {
    super();
    this.#size = pair("RandomResizedCrop", size);
    this.#options = { ...options };
  }

  /**
   * torchvision's `get_params`.
   *
   * @param width Image width.
   * @param height Image height.
   * @param g Random numbers.
   * @returns `[top, left, height, width]` of the crop.
   */
  params(
    width: number,
    height: number,
    g: Generator,
  ): [number, number, number, number] {
    const [s0, s1] = this.#options.scale ?? [0.08, 1];
    const [r0, r1] = this.#options.ratio ?? [3 / 4, 4 / 3];
    const area = width * height;
    const lr0 = Math.log(r0), lr1 = Math.log(r1);
    for (let k = 0; k < 10; k++) {
      const target = area * uniform(g, s0, s1);
      const aspect = Math.exp(uniform(g, lr0, lr1));
      const w = pyRound(Math.sqrt(target * aspect));
      const h = pyRound(Math.sqrt(target / aspect));
      if (w > 0 && w <= width && h > 0 && h <= height) {
        return [
          randint(g, 0, height - h + 1),
          randint(g, 0, width - w + 1),
          h,
          w,
        ];
      }
    }
    const inRatio = width / height;
    let w = width, h = height;
    if (inRatio < Math.min(r0, r1)) h = pyRound(w / Math.min(r0, r1));
    else if (inRatio > Math.max(r0, r1)) w = pyRound(h * Math.max(r0, r1));
    return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
  }

  /** Applies the transform (see the class description). */
  apply(image: ImageLike, g: Generator): ImageLike {
    const img = need8("RandomResizedCrop", image);
    const [i, j, h, w] = this.params(img.width, img.height, g);
    record(g, `rrcrop=${i},${j},${h},${w}`);
    const [th, tw] = this.#size;
    return resample(
      crop(img, i, j, h, w),
      tw,
      th,
      this.#options.interpolation ?? "bilinear",
    );
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "RandomResizedCrop", args: [this.#size, this.#options] };
  }
}

/** Flips left-right with probability `p` (torchvision's `RandomHorizontalFlip`). */
export class RandomHorizontalFlip extends Transform {
  /** Draws random numbers. */
  override readonly random = true;
  /**
   * Creates the transform.
   *
   * @param p Probability of flipping (default 0.5).
   */
  constructor(readonly p: number = 0.5) {
    super();
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike, g: Generator): ImageLike {
    const flip = g.uniform() < this.p;
    record(g, flip ? "hflip=1" : "hflip=0");
    return flip ? flipH(image) : image;
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "RandomHorizontalFlip", args: [this.p] };
  }
}

/** Flips top-bottom with probability `p` (torchvision's `RandomVerticalFlip`). */
export class RandomVerticalFlip extends Transform {
  /** Draws random numbers. */
  override readonly random = true;
  /**
   * Creates the transform.
   *
   * @param p Probability of flipping (default 0.5).
   */
  constructor(readonly p: number = 0.5) {
    super();
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike, g: Generator): ImageLike {
    const flip = g.uniform() < this.p;
    record(g, flip ? "vflip=1" : "vflip=0");
    return flip ? flipV(image) : image;
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "RandomVerticalFlip", args: [this.p] };
  }
}

/** Options of {@linkcode RandomRotation}. */
export interface RandomRotationOptions {
  /** `"nearest"` (default, as torchvision) or `"bilinear"`. */
  interpolation?: "nearest" | "bilinear";
  /** Grow the output to hold the whole rotated image (default false). */
  expand?: boolean;
  /** Centre of rotation `[x, y]` in pixels (default: the image centre). */
  center?: readonly [number, number];
  /** Value for the area outside the rotated image (default 0). */
  fill?: number | readonly number[];
}

/**
 * Rotates by an angle drawn uniformly from `[-degrees, degrees]` (or
 * `[min, max]`), counter-clockwise, as `torchvision.transforms.RandomRotation`
 * on a PIL image. Sampling follows PIL's affine transform at pixel centres;
 * edge pixels may differ from PIL's by rounding.
 */
export class RandomRotation extends Transform {
  /** Draws random numbers. */
  override readonly random = true;
  readonly #range: [number, number];
  readonly #options: RandomRotationOptions;
  /**
   * Creates the transform.
   *
   * @param degrees `d` for `[-d, d]`, or `[min, max]`.
   * @param options `interpolation`, `expand`, `center`, `fill`.
   */
  constructor(
    degrees: number | readonly [number, number],
    options: RandomRotationOptions = {},
  ) {
    super();
    if (typeof degrees === "number") {
      if (degrees < 0) {
        throw new RangeError("RandomRotation: degrees must be >= 0");
      }
      this.#range = [-degrees, degrees];
    } else this.#range = [degrees[0], degrees[1]];
    this.#options = { ...options };
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike, g: Generator): ImageLike {
    const angle = uniform(g, this.#range[0], this.#range[1]);
    record(g, `rotate=${angle}`);
    return rotate(need8("RandomRotation", image), angle, this.#options);
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "RandomRotation", args: [this.#range, this.#options] };
  }
}

function rotate(
  img: RawImage,
  angle: number,
  o: RandomRotationOptions,
): RawImage {
  const w = img.width, h = img.height;
  const [cx, cy] = o.center ?? [w / 2, h / 2];
  // PIL rounds the matrix to 15 decimals (so 90° turns are exact).
  const a = (((angle % 360) + 360) % 360) * Math.PI / 180;
  const r15 = (v: number) => Math.round(v * 1e15) / 1e15;
  const cos = r15(Math.cos(a)), sin = r15(Math.sin(a));
  // PIL: inverse matrix mapping output (x, y) to input, about the centre.
  let ow = w, oh = h, ox = 0, oy = 0;
  if (o.expand) {
    const xs: number[] = [], ys: number[] = [];
    for (const [x, y] of [[0, 0], [w, 0], [w, h], [0, h]]) {
      xs.push(cos * (x - cx) - sin * (y - cy) + cx);
      ys.push(sin * (x - cx) + cos * (y - cy) + cy);
    }
    ow = Math.ceil(Math.max(...xs)) - Math.floor(Math.min(...xs));
    oh = Math.ceil(Math.max(...ys)) - Math.floor(Math.min(...ys));
    ox = (ow - w) / 2;
    oy = (oh - h) / 2;
  }
  const fill = o.fill ?? 0;
  let src = img;
  if (typeof fill !== "number" && img.channels === 1 && img.mode === "RGB") {
    if (fill[0] !== fill[1] || fill[1] !== fill[2]) src = expandGray(img);
  }
  const c = src.channels;
  const fills = typeof fill === "number" ? [fill, fill, fill] : [...fill];
  const out = newRawImage(ow, oh, c, img.mode);
  const bilinear = o.interpolation === "bilinear";
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const px = x + 0.5 - ox - cx, py = y + 0.5 - oy - cy;
      // input = R(-angle) applied to output offset
      const sx = cos * px - sin * py + cx;
      const sy = sin * px + cos * py + cy;
      const o8 = (y * ow + x) * c;
      if (!bilinear) {
        const ix = Math.floor(sx), iy = Math.floor(sy);
        if (ix < 0 || iy < 0 || ix >= w || iy >= h) {
          for (let k = 0; k < c; k++) out.data[o8 + k] = fills[k] ?? fills[0];
        } else {
          const s = (iy * w + ix) * c;
          for (let k = 0; k < c; k++) out.data[o8 + k] = src.data[s + k];
        }
        continue;
      }
      const fx = sx - 0.5, fy = sy - 0.5;
      const x0 = Math.floor(fx), y0 = Math.floor(fy);
      if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) {
        for (let k = 0; k < c; k++) out.data[o8 + k] = fills[k] ?? fills[0];
        continue;
      }
      const dx = fx - x0, dy = fy - y0;
      for (let k = 0; k < c; k++) {
        const at = (xx: number, yy: number) =>
          xx < 0 || yy < 0 || xx >= w || yy >= h
            ? (fills[k] ?? fills[0])
            : src.data[(yy * w + xx) * c + k];
        const v = (at(x0, y0) * (1 - dx) + at(x0 + 1, y0) * dx) * (1 - dy) +
          (at(x0, y0 + 1) * (1 - dx) + at(x0 + 1, y0 + 1) * dx) * dy;
        out.data[o8 + k] = Math.round(v);
      }
    }
  }
  return out;
}

// ---- colour ------------------------------------------------------------------

/** Options of {@linkcode ColorJitter}: how far each factor may move from 1. */
export interface ColorJitterOptions {
  /** Brightness: `b` for factors in `[max(0, 1 - b), 1 + b]`, or `[min, max]`. */
  brightness?: number | readonly [number, number];
  /** Contrast, as brightness. */
  contrast?: number | readonly [number, number];
  /** Saturation, as brightness. */
  saturation?: number | readonly [number, number];
}

function jitterRange(
  name: string,
  v: number | readonly [number, number] | undefined,
): [number, number] | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "number") {
    if (v < 0) throw new RangeError(`ColorJitter: ${name} must be >= 0`);
    return v === 0 ? undefined : [Math.max(0, 1 - v), 1 + v];
  }
  if (v[0] < 0 || v[1] < v[0]) {
    throw new RangeError(`ColorJitter: bad ${name} range`);
  }
  return v[0] === 1 && v[1] === 1 ? undefined : [v[0], v[1]];
}

/**
 * Randomly changes brightness, contrast and saturation, in a random order,
 * with PIL's `ImageEnhance` formulas (torchvision's `ColorJitter` on PIL
 * images). Hue jitter is not implemented.
 */
export class ColorJitter extends Transform {
  /** Draws random numbers. */
  override readonly random = true;
  readonly #options: ColorJitterOptions;
  readonly #ranges: ([number, number] | undefined)[];
  /**
   * Creates the transform.
   *
   * @param options `brightness`, `contrast`, `saturation`.
   */
  constructor(options: ColorJitterOptions = {}) {
    super();
    if ("hue" in options) {
      throw new RangeError(
        "ColorJitter: hue jitter is not implemented in kdeno",
      );
    }
    this.#options = { ...options };
    this.#ranges = [
      jitterRange("brightness", options.brightness),
      jitterRange("contrast", options.contrast),
      jitterRange("saturation", options.saturation),
    ];
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike, g: Generator): ImageLike {
    let img = need8("ColorJitter", image);
    // torchvision: a random order (randperm), then one factor per active op.
    const order = [0, 1, 2];
    for (let i = order.length - 1; i > 0; i--) {
      const j = g.below(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const drawn: string[] = [];
    for (const k of order) {
      const r = this.#ranges[k];
      if (!r) continue;
      const f = uniform(g, r[0], r[1]);
      drawn.push("bcs"[k] + f);
      img = k === 0
        ? adjustBrightness(img, f)
        : k === 1
        ? adjustContrast(img, f)
        : adjustSaturation(img, f);
    }
    record(g, `jitter=${drawn.join(",")}`);
    return img;
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "ColorJitter", args: [this.#options] };
  }
}

function adjustBrightness(img: RawImage, f: number): RawImage {
  const out = newRawImage(img.width, img.height, img.channels, img.mode);
  blendInto(out.data, () => 0, img.data, f);
  return out;
}

function adjustContrast(img: RawImage, f: number): RawImage {
  const l = luma(img);
  let sum = 0;
  for (let i = 0; i < l.length; i++) sum += l[i];
  const mean = Math.trunc(sum / l.length + 0.5);
  const out = newRawImage(img.width, img.height, img.channels, img.mode);
  blendInto(out.data, () => mean, img.data, f);
  return out;
}

function adjustSaturation(img: RawImage, f: number): RawImage {
  if (img.channels === 1) return img; // gray: saturation is a no-op
  const l = luma(img);
  const out = newRawImage(img.width, img.height, 3, img.mode);
  blendInto(out.data, (i) => l[(i / 3) | 0], img.data, f);
  return out;
}

/**
 * Converts to gray with PIL's `convert("L")` weights (torchvision's
 * `Grayscale`); with `numOutputChannels: 3` the gray plane stands for R, G
 * and B.
 */
export class Grayscale extends Transform {
  /**
   * Creates the transform.
   *
   * @param numOutputChannels 1 (default) or 3.
   */
  constructor(readonly numOutputChannels: 1 | 3 = 1) {
    super();
    if (numOutputChannels !== 1 && numOutputChannels !== 3) {
      throw new RangeError("Grayscale: numOutputChannels must be 1 or 3");
    }
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike): ImageLike {
    const img = need8("Grayscale", image);
    return {
      width: img.width,
      height: img.height,
      channels: 1,
      mode: this.numOutputChannels === 3 ? "RGB" : "L",
      data: luma(img),
    };
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "Grayscale", args: [this.numOutputChannels] };
  }
}

// ---- to tensor ---------------------------------------------------------------

/**
 * Converts an 8-bit image to a float32 CHW image in [0, 1]
 * (torchvision's `ToTensor`: `v / 255`). A gray-stored RGB image gives three
 * equal planes.
 */
export class ToTensor extends Transform {
  /** Applies the transform (see the class description). */
  apply(image: ImageLike): ImageLike {
    if (isFloatImage(image)) return image;
    return toFloat(image, [0, 0, 0], [1, 1, 1]);
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "ToTensor", args: [] };
  }
}

/**
 * `((v / 255) - mean[c]) / std[c]` in float32, each step rounded to float32
 * as torch does, through a 256-entry table per channel.
 */
function toFloat(
  img: RawImage,
  mean: readonly number[],
  std: readonly number[],
): FloatImage {
  const C = outChannels(img);
  const n = img.width * img.height;
  const out = pixelArray(C * n);
  const lut = new Float32Array(256);
  const f = Math.fround;
  for (let c = 0; c < C; c++) {
    const m = f(mean[c % mean.length]), s = f(std[c % std.length]);
    for (let v = 0; v < 256; v++) lut[v] = f(f(f(v / 255) - m) / s);
    const src = img.data, base = c * n;
    if (img.channels === 1) {
      for (let i = 0; i < n; i++) out[base + i] = lut[src[i]];
    } else {
      for (let i = 0, p = c; i < n; i++, p += 3) out[base + i] = lut[src[p]];
    }
  }
  return { channels: C, height: img.height, width: img.width, data: out };
}

/**
 * Normalises each channel: `(x - mean[c]) / std[c]` (torchvision's
 * `Normalize`). Directly after `ToTensor` the two run as one table lookup
 * with the same float32 results.
 */
export class Normalize extends Transform {
  /**
   * Creates the transform.
   *
   * @param mean Per-channel means (one value is used for every channel).
   * @param std Per-channel standard deviations.
   */
  constructor(
    readonly mean: readonly number[],
    readonly std: readonly number[],
  ) {
    super();
    if (std.some((s) => s === 0)) {
      throw new RangeError(
        `Normalize: std ${JSON.stringify(std)} contains a zero`,
      );
    }
  }
  /** Applies the transform (see the class description). */
  apply(image: ImageLike): ImageLike {
    if (!isFloatImage(image)) {
      throw new TypeError(
        "Normalize expects a float image: place it after ToTensor()",
      );
    }
    const C = image.channels, n = image.width * image.height;
    if (this.mean.length !== 1 && this.mean.length !== C) {
      throw new RangeError(
        `Normalize: ${this.mean.length} means for an image of ${C} channels`,
      );
    }
    const out = new Float32Array(image.data.length);
    const f = Math.fround;
    for (let c = 0; c < C; c++) {
      const m = f(this.mean[c % this.mean.length]),
        s = f(this.std[c % this.std.length]);
      for (let i = c * n; i < (c + 1) * n; i++) {
        out[i] = f(image.data[i] - m) / s;
      }
    }
    return { ...image, data: out };
  }
  /** Describes the transform, for Workers to rebuild it. */
  override spec(): TransformSpec {
    return { name: "Normalize", args: [this.mean, this.std] };
  }
}

/** ToTensor immediately followed by Normalize, as one table lookup. */
class NormalizedToTensor extends Transform {
  constructor(readonly norm: Normalize) {
    super();
  }
  apply(image: ImageLike): ImageLike {
    if (isFloatImage(image)) return this.norm.apply(image);
    const C = outChannels(image);
    if (this.norm.mean.length !== 1 && this.norm.mean.length !== C) {
      return this.norm.apply(toFloat(image, [0], [1]));
    }
    return toFloat(image, this.norm.mean, this.norm.std);
  }
}

/** Replaces each ToTensor + Normalize pair by one fused step. */
export function fuse(ts: readonly Transform[]): Transform[] {
  const out: Transform[] = [];
  for (let i = 0; i < ts.length; i++) {
    if (ts[i] instanceof ToTensor && ts[i + 1] instanceof Normalize) {
      out.push(new NormalizedToTensor(ts[i + 1] as Normalize));
      i++;
    } else out.push(ts[i]);
  }
  return out;
}

/**
 * Turns a transform's output into a float CHW image: `ToTensor` for an 8-bit
 * image, nothing for a float one.
 *
 * @param x A transform's output.
 * @returns A float image.
 */
export function asFloatImage(x: ImageLike): FloatImage {
  return isFloatImage(x) ? x : toFloat(x, [0, 0, 0], [1, 1, 1]);
}

// ---- rebuilding from specs ---------------------------------------------------

// deno-lint-ignore no-explicit-any
const registry: Record<string, (...a: any[]) => Transform> = {
  Resize: (s, o) => new Resize(s, o),
  CenterCrop: (s) => new CenterCrop(s),
  Pad: (p, o) => new Pad(p, o),
  RandomCrop: (s, o) => new RandomCrop(s, o),
  RandomResizedCrop: (s, o) => new RandomResizedCrop(s, o),
  RandomHorizontalFlip: (p) => new RandomHorizontalFlip(p),
  RandomVerticalFlip: (p) => new RandomVerticalFlip(p),
  RandomRotation: (r, o) => new RandomRotation(r, o),
  ColorJitter: (o) => new ColorJitter(o),
  Grayscale: (n) => new Grayscale(n),
  ToTensor: () => new ToTensor(),
  Normalize: (m, s) => new Normalize(m, s),
};

/**
 * Rebuilds a transform from its {@linkcode TransformSpec}.
 *
 * @param spec A description from `spec()`.
 * @returns The transform.
 */
export function fromSpec(spec: TransformSpec): Transform {
  const make = registry[spec.name];
  if (!make) throw new TypeError(`Unknown transform "${spec.name}"`);
  return make(...spec.args);
}
