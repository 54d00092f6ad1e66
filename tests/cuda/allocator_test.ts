/**
 * The caching allocator against PyTorch's `CUDACachingAllocator` rules
 * (default settings): 512-byte rounding, the small pool's 2 MiB segments,
 * the large pool's 20 MiB segments (request rounded to 2 MiB from 10 MiB),
 * best fit, splitting, merging on free, giving whole free segments back.
 * The figures are what those rules give; `bench/gpu_check.sh` compares
 * `torch.cuda.memory_stats()` on a GPU. No library is opened.
 */

import assert from "node:assert/strict";
import {
  CachingAllocator,
  DeviceOutOfMemoryError,
  LARGE_BUFFER,
  roundSize,
  segmentSize,
  SMALL_BUFFER,
} from "../../src/backend/cuda/allocator.ts";

const MIB = 1 << 20;

/** A raw allocator handing out consecutive addresses, that can be made to fail. */
function rawDevice() {
  const state = {
    next: 0x10000n,
    fail: 0,
    allocs: [] as number[],
    freed: [] as bigint[],
  };
  const raw = {
    alloc(bytes: number) {
      if (state.fail > 0) {
        state.fail--;
        throw new Error("out of memory");
      }
      state.allocs.push(bytes);
      const a = state.next;
      state.next += BigInt(bytes);
      return a;
    },
    free(addr: bigint) {
      state.freed.push(addr);
    },
  };
  return { state, al: new CachingAllocator(raw) };
}

Deno.test("roundSize() rounds to 512 bytes at every size, as round_size", () => {
  assert.equal(roundSize(0), 0);
  assert.equal(roundSize(1), 512);
  assert.equal(roundSize(512), 512);
  assert.equal(roundSize(513), 1024);
  assert.equal(roundSize(MIB), MIB);
  assert.equal(roundSize(MIB + 1), MIB + 512);
  assert.equal(roundSize(1.5e9), 1500000256);
});

Deno.test("segmentSize() is get_allocation_size: 2 MiB, 20 MiB, else 2 MiB steps", () => {
  assert.equal(segmentSize(512), SMALL_BUFFER);
  assert.equal(segmentSize(MIB), SMALL_BUFFER);
  assert.equal(segmentSize(MIB + 512), LARGE_BUFFER);
  assert.equal(segmentSize(10 * MIB - 512), LARGE_BUFFER);
  assert.equal(segmentSize(10 * MIB), 10 * MIB);
  assert.equal(segmentSize(10 * MIB + 512), 12 * MIB);
});

Deno.test("small requests split one 2 MiB segment and merge back when freed", () => {
  const { state, al } = rawDevice();
  const a = al.alloc(1000); // 1024
  const b = al.alloc(4); // 512
  const c = al.alloc(3000); // 3072
  assert.deepEqual(state.allocs, [SMALL_BUFFER], "one segment for all three");
  assert.equal(b.addr, a.addr + 1024n);
  assert.equal(c.addr, b.addr + 512n);
  assert.equal(al.stats.liveBytes, 1024 + 512 + 3072);
  assert.equal(al.stats.reservedBytes, SMALL_BUFFER);
  assert.equal(al.stats.cachedBytes, SMALL_BUFFER - 4608);
  // a freed hole is reused by best fit: the 1024-byte hole, not the tail
  al.release(a);
  const d = al.alloc(700);
  assert.equal(d.addr, a.addr);
  // freeing everything merges the segment back into one free block
  al.release(b);
  al.release(c);
  al.release(d);
  al.release(d); // twice does nothing
  assert.equal(al.stats.liveBytes, 0);
  assert.equal(al.stats.liveBlocks, 0);
  assert.equal(al.stats.frees, 4);
  assert.equal(al.stats.allocations, 4);
  const whole = al.alloc(MIB);
  assert.equal(whole.addr, a.addr, "the merged segment serves a 1 MiB block");
  assert.deepEqual(state.allocs, [SMALL_BUFFER]);
  al.release(whole);
  al.emptyCache();
  assert.deepEqual(state.freed, [a.addr]);
  assert.equal(al.stats.reservedBytes, 0);
  assert.equal(al.stats.segments, 0);
});

