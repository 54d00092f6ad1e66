/**
 * cuDNN descriptors: the handle's status checking, and the tensor, filter,
 * convolution and batch-norm descriptors the other `cudnn_*.ts` files use,
 * each made once per shape and cached until {@link CudnnDescriptors.destroy}.
 * A descriptor whose `cudnnSet*` call fails is destroyed at once, never
 * cached.
 *
 * @module
 */

import type { Conv2dGeometry } from "../backend.ts";
import {
  CUDNN_BATCHNORM_SPATIAL,
  CUDNN_CROSS_CORRELATION,
  CUDNN_DATA_FLOAT,
  CUDNN_TENSOR_NCHW,
  type CudnnLib,
} from "../../../ffi/cudnn.ts";

/** The cuDNN functions a `Cudnn` calls. */
export type CudnnApi = CudnnLib["symbols"];

/** A cuDNN call returned an error status. */
export class CudnnError extends Error {
  /** The function that failed, e.g. `cudnnConvolutionForward`. */
  readonly call: string;
  /** The `cudnnStatus_t` it returned. */
  readonly code: number;
  /**
   * Describes a failed cuDNN call.
   *
   * @param call The function that failed.
   * @param code Its status.
   * @param detail cuDNN's text for it (`cudnnGetErrorString`, and
   *   `cudnnGetLastErrorString` when present).
   */
  constructor(call: string, code: number, detail: string) {
    super(`Cannot run ${call} (cuDNN): ${detail}`);
    this.name = "CudnnError";
    this.call = call;
    this.code = code;
  }
}

/** Turns a non-zero `cudnnStatus_t` of `call` into a {@link CudnnError}. */
export type CudnnCheck = (rc: number, call: string) => void;

/** What the convolution and batch-norm files need from a `Cudnn`. */
export interface CudnnContext {
  /** The library's functions. */
  readonly api: CudnnApi;
  /** The `cudnnHandle_t`. */
  readonly handle: Deno.PointerObject;
  /** Status checking. */
  readonly check: CudnnCheck;
  /** The descriptor caches. */
  readonly descriptors: CudnnDescriptors;
}

/** The scalars `alpha = 1` and `beta = 0` (cuDNN reads them from host). */
export const ONE: Float32Array = new Float32Array([1]);
/** See {@link ONE}. */
export const ZERO: Float32Array = new Float32Array([0]);

/**
 * A device address as a pointer.
 *
 * @param addr The address.
 * @returns The pointer (null for 0).
 */
export function ptr(addr: bigint): Deno.PointerValue {
  return Deno.UnsafePointer.create(addr);
}

/**
 * An optional device address as a pointer.
 *
 * @param addr The address, or null.
 * @returns The pointer, or null.
 */
export function optPtr(addr: bigint | null): Deno.PointerValue {
  return addr === null ? null : Deno.UnsafePointer.create(addr);
}

type DescKind = "tensor" | "filter" | "convolution";

/** The descriptors of one cuDNN handle, cached by shape. */
export class CudnnDescriptors {
  readonly #api: CudnnApi;
  readonly #check: CudnnCheck;
  readonly #out = new BigUint64Array(1);
  readonly #tensors = new Map<string, Deno.PointerObject>();
  readonly #filters = new Map<string, Deno.PointerObject>();
  readonly #convs = new Map<string, Deno.PointerObject>();
  readonly #bn = new Map<number, Deno.PointerObject>();

  /**
   * Starts with empty caches.
   *
   * @param api The library's functions.
   * @param check Status checking.
   */
  constructor(api: CudnnApi, check: CudnnCheck) {
    this.#api = api;
    this.#check = check;
  }

  /** How many descriptors of each kind are cached. */
  get counts(): { tensors: number; filters: number; convolutions: number } {
    return {
      tensors: this.#tensors.size + this.#bn.size,
      filters: this.#filters.size,
      convolutions: this.#convs.size,
    };
  }

