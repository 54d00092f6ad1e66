// DataLoader: batches, seeded order and augmentations identical with 0 and 2
// workers, the cache, skipping and raising on bad files, samplers, splits.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DataError } from "../../src/errors.ts";
import { Generator } from "../../src/random.ts";
import { tensor } from "../../src/ops/creation.ts";
import { DataLoader } from "../../src/data/data_loader.ts";
import { Subset } from "../../src/data/dataset.ts";
import { ImageFolder } from "../../src/data/image_folder.ts";
import {
  RandomSampler,
  SequentialSampler,
  SubsetRandomSampler,
  WeightedRandomSampler,
} from "../../src/data/samplers.ts";
import { randomSplit, stratifiedSplit } from "../../src/data/split.ts";
import * as T from "../../src/data/transforms.ts";
import { IMAGES, tempDir } from "./_fixtures.ts";

const VAL =
  new URL("../../examples/data/fashion-binary/val", import.meta.url).pathname;

const augment = () => [
  new T.Resize([32, 32]),
  new T.RandomResizedCrop(24, { scale: [0.5, 1] }),
  new T.RandomHorizontalFlip(),
  new T.ColorJitter({ brightness: 0.3, contrast: 0.3 }),
  new T.ToTensor(),
  new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
];

async function epoch(
  loader: DataLoader,
): Promise<{ x: Float32Array[]; y: number[][] }> {
  const x: Float32Array[] = [], y: number[][] = [];
  for await (const [images, labels] of loader) {
    assert.equal(images.dtype, "float32");
    assert.equal(labels.dtype, "int32");
    x.push(Float32Array.from(images.data()));
    y.push(labels.toArray() as number[]);
  }
  return { x, y };
}

Deno.test("DataLoader() gives the same batches for a seed with 0 and 2 workers", async (t) => {
  const run = async (
    numWorkers: number,
    seed: number,
    cache = false,
    tail = false,
  ) => {
    const ds = new ImageFolder(VAL, {
      transform: tail ? [...augment(), (x: T.ImageLike) => x] : augment(),
      cache,
    });
    const loader = new DataLoader(ds, {
      batchSize: 32,
      shuffle: true,
      numWorkers,
      seed,
    });
    return [await epoch(loader), await epoch(loader)];
  };
  const base = await run(0, 7);
  await t.step("shapes and counts", () => {
    assert.equal(base[0].x.length, 7); // 200 images in batches of 32
    assert.equal(base[0].x[0].length, 32 * 3 * 24 * 24);
    assert.equal(base[0].y.flat().length, 200);
  });
  await t.step(
    "epochs differ",
    () => assert.notDeepEqual(base[0].y, base[1].y),
  );
  await t.step(
    "2 workers",
    async () => assert.deepEqual(await run(2, 7), base),
  );
  await t.step(
    "2 workers with the cache",
    async () => assert.deepEqual(await run(2, 7, true), base),
  );
  await t.step(
    "0 workers with the cache",
    async () => assert.deepEqual(await run(0, 7, true), base),
  );
  await t.step(
    "a main-thread Lambda tail",
    async () => assert.deepEqual(await run(2, 7, false, true), base),
  );
  await t.step(
    "another seed differs",
    async () => assert.notDeepEqual((await run(0, 8))[0], base[0]),
  );
});

Deno.test("DataLoader() reuses pixel arrays only where no user transform saw them", async () => {
  // a user transform that keeps every image it sees (as a mix-up would)
  const kept: { data: Float32Array; copy: Float32Array }[] = [];
  const keep = (x: T.ImageLike) => {
    const data = x.data as Float32Array;
    kept.push({ data, copy: data.slice() });
    return x;
  };
  const ds = new ImageFolder(VAL, {
    transform: [new T.Resize([24, 24]), new T.ToTensor(), keep],
  });
  const loader = new DataLoader(ds, { batchSize: 16, shuffle: false });
  const first = await epoch(loader);
  const second = await epoch(loader);
  assert.ok(kept.length >= 2 * 16);
  kept.forEach((k, i) =>
    assert.deepEqual(k.data, k.copy, `image ${i} was overwritten`)
  );
  // and without a user transform, reuse leaves every batch as it was made
  const plain = new DataLoader(
    new ImageFolder(VAL, {
      transform: [new T.Resize([24, 24]), new T.ToTensor()],
    }),
    { batchSize: 16, shuffle: false },
  );
  const a = await epoch(plain);
  const b = await epoch(plain);
  assert.deepEqual(a.x, b.x);
  assert.deepEqual(a.x, first.x);
  assert.deepEqual(second.x, first.x);
});

