import assert from "node:assert/strict";
import {
  clearPool,
  f32,
  f32Out,
  i32,
  pooledByteCount,
  recycle,
} from "../../src/backend/cpu/_array_pool.ts";

const N = 1 << 16; // the smallest pooled length

Deno.test("the array pool reuses a buffer for an equal or a smaller request, zeroed by f32()", () => {
  clearPool();
  const a = f32(4 * N);
  a.fill(7);
  recycle(a);
  assert.equal(pooledByteCount(), 16 * N);
  // a quarter of the size still fits the buffer: same memory, zeroed
  const b = f32(N);
  assert.equal(b.buffer, a.buffer);
  assert.equal(b.length, N);
  assert.ok(b.every((v) => v === 0));
  assert.equal(pooledByteCount(), 0);
  // giving the view back returns the whole buffer
  recycle(b);
  assert.equal(pooledByteCount(), 16 * N);
  // float32 and int32 share buffers
  const c = i32(2 * N);
  assert.equal(c.buffer, a.buffer);
  recycle(c);
  clearPool();
});

Deno.test("the array pool ignores buffers more than 4x too large, small arrays and foreign views", () => {
  clearPool();
  recycle(new Float32Array(8 * N));
  const small = f32Out(N);
  assert.notEqual(small.buffer.byteLength, 32 * N, "not served from 8x");
  assert.equal(pooledByteCount(), 32 * N);
  clearPool();
  // a view of a live array must never enter the pool
  const live = new Float32Array(4 * N);
  recycle(live.subarray(0, 2 * N));
  recycle(live.subarray(N, 3 * N));
  assert.equal(pooledByteCount(), 0);
  recycle(new Float32Array(N - 1));
  assert.equal(pooledByteCount(), 0);
});
