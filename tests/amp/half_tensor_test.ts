/**
 * safetensors with float16 and bfloat16 tensors: F16 and BF16 entries
 * written by PyTorch 1.13 (`tests/amp/fixtures/half.safetensors`, from
 * `tests/amp/generate.py`) load as float32 by default and keep their dtype
 * and bits with `{ dtype: "keep" }`; half tensors are written as their own
 * bits. The ops on half tensors are checked in `tests/ops/half_dtype_test.ts`.
 */

import assert from "node:assert/strict";
import { io } from "../../mod.ts";

Deno.test("safetensors: F16 and BF16 stay half with dtype 'keep', float32 by default", async () => {
  // written by PyTorch: tests/amp/generate.py
  const path = new URL("./fixtures/half.safetensors", import.meta.url);
  const def = await io.loadSafetensors(path);
  const kept = await io.loadSafetensors(path, { dtype: "keep" });
  assert.equal(def.w16.dtype, "float32");
  assert.equal(def.wbf.dtype, "float32");
  assert.equal(kept.w16.dtype, "float16");
  assert.equal(kept.wbf.dtype, "bfloat16");
  assert.equal(kept.w32.dtype, "float32");
  assert.deepEqual(kept.w16.shape, def.w16.shape);
  assert.deepEqual(kept.w16.toArray(), def.w16.toArray());
  assert.deepEqual(kept.wbf.toArray(), def.wbf.toArray());
  // PyTorch's rounding of w32 is what the file holds
  assert.deepEqual(kept.w32.half().data(), kept.w16.data());
  assert.deepEqual(kept.w32.bfloat16().data(), kept.wbf.data());
  // half tensors are written as their own bits, whatever options.dtype says
  const bytes = io.serializeSafetensors({ h: kept.w16, b: kept.wbf });
  const again = io.parseSafetensors(bytes, "round trip", { dtype: "keep" });
  assert.equal(again.h.dtype, "float16");
  assert.deepEqual(again.h.data(), kept.w16.data());
  assert.deepEqual(again.b.data(), kept.wbf.data());
  assert.throws(
    () =>
      io.parseSafetensors(bytes, "x", {
        dtype: "float16" as unknown as "keep",
      }),
    TypeError,
  );
});