Deno.test("DataLoader() batches, drops the last batch and takes samplers", async () => {
  const ds = new ImageFolder(VAL, { transform: [new T.ToTensor()] });
  const l = new DataLoader(ds, { batchSize: 64, dropLast: true });
  assert.equal(l.length, 3);
  const { y } = await epoch(l);
  assert.equal(y.length, 3);
  assert.deepEqual(y.flat(), ds.targets.slice(0, 192));
  const sub = new DataLoader(ds, {
    batchSize: 10,
    sampler: new SubsetRandomSampler([1, 2, 3, 150]),
  });
  assert.deepEqual((await epoch(sub)).y.flat().sort(), [0, 0, 0, 1]);
  assert.throws(
    () =>
      new DataLoader(ds, { shuffle: true, sampler: new SequentialSampler(ds) }),
    /exclusive/,
  );
  // A Subset of an ImageFolder keeps the Worker path.
  const s = new Subset(ds, [199, 0]);
  const w = new DataLoader(s, { batchSize: 2, numWorkers: 1 });
  assert.deepEqual((await epoch(w)).y, [[1, 0]]);
  // Any dataset of [tensor, label] batches on the main thread.
  const plain = {
    length: 5,
    get: (i: number) =>
      [tensor([i, i]), i] as [ReturnType<typeof tensor>, number],
  };
  const batches = [];
  for await (const [x, yb] of new DataLoader(plain, { batchSize: 2 })) {
    batches.push([x.shape, yb.toArray()]);
  }
  assert.deepEqual(batches, [[[2, 2], [0, 1]], [[2, 2], [2, 3]], [[1, 2], [
    4,
  ]]]);
});

async function badFolder(root: string): Promise<string[]> {
  for (
    const [i, f] of ["rgb8.png", "gray.jpg", "palette.png", "baseline.jpg"]
      .entries()
  ) {
    await Deno.mkdir(join(root, i % 2 ? "b" : "a"), { recursive: true });
    await Deno.copyFile(IMAGES + f, join(root, i % 2 ? "b" : "a", `${i}_${f}`));
  }
  const jpg = await Deno.readFile(IMAGES + "baseline.jpg");
  const bad = [
    join(root, "a/empty.jpg"),
    join(root, "b/text.png"),
    join(root, "b/trunc.jpg"),
  ];
  await Deno.writeFile(bad[0], new Uint8Array(0));
  await Deno.writeTextFile(bad[1], "hello");
  await Deno.writeFile(bad[2], jpg.slice(0, jpg.length >> 1));
  return bad;
}

Deno.test("DataLoader() skips and reports bad images under onError: skip", async (t) => {
  const [root, cleanup] = await tempDir();
  const warn = console.warn;
  try {
    const bad = await badFolder(root);
    for (const numWorkers of [0, 2]) {
      await t.step(`${numWorkers} workers`, async () => {
        const ds = new ImageFolder(root, {
          transform: [new T.Resize([8, 8]), new T.ToTensor()],
          onError: "skip",
        });
        const loader = new DataLoader(ds, { batchSize: 3, numWorkers });
        const warnings: string[] = [];
        console.warn = (m: string) => warnings.push(m);
        for (let e = 0; e < 2; e++) {
          const { y } = await epoch(loader);
          assert.equal(y.flat().length, 4);
          assert.deepEqual(
            loader.skipped.map((s) => s.path).sort(),
            [...bad].sort(),
          );
        }
        console.warn = warn;
        assert.equal(warnings.length, 2);
        assert.match(warnings[0], /skipped 3 unreadable image/);
        for (const p of bad) assert.ok(warnings[0].includes(p));
        assert.deepEqual(ds.skipped.map((s) => s.path).sort(), [...bad].sort());
      });
    }
  } finally {
    console.warn = warn;
    await cleanup();
  }
});

