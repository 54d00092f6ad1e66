/**
 * A caching allocator over a raw device allocator (`cuMemAlloc_v2`) that
 * follows PyTorch's `CUDACachingAllocator` (c10/cuda/CUDACachingAllocator.cpp,
 * default settings):
 *
 * - requests are rounded up to a multiple of 512 bytes (512 at least);
 * - requests of at most 1 MiB come from the small pool, which takes 2 MiB
 *   segments from the device; larger ones from the large pool, which takes
 *   20 MiB segments for requests under 10 MiB and the request rounded up to
 *   2 MiB above that;
 * - a request takes the smallest free block of its pool that fits (best
 *   fit, lowest address first among equals) and splits it when the rest is
 *   worth keeping (at least 512 bytes in the small pool, more than 1 MiB in
 *   the large pool); a freed block merges with free neighbours of its
 *   segment;
 * - when the device is out of memory, whole free segments go back to the
 *   driver and the allocation is tried once more.
 *
 * All work runs on one stream, so a block freed while queued kernels still
 * use it is only reused by work queued after them.
 *
 * @module
 */

/** A block of device memory. */
export interface Block {
  /** Device address (0n for the empty block). */
  readonly addr: bigint;
  /** The same address as a pointer object, made once (null for the empty block). */
  readonly pointer: Deno.PointerValue;
  /** Usable size in bytes (the rounded request, or more when not split). */
  readonly bytes: number;
}

/** The allocator a {@link CachingAllocator} sits on. */
export interface RawAllocator {
  /** Allocates `bytes` of device memory; throws when it cannot. */
  alloc(bytes: number): bigint;
  /** Frees what `alloc` returned. */
  free(addr: bigint): void;
}

/**
 * Counters a caching allocator keeps. The names map onto
 * `torch.cuda.memory_stats()`: `liveBytes` is `allocated_bytes.all.current`
 * (`torch.cuda.memory_allocated()`), `peakLiveBytes` is
 * `allocated_bytes.all.peak` (`torch.cuda.max_memory_allocated()`),
 * `reservedBytes` is `reserved_bytes.all.current`
 * (`torch.cuda.memory_reserved()`), `allocations` and `frees` are
 * `allocation.all.allocated` and `allocation.all.freed`.
 */
export interface AllocatorStats {
  /** Blocks handed out and not yet released. */
  liveBlocks: number;
  /** Bytes in those blocks. */
  liveBytes: number;
  /** Bytes held from the device and not handed out (reserved - live). */
  cachedBytes: number;
  /** Bytes held from the device: every segment, live or cached. */
  reservedBytes: number;
  /** Segments held from the device. */
  segments: number;
  /** Calls to the raw allocator. */
  rawAllocs: number;
  /** Calls to the raw free. */
  rawFrees: number;
  /** Blocks handed out since the process started (zero-byte ones excluded). */
  allocations: number;
  /** Blocks released since the process started. */
  frees: number;
  /** Allocations that failed, gave the cache back and tried again. */
  allocRetries: number;
  /** The most bytes live at once since the last `resetPeak()`. */
  peakLiveBytes: number;
  /** The most bytes held from the device (live + cached) since then. */
  peakReservedBytes: number;
}

const MIB = 1 << 20;
/** Requests are rounded up to a multiple of this (`kMinBlockSize`). */
export const MIN_BLOCK = 512;
/** The largest request served from the small pool (`kSmallSize`). */
export const SMALL_SIZE: number = MIB;
/** The small pool's segment size (`kSmallBuffer`). */
export const SMALL_BUFFER: number = 2 * MIB;
/** The large pool's segment size for requests under {@link MIN_LARGE_ALLOC}. */
export const LARGE_BUFFER: number = 20 * MIB;
/** From this request size on, a segment is the request rounded to 2 MiB. */
export const MIN_LARGE_ALLOC: number = 10 * MIB;
/** What large segments are rounded to (`kRoundLarge`). */
export const ROUND_LARGE: number = 2 * MIB;

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
 * The size a request is served with: a multiple of 512 bytes, 512 at least,
 * as PyTorch's `round_size` (without `roundup_power2_divisions`).
 *
 * @param bytes The request.
 * @returns The rounded size (0 for 0).
 */
