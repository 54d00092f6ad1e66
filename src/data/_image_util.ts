/**
 * Small helpers on the image types.
 *
 * @module
 */

import type { FloatImage, ImageLike, RawImage } from "./image.ts";

/**
 * Tells a float image from an 8-bit one.
 *
 * @param x A transform's input or output.
 * @returns Whether `x` is a {@linkcode FloatImage}.
 */
export function isFloatImage(x: ImageLike): x is FloatImage {
  return x.data instanceof Float32Array;
}

/**
 * The channels `ToTensor` makes of an 8-bit image.
 *
 * @param img An 8-bit image.
 * @returns The number of channels it has for `ToTensor`: 3 for `"RGB"`, 1
 * for `"L"`.
 */
export function outChannels(img: RawImage): 1 | 3 {
  return img.mode === "RGB" ? 3 : 1;
}

/**
 * Makes a new 8-bit image.
 *
 * @param width Width in pixels.
 * @param height Height in pixels.
 * @param channels Stored channels.
 * @param mode The PIL mode it stands for.
 * @returns A zero-filled (black) image.
 */
export function newRawImage(
  width: number,
  height: number,
  channels: 1 | 3,
  mode: "RGB" | "L",
): RawImage {
  return {
    width,
    height,
    channels,
    mode,
    data: new Uint8Array(width * height * channels),
  };
}
