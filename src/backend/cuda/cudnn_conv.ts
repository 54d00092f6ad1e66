/**
 * cuDNN convolution: forward (with the bias added by `cudnnAddTensor`),
 * backward data and backward filter, each with the algorithm
 * {@link ConvAlgorithms} chose for its shape, and one growable workspace
 * shared by all of them.
 *
 * @module
 */

import type { Conv2dGeometry } from "../backend.ts";
import type {
  ConvAlgorithms,
  CudnnMathMode,
  DeviceAlloc,
  DeviceBuffer,
} from "./cudnn_algos.ts";
import { type CudnnContext, ONE, ptr, ZERO } from "./cudnn_descriptors.ts";

/** The convolutions of one cuDNN handle and their shared workspace. */
export class CudnnConvolution {
  readonly #ctx: CudnnContext;
  readonly #algos: ConvAlgorithms;
  readonly #alloc: DeviceAlloc;
  #ws: DeviceBuffer | null = null;
  #wsBytes = 0;
  #wsPointer: Deno.PointerValue = null;

  /**
   * Starts with no workspace.
   *
   * @param ctx The handle and its descriptors.
   * @param algos The algorithm search.
   * @param alloc Device memory for the workspace.
   */
  constructor(ctx: CudnnContext, algos: ConvAlgorithms, alloc: DeviceAlloc) {
    this.#ctx = ctx;
    this.#algos = algos;
    this.#alloc = alloc;
  }

  /** Bytes in the shared workspace now. */
  get workspaceBytes(): number {
    return this.#wsBytes;
  }

  /** The shared workspace, grown to at least `bytes`. */
  #workspace(bytes: number): Deno.PointerValue {
    if (bytes > this.#wsBytes) {
      this.free();
      const ws = this.#alloc(bytes);
      this.#ws = ws;
      this.#wsBytes = bytes;
      this.#wsPointer = ptr(ws.ptr);
    }
    return this.#wsPointer;
  }

  /** Gives the workspace back (a later call allocates a new one). */
  free(): void {
    this.#ws?.free();
    this.#ws = null;
    this.#wsBytes = 0;
    this.#wsPointer = null;
  }

  /**
   * `y = conv2d(x, w) + bias` (see `Cudnn.conv2dForward`).
   *
   * @param x Input address.
   * @param w Weight address.
   * @param bias Bias address, or null.
   * @param y Output address.
   * @param g The geometry.
   * @param mode The math mode.
   */
  forward(
    x: bigint,
    w: bigint,
    bias: bigint | null,
    y: bigint,
    g: Conv2dGeometry,
    mode: CudnnMathMode,
  ): void {
    const { api, handle, check, descriptors } = this.#ctx;
    const plan = this.#algos.plan(g);
    const a = this.#algos.choose("forward", plan, g, mode, x, w, y);
    const ws = this.#workspace(a.workspaceBytes);
    check(
      api.cudnnConvolutionForward(
        handle,
        ONE,
        plan.x,
        ptr(x),
        plan.w,
        ptr(w),
        a.conv,
        a.algo,
        ws,
        BigInt(a.workspaceBytes),
        ZERO,
        plan.y,
        ptr(y),
      ),
      "cudnnConvolutionForward",
    );
    if (bias !== null) {
      check(
        api.cudnnAddTensor(
          handle,
          ONE,
          descriptors.tensor(1, g.k, 1, 1),
          ptr(bias),
          ONE,
          plan.y,
          ptr(y),
        ),
        "cudnnAddTensor",
      );
    }
  }

  /**
   * `dx` from `dy` and w (see `Cudnn.conv2dBackwardData`).
   *
   * @param dy Output-gradient address.
   * @param w Weight address.
   * @param dx Input-gradient address.
   * @param g The geometry.
   * @param mode The math mode.
   */
  backwardData(
    dy: bigint,
    w: bigint,
    dx: bigint,
    g: Conv2dGeometry,
    mode: CudnnMathMode,
  ): void {
    const { api, handle, check } = this.#ctx;
    const plan = this.#algos.plan(g);
    const a = this.#algos.choose("backwardData", plan, g, mode, w, dy, dx);
    const ws = this.#workspace(a.workspaceBytes);
    check(
      api.cudnnConvolutionBackwardData(
        handle,
        ONE,
        plan.w,
        ptr(w),
        plan.y,
        ptr(dy),
        a.conv,
        a.algo,
        ws,
        BigInt(a.workspaceBytes),
        ZERO,
        plan.x,
        ptr(dx),
      ),
      "cudnnConvolutionBackwardData",
    );
  }

  /**
   * `dw` from x and dy (see `Cudnn.conv2dBackwardFilter`).
   *
   * @param x Input address.
   * @param dy Output-gradient address.
   * @param dw Weight-gradient address.
   * @param g The geometry.
   * @param mode The math mode.
   */
  backwardFilter(
    x: bigint,
    dy: bigint,
    dw: bigint,
    g: Conv2dGeometry,
    mode: CudnnMathMode,
  ): void {
    const { api, handle, check } = this.#ctx;
    const plan = this.#algos.plan(g);
    const a = this.#algos.choose("backwardFilter", plan, g, mode, x, dy, dw);
    const ws = this.#workspace(a.workspaceBytes);
    check(
      api.cudnnConvolutionBackwardFilter(
        handle,
        ONE,
        plan.x,
        ptr(x),
        plan.y,
        ptr(dy),
        a.conv,
        a.algo,
        ws,
        BigInt(a.workspaceBytes),
        ZERO,
        plan.w,
        ptr(dw),
      ),
      "cudnnConvolutionBackwardFilter",
    );
  }
}