Deno.test("DataLoader() raises a DataError naming the bad file", async () => {
  const [root, cleanup] = await tempDir();
  try {
    const bad = await badFolder(root);
    for (const numWorkers of [0, 2]) {
      const ds = new ImageFolder(root, { transform: [new T.ToTensor()] });
      const loader = new DataLoader(ds, { batchSize: 2, numWorkers });
      await assert.rejects(epoch(loader), (e: Error) => {
        assert.ok(e instanceof DataError, String(e));
        assert.ok(e.message.includes(bad[0]), e.message);
        return true;
      });
    }
  } finally {
    await cleanup();
  }
});

Deno.test("samplers draw what PyTorch's draw", () => {
  const g = () => new Generator(3);
  assert.deepEqual(new SequentialSampler({ length: 4 }).sample(), [0, 1, 2, 3]);
  const perm = new RandomSampler({ length: 50 }).sample(g());
  assert.deepEqual([...perm].sort((a, b) => a - b), [...Array(50).keys()]);
  assert.deepEqual(new RandomSampler({ length: 50 }).sample(g()), perm);
  const rep = new RandomSampler({ length: 3 }, {
    replacement: true,
    numSamples: 100,
  }).sample(g());
  assert.equal(rep.length, 100);
  assert.ok(rep.every((i) => i >= 0 && i < 3));
  const w = new WeightedRandomSampler([0, 1, 3], 4000).sample(g());
  assert.equal(w.filter((i) => i === 0).length, 0);
  const share = w.filter((i) => i === 2).length / 4000;
  assert.ok(Math.abs(share - 0.75) < 0.03, `share ${share}`);
  const nr = new WeightedRandomSampler([1, 1, 5, 0], 3, { replacement: false })
    .sample(g());
  assert.deepEqual([...nr].sort(), [0, 1, 2]);
  assert.throws(
    () => new WeightedRandomSampler([1, 0], 2, { replacement: false }),
    /without replacement/,
  );
  const own = new SubsetRandomSampler([5, 6, 7], {
    generator: new Generator(1),
  });
  assert.deepEqual([...own].sort(), [5, 6, 7]);
});

Deno.test("randomSplit() and stratifiedSplit() partition the dataset", async (t) => {
  const n = 103;
  const targets = Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 1 : 0));
  const ds = { length: n, get: (i: number) => i, targets };
  await t.step("randomSplit counts and fractions", () => {
    const parts = randomSplit(ds, [0.8, 0.1, 0.1], { seed: 0 });
    assert.deepEqual(parts.map((p) => p.length), [83, 10, 10]);
    const all = parts.flatMap((p) => [...p.indices]).sort((a, b) => a - b);
    assert.deepEqual(all, [...Array(n).keys()]);
    assert.deepEqual(
      randomSplit(ds, [100, 3], { seed: 1 }).map((p) => p.length),
      [100, 3],
    );
    assert.throws(() => randomSplit(ds, [50, 50]), /summing/);
  });
  await t.step("stratified keeps proportions", () => {
    const [a, b] = stratifiedSplit(ds, [0.75, 0.25], { seed: 0 });
    assert.equal(a.length + b.length, n);
    const ones = (s: Subset<number>) =>
      s.indices.filter((i) => targets[i] === 1).length;
    assert.equal(ones(a) + ones(b), 26);
    assert.ok(Math.abs(ones(b) - 26 * 0.25) <= 1);
    assert.deepEqual(b.targets, b.indices.map((i) => targets[i]));
  });
  await t.step("groups never cross", () => {
    const groups = (i: number) => `p${Math.floor(i / 3)}`;
    const parts = stratifiedSplit(ds, [0.6, 0.2, 0.2], { groups, seed: 4 });
    const where = new Map<string, number>();
    for (const [k, p] of parts.entries()) {
      for (const i of p.indices) {
        const g = groups(i);
        assert.ok(
          !where.has(g) || where.get(g) === k,
          `group ${g} in two parts`,
        );
        where.set(g, k);
      }
    }
    assert.equal(parts.reduce((a, p) => a + p.length, 0), n);
    assert.ok(
      Math.abs(parts[0].length - 0.6 * n) <= 6,
      `sizes ${parts.map((p) => p.length)}`,
    );
  });
});