export function roundSize(bytes: number): number {
  if (bytes <= 0) return 0;
  return Math.ceil(bytes / MIN_BLOCK) * MIN_BLOCK;
}

/**
 * How much a new segment for a rounded request takes from the device, as
 * PyTorch's `get_allocation_size`.
 *
 * @param size A rounded request.
 * @returns The segment size.
 */
export function segmentSize(size: number): number {
  if (size <= SMALL_SIZE) return SMALL_BUFFER;
  if (size < MIN_LARGE_ALLOC) return LARGE_BUFFER;
  return Math.ceil(size / ROUND_LARGE) * ROUND_LARGE;
}

/** A block inside a segment: allocated or free, with its neighbours. */
class SegmentBlock implements Block {
  readonly addr: bigint;
  readonly pointer: Deno.PointerValue;
  bytes: number;
  allocated = false;
  prev: SegmentBlock | null = null;
  next: SegmentBlock | null = null;
  readonly small: boolean;
  constructor(addr: bigint, bytes: number, small: boolean) {
    this.addr = addr;
    this.pointer = Deno.UnsafePointer.create(addr);
    this.bytes = bytes;
    this.small = small;
  }
}

/** Free blocks of one pool, ordered by size then address. */
class Pool {
  readonly blocks: SegmentBlock[] = [];

  #lowerBound(bytes: number, addr: bigint): number {
    const b = this.blocks;
    let lo = 0, hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = b[mid];
      if (m.bytes < bytes || (m.bytes === bytes && m.addr < addr)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(block: SegmentBlock): void {
    this.blocks.splice(this.#lowerBound(block.bytes, block.addr), 0, block);
  }

  remove(block: SegmentBlock): void {
    const i = this.#lowerBound(block.bytes, block.addr);
    if (this.blocks[i] !== block) {
      throw new Error(
        "CachingAllocator: a free block is missing from its pool",
      );
    }
    this.blocks.splice(i, 1);
  }

  /** Removes and returns the smallest block of at least `bytes`. */
  take(bytes: number): SegmentBlock | null {
    const i = this.#lowerBound(bytes, 0n);
    if (i >= this.blocks.length) return null;
    return this.blocks.splice(i, 1)[0];
  }
}

const EMPTY: Block = { addr: 0n, pointer: null, bytes: 0 };

/** PyTorch's caching allocator: two pools of split and merged segments. */
export class CachingAllocator {
  readonly #raw: RawAllocator;
  readonly #small = new Pool();
  readonly #large = new Pool();
  readonly #stats: AllocatorStats = {
    liveBlocks: 0,
    liveBytes: 0,
    cachedBytes: 0,
    reservedBytes: 0,
    segments: 0,
    rawAllocs: 0,
    rawFrees: 0,
    allocations: 0,
    frees: 0,
    allocRetries: 0,
    peakLiveBytes: 0,
    peakReservedBytes: 0,
  };

  /** @param raw The allocator underneath. */
  constructor(raw: RawAllocator) {
    this.#raw = raw;
  }

  /**
   * Returns a block of at least `bytes`: the best-fitting free block of its
   * pool, split when the rest is worth keeping, else a new segment. When the
   * device is out of memory, the cached segments are given back and the
   * allocation tried once more.
   *
   * @param bytes The size needed.
   * @returns The block.
   */
  alloc(bytes: number): Block {
    const size = roundSize(bytes);
    if (size === 0) return EMPTY;
    const small = size <= SMALL_SIZE;
    const pool = small ? this.#small : this.#large;
    let block = pool.take(size) ?? this.#segment(size, small);
    const rest = block.bytes - size;
    if (small ? rest >= MIN_BLOCK : rest > SMALL_SIZE) {
      // the front part is handed out, the rest goes back to the pool
      const front = new SegmentBlock(block.addr, size, small);
      const back = new SegmentBlock(block.addr + BigInt(size), rest, small);
      front.prev = block.prev;
      if (front.prev) front.prev.next = front;
      front.next = back;
      back.prev = front;
      back.next = block.next;
      if (back.next) back.next.prev = back;
      pool.insert(back);
      block = front;
    }
    block.allocated = true;
    const st = this.#stats;
    st.liveBlocks++;
    st.allocations++;
    st.liveBytes += block.bytes;
    st.cachedBytes = st.reservedBytes - st.liveBytes;
    if (st.liveBytes > st.peakLiveBytes) st.peakLiveBytes = st.liveBytes;
    return block;
  }

  #segment(size: number, small: boolean): SegmentBlock {
    const bytes = segmentSize(size);
    let addr: bigint;
    try {
      addr = this.#raw.alloc(bytes);
    } catch (e) {
      if (this.#stats.cachedBytes === 0) throw this.#outOfMemory(size, e);
      this.#stats.allocRetries++;
      this.emptyCache();
      try {
        addr = this.#raw.alloc(bytes);
      } catch (e2) {
        throw this.#outOfMemory(size, e2);
      }
    }
    const st = this.#stats;
    st.rawAllocs++;
    st.segments++;
    st.reservedBytes += bytes;
    st.cachedBytes = st.reservedBytes - st.liveBytes;
    if (st.reservedBytes > st.peakReservedBytes) {
      st.peakReservedBytes = st.reservedBytes;
    }
    return new SegmentBlock(addr, bytes, small);
  }

  #outOfMemory(size: number, cause: unknown): DeviceOutOfMemoryError {
    return new DeviceOutOfMemoryError(size, this.stats, cause);
  }

