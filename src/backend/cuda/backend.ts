/**
 * The CUDA backend: the kernel set of `src/backend/backend.ts` on device 0.
 * Each kernel family lives in its own file; this class wires them to one
 * runtime (device, caching allocator, kernel cache) and one cuBLAS handle.
 *
 * @module
 */

import type {
  AdamUpdate,
  AdaptivePool2dGeometry,
  Backend,
  BatchNormGeometry,
  BatchNormParams,
  BatchNormSaved,
  BinaryOp,
  Conv2dGeometry,
  DType,
  Pool2dGeometry,
  ReduceOp,
  SgdUpdate,
  Storage,
  TypedArray,
  UnaryOp,
} from "../backend.ts";
import type { CudaLibraries } from "../../../ffi/cuda_libs.ts";
import { type AllocatorStats, CachingAllocator } from "./allocator.ts";
import { kernelCacheDir, NvrtcCompiler } from "./compiler.ts";
import { CudaDevice } from "./device.ts";
import { KernelCache } from "./kernels.ts";
import {
  cuda,
  CudaRuntime,
  type CudaStorage,
  elementBytes,
} from "./runtime.ts";
import * as half from "./half.ts";
import { HALF_KERNEL_OPS, isHalfDType } from "../types.ts";
import { float32ToHalf } from "../half_bits.ts";
import { DTypeError } from "../../errors.ts";
import { Blas, getCudaMathMode } from "./gemm.ts";
import * as ew from "./elementwise.ts";
import * as ix from "./index_ops.ts";
import { reduce } from "./reduce.ts";
import { softmax, softmaxBackward } from "./softmax.ts";
import * as conv from "./conv.ts";
import * as pool from "./pool.ts";
import * as norm from "./norm.ts";
import { adamStep, sgdStep } from "./optim.ts";
import { Cudnn } from "./cudnn.ts";
import { openCudnn } from "../../../ffi/cudnn.ts";
import { KERNEL_MODULES } from "./modules.ts";

/** What the backend runs on and with. */
export interface CudaBackendInfo {
  /** Device name. */
  device: string;
  /** Compute capability, e.g. 90. */
  computeCapability: number;
  /** Streaming multiprocessors. */
  smCount: number;
  /** `cuDriverGetVersion`, e.g. 13000. */
  driverVersion: number;
  /** NVRTC version, e.g. `13.0`. */
  nvrtcVersion: string;
  /** What kernels are compiled for, e.g. `sm_90`. */
  kernelTarget: string;
  /** `cublasGetVersion_v2`, e.g. 130100. */
  cublasVersion: number;
  /** The library files that loaded. */
  libraries: CudaLibraries["paths"];
  /** Where compiled kernels are cached, if anywhere. */
  kernelCache: string | null;
  /** `cudnnGetVersion()` and the file that loaded, or why cuDNN is not used. */
  cudnn: { version: number; path: string } | { unavailable: string };
}

/** Options for {@link CudaBackend}. */
export interface CudaBackendOptions {
  /** Where compiled kernels are cached; null for no disk cache. */
  cacheDir?: string | null;
  /**
   * Use cuDNN for convolution, batch norm and average pooling when it loads
   * (default true; `KDENO_CUDNN=0` turns it off). Without it the NVRTC
   * kernels run.
   */
  cudnn?: boolean;
}

function cudnnWanted(option: boolean | undefined): boolean {
  if (option !== undefined) return option;
  try {
    return Deno.env.get("KDENO_CUDNN") !== "0";
  } catch {
    return true;
  }
}

const fillScratch = new DataView(new ArrayBuffer(4));

/**
 * Refuses float16 or bfloat16 storage in a kernel that reads 32-bit
 * elements: the ops layer computes half tensors in float32 (elementwise
 * ops, reductions, matrix products) and refuses the rest itself, so this is
 * the last guard.
 */
function noHalf(kernel: string, ...ss: Storage[]): void {
  for (const s of ss) {
    if (isHalfDType(s.dtype)) {
      throw new DTypeError(
        `Cannot run ${HALF_KERNEL_OPS[kernel] ?? kernel} on a ${s.dtype} ` +
          `tensor on CUDA: it takes float32 and int32 only; convert with ` +
          `.float() first`,
      );
    }
  }
}

