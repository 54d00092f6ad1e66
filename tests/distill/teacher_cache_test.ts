// TeacherCache: keys by (source, index, augmentation outcome) when batches
// carry a BatchInfo, by a hash of the pixels otherwise, and returns the
// teacher's logits either way.
import assert from "node:assert/strict";
import {
  data,
  distill,
  manualSeed,
  models,
  noGrad,
  randn,
  transforms as T,
} from "../../mod.ts";
import type { Tensor } from "../../mod.ts";

const VAL =
  new URL("../../examples/data/fashion-binary/val", import.meta.url).pathname;

function teacher(inputSize = 8): models.StudentNet {
  manualSeed(1);
  return new models.StudentNet({ inputSize, numClasses: 3 }).eval();
}

const rows = (t: Tensor) => t.toArray() as number[][];

Deno.test("TeacherCache.logits() keys by source, index and outcome, not by pixels", () => {
  const cache = new distill.TeacherCache(teacher(), { log: () => {} });
  const x1 = randn([2, 3, 8, 8]);
  const x2 = randn([2, 3, 8, 8]);
  const info = {
    indices: [0, 1],
    augmentations: ["hflip=0", "hflip=1"],
    source: "a",
  };
  const a = cache.logits(x1, info);
  // The contract: the same source, index and outcome is the same image, so
  // other pixels under the same info get the first image's entries.
  const b = cache.logits(x2, info);
  assert.deepEqual(rows(b), rows(a));
  assert.deepEqual([cache.stats.misses, cache.stats.hits], [2, 2]);
  // another outcome, or another source, is another entry
  const c = cache.logits(x2, {
    ...info,
    augmentations: ["hflip=1", "hflip=0"],
  });
  const d = cache.logits(x2, { ...info, source: "b" });
  const live = rows(noGrad(() => cache.teacher.call(x2)));
  assert.deepEqual(rows(c), live);
  assert.deepEqual(rows(d), live);
  assert.deepEqual([cache.stats.misses, cache.stats.entries], [6, 6]);
});

Deno.test("TeacherCache.logits() hashes the pixels without info or outcome", () => {
  const lines: string[] = [];
  const cache = new distill.TeacherCache(teacher(), {
    log: (l) => lines.push(l),
  });
  const x1 = randn([2, 3, 8, 8]);
  const x2 = randn([2, 3, 8, 8]);
  const a = cache.logits(x1);
  assert.deepEqual(rows(cache.logits(x1)), rows(a));
  assert.deepEqual([cache.stats.misses, cache.stats.hits], [2, 2]);
  assert.notDeepEqual(rows(cache.logits(x2)), rows(a));
  assert.equal(cache.stats.misses, 4);
  // indices alone say nothing about the augmentation: by content
  cache.logits(x1, { indices: [7, 8] });
  assert.deepEqual([cache.stats.misses, cache.stats.hits], [4, 4]);
  // a null outcome (unknown) is keyed by content, the others by info
  const info = { indices: [5, 6], augmentations: [null, "hflip=0"] };
  assert.deepEqual(rows(cache.logits(x1, info)), rows(a));
  assert.deepEqual([cache.stats.misses, cache.stats.hits], [5, 5]);
  cache.logits(x1, info);
  assert.deepEqual([cache.stats.misses, cache.stats.hits], [5, 7]);
  assert.equal(lines.filter((l) => /hash of their pixels/.test(l)).length, 1);
});

Deno.test("TeacherCache on DataLoader batches gives the teacher's logits and the content hash's hits", async () => {
  const ds = new data.ImageFolder(VAL, {
    transform: [
      new T.Resize([16, 16]),
      new T.RandomHorizontalFlip(),
      new T.ToTensor(),
    ],
    cache: true,
  });
  const loader = new data.DataLoader(ds, {
    batchSize: 32,
    shuffle: true,
    seed: 2,
  });
  const t = teacher(16);
  const keyed = new distill.TeacherCache(t, { log: () => {} });
  const content = new distill.TeacherCache(t, { log: () => {} });
  for (let epoch = 0; epoch < 3; epoch++) {
    for await (const [x, y, info] of loader) {
      assert.ok(info?.augmentations);
      const k = keyed.logits(x, info);
      const c = content.logits(x);
      const live = t.call(x);
      // identical to the content-keyed cache, bit for bit
      assert.deepEqual(k.data(), c.data());
      // the teacher's logits (rows computed in smaller batches may differ
      // from a whole-batch pass in the last bit)
      const [kd, ld] = [k.data(), live.data()];
      for (let i = 0; i < kd.length; i++) {
        assert.ok(Math.abs(kd[i] - ld[i]) < 1e-5, `value ${i}`);
      }
      for (const v of [x, y, k, c, live]) v.dispose();
    }
    assert.ok(keyed.stats.hits >= content.stats.hits);
  }
  // 200 images, two flip states each: every epoch after the first hits
  assert.ok(keyed.stats.hits > 0);
  assert.equal(keyed.stats.hits + keyed.stats.misses, 3 * ds.length);
  assert.ok(keyed.stats.entries <= 2 * ds.length);
});

Deno.test("TeacherCache.precompute() serves one source and refuses another", async () => {
  const cache = new distill.TeacherCache(teacher(), { log: () => {} });
  const x = randn([2, 3, 8, 8]);
  await cache.precompute({
    length: 2,
    get: (i) => [x.slice(0, i, i + 1).reshape([3, 8, 8]), 0],
  });
  const want = rows(cache.teacher.call(x));
  const got = rows(cache.logits(randn([2, 3, 8, 8]), {
    indices: [0, 1],
    source: "train",
  }));
  got.flat().forEach((v, i) => assert.ok(Math.abs(v - want.flat()[i]) < 1e-5));
  assert.throws(
    () => cache.logits(x, { indices: [0, 1], source: "transfer" }),
    /another dataset/,
  );
});

Deno.test("TeacherCache's low hit-rate notice names flips when flips are the only augmentation, else a continuous one", () => {
  const x = randn([4, 3, 8, 8]);
  const lowRate = (augs: (a: number, epoch: number) => string) => {
    const lines: string[] = [];
    const cache = new distill.TeacherCache(teacher(), {
      log: (l) => lines.push(l),
    });
    for (let epoch = 0; epoch < 2; epoch++) {
      cache.logits(x, {
        indices: [0, 1, 2, 3],
        augmentations: [0, 1, 2, 3].map((i) => augs(i, epoch)),
        source: "s",
      });
      cache.endEpoch(epoch);
    }
    return lines;
  };
  // epoch 2 meets every image in its other flip state: 0% hits
  const flips = lowRate((_, e) => `hflip=${e}`);
  assert.equal(flips.length, 1);
  assert.match(
    flips[0],
    /only 0% hits in epoch 2: the only augmentation is a random flip/,
  );
  assert.doesNotMatch(flips[0], /crops|jitter/);
  const crops = lowRate((i, e) => `hflip=0 crop=${i},${e}`);
  assert.equal(crops.length, 1);
  assert.match(crops[0], /does not repeat \(random crops, colour jitter/);
});
