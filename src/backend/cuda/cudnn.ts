/**
 * Convolution and batch norm through the cuDNN 9 legacy API, on raw device
 * addresses (bigint) and the geometry types of the backend contract. The
 * CUDA backend owns storage and streams; a {@link Cudnn} owns one cuDNN
 * handle bound to the backend's stream and puts together the parts, one file
 * per concern:
 *
 * - `cudnn_descriptors.ts`: status checking ({@link CudnnError}) and the
 *   tensor, filter, convolution and batch-norm descriptors, made once per
 *   shape and cached;
 * - `cudnn_algos.ts`: the convolution algorithm per shape, direction and
 *   math mode, chosen once and cached;
 * - `cudnn_conv.ts`: the three convolution directions and one growable
 *   workspace;
 * - `cudnn_norm.ts`: batch norm, with the contract's `BatchNormGeometry`.
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
 *   average of variance[x]". `resultSaveInvVariance` is `1/sqrt(var + eps)`
 *   (the batch inverse std, despite the name; microsoft/onnxruntime#8172),
 *   which is the contract's `invStd`. cuDNN needs non-null scale and bias:
 *   pass buffers of ones and zeros when the layer has no affine parameters.
 *   The backward pass takes `eps` (the header: "Same epsilon as forward
 *   pass").
 * - **Not here.** Pooling and activations stay on the NVRTC kernels
 *   (`pool.ts`, `elementwise.ts`): max pooling's backward is defined by
 *   indices in the contract, and average pooling through cuDNN (9.19, H100)
 *   crashed a gradient check; the cuDNN pooling, ReLU, `addTensor` and
 *   bias-gradient wrappers that no backend path called were removed.
 *
 * What has run on a GPU: this convolution and batch-norm code (before it was
 * split into these files; the calls are unchanged) on one NVIDIA H100 80GB
 * HBM3 with driver 580, CUDA 13.0 and cuDNN 9.19, through
 * `bench/gpu_check.sh`: the real-GPU suites (`tests/cuda/conformance_test.ts`,
 * `backend_test.ts`, and `models_test.ts`, which compares the models' logits,
 * loss, gradients and batch-norm running buffers with the CPU backend) and the
 * GPU benchmarks in README.md. Not verified on a GPU: the running variance
 * against PyTorch's directly, TF32 mode's results, and the fallbacks when
 * Find fails. The marshalling of every call is tested against a stand-in
 * library on any machine (`tests/cuda/cudnn_ffi_test.ts`).
 *
 * @module
 */

import type { BatchNormGeometry, Conv2dGeometry } from "../backend.ts";
import {
  type ConvAlgoChoice,
  ConvAlgorithms,
  type ConvDirection,
  type CudnnAlgoSearch,
  type CudnnMathMode,
  type DeviceAlloc,
} from "./cudnn_algos.ts";
import { CudnnConvolution } from "./cudnn_conv.ts";
import {
  type CudnnApi,
  type CudnnContext,
  CudnnDescriptors,
  CudnnError,
  ptr,
} from "./cudnn_descriptors.ts";
import {
  batchNormBackward,
  batchNormEval,
  batchNormTrain,
  type CudnnBatchNormBackward,
  type CudnnBatchNormEval,
  type CudnnBatchNormTrain,
} from "./cudnn_norm.ts";

export type {
  ConvAlgoChoice,
  ConvDirection,
  CudnnAlgoSearch,
  CudnnApi,
  CudnnBatchNormBackward,
  CudnnBatchNormEval,
  CudnnBatchNormTrain,
  CudnnMathMode,
  DeviceAlloc,
};
export type { DeviceBuffer } from "./cudnn_algos.ts";
export { CudnnError };