  /**
   * Returns a block to its pool, merged with the free blocks beside it.
   * Releasing a block twice, or the empty block, does nothing.
   *
   * @param block A block from {@link alloc}.
   */
  release(block: Block): void {
    if (!(block instanceof SegmentBlock) || !block.allocated) return;
    block.allocated = false;
    const st = this.#stats;
    st.liveBlocks--;
    st.frees++;
    st.liveBytes -= block.bytes;
    st.cachedBytes = st.reservedBytes - st.liveBytes;
    const pool = block.small ? this.#small : this.#large;
    let b = block;
    const prev = b.prev;
    if (prev && !prev.allocated) {
      pool.remove(prev);
      b = this.#merge(prev, b);
    }
    const next = b.next;
    if (next && !next.allocated) {
      pool.remove(next);
      b = this.#merge(b, next);
    }
    pool.insert(b);
  }

  // one free block in place of two adjacent ones (a before b)
  #merge(a: SegmentBlock, b: SegmentBlock): SegmentBlock {
    const m = new SegmentBlock(a.addr, a.bytes + b.bytes, a.small);
    m.prev = a.prev;
    if (m.prev) m.prev.next = m;
    m.next = b.next;
    if (m.next) m.next.prev = m;
    return m;
  }

  /**
   * Returns every whole free segment to the raw allocator (a segment with a
   * live block in it stays), as `torch.cuda.empty_cache()`.
   */
  emptyCache(): void {
    const st = this.#stats;
    for (const pool of [this.#small, this.#large]) {
      const keep: SegmentBlock[] = [];
      for (const b of pool.blocks) {
        if (b.prev || b.next) {
          keep.push(b);
          continue;
        }
        this.#raw.free(b.addr);
        st.rawFrees++;
        st.segments--;
        st.reservedBytes -= b.bytes;
      }
      pool.blocks.length = 0;
      pool.blocks.push(...keep);
    }
    st.cachedBytes = st.reservedBytes - st.liveBytes;
  }

  /** Starts the peak counters again from the current usage. */
  resetPeak(): void {
    this.#stats.peakLiveBytes = this.#stats.liveBytes;
    this.#stats.peakReservedBytes = this.#stats.reservedBytes;
  }

  /** A snapshot of the counters. */
  get stats(): AllocatorStats {
    return { ...this.#stats };
  }
}
