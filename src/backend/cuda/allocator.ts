/**
 * A caching allocator over a raw device allocator (`cuMemAlloc_v2`), in the
 * manner of tinygrad's LRU allocator and PyTorch's caching allocator: freed
 * blocks go to a free list keyed by their rounded size and are handed out
 * again instead of calling the driver. All work runs on one stream, so a
 * block freed while queued kernels still use it is only reused by work queued
 * after them.
 *
 * @module
 */

/** A block of device memory. */
export interface Block {
  /** Device address (0n for the empty block). */
  readonly addr: bigint;
  /** The same address as a pointer object, made once (null for the empty block). */
  readonly pointer: Deno.PointerValue;
  /** Usable size in bytes (the rounded request). */
  readonly bytes: number;
}

/** The allocator a {@link CachingAllocator} sits on. */
export interface RawAllocator {
  /** Allocates `bytes` of device memory; throws when it cannot. */
  alloc(bytes: number): bigint;
  /** Frees what `alloc` returned. */
  free(addr: bigint): void;
}

/** Counters a caching allocator keeps. */
export interface AllocatorStats {
  /** Blocks handed out and not yet released. */
  liveBlocks: number;
  /** Bytes in those blocks. */
  liveBytes: number;
  /** Bytes held in free lists. */
  cachedBytes: number;
  /** Calls to the raw allocator. */
  rawAllocs: number;
  /** Calls to the raw free. */
  rawFrees: number;
  /** The most bytes live at once since the last `resetPeak()`. */
  peakLiveBytes: number;
  /** The most bytes held from the device (live + cached) since then. */
  peakReservedBytes: number;
}

const MIB = 1 << 20;

/**
 * The device had no memory left for a request, after the allocator gave its
 * cached blocks back and tried again.
 */
export class DeviceOutOfMemoryError extends RangeError {
  /** Bytes requested (rounded to the size class). */
  readonly requested: number;
  /** The allocator's counters when it failed. */
  readonly stats: AllocatorStats;
  /**
   * Creates the error.
   *
   * @param requested Bytes requested.
   * @param stats The allocator's counters.
   * @param cause The raw allocator's error.
   */
  constructor(requested: number, stats: AllocatorStats, cause: unknown) {
    const mib = (b: number) =>
      b < MIB ? `${b} bytes` : `${(b / MIB).toFixed(1)} MiB`;
    super(
      `Cannot allocate ${mib(requested)} of device memory: out of memory ` +
        `with ${mib(stats.liveBytes)} in ${stats.liveBlocks} live block(s) ` +
        `and the cache given back (${
          cause instanceof Error ? cause.message : String(cause)
        }). Tensors that nothing references are returned to the device ` +
        `when the event loop turns (at any await; the DataLoader awaits once ` +
        `per batch); in a loop that never awaits, free them with dispose(), ` +
        `using or tidy()`,
      { cause },
    );
    this.name = "DeviceOutOfMemoryError";
    this.requested = requested;
    this.stats = stats;
  }
}

/**
 * The size class a request is served from: multiples of 512 bytes up to
 * 1 MiB, above that the next of eight steps per power of two (at most 12.5%
 * waste), so similar sizes share free lists.
 *
 * @param bytes The request.
 * @returns The rounded size (0 for 0).
 */
export function roundSize(bytes: number): number {
  if (bytes <= 0) return 0;
  if (bytes <= MIB) return Math.ceil(bytes / 512) * 512;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 3);
  return Math.ceil(bytes / step) * step;
}

const EMPTY: Block = { addr: 0n, pointer: null, bytes: 0 };

/** Size-bucketed free lists over a raw allocator. */
export class CachingAllocator {
  readonly #raw: RawAllocator;
  readonly #free = new Map<number, Block[]>();
  readonly #stats: AllocatorStats = {
    liveBlocks: 0,
    liveBytes: 0,
    cachedBytes: 0,
    rawAllocs: 0,
    rawFrees: 0,
    peakLiveBytes: 0,
    peakReservedBytes: 0,
  };

  /** @param raw The allocator underneath. */
  constructor(raw: RawAllocator) {
    this.#raw = raw;
  }

  /**
   * Returns a block of at least `bytes`, from the cache when one of the
   * right size class is free. When the device is out of memory, the cache is
   * released and the allocation tried once more.
   *
   * @param bytes The size needed.
   * @returns The block.
   */
  alloc(bytes: number): Block {
    const size = roundSize(bytes);
    if (size === 0) return EMPTY;
    const list = this.#free.get(size);
    let block = list?.pop();
    if (block) {
      this.#stats.cachedBytes -= size;
    } else {
      block = this.#fresh(size);
    }
    this.#stats.liveBlocks++;
    this.#stats.liveBytes += size;
    const st = this.#stats;
    if (st.liveBytes > st.peakLiveBytes) st.peakLiveBytes = st.liveBytes;
    const reserved = st.liveBytes + st.cachedBytes;
    if (reserved > st.peakReservedBytes) st.peakReservedBytes = reserved;
    return block;
  }

  #fresh(size: number): Block {
    let addr: bigint;
    try {
      addr = this.#raw.alloc(size);
    } catch (e) {
      if (this.#stats.cachedBytes === 0) throw this.#outOfMemory(size, e);
      this.emptyCache();
      try {
        addr = this.#raw.alloc(size);
      } catch (e2) {
        throw this.#outOfMemory(size, e2);
      }
    }
    this.#stats.rawAllocs++;
    return { addr, pointer: Deno.UnsafePointer.create(addr), bytes: size };
  }

  #outOfMemory(size: number, cause: unknown): DeviceOutOfMemoryError {
    return new DeviceOutOfMemoryError(size, this.stats, cause);
  }

  /**
   * Puts a block back on its free list.
   *
   * @param block A block from {@link alloc}.
   */
  release(block: Block): void {
    if (block.bytes === 0) return;
    let list = this.#free.get(block.bytes);
    if (!list) this.#free.set(block.bytes, list = []);
    list.push(block);
    this.#stats.liveBlocks--;
    this.#stats.liveBytes -= block.bytes;
    this.#stats.cachedBytes += block.bytes;
  }

  /** Returns every cached block to the raw allocator. */
  emptyCache(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.#raw.free(b.addr);
        this.#stats.rawFrees++;
      }
    }
    this.#free.clear();
    this.#stats.cachedBytes = 0;
  }

  /** Starts the peak counters again from the current usage. */
  resetPeak(): void {
    this.#stats.peakLiveBytes = this.#stats.liveBytes;
    this.#stats.peakReservedBytes = this.#stats.liveBytes +
      this.#stats.cachedBytes;
  }

  /** A snapshot of the counters. */
  get stats(): AllocatorStats {
    return { ...this.#stats };
  }
}