Deno.test("DataLoader() attaches each sample's index and augmentation outcome", async (t) => {
  const flip = new ImageFolder(VAL, {
    transform: [
      new T.Resize([20, 20]),
      new T.RandomHorizontalFlip(),
      new T.ToTensor(),
    ],
  });
  // the same images, never flipped
  const plain = new ImageFolder(VAL, {
    transform: [new T.Resize([20, 20]), new T.ToTensor()],
  });
  const size = 3 * 20 * 20;
  const run = async (numWorkers: number) => {
    const loader = new DataLoader(flip, {
      batchSize: 32,
      shuffle: true,
      numWorkers,
      seed: 3,
    });
    const seen: number[] = [];
    const outcomes: (string | number | null)[] = [];
    for await (const [x, y, info] of loader) {
      assert.ok(info, "every batch has its info");
      assert.equal(info.source, flip);
      assert.equal(info.indices!.length, x.shape[0]);
      assert.equal(info.augmentations!.length, x.shape[0]);
      const pixels = x.data() as Float32Array;
      for (const [k, i] of info.indices!.entries()) {
        const aug: string | number | null = info.augmentations![k];
        assert.match(String(aug), /^hflip=[01]$/);
        // the outcome matches the pixels: a flipped sample is the mirror
        // of the unflipped image
        const [ref] = await plain.get(i);
        const r = ref.data() as Float32Array;
        const row = pixels.subarray(k * size, (k + 1) * size);
        const want: Float32Array = aug === "hflip=1" ? mirror(r, 20) : r;
        assert.deepEqual(row, want, `sample ${i}, ${aug}`);
        ref.dispose();
      }
      seen.push(...info.indices!);
      outcomes.push(...info.augmentations!);
      x.dispose();
      y.dispose();
    }
    assert.deepEqual([...seen].sort((a, b) => a - b), [...flip.samples.keys()]);
    assert.ok(outcomes.includes("hflip=1") && outcomes.includes("hflip=0"));
    return { seen, outcomes };
  };
  const main = await run(0);
  await t.step("1 worker gives the same info", async () => {
    assert.deepEqual(await run(1), main);
  });
  await t.step("indices of a Subset are its own", async () => {
    const sub = new Subset(flip, [5, 7, 9]);
    const loader = new DataLoader(sub, { batchSize: 3, numWorkers: 1 });
    for await (const [x, y, info] of loader) {
      assert.deepEqual(info!.indices, [0, 1, 2]);
      assert.equal(info!.source, sub);
      x.dispose();
      y.dispose();
    }
  });
  await t.step(
    "a random main-thread tail or a plain dataset: unknown",
    async () => {
      const tail = new ImageFolder(VAL, {
        transform: [new T.Resize([20, 20]), new T.ToTensor(), (x) => x],
      });
      const plainDs = {
        length: 4,
        get: (i: number): [ReturnType<typeof tensor>, number] => [
          tensor([i, i]),
          0,
        ],
      };
      for (
        const [ds, numWorkers] of [[tail, 0], [tail, 1], [plainDs, 0]] as const
      ) {
        const loader = new DataLoader(ds, { batchSize: 4, numWorkers });
        for await (const [x, y, info] of loader) {
          assert.deepEqual(info!.indices, [0, 1, 2, 3]);
          assert.deepEqual(info!.augmentations, [null, null, null, null]);
          x.dispose();
          y.dispose();
          break; // the first batch
        }
      }
    },
  );
});

/** Mirrors a CHW float image left-right. */
function mirror(img: Float32Array, w: number): Float32Array {
  const out = new Float32Array(img.length);
  for (let row = 0; row < img.length / w; row++) {
    for (let x = 0; x < w; x++) out[row * w + x] = img[row * w + w - 1 - x];
  }
  return out;
}
