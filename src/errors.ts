/**
 * Typed errors. Each names what was wrong: the shapes, the dims, the file,
 * the keys, the library paths tried.
 *
 * @module
 */

/** Shapes that do not fit an operation, or a dim out of range. */
export class ShapeError extends RangeError {
  /**
   * Creates the error.
   *
   * @param message What was wrong, naming the shapes or dims.
   */
  constructor(message: string) {
    super(message);
    this.name = "ShapeError";
  }
}

/** A dtype an operation does not accept. */
export class DTypeError extends TypeError {
  /**
   * Creates the error.
   *
   * @param message What was wrong, naming the dtypes.
   */
  constructor(message: string) {
    super(message);
    this.name = "DTypeError";
  }
}

/** A tensor used after `dispose()`, or tensors on different devices. */
export class TensorStateError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "TensorStateError";
  }
}

/**
 * `backward()` reached a part of the graph that was already freed: by an
 * earlier `backward()` (pass `retainGraph: true` to keep it), or because a
 * tensor in it was disposed, by `dispose()` or on leaving `tidy()`.
 */
export class GraphFreedError extends TensorStateError {
  /**
   * Creates the error.
   *
   * @param message What was freed, by what, and what to do.
   * @param freedBy What freed the graph.
   */
  constructor(message: string, readonly freedBy: "backward" | "dispose") {
    super(message);
    this.name = "GraphFreedError";
  }
}

/** An unreadable, truncated or malformed checkpoint or state dict. */
export class CheckpointError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong, naming the file or keys.
   */
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

/** Unreadable or invalid data: an image, a folder, a label. */
export class DataError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong, naming the file or folder.
   */
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}

/**
 * An image whose header declares more pixels than the decoder's limit
 * (`maxImagePixels`, by default 89,478,485 as Pillow's `MAX_IMAGE_PIXELS`):
 * refused before anything is decoded. A `DataError`, so an `ImageFolder`
 * with `onError: "skip"` skips and counts it like any unreadable image.
 */
export class DecompressionBombError extends DataError {
  /**
   * Creates the error.
   *
   * @param message What was refused, naming the file, its size and the limit.
   */
  constructor(message: string) {
    super(message);
    this.name = "DecompressionBombError";
  }
}

/** Formats a shape as PyTorch users read it: `[2, 3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Bytes as people read them: `1.5 GiB`, `24 MiB`, `12 bytes`. */
export function fmtBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? +n.toPrecision(3) : n} ${units[i]}`;
}

/** A native library could not be loaded; `tried` lists every attempt. */
export class BackendUnavailableError extends Error {
  /** Every path or soname tried, with the reason it failed. */
  readonly tried: string[];
  /**
   * Creates the error.
   *
   * @param library The library that was looked for.
   * @param tried Each attempt as `path: reason`.
   * @param hint What the user can do about it.
   */
  constructor(library: string, tried: string[], hint = "") {
    super(
      `Cannot load ${library}` +
        (tried.length
          ? `: tried ${tried.length} location(s):\n  ${tried.join("\n  ")}`
          : "") +
        (hint ? `\n${hint}` : ""),
    );
    this.name = "BackendUnavailableError";
    this.tried = tried;
  }
}
