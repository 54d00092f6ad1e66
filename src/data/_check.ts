/**
 * Argument checks shared by the datasets.
 *
 * @module
 */

/**
 * Throws a `RangeError` unless `index` is an integer in `[0, length)`.
 *
 * @param index An index.
 * @param length The dataset's length.
 * @throws {RangeError} When `index` is not an integer in `[0, length)`.
 */
export function checkIndex(index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new RangeError(
      `Index ${index} is out of range for a dataset of length ${length}`,
    );
  }
}
