/**
 * cuDNN convolution algorithm search: per convolution shape, direction and
 * math mode, which algorithm runs and how much workspace it needs, chosen on
 * first use and cached (see the "Algorithms" decision in `cudnn.ts`).
 *
 * @module
 */

import type { Conv2dGeometry } from "../backend.ts";
import {
  CUDNN_ALGO_PERF_LAYOUT,
  CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
  CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
  CUDNN_DEFAULT_MATH,
  CUDNN_FMA_MATH,
  CUDNN_TENSOR_OP_MATH,
  CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,
  type CudnnAlgoPerf,
  readAlgoPerf,
} from "../../../ffi/cudnn.ts";
import { type CudnnContext, CudnnError, ptr } from "./cudnn_descriptors.ts";

/** Device memory handed out by the allocator callback. */
export interface DeviceBuffer {
  /** Its device address. */
  readonly ptr: bigint;
  /**
   * Gives it back. Work already queued on the stream may still use it, so
   * the allocator must reuse it only for work queued after (a caching
   * allocator on the same single stream does).
   */
  free(): void;
}

/** Allocates `bytes` of device memory; throws when it cannot. */
export type DeviceAlloc = (bytes: number) => DeviceBuffer;

/** `"fp32"`: no TF32 in convolutions (default); `"tf32"`: TF32 allowed. */
export type CudnnMathMode = "fp32" | "tf32";

/** How convolution algorithms are chosen. */
export type CudnnAlgoSearch = "find" | "heuristic";

/** The convolution directions, each with its own algorithm enum. */
export type ConvDirection = "forward" | "backwardData" | "backwardFilter";

/** The algorithm chosen for one convolution shape and direction. */
export interface ConvAlgoChoice {
  /** The algorithm enum value. */
  readonly algo: number;
  /** The math type the convolution descriptor runs it with. */
  readonly mathType: number;
  /** Workspace bytes it needs. */
  readonly workspaceBytes: number;
  /** `"find"` or `"heuristic"`: what chose it. */
  readonly source: CudnnAlgoSearch;
}

/** A {@link ConvAlgoChoice} with the convolution descriptor it runs with. */
export type ConvAlgoRun = ConvAlgoChoice & { conv: Deno.PointerObject };

/** Descriptors of one convolution shape, and its algorithms. */
export interface ConvPlan {
  /** x `[n, c, h, w]`. */
  x: Deno.PointerObject;
  /** w `[k, c/groups, r, s]`. */
  w: Deno.PointerObject;
  /** y `[n, k, oh, ow]`. */
  y: Deno.PointerObject;
  /** Keyed by `${direction}|${mode}`. */
  algos: Map<string, ConvAlgoRun>;
}

/** How a {@link ConvAlgorithms} searches. */
export interface ConvSearchOptions {
  /** Find (timing) or the heuristic alone. */
  search: CudnnAlgoSearch;
  /** The most workspace an algorithm may use. */
  limit: number;
  /** Waits for the stream (around each Find). */
  synchronize: () => void;
  /** Device memory for Find's temporary workspace. */
  alloc: DeviceAlloc;
}