Deno.test("large requests: 20 MiB segments split only when more than 1 MiB is left", () => {
  const { state, al } = rawDevice();
  const a = al.alloc(4 * MIB);
  assert.deepEqual(state.allocs, [LARGE_BUFFER]);
  assert.equal(a.bytes, 4 * MIB);
  const b = al.alloc(15 * MIB); // fits the 16 MiB remainder: split, 1 MiB left
  assert.equal(b.addr, a.addr + BigInt(4 * MIB));
  assert.equal(b.bytes, 15 * MIB + MIB, "a 1 MiB rest is not split off");
  assert.deepEqual(state.allocs, [LARGE_BUFFER], "no new segment");
  // from 10 MiB on, a segment is the request rounded up to 2 MiB
  const c = al.alloc(11 * MIB);
  assert.deepEqual(state.allocs, [LARGE_BUFFER, 12 * MIB]);
  assert.equal(c.bytes, 12 * MIB, "1 MiB left is not split off either");
  assert.equal(al.stats.liveBytes, 4 * MIB + 16 * MIB + 12 * MIB);
  assert.equal(al.stats.peakLiveBytes, 32 * MIB);
  assert.equal(al.stats.peakReservedBytes, 32 * MIB);
  // small and large pools are apart: a small request takes a new segment
  al.release(a);
  const s = al.alloc(100);
  assert.notEqual(s.addr, a.addr);
  assert.deepEqual(state.allocs, [LARGE_BUFFER, 12 * MIB, SMALL_BUFFER]);
  // best fit in the large pool: the 4 MiB hole serves 3 MiB (rest 1 MiB kept)
  const e = al.alloc(3 * MIB);
  assert.equal(e.addr, a.addr);
  assert.equal(e.bytes, 4 * MIB);
  for (const x of [b, c, e, s]) al.release(x);
  al.resetPeak();
  assert.equal(al.stats.peakLiveBytes, 0);
  assert.equal(al.stats.peakReservedBytes, 34 * MIB);
});

Deno.test("emptyCache() gives back whole free segments and keeps split ones", () => {
  const { state, al } = rawDevice();
  const a = al.alloc(2 * MIB); // large segment 1
  const b = al.alloc(19 * MIB); // more than segment 1's 18 MiB rest: 20 MiB
  al.release(b);
  al.emptyCache();
  assert.deepEqual(state.freed, [b.addr], "segment 1 holds a live block");
  assert.equal(al.stats.reservedBytes, LARGE_BUFFER);
  assert.equal(al.stats.segments, 1);
  al.release(a);
  al.emptyCache();
  assert.deepEqual(state.freed, [b.addr, a.addr]);
  assert.equal(al.stats.rawFrees, 2);
});

Deno.test("out of memory: the cache goes back and the allocation is tried again", () => {
  const { state, al } = rawDevice();
  const a = al.alloc(1000);
  al.release(a);
  state.fail = 1;
  const c = al.alloc(5 * MIB);
  assert.deepEqual(
    state.freed,
    [a.addr],
    "the cache went back before the retry",
  );
  assert.equal(al.stats.allocRetries, 1);
  assert.equal(al.stats.cachedBytes, LARGE_BUFFER - 5 * MIB);
  state.fail = 2; // the retry finds no whole free segment to give back
  assert.throws(
    () => al.alloc(2 * MIB * 10 + 1),
    (e: unknown) =>
      e instanceof DeviceOutOfMemoryError && e.requested === 20 * MIB + 512 &&
      e.stats.liveBytes === 5 * MIB && /out of memory/.test(e.message) &&
      /Cannot allocate 20\.0 MiB of device memory/.test(e.message) &&
      /when the event loop turns/.test(e.message) &&
      (e.cause as Error).message === "out of memory",
    "a typed error naming the request and what is held",
  );
  state.fail = 2;
  assert.throws(() => al.alloc(100), DeviceOutOfMemoryError);
  al.release(c);
  assert.equal(al.alloc(0).bytes, 0);
});
