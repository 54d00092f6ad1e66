/**
 * safetensors F16 / BF16 against a file PyTorch 1.13 rounded
 * (`tests/amp/fixtures/half.safetensors`, from `tests/amp/generate.py`):
 * kdeno reads its F16 and BF16 tensors as PyTorch's `.float()` gives them,
 * and writes the float32 tensor as F16 / BF16 with PyTorch's bytes.
 */

import assert from "node:assert/strict";
import { amp, io, tensor } from "../../mod.ts";

const path = new URL("./fixtures/half.safetensors", import.meta.url);

/** The data bytes of one tensor of a safetensors file. */
function tensorBytes(file: Uint8Array, name: string): Uint8Array {
  const h = io.parseSafetensorsHeader(file, "fixture");
  const e = h.tensors[name];
  return file.subarray(
    h.dataStart + e.dataOffsets[0],
    h.dataStart + e.dataOffsets[1],
  );
}

const sameBits = (a: Float32Array, b: Float32Array) =>
  assert.deepEqual(
    [...new Uint32Array(a.buffer, a.byteOffset, a.length)].map((x, i) =>
      Number.isNaN(a[i]) ? "nan" : x
    ),
    [...new Uint32Array(b.buffer, b.byteOffset, b.length)].map((x, i) =>
      Number.isNaN(b[i]) ? "nan" : x
    ),
  );

Deno.test("F16 and BF16 written by PyTorch read as its float() values", async () => {
  const t = await io.loadSafetensors(path);
  const w = t.w32.data() as Float32Array;
  assert.deepEqual(t.w16.shape, [4, 8]);
  assert.equal(t.w16.dtype, "float32");
  sameBits(t.w16.data() as Float32Array, amp.roundThrough(w, "float16"));
  sameBits(t.wbf.data() as Float32Array, amp.roundThrough(w, "bfloat16"));
});

Deno.test("saveSafetensors({ dtype }) writes PyTorch's F16 and BF16 bytes", async () => {
  const file = await Deno.readFile(path);
  const { w32 } = await io.loadSafetensors(path);
  for (
    const [dtype, key, tag] of [
      ["float16", "w16", "F16"],
      ["bfloat16", "wbf", "BF16"],
    ] as const
  ) {
    const ours = io.serializeSafetensors(
      { w: w32, n: tensor(new Int32Array([7])) },
      undefined,
      { dtype },
    );
    const h = io.parseSafetensorsHeader(ours, "ours");
    assert.equal(h.tensors.w.dtype, tag);
    assert.equal(h.tensors.n.dtype, "I32", "int32 stays I32");
    assert.deepEqual(tensorBytes(ours, "w"), tensorBytes(file, key));
    // and it reads back
    const dir = await Deno.makeTempDir();
    try {
      await io.saveSafetensors(`${dir}/h.safetensors`, { w: w32 }, undefined, {
        dtype,
      });
      const back = await io.loadSafetensors(`${dir}/h.safetensors`);
      sameBits(
        back.w.data() as Float32Array,
        amp.roundThrough(w32.data(), dtype),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  assert.throws(
    () =>
      io.serializeSafetensors({ w: w32 }, undefined, {
        // deno-lint-ignore no-explicit-any
        dtype: "float64" as any,
      }),
    /dtype "float64" is not "float32", "float16" or "bfloat16"/,
  );
});
