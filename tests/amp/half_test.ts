/**
 * float16 / bfloat16 conversions bit for bit against PyTorch 1.13
 * (`tests/amp/fixtures/half.json`, written by `tests/amp/generate.py`).
 */

import assert from "node:assert/strict";
import { amp } from "../../mod.ts";

const fx = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/half.json", import.meta.url)),
) as {
  f32_bits: number[];
  f16_bits: number[];
  bf16_bits: number[];
  patterns: number[];
  f16_to_f32_bits: number[];
  bf16_to_f32_bits: number[];
};
const input = new Float32Array(new Int32Array(fx.f32_bits).buffer);

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): string {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      return `at ${i}: float32 bits 0x${(fx.f32_bits[i] >>> 0).toString(16)}` +
        ` -> 0x${a[i].toString(16)}, PyTorch 0x${b[i].toString(16)}`;
    }
  }
  return "";
}

Deno.test("toFloat16() rounds as PyTorch does, ties to even, NaN to 0x7E00", () => {
  const got = amp.toFloat16(input);
  assert.equal(firstDiff(got, fx.f16_bits), "");
  assert.equal(got.length, fx.f16_bits.length);
  // a plain number array gives the same
  assert.equal(firstDiff(amp.toFloat16([...input]), fx.f16_bits), "");
});

Deno.test("toBFloat16() rounds as PyTorch does, NaN to 0xFFFF", () => {
  assert.equal(firstDiff(amp.toBFloat16(input), fx.bf16_bits), "");
  assert.equal(firstDiff(amp.toBFloat16([...input]), fx.bf16_bits), "");
});

Deno.test("fromFloat16() and fromBFloat16() are exact", () => {
  const p = new Uint16Array(fx.patterns);
  for (
    const [got, want] of [
      [amp.fromFloat16(p), fx.f16_to_f32_bits],
      [amp.fromBFloat16(p), fx.bf16_to_f32_bits],
    ] as const
  ) {
    const bits = new Int32Array(got.buffer);
    const wantF = new Float32Array(new Int32Array(want).buffer);
    for (let i = 0; i < p.length; i++) {
      if (Number.isNaN(wantF[i])) {
        assert.ok(Number.isNaN(got[i]), `pattern 0x${p[i].toString(16)}`);
      } else {
        assert.equal(bits[i], want[i], `pattern 0x${p[i].toString(16)}`);
      }
    }
  }
});

Deno.test("roundThrough() is x.to(dtype).float()", () => {
  const x = [1 + 2 ** -11, 65520, 0.1];
  assert.deepEqual([...amp.roundThrough(x, "float16")], [
    1,
    Infinity,
    0.0999755859375,
  ]);
  assert.deepEqual([...amp.roundThrough(x, "bfloat16")], [
    1,
    65536,
    0.10009765625,
  ]);
});
