/**
 * Device storage and the runtime the kernel families share: the device, the
 * caching allocator and the kernel cache.
 *
 * @module
 */

import type { DType, Storage } from "../backend.ts";
import { ShapeError } from "../../errors.ts";
import type { Block, CachingAllocator } from "./allocator.ts";
import type { CudaDevice } from "./device.ts";
import type { Kernel, KernelCache, KernelModule } from "./kernels.ts";

/** Bytes per element of float32 and int32. */
export const ELEMENT_BYTES = 4;

/**
 * Bytes per element of `dtype`: 2 for float16 and bfloat16, 4 otherwise.
 *
 * @param dtype The dtype.
 * @returns Its element size.
 */
export function elementBytes(dtype: DType): number {
  return dtype === "float16" || dtype === "bfloat16" ? 2 : ELEMENT_BYTES;
}

/** The largest element count a kernel indexes (32-bit indices). */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** Device memory holding `length` elements of `dtype`. */
export class CudaStorage implements Storage {
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  /** Device address (0n when empty). */
  readonly ptr: bigint;
  /** The address as a pointer object, for library calls. */
  readonly pointer: Deno.PointerValue;
  /** The allocator block behind it. */
  readonly block: Block;
  /** Set once the storage is freed. */
  freed = false;
  // V8's view of the device bytes (see `devicePressure`); dropped on free
  #pressure: ArrayBuffer | null = null;

  /**
   * Wraps an allocator block.
   *
   * @param dtype Element type.
   * @param length Number of elements.
   * @param block The memory.
   */
  constructor(dtype: DType, length: number, block: Block) {
    this.dtype = dtype;
    this.length = length;
    this.block = block;
    this.ptr = block.addr;
    this.pointer = block.pointer;
    if (length > 0) this.#pressure = devicePressure(block);
  }

  /** Stops V8 counting this storage's bytes (on `free`). */
  dropPressure(): void {
    this.#pressure?.transfer(0); // detaches: V8 stops counting it at once
    this.#pressure = null;
  }
}

/**
 * An `ArrayBuffer` of the block's size laid over its device address, which
 * no code ever reads: V8 counts it as external memory, so device bytes reach
 * the garbage collector's heuristics as host bytes do, and a training loop
 * that drops tensors without disposing them gets collected on device
 * pressure. It commits no host memory (about 1 µs to make and drop,
 * measured). Null when it cannot be made.
 *
 * @param block The device block.
 * @returns The buffer, or null.
 */
function devicePressure(block: Block): ArrayBuffer | null {
  if (block.pointer === null) return null;
  try {
    return Deno.UnsafePointerView.getArrayBuffer(block.pointer, block.bytes);
  } catch {
    return null;
  }
}

/**
 * Checks that storage belongs to the CUDA backend and is still alive.
 *
 * @param s Any storage.
 * @returns It, typed as CUDA storage.
 */
export function cuda(s: Storage): CudaStorage {
  if (!(s instanceof CudaStorage)) {
    throw new TypeError(
      "Cannot use storage on the CUDA backend: it belongs to another backend",
    );
  }
  if (s.freed) {
    throw new ReferenceError(
      `Cannot use CUDA storage: its ${s.length} ${s.dtype} elements were freed`,
    );
  }
  return s;
}

/** What the kernel families share. */
export class CudaRuntime {
  /** The device. */
  readonly device: CudaDevice;
  /** The caching allocator. */
  readonly allocator: CachingAllocator;
  readonly #kernels: KernelCache;
  // Returns the blocks of storage that was dropped without free(): how
  // tensors that were garbage-collected give their device memory back. The
  // held value is the block, never the storage, so it keeps nothing alive.
  readonly #finalizer: FinalizationRegistry<Block>;

  /**
   * @param device The device.
   * @param allocator Its caching allocator.
   * @param kernels Its kernel cache.
   */
  constructor(
    device: CudaDevice,
    allocator: CachingAllocator,
    kernels: KernelCache,
  ) {
    this.device = device;
    this.allocator = allocator;
    this.#kernels = kernels;
    this.#finalizer = new FinalizationRegistry((b) => allocator.release(b));
  }

  /**
   * New storage of `n` elements (contents undefined).
   *
   * @param dtype Element type.
   * @param n Element count.
   * @returns The storage.
   */
  alloc(dtype: DType, n: number): CudaStorage {
    if (!Number.isInteger(n) || n < 0 || n > MAX_ELEMENTS) {
      throw new ShapeError(
        `Cannot allocate CUDA storage: ${n} elements is not an element count ` +
          `from 0 to ${MAX_ELEMENTS} (the CUDA kernels index with 32-bit ` +
          `signed integers)`,
      );
    }
    const s = new CudaStorage(
      dtype,
      n,
      this.allocator.alloc(n * elementBytes(dtype)),
    );
    if (n > 0) this.#finalizer.register(s, s.block, s);
    return s;
  }

  /**
   * Returns storage to the allocator; freeing twice does nothing.
   *
   * @param s The storage.
   */
  free(s: CudaStorage): void {
    if (s.freed) return;
    s.freed = true;
    s.dropPressure();
    this.#finalizer.unregister(s);
    this.allocator.release(s.block);
  }

  /**
   * Compiles and loads a module ahead of its first use.
   *
   * @param m The module.
   */
  loadModule(m: KernelModule): void {
    this.#kernels.load(m);
  }

  /**
   * A kernel, compiled on first use.
   *
   * @param m Its module.
   * @param name Its name.
   * @returns The kernel.
   */
  kernel(m: KernelModule, name: string): Kernel {
    return this.#kernels.get(m, name);
  }
}