/** The kernel set on a CUDA device. */
export class CudaBackend implements Backend {
  /** The device kind. */
  readonly name = "cuda" as const;
  /** What it runs on. */
  readonly info: CudaBackendInfo;
  readonly #rt: CudaRuntime;
  readonly #blas: Blas;
  readonly #dnn: Cudnn | null = null;
  /** Buffers of ones and zeros for batch norm without affine parameters. */
  readonly #affine = new Map<string, CudaStorage>();

  /**
   * Sets up device 0 (primary context, stream), the allocator, NVRTC and
   * cuBLAS. Kernels are compiled on first use.
   *
   * @param libs The opened libraries (see `openCudaLibraries`).
   * @param options Kernel cache location.
   */
  constructor(libs: CudaLibraries, options: CudaBackendOptions = {}) {
    const device = new CudaDevice(libs.driver);
    const allocator = new CachingAllocator({
      alloc: (bytes) => device.memAlloc(bytes),
      free: (addr) => device.memFree(addr),
    });
    const cacheDir = options.cacheDir === undefined
      ? kernelCacheDir()
      : options.cacheDir;
    const compiler = new NvrtcCompiler(
      libs.nvrtc,
      device.computeCapability,
      cacheDir,
    );
    this.#rt = new CudaRuntime(
      device,
      allocator,
      new KernelCache(device, compiler),
    );
    this.#blas = new Blas(libs.cublas, this.#rt);
    let dnnInfo: CudaBackendInfo["cudnn"];
    if (cudnnWanted(options.cudnn)) {
      try {
        const opened = openCudnn();
        const rt = this.#rt;
        this.#dnn = new Cudnn(
          opened.lib,
          device.stream,
          (bytes) => {
            const s = rt.alloc("float32", Math.ceil(bytes / 4));
            return { ptr: s.ptr, free: () => rt.free(s) };
          },
          { synchronize: () => device.synchronize() },
        );
        dnnInfo = { version: opened.version, path: opened.path };
      } catch (e) {
        dnnInfo = { unavailable: (e as Error).message.split("\n")[0] };
      }
    } else {
      dnnInfo = { unavailable: "turned off (KDENO_CUDNN=0)" };
    }
    this.info = {
      device: device.name,
      computeCapability: device.computeCapability,
      smCount: device.smCount,
      driverVersion: device.driverVersion,
      nvrtcVersion: compiler.version.join("."),
      kernelTarget: compiler.arch,
      cublasVersion: this.#blas.version,
      libraries: libs.paths,
      kernelCache: cacheDir,
      cudnn: dnnInfo,
    };
  }

  // ---- memory ------------------------------------------------------------
  zeros(dtype: DType, n: number): CudaStorage {
    const s = this.#rt.alloc(dtype, n);
    // half storage: ceil(n / 2) words, inside the block (blocks are whole
    // multiples of 512 bytes)
    const words = isHalfDType(dtype) ? Math.ceil(n / 2) : n;
    this.#rt.device.fill32(s.pointer, 0, words);
    return s;
  }

  upload(data: TypedArray, halfType?: DType): CudaStorage {
    const dtype: DType = data instanceof Int32Array
      ? "int32"
      : data instanceof Uint16Array
      ? (halfType ?? "float16")
      : "float32";
    const s = this.#rt.alloc(dtype, data.length);
    this.#rt.device.copyToDevice(s.pointer, data, data.byteLength);
    return s;
  }

  download(s: Storage): TypedArray {
    const cs = cuda(s);
    const out = cs.dtype === "int32"
      ? new Int32Array(cs.length)
      : isHalfDType(cs.dtype)
      ? new Uint16Array(cs.length)
      : new Float32Array(cs.length);
    this.#rt.device.copyToHost(out, cs.pointer, out.byteLength);
    return out;
  }

  free(s: Storage): void {
    if (!(s as CudaStorage).freed) this.#rt.free(cuda(s));
  }

  fill(s: Storage, value: number): void {
    const cs = cuda(s);
    if (isHalfDType(cs.dtype)) {
      // the pattern twice per word over ceil(n / 2) words (see zeros)
      const h = float32ToHalf([value], cs.dtype)[0];
      this.#rt.device.fill32(
        cs.pointer,
        (h | (h << 16)) >>> 0,
        Math.ceil(cs.length / 2),
      );
      return;
    }
    if (cs.dtype === "float32") fillScratch.setFloat32(0, value, true);
    else fillScratch.setInt32(0, value, true);
    this.#rt.device.fill32(
      cs.pointer,
      fillScratch.getUint32(0, true),
      cs.length,
    );
  }

  assign(dst: Storage, src: Storage): void {
    const d = cuda(dst);
    const s = cuda(src);
    if (d.length !== s.length || d.dtype !== s.dtype) {
      throw new RangeError(
        `Cannot assign on CUDA: ${s.length} ${s.dtype} elements into ` +
          `${d.length} ${d.dtype}`,
      );
    }
    this.#rt.device.copyOnDevice(
      d.pointer,
      s.pointer,
      elementBytes(d.dtype) * d.length,
    );
  }

  cast(x: Storage, dtype: DType): CudaStorage {
    const from = cuda(x).dtype;
    if (!isHalfDType(from) && !isHalfDType(dtype)) {
      return ew.cast(this.#rt, x, dtype);
    }
    if (from === dtype) {
      const y = this.#rt.alloc(dtype, cuda(x).length);
      this.assign(y, x);
      return y;
    }
    // through float32, which holds every half value exactly
    const f = isHalfDType(from)
      ? half.castFromHalf(this.#rt, x)
      : from === "float32"
      ? cuda(x)
      : ew.cast(this.#rt, x, "float32");
    try {
      return isHalfDType(dtype)
        ? half.castToHalf(this.#rt, f, dtype)
        : dtype === "float32"
        ? f
        : ew.cast(this.#rt, f, dtype);
    } finally {
      const kept = f === x || (dtype === "float32" && isHalfDType(from));
      if (!kept) this.#rt.free(f);
    }
  }

  // ---- elementwise -------------------------------------------------------
  unary(op: UnaryOp, x: Storage): CudaStorage {
    noHalf("unary", x);
    return ew.unary(this.#rt, op, x);
  }

  binary(
    op: BinaryOp,
    a: Storage,
    aStrides: readonly number[],
    b: Storage,
    bStrides: readonly number[],
    shape: readonly number[],
  ): CudaStorage {
    noHalf("binary", a, b);
    return ew.binary(this.#rt, op, a, aStrides, b, bStrides, shape);
  }

  binaryScalar(
    op: BinaryOp,
    x: Storage,
    scalar: number,
    reverse: boolean,
  ): CudaStorage {
    noHalf("binaryScalar", x);
    return ew.binaryScalar(this.#rt, op, x, scalar, reverse);
  }

  where(
    cond: Storage,
    condStrides: readonly number[],
    a: Storage,
    aStrides: readonly number[],
    b: Storage,
    bStrides: readonly number[],
    shape: readonly number[],
  ): CudaStorage {
    noHalf("where", a, b);
    return ew.where(
      this.#rt,
      cond,
      condStrides,
      a,
      aStrides,
      b,
      bStrides,
      shape,
    );
  }

  clamp(x: Storage, lo: number, hi: number): CudaStorage {
    noHalf("clamp", x);
    return ew.clamp(this.#rt, x, lo, hi);
  }

  axpy(dst: Storage, src: Storage, alpha: number): void {
    noHalf("axpy", dst, src);
    ew.axpy(this.#rt, dst, src, alpha);
  }

  // ---- data movement -----------------------------------------------------
  stridedCopy(
    x: Storage,
    shape: readonly number[],
    strides: readonly number[],
    offset: number,
  ): CudaStorage {
    return ix.stridedCopy(this.#rt, x, shape, strides, offset);
  }

  stridedWrite(
    dst: Storage,
    shape: readonly number[],
    strides: readonly number[],
    offset: number,
    src: Storage,
  ): void {
    // half patterns move only into storage of the same half type
    if (
      (isHalfDType(dst.dtype) || isHalfDType(src.dtype)) &&
      dst.dtype !== src.dtype
    ) {
      throw new DTypeError(
        `Cannot write ${src.dtype} elements into ${dst.dtype} storage`,
      );
    }
    ix.stridedWrite(this.#rt, dst, shape, strides, offset, src);
  }

  indexSelect(
    x: Storage,
    outer: number,
    dim: number,
    inner: number,
    idx: Storage,
  ): CudaStorage {
    noHalf("indexSelect", x);
    return ix.indexSelect(this.#rt, x, outer, dim, inner, idx);
  }

  indexAdd(
    dst: Storage,
    outer: number,
    dim: number,
    inner: number,
    idx: Storage,
    src: Storage,
  ): void {
    noHalf("indexAdd", dst);
    ix.indexAdd(this.#rt, dst, outer, dim, inner, idx, src);
  }

  gather(
    x: Storage,
    outer: number,
    dim: number,
    inner: number,
    index: Storage,
    m: number,
  ): CudaStorage {
    noHalf("gather", x);
    return ix.gather(this.#rt, x, outer, dim, inner, index, m);
  }

  scatterAdd(
    dst: Storage,
    outer: number,
    dim: number,
    inner: number,
    index: Storage,
    m: number,
    src: Storage,
  ): void {
    noHalf("scatterAdd", dst);
    ix.scatterAdd(this.#rt, dst, outer, dim, inner, index, m, src);
  }

  // ---- reductions, matrix multiply, softmax -------------------------------
  reduce(
    op: ReduceOp,
    x: Storage,
    outer: number,
    r: number,
    inner: number,
  ): CudaStorage {
    noHalf("reduce", x);
    return reduce(this.#rt, op, x, outer, r, inner);
  }

  gemm(
    a: Storage,
    b: Storage,
    m: number,
    n: number,
    k: number,
    options: {
      transA: boolean;
      transB: boolean;
      batch: number;
      strideA: number;
      strideB: number;
    },
  ): CudaStorage {
    noHalf("gemm", a, b);
    return this.#blas.gemm(a, b, m, n, k, options);
  }

  softmax(
    x: Storage,
    outer: number,
    n: number,
    inner: number,
    log: boolean,
  ): CudaStorage {
    return softmax(this.#rt, x, outer, n, inner, log);
  }

  softmaxBackward(
    y: Storage,
    dy: Storage,
    outer: number,
    n: number,
    inner: number,
    log: boolean,
  ): CudaStorage {
    return softmaxBackward(this.#rt, y, dy, outer, n, inner, log);
  }

  // ---- convolution, pooling, batch norm ----------------------------------
  // cuDNN when it loaded; the NVRTC kernels otherwise (and for max pooling,
  // whose backward the contract defines by indices, and adaptive pooling).

  #dnnMode: "fp32" | "tf32" = "fp32";
  /**
   * `KDENO_CUDNN_SYNC=1` waits for the stream after each cuDNN call (slower;
   * a debugging aid: with it, a crash seen through cuDNN average pooling on
   * an H100 went away).
   */
  readonly #dnnSync: boolean = (() => {
    try {
      return Deno.env.get("KDENO_CUDNN_SYNC") === "1";
    } catch {
      return true;
    }
  })();

  #afterDnn(): void {
    if (this.#dnnSync) this.#rt.device.synchronize();
  }

  /** cuDNN with its math mode following `setCudaMathMode` / `KDENO_TF32`. */
  #cudnn(): Cudnn | null {
    const dnn = this.#dnn;
    if (!dnn) return null;
    const mode = getCudaMathMode();
    if (mode !== this.#dnnMode) {
      dnn.setMathMode(mode);
      this.#dnnMode = mode;
    }
    return dnn;
  }

  conv2d(
    x: Storage,
    weight: Storage,
    bias: Storage | null,
    g: Conv2dGeometry,
  ): CudaStorage {
    const dnn = this.#cudnn();
    if (!dnn) return conv.conv2d(this.#rt, x, weight, bias, g);
    const y = this.#rt.alloc("float32", g.n * g.k * g.oh * g.ow);
    dnn.conv2dForward(
      cuda(x).ptr,
      cuda(weight).ptr,
      bias ? cuda(bias).ptr : null,
      y.ptr,
      g,
    );
    this.#afterDnn();
    return y;
  }

  conv2dBackwardData(
    dy: Storage,
    weight: Storage,
    g: Conv2dGeometry,
  ): CudaStorage {
    const dnn = this.#cudnn();
    if (!dnn) return conv.conv2dBackwardData(this.#rt, dy, weight, g);
    const dx = this.#rt.alloc("float32", g.n * g.c * g.h * g.w);
    dnn.conv2dBackwardData(cuda(dy).ptr, cuda(weight).ptr, dx.ptr, g);
    this.#afterDnn();
    return dx;
  }

  conv2dBackwardFilter(
    x: Storage,
    dy: Storage,
    g: Conv2dGeometry,
  ): CudaStorage {
    const dnn = this.#cudnn();
    if (!dnn) return conv.conv2dBackwardFilter(this.#rt, x, dy, g);
    const dw = this.#rt.alloc("float32", g.k * (g.c / g.groups) * g.r * g.s);
    dnn.conv2dBackwardFilter(cuda(x).ptr, cuda(dy).ptr, dw.ptr, g);
    this.#afterDnn();
    return dw;
  }

  maxPool2d(
    x: Storage,
    g: Pool2dGeometry,
  ): { y: CudaStorage; indices: CudaStorage } {
    return pool.maxPool2d(this.#rt, x, g);
  }

  maxPool2dBackward(
    dy: Storage,
    indices: Storage,
    g: Pool2dGeometry,
  ): CudaStorage {
    return pool.maxPool2dBackward(this.#rt, dy, indices, g);
  }

  // Average pooling stays on the NVRTC kernel: through cuDNN (9.19, H100) a
  // gradient check crashed the process (the cuDNN pooling wrapper was
  // removed; git history has it).
  avgPool2d(x: Storage, g: Pool2dGeometry): CudaStorage {
    return pool.avgPool2d(this.#rt, x, g);
  }

  avgPool2dBackward(dy: Storage, g: Pool2dGeometry): CudaStorage {
    return pool.avgPool2dBackward(this.#rt, dy, g);
  }

  adaptiveAvgPool2d(x: Storage, g: AdaptivePool2dGeometry): CudaStorage {
    return pool.adaptiveAvgPool2d(this.#rt, x, g, false);
  }

  adaptiveAvgPool2dBackward(
    dy: Storage,
    g: AdaptivePool2dGeometry,
  ): CudaStorage {
    return pool.adaptiveAvgPool2d(this.#rt, dy, g, true);
  }

  /** A cached device buffer of `c` ones (or zeros), for cuDNN's scale/bias. */
  #constant(value: 0 | 1, c: number): CudaStorage {
    const key = `${value}:${c}`;
    let s = this.#affine.get(key);
    if (!s) {
      s = this.#rt.alloc("float32", c);
      this.fill(s, value);
      this.#affine.set(key, s);
    }
    return s;
  }

  // Batch norm runs on cuDNN when it loaded and eps >= 1e-5, else on the
  // NVRTC kernels. The choice depends only on the geometry, so backward
  // (which cuDNN gives the forward's eps) always makes its forward's choice.
  #bnOnDnn(g: BatchNormGeometry): Cudnn | null {
    return this.#dnn && g.eps >= 1e-5 ? this.#dnn : null;
  }

  batchNormTrain(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): { y: CudaStorage; mean: CudaStorage; invStd: CudaStorage } {
    return this.#bnTrain(x, p, { ...g, activation: "none" });
  }

  // the ReLU runs as y is written (NVRTC) or in place after cuDNN: no second
  // activation-sized buffer
  batchNormTrainRelu(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): { y: CudaStorage; mean: CudaStorage; invStd: CudaStorage } {
    return this.#bnTrain(x, p, { ...g, activation: "relu" });
  }

  #bnTrain(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): { y: CudaStorage; mean: CudaStorage; invStd: CudaStorage } {
    const { n, c, hw } = g;
    const dnn = this.#bnOnDnn(g);
    if (!dnn) return norm.batchNormTrain(this.#rt, x, p, g);
    const y = this.#rt.alloc("float32", n * c * hw);
    const mean = this.#rt.alloc("float32", c);
    const invStd = this.#rt.alloc("float32", c);
    dnn.batchNormTrain({
      x: cuda(x).ptr,
      y: y.ptr,
      weight: (p.weight ? cuda(p.weight) : this.#constant(1, c)).ptr,
      bias: (p.bias ? cuda(p.bias) : this.#constant(0, c)).ptr,
      runningMean: p.runningMean ? cuda(p.runningMean).ptr : null,
      runningVar: p.runningVar ? cuda(p.runningVar).ptr : null,
      mean: mean.ptr,
      invStd: invStd.ptr,
    }, g);
    if (g.activation === "relu") norm.reluInPlace(this.#rt, y);
    this.#afterDnn();
    return { y, mean, invStd };
  }

  batchNormEval(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): CudaStorage {
    return this.#bnEval(x, p, { ...g, activation: "none" });
  }

  // one pass (NVRTC) or a ReLU in place after cuDNN: the output is the only
  // activation-sized buffer made
  batchNormEvalRelu(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): CudaStorage {
    return this.#bnEval(x, p, { ...g, activation: "relu" });
  }

  #bnEval(
    x: Storage,
    p: BatchNormParams,
    g: BatchNormGeometry,
  ): CudaStorage {
    const { n, c, hw } = g;
    const dnn = this.#bnOnDnn(g);
    if (!dnn) return norm.batchNormEval(this.#rt, x, p, g);
    const y = this.#rt.alloc("float32", n * c * hw);
    dnn.batchNormEval({
      x: cuda(x).ptr,
      y: y.ptr,
      weight: (p.weight ? cuda(p.weight) : this.#constant(1, c)).ptr,
      bias: (p.bias ? cuda(p.bias) : this.#constant(0, c)).ptr,
      runningMean: cuda(p.runningMean!).ptr,
      runningVar: cuda(p.runningVar!).ptr,
    }, g);
    if (g.activation === "relu") norm.reluInPlace(this.#rt, y);
    this.#afterDnn();
    return y;
  }

  // NVRTC masks dy by the ReLU as it reads it (dy and dx are the only
  // activation-sized buffers, as in PyTorch's ReLU then batch-norm
  // backward); cuDNN's backward takes a masked copy, freed at once
  batchNormBackwardRelu(
    x: Storage,
    dy: Storage,
    y: Storage,
    weight: Storage | null,
    saved: BatchNormSaved,
    g: BatchNormGeometry,
  ): { dx: CudaStorage; dweight: CudaStorage; dbias: CudaStorage } {
    if (!this.#bnOnDnn(g)) {
      return norm.batchNormBackward(this.#rt, x, dy, weight, saved, g, y);
    }
    const len = [g.n * g.c * g.hw];
    const masked = this.binary("reluGrad", dy, [1], y, [1], len);
    try {
      return this.batchNormBackward(x, masked, weight, saved, g);
    } finally {
      this.free(masked);
    }
  }

  batchNormBackward(
    x: Storage,
    dy: Storage,
    weight: Storage | null,
    saved: BatchNormSaved,
    g: BatchNormGeometry,
  ): { dx: CudaStorage; dweight: CudaStorage; dbias: CudaStorage } {
    const { n, c, hw } = g;
    const dnn = this.#bnOnDnn(g);
    if (!dnn) return norm.batchNormBackward(this.#rt, x, dy, weight, saved, g);
    const dx = this.#rt.alloc("float32", n * c * hw);
    const dweight = this.#rt.alloc("float32", c);
    const dbias = this.#rt.alloc("float32", c);
    dnn.batchNormBackward({
      x: cuda(x).ptr,
      dy: cuda(dy).ptr,
      weight: (weight ? cuda(weight) : this.#constant(1, c)).ptr,
      dx: dx.ptr,
      dweight: dweight.ptr,
      dbias: dbias.ptr,
      mean: cuda(saved.mean).ptr,
      invStd: cuda(saved.invStd).ptr,
    }, g);
    this.#afterDnn();
    return { dx, dweight, dbias };
  }

  // ---- optimizers --------------------------------------------------------
  sgdStep(
    param: Storage,
    grad: Storage,
    momentumBuf: Storage | null,
    o: SgdUpdate,
  ): void {
    sgdStep(this.#rt, param, grad, momentumBuf, o);
  }

  adamStep(
    param: Storage,
    grad: Storage,
    expAvg: Storage,
    expAvgSq: Storage,
    maxExpAvgSq: Storage | null,
    o: AdamUpdate,
  ): void {
    adamStep(this.#rt, param, grad, expAvg, expAvgSq, maxExpAvgSq, o);
  }

  synchronize(): void {
    this.#rt.device.synchronize();
  }

  // ---- CUDA only ---------------------------------------------------------
  /**
   * Times the device work `fn` queues, with CUDA events.
   *
   * @param fn Queues work on this backend.
   * @returns Milliseconds of device time.
   */
  time(fn: () => void): number {
    return this.#rt.device.time(fn);
  }

  /** Starts the allocator's peak-memory counters again. */
  resetPeakMemory(): void {
    this.#rt.allocator.resetPeak();
  }

  /**
   * Allocator counters and the device's free/total memory.
   *
   * @returns The counters, in bytes and counts.
   */
  memoryStats(): AllocatorStats & { deviceFree: number; deviceTotal: number } {
    const { free, total } = this.#rt.device.memInfo();
    return {
      ...this.#rt.allocator.stats,
      deviceFree: free,
      deviceTotal: total,
    };
  }

  /**
   * Compiles (or loads from the kernel cache) every kernel module now, so no
   * later call waits for NVRTC.
   *
   * @returns Milliseconds it took.
   */
  precompile(): number {
    const t0 = performance.now();
    for (const m of KERNEL_MODULES) this.#rt.loadModule(m);
    return performance.now() - t0;
  }

  /** Returns the allocator's cached blocks to the driver. */
  emptyCache(): void {
    this.#rt.device.synchronize();
    this.#rt.allocator.emptyCache();
  }
}