function isTensorOp(mathType: number): boolean {
  return mathType === CUDNN_TENSOR_OP_MATH ||
    mathType === CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

function convOut(
  size: number,
  kernel: number,
  pad: number,
  stride: number,
  dil: number,
): number {
  return Math.floor((size + 2 * pad - dil * (kernel - 1) - 1) / stride) + 1;
}

function convKey(g: Conv2dGeometry): string {
  return `${g.n},${g.c},${g.h},${g.w}|${g.k},${g.r},${g.s}|${g.oh},${g.ow}|` +
    `${g.stride}|${g.padding}|${g.dilation}|${g.groups}`;
}

/** The plans and chosen algorithms of one cuDNN handle. */
export class ConvAlgorithms {
  readonly #ctx: CudnnContext;
  readonly #o: ConvSearchOptions;
  readonly #plans = new Map<string, ConvPlan>();
  readonly #algoCounts = new Map<ConvDirection, number>();
  // out-parameters, made once
  readonly #outSize = new BigUint64Array(1);
  readonly #outCount = new Int32Array(1);
  readonly #perfBytes = new Uint8Array(
    CUDNN_ALGO_PERF_LAYOUT.size *
      Math.max(
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
      ) * 2,
  );
  readonly #perfView = new DataView(this.#perfBytes.buffer);

  /**
   * Starts with no plans.
   *
   * @param ctx The handle and its descriptors.
   * @param options How to search.
   */
  constructor(ctx: CudnnContext, options: ConvSearchOptions) {
    this.#ctx = ctx;
    this.#o = options;
  }

  /** How many algorithm choices are cached. */
  get count(): number {
    let n = 0;
    for (const p of this.#plans.values()) n += p.algos.size;
    return n;
  }

  /** Forgets every plan (their descriptors belong to the descriptor cache). */
  clear(): void {
    this.#plans.clear();
  }

  /**
   * The descriptors of a convolution shape, after checking the geometry.
   *
   * @param g The geometry.
   * @returns Its plan.
   */
  plan(g: Conv2dGeometry): ConvPlan {
    const key = convKey(g);
    let p = this.#plans.get(key);
    if (p === undefined) {
      checkConv(g);
      const d = this.#ctx.descriptors;
      p = {
        x: d.tensor(g.n, g.c, g.h, g.w),
        w: d.filter(g.k, g.c / g.groups, g.r, g.s),
        y: d.tensor(g.n, g.k, g.oh, g.ow),
        algos: new Map(),
      };
      this.#plans.set(key, p);
    }
    return p;
  }

  /**
   * The algorithm cached for a shape, direction and math mode, if chosen.
   *
   * @param dir The direction.
   * @param g The geometry.
   * @param mode The math mode.
   * @returns The choice, or undefined before the first call.
   */
  cached(
    dir: ConvDirection,
    g: Conv2dGeometry,
    mode: CudnnMathMode,
  ): ConvAlgoChoice | undefined {
    const c = this.#plans.get(convKey(g))?.algos.get(`${dir}|${mode}`);
    return c && {
      algo: c.algo,
      mathType: c.mathType,
      workspaceBytes: c.workspaceBytes,
      source: c.source,
    };
  }

  #maxCount(dir: ConvDirection): number {
    let n = this.#algoCounts.get(dir);
    if (n !== undefined) return n;
    const api = this.#ctx.api;
    const [fn, fallback] = dir === "forward"
      ? [
        api.cudnnGetConvolutionForwardAlgorithmMaxCount,
        CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
      ]
      : dir === "backwardData"
      ? [
        api.cudnnGetConvolutionBackwardDataAlgorithmMaxCount,
        CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
      ]
      : [
        api.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount,
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
      ];
    n = fallback;
    if (fn) {
      this.#outCount[0] = 0;
      if (
        fn(this.#ctx.handle, this.#outCount) === 0 && this.#outCount[0] > 0
      ) {
        n = this.#outCount[0];
      }
    }
    const capacity = this.#perfBytes.length / CUDNN_ALGO_PERF_LAYOUT.size;
    n = Math.min(n, capacity);
    this.#algoCounts.set(dir, n);
    return n;
  }

  #readPerfs(): CudnnAlgoPerf[] {
    const out: CudnnAlgoPerf[] = [];
    const n = Math.min(
      this.#outCount[0],
      this.#perfBytes.length / CUDNN_ALGO_PERF_LAYOUT.size,
    );
    for (let i = 0; i < n; i++) out.push(readAlgoPerf(this.#perfView, i));
    return out;
  }

  /** The `_v7` heuristic's ranking. */
  #heuristic(
    dir: ConvDirection,
    plan: ConvPlan,
    conv: Deno.PointerObject,
  ): CudnnAlgoPerf[] {
    const { api, handle: h, check } = this.#ctx;
    const n = this.#maxCount(dir);
    this.#outCount[0] = 0;
    const bytes = this.#perfBytes;
    if (dir === "forward") {
      check(
        api.cudnnGetConvolutionForwardAlgorithm_v7(
          h,
          plan.x,
          plan.w,
          conv,
          plan.y,
          n,
          this.#outCount,
          bytes,
        ),
        "cudnnGetConvolutionForwardAlgorithm_v7",
      );
    } else if (dir === "backwardData") {
      check(
        api.cudnnGetConvolutionBackwardDataAlgorithm_v7(
          h,
          plan.w,
          plan.y,
          conv,
          plan.x,
          n,
          this.#outCount,
          bytes,
        ),
        "cudnnGetConvolutionBackwardDataAlgorithm_v7",
      );
    } else {
      check(
        api.cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          h,
          plan.x,
          plan.y,
          conv,
          plan.w,
          n,
          this.#outCount,
          bytes,
        ),
        "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
      );
    }
    return this.#readPerfs();
  }

  /**
   * `cudnnFind*AlgorithmEx` on the caller's buffers with a temporary
   * workspace of `wsBytes`; `a`, `b` are the two inputs and `out` the output
   * of the direction (x, w → y; w, dy → dx; x, dy → dw).
   */
  #find(
    dir: ConvDirection,
    plan: ConvPlan,
    conv: Deno.PointerObject,
    a: bigint,
    b: bigint,
    out: bigint,
    wsBytes: number,
  ): CudnnAlgoPerf[] {
    let ws: DeviceBuffer | null = null;
    if (wsBytes > 0) {
      try {
        ws = this.#o.alloc(wsBytes);
      } catch {
        wsBytes = 0; // benchmark only the algorithms that need none
      }
    }
    const { api, handle: h, check } = this.#ctx;
    const n = this.#maxCount(dir);
    const wsp = ws ? ptr(ws.ptr) : null;
    const size = BigInt(ws ? wsBytes : 0);
    const bytes = this.#perfBytes;
    this.#outCount[0] = 0;
    this.#o.synchronize();
    try {
      if (dir === "forward") {
        check(
          api.cudnnFindConvolutionForwardAlgorithmEx(
            h,
            plan.x,
            ptr(a),
            plan.w,
            ptr(b),
            conv,
            plan.y,
            ptr(out),
            n,
            this.#outCount,
            bytes,
            wsp,
            size,
          ),
          "cudnnFindConvolutionForwardAlgorithmEx",
        );
      } else if (dir === "backwardData") {
        check(
          api.cudnnFindConvolutionBackwardDataAlgorithmEx(
            h,
            plan.w,
            ptr(a),
            plan.y,
            ptr(b),
            conv,
            plan.x,
            ptr(out),
            n,
            this.#outCount,
            bytes,
            wsp,
            size,
          ),
          "cudnnFindConvolutionBackwardDataAlgorithmEx",
        );
      } else {
        check(
          api.cudnnFindConvolutionBackwardFilterAlgorithmEx(
            h,
            plan.x,
            ptr(a),
            plan.y,
            ptr(b),
            conv,
            plan.w,
            ptr(out),
            n,
            this.#outCount,
            bytes,
            wsp,
            size,
          ),
          "cudnnFindConvolutionBackwardFilterAlgorithmEx",
        );
      }
      return this.#readPerfs();
    } finally {
      this.#o.synchronize();
      ws?.free();
    }
  }

  #workspaceSize(
    dir: ConvDirection,
    plan: ConvPlan,
    conv: Deno.PointerObject,
    algo: number,
  ): number {
    const { api, handle: h, check } = this.#ctx;
    this.#outSize[0] = 0n;
    if (dir === "forward") {
      check(
        api.cudnnGetConvolutionForwardWorkspaceSize(
          h,
          plan.x,
          plan.w,
          conv,
          plan.y,
          algo,
          this.#outSize,
        ),
        "cudnnGetConvolutionForwardWorkspaceSize",
      );
    } else if (dir === "backwardData") {
      check(
        api.cudnnGetConvolutionBackwardDataWorkspaceSize(
          h,
          plan.w,
          plan.y,
          conv,
          plan.x,
          algo,
          this.#outSize,
        ),
        "cudnnGetConvolutionBackwardDataWorkspaceSize",
      );
    } else {
      check(
        api.cudnnGetConvolutionBackwardFilterWorkspaceSize(
          h,
          plan.x,
          plan.y,
          conv,
          plan.w,
          algo,
          this.#outSize,
        ),
        "cudnnGetConvolutionBackwardFilterWorkspaceSize",
      );
    }
    return Number(this.#outSize[0]);
  }

  /**
   * The cached algorithm for this shape, direction and math mode; chosen
   * now on first use. `a`, `b` and `out` are the direction's buffers, which
   * Find runs on (it clobbers `out`).
   *
   * @param dir The direction.
   * @param plan The shape's plan.
   * @param g The geometry.
   * @param mode The math mode.
   * @param a First input address.
   * @param b Second input address.
   * @param out Output address.
   * @returns The algorithm and the descriptor to run it with.
   */
  choose(
    dir: ConvDirection,
    plan: ConvPlan,
    g: Conv2dGeometry,
    mode: CudnnMathMode,
    a: bigint,
    b: bigint,
    out: bigint,
  ): ConvAlgoRun {
    const key = `${dir}|${mode}`;
    const cached = plan.algos.get(key);
    if (cached) return cached;

    const usable = (p: CudnnAlgoPerf, maxBytes: number) =>
      p.status === 0 && p.memory <= maxBytes &&
      (mode === "tf32" || !isTensorOp(p.mathType));
    const limit = this.#o.limit;
    const baseMath = mode === "tf32" ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    const baseConv = this.#ctx.descriptors.convolution(g, baseMath);
    let heuristic: CudnnAlgoPerf[] = [];
    let heuristicError: unknown = null;
    try {
      heuristic = this.#heuristic(dir, plan, baseConv);
    } catch (e) {
      heuristicError = e;
    }
    let pick: CudnnAlgoPerf | undefined;
    let source: CudnnAlgoSearch = "heuristic";
    if (this.#o.search === "find") {
      let wsBytes = 0;
      for (const p of heuristic) {
        if (usable(p, limit)) wsBytes = Math.max(wsBytes, p.memory);
      }
      try {
        const found = this.#find(dir, plan, baseConv, a, b, out, wsBytes);
        pick = found.find((p) => usable(p, Infinity));
        if (pick) source = "find";
      } catch (e) {
        if (!(e instanceof CudnnError)) throw e;
        // fall back to the heuristic below
      }
    }
    pick ??= heuristic.find((p) => usable(p, limit));
    if (!pick) {
      if (heuristicError) throw heuristicError;
      const seen = heuristic.map((p) =>
        `algo ${p.algo}: status ${p.status}, ${p.memory} bytes, math ${p.mathType}`
      );
      throw new CudnnError(
        `cudnnGetConvolution${dirName(dir)}Algorithm_v7`,
        0,
        `no usable algorithm for ${describeConv(g)} in ${mode} mode ` +
          `(candidates: ${seen.join("; ") || "none"})`,
      );
    }
    // fp32 keeps FMA math whatever the result reports; tf32 runs the
    // algorithm with the math type it was timed or ranked with (PyTorch).
    const mathType = mode === "tf32" &&
        pick.mathType >= CUDNN_DEFAULT_MATH && pick.mathType <= CUDNN_FMA_MATH
      ? pick.mathType
      : baseMath;
    const conv = this.#ctx.descriptors.convolution(g, mathType);
    const workspaceBytes = this.#workspaceSize(dir, plan, conv, pick.algo);
    const choice = {
      algo: pick.algo,
      mathType,
      workspaceBytes,
      source,
      conv,
    };
    plan.algos.set(key, choice);
    return choice;
  }
}