  #create(kind: DescKind): Deno.PointerObject {
    const api = this.#api;
    const out = this.#out;
    out[0] = 0n;
    let rc: number;
    let call: string;
    switch (kind) {
      case "tensor":
        call = "cudnnCreateTensorDescriptor";
        rc = api.cudnnCreateTensorDescriptor(out);
        break;
      case "filter":
        call = "cudnnCreateFilterDescriptor";
        rc = api.cudnnCreateFilterDescriptor(out);
        break;
      case "convolution":
        call = "cudnnCreateConvolutionDescriptor";
        rc = api.cudnnCreateConvolutionDescriptor(out);
        break;
    }
    this.#check(rc, call);
    const p = ptr(out[0]);
    if (p === null) throw new CudnnError(call, 0, "it returned NULL");
    return p;
  }

  #destroy(kind: DescKind, d: Deno.PointerObject): number {
    const api = this.#api;
    switch (kind) {
      case "tensor":
        return api.cudnnDestroyTensorDescriptor(d);
      case "filter":
        return api.cudnnDestroyFilterDescriptor(d);
      case "convolution":
        return api.cudnnDestroyConvolutionDescriptor(d);
    }
  }

  /** Creates a descriptor and runs `set` on it; destroys it if `set` throws. */
  #make(
    kind: DescKind,
    set: (d: Deno.PointerObject) => void,
  ): Deno.PointerObject {
    const d = this.#create(kind);
    try {
      set(d);
    } catch (e) {
      this.#destroy(kind, d);
      throw e;
    }
    return d;
  }

  /**
   * A packed NCHW float32 tensor descriptor, cached by its dims.
   *
   * @param n Batch.
   * @param c Channels.
   * @param h Height.
   * @param w Width.
   * @returns The descriptor.
   */
  tensor(n: number, c: number, h: number, w: number): Deno.PointerObject {
    const key = `${n},${c},${h},${w}`;
    let d = this.#tensors.get(key);
    if (d === undefined) {
      d = this.#make("tensor", (t) =>
        this.#check(
          this.#api.cudnnSetTensor4dDescriptor(
            t,
            CUDNN_TENSOR_NCHW,
            CUDNN_DATA_FLOAT,
            n,
            c,
            h,
            w,
          ),
          "cudnnSetTensor4dDescriptor",
        ));
      this.#tensors.set(key, d);
    }
    return d;
  }

  /**
   * A KCRS float32 filter descriptor, cached by its dims.
   *
   * @param k Output channels.
   * @param c Input channels per group.
   * @param r Kernel height.
   * @param s Kernel width.
   * @returns The descriptor.
   */
  filter(k: number, c: number, r: number, s: number): Deno.PointerObject {
    const key = `${k},${c},${r},${s}`;
    let d = this.#filters.get(key);
    if (d === undefined) {
      d = this.#make("filter", (f) =>
        this.#check(
          this.#api.cudnnSetFilter4dDescriptor(
            f,
            CUDNN_DATA_FLOAT,
            CUDNN_TENSOR_NCHW,
            k,
            c,
            r,
            s,
          ),
          "cudnnSetFilter4dDescriptor",
        ));
      this.#filters.set(key, d);
    }
    return d;
  }

  /**
   * A cross-correlation descriptor with float compute, cached by padding,
   * stride, dilation, groups and math type.
   *
   * @param g The geometry.
   * @param mathType A `cudnnMathType_t`.
   * @returns The descriptor.
   */
  convolution(g: Conv2dGeometry, mathType: number): Deno.PointerObject {
    const key =
      `${g.padding}|${g.stride}|${g.dilation}|${g.groups}|${mathType}`;
    let d = this.#convs.get(key);
    if (d === undefined) {
      const api = this.#api;
      d = this.#make("convolution", (c) => {
        this.#check(
          api.cudnnSetConvolution2dDescriptor(
            c,
            g.padding[0],
            g.padding[1],
            g.stride[0],
            g.stride[1],
            g.dilation[0],
            g.dilation[1],
            CUDNN_CROSS_CORRELATION,
            CUDNN_DATA_FLOAT,
          ),
          "cudnnSetConvolution2dDescriptor",
        );
        this.#check(
          api.cudnnSetConvolutionGroupCount(c, g.groups),
          "cudnnSetConvolutionGroupCount",
        );
        this.#check(
          api.cudnnSetConvolutionMathType(c, mathType),
          "cudnnSetConvolutionMathType",
        );
      });
      this.#convs.set(key, d);
    }
    return d;
  }

  /**
   * Batch norm's x as `[n, c, hw, 1]` and its derived (spatial)
   * `[1, c, 1, 1]` descriptor, the latter cached by `c`.
   *
   * @param n Batch.
   * @param c Channels.
   * @param hw Elements per channel and sample.
   * @returns `[x, derived]`.
   */
  batchNorm(
    n: number,
    c: number,
    hw: number,
  ): [Deno.PointerObject, Deno.PointerObject] {
    const x = this.tensor(n, c, hw, 1);
    let bn = this.#bn.get(c);
    if (bn === undefined) {
      bn = this.#make("tensor", (d) =>
        this.#check(
          this.#api.cudnnDeriveBNTensorDescriptor(
            d,
            x,
            CUDNN_BATCHNORM_SPATIAL,
          ),
          "cudnnDeriveBNTensorDescriptor",
        ));
      this.#bn.set(c, bn);
    }
    return [x, bn];
  }

  /** Destroys every cached descriptor once and empties the caches. */
  destroy(): void {
    const all: [DescKind, Map<unknown, Deno.PointerObject>][] = [
      ["tensor", this.#tensors],
      ["tensor", this.#bn],
      ["filter", this.#filters],
      ["convolution", this.#convs],
    ];
    for (const [kind, ds] of all) {
      for (const d of ds.values()) this.#destroy(kind, d);
      ds.clear();
    }
  }
}
