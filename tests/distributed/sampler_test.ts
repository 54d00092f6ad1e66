/**
 * `DistributedSampler`: PyTorch 1.13's indices for every rank without
 * shuffling (fixtures from `generate_fixtures.py`), and with shuffling the
 * properties PyTorch's sampler has: the same permutation on every rank for
 * a seed and epoch, a new one per epoch, disjoint strided shards covering
 * the dataset, padding by repetition, and the checks on rank and replicas.
 */

import assert from "node:assert/strict";
import { data, distributed } from "../../mod.ts";

const fixtures = JSON.parse(
  await Deno.readTextFile(new URL("sampler_torch.json", import.meta.url)),
) as {
  cases: {
    n: number;
    world: number;
    dropLast: boolean;
    numSamples: number;
    ranks: number[][];
  }[];
};

Deno.test("DistributedSampler matches PyTorch without shuffling", () => {
  assert.ok(fixtures.cases.length >= 70);
  for (const c of fixtures.cases) {
    for (let r = 0; r < c.world; r++) {
      const s = new distributed.DistributedSampler({ length: c.n }, {
        numReplicas: c.world,
        rank: r,
        shuffle: false,
        dropLast: c.dropLast,
      });
      const what = `n ${c.n} world ${c.world} rank ${r} dropLast ${c.dropLast}`;
      assert.equal(s.length, c.numSamples, what);
      assert.deepEqual(s.sample(), c.ranks[r], what);
    }
  }
});

Deno.test("DistributedSampler shuffles with seed + epoch, the same on every rank", () => {
  const n = 23, world = 4;
  const make = (rank: number, seed = 5) =>
    new distributed.DistributedSampler({ length: n }, {
      numReplicas: world,
      rank,
      seed,
    });
  const samplers = [0, 1, 2, 3].map((r) => make(r));
  const order0 = samplers[0].globalOrder();
  for (const s of samplers) assert.deepEqual(s.globalOrder(), order0);
  // padded to 24 by repeating the first index; strided shards
  assert.equal(order0.length, 24);
  assert.equal(order0[23], order0[0]);
  assert.deepEqual([...order0.slice(0, 23)].sort((a, b) => a - b), [
    ...Array(n).keys(),
  ]);
  samplers.forEach((s, r) =>
    assert.deepEqual(s.sample(), order0.filter((_, i) => i % world === r))
  );
  // a new epoch, a new order; the same epoch, the same order
  samplers[0].setEpoch(1);
  const order1 = samplers[0].globalOrder();
  assert.notDeepEqual(order1, order0);
  assert.deepEqual(make(0).globalOrder(), order0);
  const again = make(0);
  again.setEpoch(1);
  assert.deepEqual(again.globalOrder(), order1);
  assert.notDeepEqual(make(0, 6).globalOrder(), order0);
});

Deno.test("DistributedSampler checks its arguments and shards an inner sampler", () => {
  assert.throws(
    () =>
      new distributed.DistributedSampler({ length: 4 }, {
        numReplicas: 2,
        rank: 2,
      }),
    /invalid rank 2, rank should be in the interval \[0, 1\]/,
  );
  assert.throws(
    () => new distributed.DistributedSampler({ length: 4 }, { numReplicas: 0 }),
    /numReplicas must be a positive integer/,
  );
  // without a group: a world of one
  const s = new distributed.DistributedSampler({ length: 5 }, {
    shuffle: false,
  });
  assert.equal(s.numReplicas, 1);
  assert.deepEqual(s.sample(), [0, 1, 2, 3, 4]);
  // an inner sampler's order is sharded
  const inner = new data.SequentialSampler({ length: 6 });
  const outer = new distributed.DistributedSampler({ length: 6 }, {
    numReplicas: 2,
    rank: 1,
    sampler: inner,
  });
  assert.deepEqual(outer.sample(), [1, 3, 5]);
});
