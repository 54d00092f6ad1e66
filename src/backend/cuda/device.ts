/**
 * Device 0 through the driver API: the primary context (shared with cuBLAS
 * and cuDNN), one stream, memory, copies, modules and launches.
 *
 * Every call is synchronous on the main thread (a CUDA context is current
 * per thread, and Deno's `nonblocking` calls run on other threads) and every
 * status is checked. Copies run on the backend's stream, so they are ordered
 * after the kernels queued before them.
 *
 * @module
 */

import {
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
  CU_EVENT_DEFAULT,
  CU_STREAM_DEFAULT,
  type CudaDriverLib,
} from "../../../ffi/cuda.ts";
import { CudaError, cuResultText } from "./errors.ts";

type Cu = CudaDriverLib["symbols"];

/** The primary context of one device, and a stream on it. */
export class CudaDevice {
  /** The driver's symbols. */
  readonly cu: Cu;
  /** Device ordinal. */
  readonly ordinal: number;
  /** The device's name, e.g. `NVIDIA H100 80GB HBM3`. */
  readonly name: string;
  /** Compute capability as `major * 10 + minor`, e.g. 90. */
  readonly computeCapability: number;
  /** Number of streaming multiprocessors. */
  readonly smCount: number;
  /** `cuDriverGetVersion`, e.g. 13000. */
  readonly driverVersion: number;
  /** The primary context. */
  readonly context: Deno.PointerObject;
  /** The stream every kernel, copy and library call runs on. */
  readonly stream: Deno.PointerObject;
  readonly #out64 = new BigUint64Array(1);
  readonly #outI32 = new Int32Array(1);
  readonly #outF32 = new Float32Array(1);

