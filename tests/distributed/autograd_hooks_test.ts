/**
 * The tape's gradient-ready hooks that `DistributedDataParallel` uses: each
 * leaf's hook runs once per `backward()`, after every consumer of the leaf,
 * with its final `.grad` already stored (accumulated into an existing one),
 * last layers first; callbacks queued from a hook run after every gradient
 * is stored, before `backward()` returns.
 */

import assert from "node:assert/strict";
import { tensor } from "../../mod.ts";
import {
  queueBackwardCallback,
  registerGradReadyHook,
} from "../../src/autograd.ts";

Deno.test("gradient-ready hooks see final gradients, last layer first", () => {
  const x = tensor([1, 2]);
  const w1 = tensor([3, 4], { requiresGrad: true });
  const w2 = tensor([5, 6], { requiresGrad: true });
  const events: string[] = [];
  const seen: Record<string, number[]> = {};
  const h1 = registerGradReadyHook(w1, (t) => {
    events.push("w1");
    seen.w1 = [...t.grad!.data()];
  });
  registerGradReadyHook(w2, (t) => {
    events.push("w2");
    seen.w2 = [...t.grad!.data()];
    queueBackwardCallback(() => events.push("end"));
  });
  // w1 is used twice: its hook must wait for both uses
  const h = x.mul(w1);
  const y = h.mul(w2).add(w1.mul(10)).sum();
  y.backward();
  assert.deepEqual(events, ["w2", "w1", "end"]);
  assert.deepEqual(seen.w2, [3, 8]); // x * w1
  assert.deepEqual(seen.w1, [5 * 1 + 10, 6 * 2 + 10]); // x * w2 + 10
  // a second pass accumulates, and the hook sees the sum
  h1.remove();
  x.mul(w1).mul(w2).sum().backward();
  assert.deepEqual(events, ["w2", "w1", "end", "w2", "end"]);
  assert.deepEqual(seen.w2, [6, 16]);
  assert.deepEqual([...w1.grad!.data()], [15 + 5, 22 + 12]);
});

Deno.test("queueBackwardCallback outside backward() throws", () => {
  assert.throws(
    () => queueBackwardCallback(() => {}),
    /only valid during backward/,
  );
});