function dirName(dir: ConvDirection): string {
  return dir === "forward"
    ? "Forward"
    : dir === "backwardData"
    ? "BackwardData"
    : "BackwardFilter";
}

function describeConv(g: Conv2dGeometry): string {
  return `conv [${g.n}, ${g.c}, ${g.h}, ${g.w}] * [${g.k}, ` +
    `${g.c / g.groups}, ${g.r}, ${g.s}] stride [${g.stride}] padding ` +
    `[${g.padding}] dilation [${g.dilation}] groups ${g.groups}`;
}

function checkConv(g: Conv2dGeometry): void {
  const oh = convOut(g.h, g.r, g.padding[0], g.stride[0], g.dilation[0]);
  const ow = convOut(g.w, g.s, g.padding[1], g.stride[1], g.dilation[1]);
  const dims = [g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.oh, g.ow, g.groups];
  if (
    dims.some((v) => !Number.isInteger(v) || v < 1) ||
    g.c % g.groups !== 0 || g.k % g.groups !== 0
  ) {
    throw new RangeError(
      `Cannot run a cuDNN convolution: ${describeConv(g)} has a size below ` +
        "1 or channels not divisible by groups",
    );
  }
  if (oh !== g.oh || ow !== g.ow) {
    throw new RangeError(
      `Cannot run a cuDNN convolution: ${describeConv(g)} gives output ` +
        `[${oh}, ${ow}], not [${g.oh}, ${g.ow}]`,
    );
  }
}
