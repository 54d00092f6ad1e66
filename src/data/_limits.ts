/**
 * The decoder's pixel limit and how an option resolves to it.
 *
 * @module
 */

/** Pillow's `Image.MAX_IMAGE_PIXELS` (see `data.MAX_IMAGE_PIXELS`). */
export const DEFAULT_MAX_IMAGE_PIXELS = 89_478_485;

/**
 * The pixel limit an option asks for.
 *
 * @param value `maxImagePixels` as given: a positive number, `Infinity`,
 * `null` (no limit) or `undefined` (the default).
 * @param who The caller, for the message.
 * @returns The limit (`Infinity` for none).
 * @throws {RangeError} When `value` is not a positive number or `null`.
 */
export function resolveMaxImagePixels(
  value: number | null | undefined,
  who: string,
): number {
  if (value === undefined) return DEFAULT_MAX_IMAGE_PIXELS;
  if (value === null) return Infinity;
  if (typeof value !== "number" || !(value > 0)) {
    throw new RangeError(
      `${who}: maxImagePixels must be a positive number, Infinity or null, got ${value}`,
    );
  }
  return value;
}
