/**
 * Convolution, batch norm, pooling and ReLU through the cuDNN 9 legacy API,
 * on raw device addresses (bigint) and the geometry types of the backend
 * contract. The CUDA backend owns storage and streams; this class owns one
 * cuDNN handle bound to the backend's stream, the descriptors (made once per
 * shape and cached), the convolution algorithm per shape (chosen once and
 * cached) and one growable workspace.
 *
 * Decisions, with their sources:
 *
 * - **Math mode.** Strict fp32 by default: convolution descriptors get
 *   `CUDNN_FMA_MATH`. The cuDNN documentation of `cudnnMathType_t`: "On
 *   pre-NVIDIA A100 GPU devices, CUDNN_DEFAULT_MATH and CUDNN_FMA_MATH have
 *   the same behavior: Tensor Core kernels will not be selected. With NVIDIA
 *   Ampere GPU architecture and CUDA Toolkit 11, CUDNN_DEFAULT_MATH permits
 *   TF32 Tensor Core operation and CUDNN_FMA_MATH does not" (so DEFAULT is not
 *   strict on an H100); PyTorch and Caffe2 set FMA_MATH exactly when
 *   `allow_tf32` is off (reference `cuda_ffi.md` §1.6). `setMathMode("tf32")`
 *   switches to `CUDNN_DEFAULT_MATH`, as PyTorch does with `allow_tf32`, and
 *   then, like PyTorch, runs each algorithm with the math type its perf result
 *   reports. `NVIDIA_TF32_OVERRIDE=0` in the environment also forbids TF32.
 * - **Algorithms.** On first use of a convolution shape (per direction and
 *   math mode): the `_v7` heuristic ranks the candidates and sizes a
 *   temporary workspace (the largest candidate's need, at most
 *   `workspaceLimitBytes`), allocated from the callback; then
 *   `cudnnFind*AlgorithmEx` times them on the caller's buffers (it clobbers
 *   the output, which is about to be written anyway) and the fastest
 *   successful one wins. When Find fails or nothing it timed succeeded, the
 *   heuristic's first usable candidate is taken. In strict fp32 mode results
 *   reporting a tensor-op math type are skipped. The choice and its workspace
 *   size (`cudnnGet*WorkspaceSize`) are cached.
 * - **Batch norm.** `exponentialAverageFactor` is PyTorch's `momentum`:
 *   cuDNN's header documents `runningMean = newMean*factor +
 *   runningMean*(1-factor)`, the variance likewise, which is PyTorch's
 *   `(1-momentum)*running + momentum*batch`. cuDNN's running variance is the
 *   unbiased (n-1) estimate, as PyTorch's is: PyTorch's own cuDNN batch-norm
 *   path hands its running buffers to cuDNN unchanged, and MXNet's
 *   maintainers measured cuDNN's moving variance to be `v / (n - 1)`
 *   (apache/mxnet#18751, #21111). The header itself only says "moving
 *   average of variance[x]", so a GPU test against PyTorch must confirm it.
 *   `resultSaveInvVariance` is `1/sqrt(var + eps)` (the batch inverse std,
 *   despite the name; microsoft/onnxruntime#8172), which is the contract's
 *   `invStd`. cuDNN needs non-null scale and bias: pass buffers of
 *   ones and zeros when the layer has no affine parameters. The backward pass
 *   takes `eps` (the header: "Same epsilon as forward pass").
 * - **Pooling.** See {@link Cudnn.poolingSupport} for what cuDNN can do
 *   (no dilation; ceil mode through a larger output descriptor) and
 *   {@link Cudnn.maxPool2dBackward} for why max pooling needs `x` and `y`
 *   instead of indices.
 *
 * Nothing here has run on a GPU yet: the marshalling is tested against a
 * mock library (`tests/cuda/cudnn_ffi_test.ts`).
 *
 * @module
 */

import type { Conv2dGeometry, Pool2dGeometry } from "../backend.ts";
import {
  CUDNN_ACTIVATION_RELU,
  CUDNN_ALGO_PERF_LAYOUT,
  CUDNN_BATCHNORM_SPATIAL,
  CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
  CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
  CUDNN_CROSS_CORRELATION,
  CUDNN_DATA_FLOAT,
  CUDNN_DEFAULT_MATH,
  CUDNN_FMA_MATH,
  CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
  CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
  CUDNN_POOLING_MAX_DETERMINISTIC,
  CUDNN_PROPAGATE_NAN,
  CUDNN_TENSOR_NCHW,
  CUDNN_TENSOR_OP_MATH,
  CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,
  type CudnnAlgoPerf,
  type CudnnLib,
  readAlgoPerf,
} from "../../../ffi/cudnn.ts";

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

/** Options of a {@link Cudnn}. */
export interface CudnnOptions {
  /**
   * `"find"` (default) times the candidates with `cudnnFind*AlgorithmEx` on
   * the first call of each shape, as PyTorch's `cudnn.benchmark = True`
   * does; `"heuristic"` takes the `_v7` heuristic's first usable candidate.
   */
  algoSearch?: CudnnAlgoSearch;
  /**
   * The most workspace an algorithm may use, and the size cap of the
   * temporary workspace `Find` benchmarks with (default 1 GiB).
   */
  workspaceLimitBytes?: number;
  /**
   * Waits for the stream. Called around each `cudnnFind*AlgorithmEx`, whose
   * timing runs must finish before its temporary workspace goes back to the
   * allocator (without it, runs with many new shapes crashed on an H100).
   */
  synchronize?: () => void;
}

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

