/**
 * The argument arena behind `cuLaunchKernel`'s `kernelParams`.
 *
 * `kernelParams` is an array of pointers, one per kernel parameter, each to
 * that parameter's value. A {@link KernelArgs} is built once per kernel: one
 * long-lived `ArrayBuffer` holding every value at its natural alignment, and
 * a `BigUint64Array` of the addresses into it. A launch only rewrites the
 * values in place (a few `DataView` writes) and passes `params`; the driver
 * copies the values when the launch is queued, so the arena can be rewritten
 * for the next launch at once.
 *
 * @module
 */

/** The kinds of kernel parameters kdeno's CUDA C uses. */
export type ArgKind =
  /** A device pointer (`float*`, `int*`, `u32*`): 8 bytes. */
  | "ptr"
  /** `int`. */
  | "i32"
  /** `unsigned int` (element counts). */
  | "u32"
  /** `float`. */
  | "f32"
  /** `double`. */
  | "f64"
  /** `KdLayout<1>`: `int ndim, shape[8], st[1][8]`. */
  | "layout1"
  /** `KdLayout<2>`: `int ndim, shape[8], st[2][8]`. */
  | "layout2"
  /** `KdLayout<3>`: `int ndim, shape[8], st[3][8]`. */
  | "layout3"
  /** `KdConv`: 16 ints of convolution geometry. */
  | "conv"
  /** `KdPool`: 15 ints of pooling geometry. */
  | "pool";

/** Size and alignment in bytes of each parameter kind, as in the PTX. */
export const ARG_LAYOUT: Readonly<
  Record<ArgKind, { size: number; align: number }>
> = {
  ptr: { size: 8, align: 8 },
  i32: { size: 4, align: 4 },
  u32: { size: 4, align: 4 },
  f32: { size: 4, align: 4 },
  f64: { size: 8, align: 8 },
  layout1: { size: 4 + 32 + 32, align: 4 },
  layout2: { size: 4 + 32 + 64, align: 4 },
  layout3: { size: 4 + 32 + 96, align: 4 },
  conv: { size: 64, align: 4 },
  pool: { size: 60, align: 4 },
};

/** A reusable argument arena for one kernel signature. */
export class KernelArgs {
  /** The parameter kinds, in order. */
  readonly kinds: readonly ArgKind[];
  /** Byte offset of each parameter in the arena. */
  readonly offsets: readonly number[];
  /** The arena. */
  readonly view: DataView;
  /** `void** kernelParams`: the address of each parameter's value. */
  readonly params: BigUint64Array;
  readonly #buffer: ArrayBuffer;

  /** @param kinds The kernel's parameters, in order. */
  constructor(kinds: readonly ArgKind[]) {
    this.kinds = kinds;
    const offsets: number[] = [];
    let at = 0;
    for (const kind of kinds) {
      const { size, align } = ARG_LAYOUT[kind];
      at = Math.ceil(at / align) * align;
      offsets.push(at);
      at += size;
    }
    this.offsets = offsets;
    this.#buffer = new ArrayBuffer(Math.max(8, Math.ceil(at / 8) * 8));
    this.view = new DataView(this.#buffer);
    const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#buffer));
    this.params = new BigUint64Array(
      offsets.map((o) => BigInt(base) + BigInt(o)),
    );
  }

  /**
   * Writes a device pointer.
   * @param i Parameter index.
   * @param addr The device address (0n for NULL).
   * @returns this
   */
  ptr(i: number, addr: bigint): this {
    this.view.setBigUint64(this.offsets[i], addr, true);
    return this;
  }

  /**
   * Writes an `int`.
   * @param i Parameter index.
   * @param v The value.
   * @returns this
   */
  i32(i: number, v: number): this {
    this.view.setInt32(this.offsets[i], v, true);
    return this;
  }

  /**
   * Writes an `unsigned int`.
   * @param i Parameter index.
   * @param v The value.
   * @returns this
   */
  u32(i: number, v: number): this {
    this.view.setUint32(this.offsets[i], v, true);
    return this;
  }

  /**
   * Writes a `float`.
   * @param i Parameter index.
   * @param v The value.
   * @returns this
   */
  f32(i: number, v: number): this {
    this.view.setFloat32(this.offsets[i], v, true);
    return this;
  }

  /**
   * Writes a `double`.
   * @param i Parameter index.
   * @param v The value.
   * @returns this
   */
  f64(i: number, v: number): this {
    this.view.setFloat64(this.offsets[i], v, true);
    return this;
  }

  /**
   * Writes consecutive `int`s into a struct parameter.
   * @param i Parameter index.
   * @param values The struct's fields, in order.
   * @returns this
   */
  ints(i: number, values: readonly number[]): this {
    const at = this.offsets[i];
    for (let j = 0; j < values.length; j++) {
      this.view.setInt32(at + 4 * j, values[j], true);
    }
    return this;
  }
}