  /**
   * Initialises the driver, retains device `ordinal`'s primary context, makes
   * it current and creates a stream.
   *
   * @param lib The opened driver.
   * @param ordinal Device ordinal (default 0).
   */
  constructor(lib: CudaDriverLib, ordinal = 0) {
    const cu = this.cu = lib.symbols;
    this.ordinal = ordinal;
    this.check(cu.cuInit(0), "cuInit");
    this.check(cu.cuDriverGetVersion(this.#outI32), "cuDriverGetVersion");
    this.driverVersion = this.#outI32[0];
    this.check(cu.cuDeviceGet(this.#outI32, ordinal), "cuDeviceGet");
    const dev = this.#outI32[0];
    const name = new Uint8Array(256);
    this.check(cu.cuDeviceGetName(name, name.length, dev), "cuDeviceGetName");
    this.name = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
    const major = this.#attribute(
      CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
      dev,
    );
    const minor = this.#attribute(
      CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
      dev,
    );
    this.computeCapability = major * 10 + minor;
    this.smCount = this.#attribute(
      CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
      dev,
    );
    this.check(
      cu.cuDevicePrimaryCtxRetain(this.#out64, dev),
      "cuDevicePrimaryCtxRetain",
    );
    this.context = this.#outPointer("cuDevicePrimaryCtxRetain");
    this.check(cu.cuCtxSetCurrent(this.context), "cuCtxSetCurrent");
    this.check(
      cu.cuStreamCreate(this.#out64, CU_STREAM_DEFAULT),
      "cuStreamCreate",
    );
    this.stream = this.#outPointer("cuStreamCreate");
  }

  #attribute(attribute: number, dev: number): number {
    this.check(
      this.cu.cuDeviceGetAttribute(this.#outI32, attribute, dev),
      "cuDeviceGetAttribute",
    );
    return this.#outI32[0];
  }

  #outPointer(call: string): Deno.PointerObject {
    const p = Deno.UnsafePointer.create(this.#out64[0]);
    if (p === null) {
      throw new CudaError("CUDA driver", call, 0, "returned a NULL handle");
    }
    return p;
  }

  /**
   * Throws a {@link CudaError} with the driver's text when `rc` is not
   * `CUDA_SUCCESS`.
   *
   * @param rc The status.
   * @param call The function that returned it.
   */
  check(rc: number, call: string): void {
    if (rc !== 0) {
      throw new CudaError("CUDA driver", call, rc, cuResultText(this.cu, rc));
    }
  }

  /**
   * `cuMemAlloc_v2`.
   * @param bytes Size in bytes.
   * @returns The device address.
   */
  memAlloc(bytes: number): bigint {
    this.check(
      this.cu.cuMemAlloc_v2(this.#out64, BigInt(bytes)),
      "cuMemAlloc_v2",
    );
    return this.#out64[0];
  }

  /**
   * `cuMemFree_v2`.
   * @param addr A device address from {@link memAlloc}.
   */
  memFree(addr: bigint): void {
    this.check(
      this.cu.cuMemFree_v2(Deno.UnsafePointer.create(addr)),
      "cuMemFree_v2",
    );
  }

  /**
   * Copies host memory to the device, ordered on the stream. The host buffer
   * may be reused as soon as this returns (pageable memory is staged).
   *
   * @param dst Device address.
   * @param src Host data.
   * @param bytes Byte count.
   */
  copyToDevice(
    dst: Deno.PointerValue,
    src: ArrayBufferView,
    bytes: number,
  ): void {
    if (bytes === 0) return;
    this.check(
      this.cu.cuMemcpyHtoDAsync_v2(
        dst,
        src as BufferSource,
        BigInt(bytes),
        this.stream,
      ),
      "cuMemcpyHtoDAsync_v2",
    );
  }

  /**
   * Copies device memory to the host after the work queued before it.
   *
   * @param dst Host buffer.
   * @param src Device address.
   * @param bytes Byte count.
   */
  copyToHost(dst: BufferSource, src: Deno.PointerValue, bytes: number): void {
    if (bytes === 0) return;
    this.check(
      this.cu.cuMemcpyDtoHAsync_v2(dst, src, BigInt(bytes), this.stream),
      "cuMemcpyDtoHAsync_v2",
    );
    this.synchronize();
  }

  /**
   * Copies device memory to device memory, ordered on the stream.
   *
   * @param dst Destination address.
   * @param src Source address.
   * @param bytes Byte count.
   */
  copyOnDevice(
    dst: Deno.PointerValue,
    src: Deno.PointerValue,
    bytes: number,
  ): void {
    if (bytes === 0) return;
    this.check(
      this.cu.cuMemcpyDtoDAsync_v2(dst, src, BigInt(bytes), this.stream),
      "cuMemcpyDtoDAsync_v2",
    );
  }

  /**
   * Sets `count` 32-bit words to `bits`, ordered on the stream.
   *
   * @param dst Device address.
   * @param bits The word (a float's bit pattern for float32).
   * @param count Number of words.
   */
  fill32(dst: Deno.PointerValue, bits: number, count: number): void {
    if (count === 0) return;
    this.check(
      this.cu.cuMemsetD32Async(dst, bits >>> 0, BigInt(count), this.stream),
      "cuMemsetD32Async",
    );
  }

  /**
   * Loads a CUBIN (or NUL-terminated PTX) image into the context.
   * @param image The image.
   * @returns The module.
   */
  loadModule(image: Uint8Array): Deno.PointerObject {
    this.check(
      this.cu.cuModuleLoadData(this.#out64, image),
      "cuModuleLoadData",
    );
    return this.#outPointer("cuModuleLoadData");
  }

  /**
   * Looks up an `extern "C"` kernel in a module.
   * @param module The module.
   * @param name The kernel's name.
   * @returns The function handle.
   */
  getFunction(module: Deno.PointerObject, name: string): Deno.PointerObject {
    const cname = new TextEncoder().encode(name + "\0");
    const rc = this.cu.cuModuleGetFunction(this.#out64, module, cname);
    if (rc !== 0) {
      throw new CudaError(
        "CUDA driver",
        `cuModuleGetFunction("${name}")`,
        rc,
        cuResultText(this.cu, rc),
      );
    }
    return this.#outPointer("cuModuleGetFunction");
  }

  /**
   * Queues a kernel on the stream with a 1-D grid.
   *
   * @param fn The kernel.
   * @param grid Blocks.
   * @param block Threads per block.
   * @param params `kernelParams` (see `KernelArgs`).
   * @param sharedBytes Dynamic shared memory.
   */
  launch(
    fn: Deno.PointerObject,
    grid: number,
    block: number,
    params: BigUint64Array,
    sharedBytes = 0,
  ): void {
    const rc = this.cu.cuLaunchKernel(
      fn,
      grid,
      1,
      1,
      block,
      1,
      1,
      sharedBytes,
      this.stream,
      params,
      null,
    );
    if (rc !== 0) this.check(rc, "cuLaunchKernel");
  }

  /** Waits for everything queued on the stream. */
  synchronize(): void {
    this.check(this.cu.cuStreamSynchronize(this.stream), "cuStreamSynchronize");
  }

  /**
   * `cuMemGetInfo_v2`.
   * @returns Free and total device memory in bytes.
   */
  memInfo(): { free: number; total: number } {
    const total = new BigUint64Array(1);
    this.check(this.cu.cuMemGetInfo_v2(this.#out64, total), "cuMemGetInfo_v2");
    return { free: Number(this.#out64[0]), total: Number(total[0]) };
  }

  /**
   * Times work queued on the stream with a pair of events.
   *
   * @param fn Queues the work.
   * @returns Milliseconds between the events around it.
   */
  time(fn: () => void): number {
    const cu = this.cu;
    const events: Deno.PointerObject[] = [];
    for (let i = 0; i < 2; i++) {
      this.check(
        cu.cuEventCreate(this.#out64, CU_EVENT_DEFAULT),
        "cuEventCreate",
      );
      events.push(this.#outPointer("cuEventCreate"));
    }
    const [start, end] = events;
    try {
      this.check(cu.cuEventRecord(start, this.stream), "cuEventRecord");
      fn();
      this.check(cu.cuEventRecord(end, this.stream), "cuEventRecord");
      this.check(cu.cuEventSynchronize(end), "cuEventSynchronize");
      const elapsed = cu.cuEventElapsedTime_v2 ?? cu.cuEventElapsedTime;
      if (!elapsed) {
        throw new CudaError("CUDA driver", "cuEventElapsedTime", 0, "missing");
      }
      this.check(elapsed(this.#outF32, start, end), "cuEventElapsedTime");
      return this.#outF32[0];
    } finally {
      for (const e of events) cu.cuEventDestroy_v2(e);
    }
  }
}