/** Which pooling a geometry is asked for. */
export type PoolKind = "max" | "avg";

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

/** The cuDNN functions a {@link Cudnn} calls. */
export type CudnnApi = CudnnLib["symbols"];

const ONE = new Float32Array([1]);
const ZERO = new Float32Array([0]);
const DEFAULT_WORKSPACE_LIMIT = 2 ** 30;

function ptr(addr: bigint): Deno.PointerValue {
  return Deno.UnsafePointer.create(addr);
}

function optPtr(addr: bigint | null): Deno.PointerValue {
  return addr === null ? null : Deno.UnsafePointer.create(addr);
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

/** Descriptors of one convolution shape, and its algorithms. */
interface ConvPlan {
  x: Deno.PointerObject;
  w: Deno.PointerObject;
  y: Deno.PointerObject;
  /** Keyed by `${direction}|${mode}`. */
  algos: Map<string, ConvAlgoChoice & { conv: Deno.PointerObject }>;
}

type DescKind = "tensor" | "filter" | "convolution" | "pooling" | "activation";

/**
 * cuDNN for one stream. Every method queues work on that stream and returns
 * at once; every status is checked and turned into a {@link CudnnError}.
 * Addresses are device addresses as bigint; all tensors are contiguous NCHW
 * float32.
 *
 * @example Wire it into the CUDA backend (needs a GPU)
 * ```ts ignore
 * import { openCudnn } from "../../../ffi/cudnn.ts";
 * const { lib } = openCudnn();
 * const dnn = new Cudnn(lib, device.stream, (bytes) => {
 *   const b = allocator.alloc(bytes);
 *   return { ptr: b.addr, free: () => allocator.release(b) };
 * });
 * dnn.conv2dForward(x.ptr, w.ptr, bias?.ptr ?? null, y.ptr, g);
 * ```
 */
export class Cudnn {
  readonly #api: CudnnApi;
  readonly #alloc: DeviceAlloc;
  readonly #handle: Deno.PointerObject;
  readonly #search: CudnnAlgoSearch;
  readonly #limit: number;
  readonly #sync: () => void;
  /** `cudnnGetVersion()`, e.g. 91700. */
  readonly version: number;
  #mode: CudnnMathMode = "fp32";
  #destroyed = false;

  // out-parameters, made once
  readonly #outPtr = new BigUint64Array(1);
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
  readonly #errorText = new Uint8Array(1024);

  // descriptor caches
  readonly #tensors = new Map<string, Deno.PointerObject>();
  readonly #filters = new Map<string, Deno.PointerObject>();
  readonly #convs = new Map<string, Deno.PointerObject>();
  readonly #pools = new Map<string, Deno.PointerObject>();
  readonly #bn = new Map<number, Deno.PointerObject>();
  readonly #plans = new Map<string, ConvPlan>();
  #relu: Deno.PointerObject | null = null;
  readonly #algoCounts = new Map<ConvDirection, number>();

  // the workspace
  #ws: DeviceBuffer | null = null;
  #wsBytes = 0;
  #wsPointer: Deno.PointerValue = null;

  /**
   * Creates the handle and binds it to `stream`.
   *
   * @param lib The opened cuDNN (`openCudnn()` from `ffi/cudnn.ts`).
   * @param stream The `cudaStream_t` (a `CUstream`) all work goes to; null
   *   for the legacy default stream.
   * @param alloc Device memory for workspaces.
   * @param options Algorithm search and the workspace limit.
   */
  constructor(
    lib: { readonly symbols: CudnnApi },
    stream: Deno.PointerValue,
    alloc: DeviceAlloc,
    options: CudnnOptions = {},
  ) {
    this.#api = lib.symbols;
    this.#alloc = alloc;
    this.#search = options.algoSearch ?? "find";
    this.#limit = options.workspaceLimitBytes ?? DEFAULT_WORKSPACE_LIMIT;
    this.#sync = options.synchronize ?? (() => {});
    this.version = Number(this.#api.cudnnGetVersion());
    this.#check(this.#api.cudnnCreate(this.#outPtr), "cudnnCreate");
    const handle = ptr(this.#outPtr[0]);
    if (handle === null) {
      throw new CudnnError("cudnnCreate", 0, "it returned a NULL handle");
    }
    this.#handle = handle;
    try {
      this.#check(
        this.#api.cudnnSetStream(handle, stream),
        "cudnnSetStream",
      );
    } catch (e) {
      this.#api.cudnnDestroy(handle);
      throw e;
    }
  }

  // ---- errors --------------------------------------------------------------

  /**
   * cuDNN's words for a status: `NAME (code)`, then the last error message
   * when the library keeps one.
   *
   * @param code A `cudnnStatus_t`.
   * @returns The description.
   */
  statusText(code: number): string {
    const p = this.#api.cudnnGetErrorString(code);
    const name = p === null ? "unknown cudnnStatus_t" : (
      Deno.UnsafePointerView.getCString(p)
    );
    let text = `${name} (${code})`;
    const last = this.#api.cudnnGetLastErrorString;
    if (last) {
      this.#errorText.fill(0);
      last(this.#errorText, BigInt(this.#errorText.length - 1));
      const end = this.#errorText.indexOf(0);
      const msg = new TextDecoder().decode(this.#errorText.subarray(0, end))
        .trim();
      if (msg) text += `: ${msg}`;
    }
    return text;
  }

  #check(rc: number, call: string): void {
    if (rc !== 0) throw new CudnnError(call, rc, this.statusText(rc));
  }

  #live(): void {
    if (this.#destroyed) {
      throw new ReferenceError(
        "Cannot use cuDNN: this handle was destroyed",
      );
    }
  }

  // ---- settings ------------------------------------------------------------

  /**
   * Chooses strict fp32 (`CUDNN_FMA_MATH`, the default) or TF32
   * (`CUDNN_DEFAULT_MATH`) for convolutions from now on. Algorithms are cached
   * per mode, so switching back and forth costs nothing after the first use.
   *
   * @param mode `"fp32"` or `"tf32"`.
   */
  setMathMode(mode: CudnnMathMode): void {
    if (mode !== "fp32" && mode !== "tf32") {
      throw new TypeError(
        `Cannot set the cuDNN math mode: "${mode}" is not "fp32" or "tf32"`,
      );
    }
    this.#mode = mode;
  }

  /** The current math mode. */
  get mathMode(): CudnnMathMode {
    return this.#mode;
  }

  /** Bytes in the shared workspace now. */
  get workspaceBytes(): number {
    return this.#wsBytes;
  }

  /** How many descriptors and algorithm choices are cached. */
  get cacheSizes(): {
    tensors: number;
    filters: number;
    convolutions: number;
    poolings: number;
    algorithms: number;
  } {
    let algorithms = 0;
    for (const p of this.#plans.values()) algorithms += p.algos.size;
    return {
      tensors: this.#tensors.size + this.#bn.size,
      filters: this.#filters.size,
      convolutions: this.#convs.size,
      poolings: this.#pools.size,
      algorithms,
    };
  }

  // ---- descriptors ---------------------------------------------------------

  #create(kind: DescKind): Deno.PointerObject {
    const api = this.#api;
    const out = this.#outPtr;
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
      case "pooling":
        call = "cudnnCreatePoolingDescriptor";
        rc = api.cudnnCreatePoolingDescriptor(out);
        break;
      case "activation":
        call = "cudnnCreateActivationDescriptor";
        rc = api.cudnnCreateActivationDescriptor(out);
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
      case "pooling":
        return api.cudnnDestroyPoolingDescriptor(d);
      case "activation":
        return api.cudnnDestroyActivationDescriptor(d);
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

  /** A packed NCHW float32 tensor descriptor, cached by its dims. */
  #tensor(n: number, c: number, h: number, w: number): Deno.PointerObject {
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

  /** A KCRS float32 filter descriptor, cached by its dims. */
  #filter(k: number, c: number, r: number, s: number): Deno.PointerObject {
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

  /** A cross-correlation descriptor with float compute, per math type. */
  #conv(g: Conv2dGeometry, mathType: number): Deno.PointerObject {
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

  #plan(g: Conv2dGeometry): ConvPlan {
    const key = convKey(g);
    let p = this.#plans.get(key);
    if (p === undefined) {
      checkConv(g);
      p = {
        x: this.#tensor(g.n, g.c, g.h, g.w),
        w: this.#filter(g.k, g.c / g.groups, g.r, g.s),
        y: this.#tensor(g.n, g.k, g.oh, g.ow),
        algos: new Map(),
      };
      this.#plans.set(key, p);
    }
    return p;
  }

  // ---- workspace -----------------------------------------------------------

  /** The shared workspace, grown to at least `bytes`. */
  #workspace(bytes: number): Deno.PointerValue {
    if (bytes > this.#wsBytes) {
      if (this.#ws) {
        this.#ws.free();
        this.#ws = null;
        this.#wsBytes = 0;
        this.#wsPointer = null;
      }
      const ws = this.#alloc(bytes);
      this.#ws = ws;
      this.#wsBytes = bytes;
      this.#wsPointer = ptr(ws.ptr);
    }
    return this.#wsPointer;
  }

  // ---- algorithm choice ----------------------------------------------------

  #maxCount(dir: ConvDirection): number {
    let n = this.#algoCounts.get(dir);
    if (n !== undefined) return n;
    const api = this.#api;
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
      if (fn(this.#handle, this.#outCount) === 0 && this.#outCount[0] > 0) {
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

  #usable(p: CudnnAlgoPerf, maxBytes: number): boolean {
    return p.status === 0 && p.memory <= maxBytes &&
      (this.#mode === "tf32" || !isTensorOp(p.mathType));
  }

  /** The `_v7` heuristic's ranking. */
  #heuristic(
    dir: ConvDirection,
    plan: ConvPlan,
    conv: Deno.PointerObject,
  ): CudnnAlgoPerf[] {
    const api = this.#api;
    const h = this.#handle;
    const n = this.#maxCount(dir);
    this.#outCount[0] = 0;
    const bytes = this.#perfBytes;
    if (dir === "forward") {
      this.#check(
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
      this.#check(
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
      this.#check(
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
        ws = this.#alloc(wsBytes);
      } catch {
        wsBytes = 0; // benchmark only the algorithms that need none
      }
    }
    const api = this.#api;
    const h = this.#handle;
    const n = this.#maxCount(dir);
    const wsp = ws ? ptr(ws.ptr) : null;
    const size = BigInt(ws ? wsBytes : 0);
    const bytes = this.#perfBytes;
    this.#outCount[0] = 0;
    this.#sync();
    try {
      if (dir === "forward") {
        this.#check(
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
        this.#check(
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
        this.#check(
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
      this.#sync();
      ws?.free();
    }
  }

  #workspaceSize(
    dir: ConvDirection,
    plan: ConvPlan,
    conv: Deno.PointerObject,
    algo: number,
  ): number {
    const api = this.#api;
    const h = this.#handle;
    this.#outSize[0] = 0n;
    if (dir === "forward") {
      this.#check(
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
      this.#check(
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
      this.#check(
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

  /** The cached algorithm for this shape, direction and math mode. */
  #algo(
    dir: ConvDirection,
    plan: ConvPlan,
    g: Conv2dGeometry,
    a: bigint,
    b: bigint,
    out: bigint,
  ): ConvAlgoChoice & { conv: Deno.PointerObject } {
    const key = `${dir}|${this.#mode}`;
    const cached = plan.algos.get(key);
    if (cached) return cached;

    const baseMath = this.#mode === "tf32"
      ? CUDNN_DEFAULT_MATH
      : CUDNN_FMA_MATH;
    const baseConv = this.#conv(g, baseMath);
    let heuristic: CudnnAlgoPerf[] = [];
    let heuristicError: unknown = null;
    try {
      heuristic = this.#heuristic(dir, plan, baseConv);
    } catch (e) {
      heuristicError = e;
    }
    let pick: CudnnAlgoPerf | undefined;
    let source: CudnnAlgoSearch = "heuristic";
    if (this.#search === "find") {
      let wsBytes = 0;
      for (const p of heuristic) {
        if (this.#usable(p, this.#limit)) wsBytes = Math.max(wsBytes, p.memory);
      }
      try {
        const found = this.#find(dir, plan, baseConv, a, b, out, wsBytes);
        pick = found.find((p) => this.#usable(p, Infinity));
        if (pick) source = "find";
      } catch (e) {
        if (!(e instanceof CudnnError)) throw e;
        // fall back to the heuristic below
      }
    }
    pick ??= heuristic.find((p) => this.#usable(p, this.#limit));
    if (!pick) {
      if (heuristicError) throw heuristicError;
      const seen = heuristic.map((p) =>
        `algo ${p.algo}: status ${p.status}, ${p.memory} bytes, math ${p.mathType}`
      );
      throw new CudnnError(
        `cudnnGetConvolution${dirName(dir)}Algorithm_v7`,
        0,
        `no usable algorithm for ${describeConv(g)} in ${this.#mode} mode ` +
          `(candidates: ${seen.join("; ") || "none"})`,
      );
    }
    // fp32 keeps FMA math whatever the result reports; tf32 runs the
    // algorithm with the math type it was timed or ranked with (PyTorch).
    const mathType = this.#mode === "tf32" &&
        pick.mathType >= CUDNN_DEFAULT_MATH && pick.mathType <= CUDNN_FMA_MATH
      ? pick.mathType
      : baseMath;
    const conv = this.#conv(g, mathType);
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

  /**
   * The algorithm cached for a convolution shape, direction and the current
   * math mode, if one was chosen.
   *
   * @param dir The direction.
   * @param g The geometry.
   * @returns The choice, or undefined before the first call.
   */
  algorithmFor(
    dir: ConvDirection,
    g: Conv2dGeometry,
  ): ConvAlgoChoice | undefined {
    const c = this.#plans.get(convKey(g))?.algos.get(`${dir}|${this.#mode}`);
    return c && {
      algo: c.algo,
      mathType: c.mathType,
      workspaceBytes: c.workspaceBytes,
      source: c.source,
    };
  }

  // ---- convolution ---------------------------------------------------------

  /**
   * `y = conv2d(x, w) + bias`: x `[n, c, h, w]`, w `[k, c/groups, r, s]`,
   * bias `[k]` or null, y `[n, k, oh, ow]` (overwritten).
   *
   * @param x Input address.
   * @param w Weight address.
   * @param bias Bias address, or null.
   * @param y Output address.
   * @param g The geometry (`oh`/`ow` must be the usual floor formula).
   */
  conv2dForward(
    x: bigint,
    w: bigint,
    bias: bigint | null,
    y: bigint,
    g: Conv2dGeometry,
  ): void {
    this.#live();
    const plan = this.#plan(g);
    const a = this.#algo("forward", plan, g, x, w, y);
    const ws = this.#workspace(a.workspaceBytes);
    this.#check(
      this.#api.cudnnConvolutionForward(
        this.#handle,
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
      this.#check(
        this.#api.cudnnAddTensor(
          this.#handle,
          ONE,
          this.#tensor(1, g.k, 1, 1),
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
   * `dx` from `dy` `[n, k, oh, ow]` and w; dx `[n, c, h, w]` is overwritten.
   *
   * @param dy Output-gradient address.
   * @param w Weight address.
   * @param dx Input-gradient address.
   * @param g The geometry.
   */
  conv2dBackwardData(
    dy: bigint,
    w: bigint,
    dx: bigint,
    g: Conv2dGeometry,
  ): void {
    this.#live();
    const plan = this.#plan(g);
    const a = this.#algo("backwardData", plan, g, w, dy, dx);
    const ws = this.#workspace(a.workspaceBytes);
    this.#check(
      this.#api.cudnnConvolutionBackwardData(
        this.#handle,
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
   * `dw` `[k, c/groups, r, s]` from x and dy (overwritten, not accumulated).
   *
   * @param x Input address.
   * @param dy Output-gradient address.
   * @param dw Weight-gradient address.
   * @param g The geometry.
   */
  conv2dBackwardFilter(
    x: bigint,
    dy: bigint,
    dw: bigint,
    g: Conv2dGeometry,
  ): void {
    this.#live();
    const plan = this.#plan(g);
    const a = this.#algo("backwardFilter", plan, g, x, dy, dw);
    const ws = this.#workspace(a.workspaceBytes);
    this.#check(
      this.#api.cudnnConvolutionBackwardFilter(
        this.#handle,
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

  /**
   * `db[k] = sum of dy[:, k, :, :]` (overwritten).
   *
   * @param dy Output-gradient address, `[n, k, oh, ow]`.
   * @param db Bias-gradient address, `[k]`.
   * @param g The geometry.
   */
  conv2dBackwardBias(dy: bigint, db: bigint, g: Conv2dGeometry): void {
    this.#live();
    this.#check(
      this.#api.cudnnConvolutionBackwardBias(
        this.#handle,
        ONE,
        this.#tensor(g.n, g.k, g.oh, g.ow),
        ptr(dy),
        ZERO,
        this.#tensor(1, g.k, 1, 1),
        ptr(db),
      ),
      "cudnnConvolutionBackwardBias",
    );
  }

  // ---- batch norm ----------------------------------------------------------

  /** x as `[n, c, hw, 1]` and its derived `[1, c, 1, 1]` descriptor. */
  #bnDescs(
    n: number,
    c: number,
    hw: number,
  ): [Deno.PointerObject, Deno.PointerObject] {
    const x = this.#tensor(n, c, hw, 1);
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

  /**
   * Training-mode batch norm over `[n, c, hw]` (spatial): normalises with
   * the batch statistics, updates the running buffers in place when given
   * (`exponentialAverageFactor` = PyTorch's momentum; unbiased variance, as
   * PyTorch), and saves the batch mean and `1/sqrt(var + eps)` for backward.
   *
   * @param x Input address.
   * @param y Output address (may equal x).
   * @param weight Scale `[c]` (ones when the layer has none).
   * @param bias Shift `[c]` (zeros when the layer has none).
   * @param runningMean Running mean `[c]`, or null (then also runningVar).
   * @param runningVar Running variance `[c]`, or null.
   * @param saveMean Out: batch mean `[c]`.
   * @param saveInvStd Out: batch `1/sqrt(var + eps)` `[c]`.
   * @param n Batch.
   * @param c Channels.
   * @param hw Spatial size (h*w; 1 for BatchNorm1d on `[n, c]`).
   * @param momentum PyTorch's momentum (0.1 by default).
   * @param eps Added to the variance (>= 0 in cuDNN 9).
   */
  batchNormTrain(
    x: bigint,
    y: bigint,
    weight: bigint,
    bias: bigint,
    runningMean: bigint | null,
    runningVar: bigint | null,
    saveMean: bigint,
    saveInvStd: bigint,
    n: number,
    c: number,
    hw: number,
    momentum: number,
    eps: number,
  ): void {
    this.#live();
    if ((runningMean === null) !== (runningVar === null)) {
      throw new TypeError(
        "Cannot run cuDNN batch norm: runningMean and runningVar must both " +
          "be given or both be null",
      );
    }
    const [xd, bn] = this.#bnDescs(n, c, hw);
    this.#check(
      this.#api.cudnnBatchNormalizationForwardTraining(
        this.#handle,
        CUDNN_BATCHNORM_SPATIAL,
        ONE,
        ZERO,
        xd,
        ptr(x),
        xd,
        ptr(y),
        bn,
        ptr(weight),
        ptr(bias),
        momentum,
        optPtr(runningMean),
        optPtr(runningVar),
        eps,
        ptr(saveMean),
        ptr(saveInvStd),
      ),
      "cudnnBatchNormalizationForwardTraining",
    );
  }

  /**
   * Inference-mode batch norm with fixed statistics:
   * `y = weight * (x - mean) / sqrt(var + eps) + bias`.
   *
   * @param x Input address, `[n, c, hw]`.
   * @param y Output address.
   * @param weight Scale `[c]` (ones when the layer has none).
   * @param bias Shift `[c]` (zeros when the layer has none).
   * @param runningMean Mean `[c]`.
   * @param runningVar Variance `[c]`.
   * @param n Batch.
   * @param c Channels.
   * @param hw Spatial size.
   * @param eps Added to the variance.
   */
  batchNormEval(
    x: bigint,
    y: bigint,
    weight: bigint,
    bias: bigint,
    runningMean: bigint,
    runningVar: bigint,
    n: number,
    c: number,
    hw: number,
    eps: number,
  ): void {
    this.#live();
    const [xd, bn] = this.#bnDescs(n, c, hw);
    this.#check(
      this.#api.cudnnBatchNormalizationForwardInference(
        this.#handle,
        CUDNN_BATCHNORM_SPATIAL,
        ONE,
        ZERO,
        xd,
        ptr(x),
        xd,
        ptr(y),
        bn,
        ptr(weight),
        ptr(bias),
        ptr(runningMean),
        ptr(runningVar),
        eps,
      ),
      "cudnnBatchNormalizationForwardInference",
    );
  }

  /**
   * Gradients of training-mode batch norm from the saved batch statistics;
   * `dx`, `dweight`, `dbias` are overwritten.
   *
   * @param x The forward input.
   * @param dy Output gradient.
   * @param weight Scale `[c]` (ones when the layer has none).
   * @param dx Out: input gradient.
   * @param dweight Out: scale gradient `[c]`.
   * @param dbias Out: shift gradient `[c]`.
   * @param saveMean The forward's saved mean.
   * @param saveInvStd The forward's saved `1/sqrt(var + eps)`.
   * @param n Batch.
   * @param c Channels.
   * @param hw Spatial size.
   * @param eps The forward's eps.
   */
  batchNormBackward(
    x: bigint,
    dy: bigint,
    weight: bigint,
    dx: bigint,
    dweight: bigint,
    dbias: bigint,
    saveMean: bigint,
    saveInvStd: bigint,
    n: number,
    c: number,
    hw: number,
    eps: number,
  ): void {
    this.#live();
    const [xd, bn] = this.#bnDescs(n, c, hw);
    this.#check(
      this.#api.cudnnBatchNormalizationBackward(
        this.#handle,
        CUDNN_BATCHNORM_SPATIAL,
        ONE,
        ZERO,
        ONE,
        ZERO,
        xd,
        ptr(x),
        xd,
        ptr(dy),
        xd,
        ptr(dx),
        bn,
        ptr(weight),
        ptr(dweight),
        ptr(dbias),
        eps,
        ptr(saveMean),
        ptr(saveInvStd),
      ),
      "cudnnBatchNormalizationBackward",
    );
  }

  // ---- pooling -------------------------------------------------------------

  /**
   * Why cuDNN cannot run this pooling, or null when it can. The CUDA backend
   * calls this first and uses its own kernels when it returns a reason.
   *
   * - Dilation: `cudnnSetPooling2dDescriptor` has none, so only `[1, 1]`.
   * - Padding: at most half the window (PyTorch's own limit).
   * - Output size: cuDNN sizes outputs by floor
   *   (`cudnnGetPooling2dForwardOutputDim`), but the y descriptor may be
   *   larger: cudnn.torch's `ceil()` mode passes exactly the ceil-mode output
   *   size. The window of an extra (ceil-mode) row or column hangs over the
   *   bottom/right edge, beyond the padding; cuDNN, like PyTorch, leaves the
   *   cells outside the input out of a max and out of an
   *   `EXCLUDE_PADDING` average. PyTorch's `countIncludePad` divisor counts
   *   padding only up to `h + pad` (not the overhang), while
   *   `INCLUDE_PADDING` presumably counts the whole window; so a ceil-mode
   *   average with `countIncludePad` whose last window reaches past
   *   `h + pad` is refused. Any `oh`/`ow` other than the floor size or one
   *   more is refused.
   *
   * @param kind `"max"` or `"avg"`.
   * @param g The geometry.
   * @returns The reason, or null.
   */
  poolingSupport(kind: PoolKind, g: Pool2dGeometry): string | null {
    return poolingSupport(kind, g);
  }

  #pool(kind: PoolKind, g: Pool2dGeometry): Deno.PointerObject {
    const reason = poolingSupport(kind, g);
    if (reason) {
      throw new RangeError(`Cannot run ${kind} pooling on cuDNN: ${reason}`);
    }
    const mode = kind === "max"
      ? CUDNN_POOLING_MAX_DETERMINISTIC
      : g.countIncludePad
      ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
      : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    const key = `${mode}|${g.kernel}|${g.padding}|${g.stride}`;
    let d = this.#pools.get(key);
    if (d === undefined) {
      d = this.#make("pooling", (p) =>
        this.#check(
          this.#api.cudnnSetPooling2dDescriptor(
            p,
            mode,
            CUDNN_PROPAGATE_NAN,
            g.kernel[0],
            g.kernel[1],
            g.padding[0],
            g.padding[1],
            g.stride[0],
            g.stride[1],
          ),
          "cudnnSetPooling2dDescriptor",
        ));
      this.#pools.set(key, d);
    }
    return d;
  }

  #poolForward(kind: PoolKind, x: bigint, y: bigint, g: Pool2dGeometry): void {
    this.#live();
    const pd = this.#pool(kind, g);
    this.#check(
      this.#api.cudnnPoolingForward(
        this.#handle,
        pd,
        ONE,
        this.#tensor(g.n, g.c, g.h, g.w),
        ptr(x),
        ZERO,
        this.#tensor(g.n, g.c, g.oh, g.ow),
        ptr(y),
      ),
      "cudnnPoolingForward",
    );
  }

  #poolBackward(
    kind: PoolKind,
    x: bigint,
    y: bigint,
    dy: bigint,
    dx: bigint,
    g: Pool2dGeometry,
  ): void {
    this.#live();
    const pd = this.#pool(kind, g);
    const xd = this.#tensor(g.n, g.c, g.h, g.w);
    const yd = this.#tensor(g.n, g.c, g.oh, g.ow);
    this.#check(
      this.#api.cudnnPoolingBackward(
        this.#handle,
        pd,
        ONE,
        yd,
        ptr(y),
        yd,
        ptr(dy),
        xd,
        ptr(x),
        ZERO,
        xd,
        ptr(dx),
      ),
      "cudnnPoolingBackward",
    );
  }

  /**
   * Max pooling `x` `[n, c, h, w]` → `y` `[n, c, oh, ow]` (NaN propagates,
   * as in PyTorch). cuDNN produces no argmax indices.
   *
   * @param x Input address.
   * @param y Output address.
   * @param g The geometry ({@link poolingSupport} must allow it).
   */
  maxPool2d(x: bigint, y: bigint, g: Pool2dGeometry): void {
    this.#poolForward("max", x, y, g);
  }

  /**
   * Gradient of max pooling into `dx` (overwritten). cuDNN keeps no indices:
   * it finds each window's maximum again from the forward's `x` and `y`, so
   * both must still be alive and unchanged. Mode
   * `CUDNN_POOLING_MAX_DETERMINISTIC` keeps the result repeatable; which cell
   * of a tied window receives the gradient is cuDNN's choice (PyTorch takes
   * the first) and must be checked on a GPU.
   *
   * How the backend calls it: the contract's `maxPool2d` returns int32
   * indices and `maxPool2dBackward(dy, indices, g)` gets no `x`/`y`, so the
   * CUDA backend should keep its own index kernels for max pooling (exact
   * PyTorch semantics; one max pool in a ResNet costs little) unless the
   * contract grows a variant that saves `x` and `y` (for example
   * `maxPool2dBackward(dy, indices, g, saved?: { x, y })`, with the op
   * keeping x and y alive for backward); then it calls
   * `maxPool2d(x, y, g)` forward and `maxPool2dBackward(x, y, dy, dx, g)`
   * backward, and `indices` may be left empty.
   *
   * @param x The forward input.
   * @param y The forward output.
   * @param dy Output gradient.
   * @param dx Out: input gradient.
   * @param g The geometry.
   */
  maxPool2dBackward(
    x: bigint,
    y: bigint,
    dy: bigint,
    dx: bigint,
    g: Pool2dGeometry,
  ): void {
    this.#poolBackward("max", x, y, dy, dx, g);
  }

  /**
   * Average pooling (`countIncludePad` picks `..._INCLUDE_PADDING` or
   * `..._EXCLUDE_PADDING`).
   *
   * @param x Input address.
   * @param y Output address.
   * @param g The geometry ({@link poolingSupport} must allow it).
   */
  avgPool2d(x: bigint, y: bigint, g: Pool2dGeometry): void {
    this.#poolForward("avg", x, y, g);
  }

  /**
   * Gradient of average pooling into `dx` (overwritten). It depends on
   * neither `x` nor `y`, and the contract's `avgPool2dBackward(dy, g)` has
   * neither, so `dy` is passed as cuDNN's `y` and `dx` as its `x`: buffers of
   * the right shapes whose values an average cannot use (to confirm on a
   * GPU).
   *
   * @param dy Output gradient, `[n, c, oh, ow]`.
   * @param dx Out: input gradient, `[n, c, h, w]`.
   * @param g The geometry.
   */
  avgPool2dBackward(dy: bigint, dx: bigint, g: Pool2dGeometry): void {
    this.#poolBackward("avg", dx, dy, dy, dx, g);
  }

  // ---- activation ----------------------------------------------------------

  #reluDesc(): Deno.PointerObject {
    if (this.#relu === null) {
      this.#relu = this.#make("activation", (a) =>
        this.#check(
          this.#api.cudnnSetActivationDescriptor(
            a,
            CUDNN_ACTIVATION_RELU,
            CUDNN_PROPAGATE_NAN,
            0,
          ),
          "cudnnSetActivationDescriptor",
        ));
    }
    return this.#relu;
  }

  /**
   * `y = max(x, 0)` (NaN stays NaN) over a packed tensor.
   *
   * @param x Input address.
   * @param y Output address (may equal x).
   * @param dims The tensor as `[n, c, h, w]` (any four factors of the
   *   element count, e.g. `[1, 1, 1, count]`).
   */
  reluForward(
    x: bigint,
    y: bigint,
    dims: readonly [number, number, number, number],
  ): void {
    this.#live();
    const d = this.#tensor(dims[0], dims[1], dims[2], dims[3]);
    this.#check(
      this.#api.cudnnActivationForward(
        this.#handle,
        this.#reluDesc(),
        ONE,
        d,
        ptr(x),
        ZERO,
        d,
        ptr(y),
      ),
      "cudnnActivationForward",
    );
  }

  /**
   * `dx = dy` where the forward output was positive, else 0 (overwritten).
   *
   * @param x The forward input.
   * @param y The forward output.
   * @param dy Output gradient.
   * @param dx Out: input gradient (may equal dy).
   * @param dims The tensor as `[n, c, h, w]`.
   */
  reluBackward(
    x: bigint,
    y: bigint,
    dy: bigint,
    dx: bigint,
    dims: readonly [number, number, number, number],
  ): void {
    this.#live();
    const d = this.#tensor(dims[0], dims[1], dims[2], dims[3]);
    this.#check(
      this.#api.cudnnActivationBackward(
        this.#handle,
        this.#reluDesc(),
        ONE,
        d,
        ptr(y),
        d,
        ptr(dy),
        d,
        ptr(x),
        ZERO,
        d,
        ptr(dx),
      ),
      "cudnnActivationBackward",
    );
  }

  /**
   * `c = alpha * a + beta * c`, with `a` broadcast over `c` where its dims
   * are 1 (as cuDNN allows).
   *
   * @param a Source address.
   * @param aDims Its `[n, c, h, w]`.
   * @param c Destination address.
   * @param cDims Its `[n, c, h, w]`.
   * @param alpha Scale of `a`.
   * @param beta Scale of `c`.
   */
  addTensor(
    a: bigint,
    aDims: readonly [number, number, number, number],
    c: bigint,
    cDims: readonly [number, number, number, number],
    alpha = 1,
    beta = 1,
  ): void {
    this.#live();
    const al = alpha === 1 ? ONE : new Float32Array([alpha]);
    const be = beta === 1 ? ONE : beta === 0 ? ZERO : new Float32Array([beta]);
    this.#check(
      this.#api.cudnnAddTensor(
        this.#handle,
        al,
        this.#tensor(aDims[0], aDims[1], aDims[2], aDims[3]),
        ptr(a),
        be,
        this.#tensor(cDims[0], cDims[1], cDims[2], cDims[3]),
        ptr(c),
      ),
      "cudnnAddTensor",
    );
  }

  // ---- teardown ------------------------------------------------------------

  /**
   * Destroys every cached descriptor, frees the workspace and destroys the
   * handle. Work already queued keeps running; later calls throw.
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const all: [DescKind, Iterable<Deno.PointerObject>][] = [
      ["tensor", this.#tensors.values()],
      ["tensor", this.#bn.values()],
      ["filter", this.#filters.values()],
      ["convolution", this.#convs.values()],
      ["pooling", this.#pools.values()],
      ["activation", this.#relu ? [this.#relu] : []],
    ];
    for (const [kind, ds] of all) for (const d of ds) this.#destroy(kind, d);
    this.#tensors.clear();
    this.#bn.clear();
    this.#filters.clear();
    this.#convs.clear();
    this.#pools.clear();
    this.#plans.clear();
    this.#relu = null;
    this.#ws?.free();
    this.#ws = null;
    this.#wsBytes = 0;
    this.#wsPointer = null;
    this.#check(this.#api.cudnnDestroy(this.#handle), "cudnnDestroy");
  }

  /** Same as {@link destroy}, for `using`. */
  [Symbol.dispose](): void {
    this.destroy();
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

/**
 * Why cuDNN cannot run this pooling, or null when it can (see
 * {@link Cudnn.poolingSupport}).
 *
 * @param kind `"max"` or `"avg"`.
 * @param g The geometry.
 * @returns The reason, or null.
 */
export function poolingSupport(
  kind: PoolKind,
  g: Pool2dGeometry,
): string | null {
  if (g.dilation[0] !== 1 || g.dilation[1] !== 1) {
    return `dilation [${g.dilation}] (cuDNN pooling has none)`;
  }
  for (const i of [0, 1] as const) {
    if (g.padding[i] < 0 || 2 * g.padding[i] > g.kernel[i]) {
      return `padding [${g.padding}] is not within half the window ` +
        `[${g.kernel}]`;
    }
  }
  const sizes = [g.h, g.w] as const;
  const outs = [g.oh, g.ow] as const;
  for (const i of [0, 1] as const) {
    const floor = Math.floor(
      (sizes[i] + 2 * g.padding[i] - g.kernel[i]) / g.stride[i],
    ) + 1;
    if (outs[i] === floor) continue;
    if (outs[i] !== floor + 1) {
      return `output [${g.oh}, ${g.ow}] is neither the floor nor the ceil ` +
        `size for input [${g.h}, ${g.w}]`;
    }
    const lastEnd = (outs[i] - 1) * g.stride[i] - g.padding[i] + g.kernel[i];
    if (
      kind === "avg" && g.countIncludePad && lastEnd > sizes[i] + g.padding[i]
    ) {
      return "ceil mode with countIncludePad: the last window reaches past " +
        "the padding, where PyTorch's divisor and cuDNN's differ";
    }
  }
  return null;
}
