/**
 * The two image types the data pipeline passes between transforms, as plain
 * objects of typed arrays so that they cross to decoding Workers and back
 * without the tensor machinery:
 *
 * - {@linkcode RawImage}: 8-bit pixels, height × width × channels, what a PIL
 *   `Image` is to torchvision. Decoders return it; geometric and colour
 *   transforms take and return it.
 * - {@linkcode FloatImage}: float32 values, channels × height × width, what a
 *   `torch.Tensor` image is to torchvision. `ToTensor` makes it; `Normalize`
 *   works on it; the dataset turns it into a `Tensor`.
 *
 * @module
 */

/**
 * An 8-bit image, row-major, channels interleaved (`data[(y * width + x) *
 * channels + c]`), like a PIL image.
 *
 * `mode` is the PIL mode the image stands for: `"RGB"` or `"L"` (gray). An RGB
 * image whose three channels are equal may be stored once (`channels: 1`,
 * `mode: "RGB"`): a grayscale X-ray is decoded that way, so resizing and
 * caching touch a third of the bytes, and `ToTensor` writes the plane three
 * times, exactly as PIL's `convert("RGB")` would have made it.
 */
export interface RawImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Channels stored in `data`: 1 (one gray plane) or 3 (R, G, B). */
  channels: 1 | 3;
  /** The PIL mode it stands for: `"RGB"` (3 channels out) or `"L"` (1). */
  mode: "RGB" | "L";
  /** `width * height * channels` bytes. */
  data: Uint8Array;
}

/**
 * A float32 image, channels × height × width, row-major, like a torchvision
 * tensor image.
 */
export interface FloatImage {
  /** Number of channels. */
  channels: number;
  /** Height in pixels. */
  height: number;
  /** Width in pixels. */
  width: number;
  /** `channels * height * width` values. */
  data: Float32Array;
}

/** What a transform takes and returns. */
export type ImageLike = RawImage | FloatImage;
