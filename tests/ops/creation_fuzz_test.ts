// tensor() and zeros() on data a JavaScript caller might hand them: JSON
// read back from a file, mutated byte by byte. Whatever parses as JSON is
// given to tensor() (its `data`, its `shape`) and to zeros() (its `shape`);
// the property is tests/_fuzz.ts's: success or a typed kdeno error, in
// bounded time and memory. Strings, nulls, objects, ragged arrays and
// shapes of billions of elements all come up.
import assert from "node:assert/strict";
import { tensor, zeros } from "../../mod.ts";
import { fuzz } from "../_fuzz.ts";

const INPUT = new TextEncoder().encode(
  JSON.stringify({
    data: [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 10], [11, 12]]],
    shape: [3, 2, 2],
    more: [[0.5, -1], [1e3, 2]],
    size: [2, 65536, 65536],
  }),
);

/** Mutants that were JSON, so reached kdeno, and tensors made from them. */
let reached = 0, made = 0;

function create(bytes: Uint8Array): void {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return; // not JSON: nothing reaches kdeno
  }
  reached++;
  if (v === null || typeof v !== "object") {
    tensor(v as number).dispose();
    made++;
    return;
  }
  for (const data of [v.data, v.more]) {
    tensor(data as number[]).dispose();
    made++;
  }
  tensor(v.data as number[], { shape: v.shape as number[] }).dispose();
  made++;
  for (const shape of [v.shape, v.size]) {
    zeros(shape as number[]).dispose();
    made++;
  }
}

Deno.test("tensor() and zeros() on mutated JSON: success or a typed error", async () => {
  // the unmutated input itself: `size` is 8 Gi elements, refused by type
  assert.throws(() => create(INPUT), /8589934592 elements/);
  reached = made = 0;
  const { refused } = await fuzz({
    input: INPUT,
    parse: create,
    cases: 5000,
    regressions: [],
  });
  // about one mutant in twelve is still JSON; from those, many tensors are
  // made and many calls refused with a typed error
  assert.ok(reached > 200, `only ${reached} mutants were JSON`);
  assert.ok(made > 200, `only ${made} tensors made`);
  assert.ok(refused > 200, `only ${refused} mutants refused`);
});
