/**
 * The CUDA backend: the kernel set of `src/backend/backend.ts` on device 0.
 * Each kernel family lives in its own file; this class wires them to one
 * runtime (device, caching allocator, kernel cache) and one cuBLAS handle.
 *
 * @module
 */

import type {
  AdamUpdate,
  Backend,
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
import { cuda, CudaRuntime, type CudaStorage } from "./runtime.ts";
import { Blas } from "./gemm.ts";
import * as ew from "./elementwise.ts";
import * as ix from "./index_ops.ts";
import { reduce } from "./reduce.ts";
import { softmax, softmaxBackward } from "./softmax.ts";
import * as conv from "./conv.ts";
import * as pool from "./pool.ts";
import * as norm from "./norm.ts";
import { adamStep, sgdStep } from "./optim.ts";

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
}

/** Options for {@link CudaBackend}. */
export interface CudaBackendOptions {
  /** Where compiled kernels are cached; null for no disk cache. */
  cacheDir?: string | null;
}

const fillScratch = new DataView(new ArrayBuffer(4));

/** The kernel set on a CUDA device. */
export class CudaBackend implements Backend {
  /** The device kind. */
  readonly name = "cuda" as const;
  /** What it runs on. */
  readonly info: CudaBackendInfo;
  readonly #rt: CudaRuntime;
  readonly #blas: Blas;

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
    };
  }

  // ---- memory ------------------------------------------------------------
  zeros(dtype: DType, n: number): CudaStorage {
    const s = this.#rt.alloc(dtype, n);
    this.#rt.device.fill32(s.pointer, 0, n);
    return s;
  }

  upload(data: TypedArray): CudaStorage {
    const dtype: DType = data instanceof Int32Array ? "int32" : "float32";
    const s = this.#rt.alloc(dtype, data.length);
    this.#rt.device.copyToDevice(s.pointer, data, data.byteLength);
    return s;
  }

  download(s: Storage): TypedArray {
    const cs = cuda(s);
    const out = cs.dtype === "int32"
      ? new Int32Array(cs.length)
      : new Float32Array(cs.length);
    this.#rt.device.copyToHost(out, cs.pointer, out.byteLength);
    return out;
  }

  free(s: Storage): void {
    if (!(s as CudaStorage).freed) this.#rt.free(cuda(s));
  }

  fill(s: Storage, value: number): void {
    const cs = cuda(s);
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
    this.#rt.device.copyOnDevice(d.pointer, s.pointer, 4 * d.length);
  }

  cast(x: Storage, dtype: DType): CudaStorage {
    return ew.cast(this.#rt, x, dtype);
  }

  // ---- elementwise -------------------------------------------------------
  unary(op: UnaryOp, x: Storage): CudaStorage {
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
    return ew.binary(this.#rt, op, a, aStrides, b, bStrides, shape);
  }

  binaryScalar(
    op: BinaryOp,
    x: Storage,
    scalar: number,
    reverse: boolean,
  ): CudaStorage {
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
    return ew.clamp(this.#rt, x, lo, hi);
  }

  axpy(dst: Storage, src: Storage, alpha: number): void {
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
    ix.stridedWrite(this.#rt, dst, shape, strides, offset, src);
  }

  indexSelect(
    x: Storage,
    outer: number,
    dim: number,
    inner: number,
    idx: Storage,
  ): CudaStorage {
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
  conv2d(
    x: Storage,
    weight: Storage,
    bias: Storage | null,
    g: Conv2dGeometry,
  ): CudaStorage {
    return conv.conv2d(this.#rt, x, weight, bias, g);
  }

  conv2dBackwardData(
    dy: Storage,
    weight: Storage,
    g: Conv2dGeometry,
  ): CudaStorage {
    return conv.conv2dBackwardData(this.#rt, dy, weight, g);
  }

  conv2dBackwardFilter(
    x: Storage,
    dy: Storage,
    g: Conv2dGeometry,
  ): CudaStorage {
    return conv.conv2dBackwardFilter(this.#rt, x, dy, g);
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

  avgPool2d(x: Storage, g: Pool2dGeometry): CudaStorage {
    return pool.avgPool2d(this.#rt, x, g);
  }

  avgPool2dBackward(dy: Storage, g: Pool2dGeometry): CudaStorage {
    return pool.avgPool2dBackward(this.#rt, dy, g);
  }

  adaptiveAvgPool2d(
    x: Storage,
    n: number,
    c: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
  ): CudaStorage {
    return pool.adaptiveAvgPool2d(this.#rt, x, [n, c, h, w, oh, ow], false);
  }

  adaptiveAvgPool2dBackward(
    dy: Storage,
    n: number,
    c: number,
    h: number,
    w: number,
    oh: number,
    ow: number,
  ): CudaStorage {
    return pool.adaptiveAvgPool2d(this.#rt, dy, [n, c, h, w, oh, ow], true);
  }

  batchNormTrain(
    x: Storage,
    weight: Storage | null,
    bias: Storage | null,
    runningMean: Storage | null,
    runningVar: Storage | null,
    n: number,
    c: number,
    hw: number,
    momentum: number,
    eps: number,
  ): { y: CudaStorage; mean: CudaStorage; invStd: CudaStorage } {
    return norm.batchNormTrain(
      this.#rt,
      x,
      weight,
      bias,
      runningMean,
      runningVar,
      n,
      c,
      hw,
      momentum,
      eps,
    );
  }

  batchNormEval(
    x: Storage,
    weight: Storage | null,
    bias: Storage | null,
    runningMean: Storage,
    runningVar: Storage,
    n: number,
    c: number,
    hw: number,
    eps: number,
  ): CudaStorage {
    return norm.batchNormEval(
      this.#rt,
      x,
      weight,
      bias,
      runningMean,
      runningVar,
      n,
      c,
      hw,
      eps,
    );
  }

  batchNormBackward(
    x: Storage,
    dy: Storage,
    weight: Storage | null,
    mean: Storage,
    invStd: Storage,
    n: number,
    c: number,
    hw: number,
  ): { dx: CudaStorage; dweight: CudaStorage; dbias: CudaStorage } {
    return norm.batchNormBackward(
      this.#rt,
      x,
      dy,
      weight,
      mean,
      invStd,
      n,
      c,
      hw,
    );
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

  /** Returns the allocator's cached blocks to the driver. */
  emptyCache(): void {
    this.#rt.device.synchronize();
    this.#rt.allocator.emptyCache();
  }
}