const DEFAULT_WORKSPACE_LIMIT = 2 ** 30;

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
  readonly #handle: Deno.PointerObject;
  readonly #ctx: CudnnContext;
  readonly #descs: CudnnDescriptors;
  readonly #algos: ConvAlgorithms;
  readonly #conv: CudnnConvolution;
  /** `cudnnGetVersion()`, e.g. 91700. */
  readonly version: number;
  #mode: CudnnMathMode = "fp32";
  #destroyed = false;
  readonly #errorText = new Uint8Array(1024);

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
    const api = lib.symbols;
    this.#api = api;
    const check = (rc: number, call: string) => {
      if (rc !== 0) throw new CudnnError(call, rc, this.statusText(rc));
    };
    this.version = Number(api.cudnnGetVersion());
    const out = new BigUint64Array(1);
    check(api.cudnnCreate(out), "cudnnCreate");
    const handle = ptr(out[0]);
    if (handle === null) {
      throw new CudnnError("cudnnCreate", 0, "it returned a NULL handle");
    }
    this.#handle = handle;
    try {
      check(api.cudnnSetStream(handle, stream), "cudnnSetStream");
    } catch (e) {
      api.cudnnDestroy(handle);
      throw e;
    }
    this.#descs = new CudnnDescriptors(api, check);
    this.#ctx = { api, handle, check, descriptors: this.#descs };
    this.#algos = new ConvAlgorithms(this.#ctx, {
      search: options.algoSearch ?? "find",
      limit: options.workspaceLimitBytes ?? DEFAULT_WORKSPACE_LIMIT,
      synchronize: options.synchronize ?? (() => {}),
      alloc,
    });
    this.#conv = new CudnnConvolution(this.#ctx, this.#algos, alloc);
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
    return this.#conv.workspaceBytes;
  }

  /** How many descriptors and algorithm choices are cached. */
  get cacheSizes(): {
    tensors: number;
    filters: number;
    convolutions: number;
    algorithms: number;
  } {
    return { ...this.#descs.counts, algorithms: this.#algos.count };
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
    return this.#algos.cached(dir, g, this.#mode);
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
    this.#conv.forward(x, w, bias, y, g, this.#mode);
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
    this.#conv.backwardData(dy, w, dx, g, this.#mode);
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
    this.#conv.backwardFilter(x, dy, dw, g, this.#mode);
  }

  // ---- batch norm ----------------------------------------------------------

  /**
   * Training-mode batch norm over `[n, c, hw]` (spatial): normalises with
   * the batch statistics, updates the running buffers in place when given
   * (`exponentialAverageFactor` = PyTorch's momentum; unbiased variance, as
   * PyTorch), and saves the batch mean and `1/sqrt(var + eps)` for backward.
   *
   * @param b The buffers.
   * @param g Sizes, `eps` (>= 0 in cuDNN 9) and `momentum`; `activation` is
   *   not applied.
   */
  batchNormTrain(b: CudnnBatchNormTrain, g: BatchNormGeometry): void {
    this.#live();
    batchNormTrain(this.#ctx, b, g);
  }

  /**
   * Inference-mode batch norm with fixed statistics:
   * `y = weight * (x - mean) / sqrt(var + eps) + bias`.
   *
   * @param b The buffers.
   * @param g Sizes and `eps`; `activation` is not applied.
   */
  batchNormEval(b: CudnnBatchNormEval, g: BatchNormGeometry): void {
    this.#live();
    batchNormEval(this.#ctx, b, g);
  }

  /**
   * Gradients of training-mode batch norm from the saved batch statistics;
   * `dx`, `dweight`, `dbias` are overwritten.
   *
   * @param b The buffers.
   * @param g Sizes and the forward's `eps`.
   */
  batchNormBackward(b: CudnnBatchNormBackward, g: BatchNormGeometry): void {
    this.#live();
    batchNormBackward(this.#ctx, b, g);
  }

  // ---- teardown ------------------------------------------------------------

  /**
   * Destroys every cached descriptor, frees the workspace and destroys the
   * handle. Work already queued keeps running; later calls throw.
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#descs.destroy();
    this.#algos.clear();
    this.#conv.free();
    this.#ctx.check(this.#api.cudnnDestroy(this.#handle), "cudnnDestroy");
  }

  /** Same as {@link destroy}, for `using`. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}
