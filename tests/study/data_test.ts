import assert from "node:assert/strict";
import { join } from "node:path";
import { data, Generator, study } from "../../mod.ts";
import { png } from "../data/_craft.ts";

const bundled =
  new URL("../../examples/data/fashion-binary", import.meta.url).pathname;

Deno.test("imageFolderStudyData: val/ kept, a stratified training subset, fewer labels and the rest as transfer images", async () => {
  const d = study.imageFolderStudyData(bundled, {
    size: 16,
    batchSize: 50,
    maxTrain: 100,
    labeled: 40,
    transfer: "rest",
  });
  try {
    const { trainTargets, ...described } = d.dataset;
    // the teacher's training labels, for the majority-class baseline
    assert.equal(trainTargets!.length, 100);
    assert.deepEqual(
      [0, 1].map((c) => trainTargets!.filter((t) => t === c).length),
      [50, 50],
    );
    assert.equal(d.classWeights, null);
    assert.deepEqual(described, {
      source: bundled,
      classes: ["shirt", "tshirt"],
      train: 100,
      labeled: 40,
      transfer: 60,
      val: 200,
      valSource: `${join(bundled, "val")} (200 images)`,
      test: 400,
    });
    const { train, studentTrain, transfer, val, test } = d.loaders;
    assert.deepEqual(
      [train, studentTrain!, transfer!, val, test].map((l) => l.length),
      [2, 1, 2, 4, 8],
    );
    for await (const [x, y] of test) {
      assert.deepEqual(x.shape, [50, 3, 16, 16]);
      assert.deepEqual(y.shape, [50]);
      break;
    }
    assert.deepEqual(d.description, [
      `kdeno distillation: ${bundled}`,
      "classes: 0=shirt, 1=tshirt (positive class for sensitivity: tshirt)",
      `train 100 (students: 40 labeled), transfer 60 unlabeled, test 400; validation: ${
        join(bundled, "val")
      } (200 images)`,
      "class counts: train 50 shirt / 50 tshirt; students 20 shirt / 20 tshirt; test 200 shirt / 200 tshirt",
    ]);
  } finally {
    d.close();
  }
  assert.throws(
    () =>
      study.imageFolderStudyData(bundled, {
        size: 16,
        batchSize: 8,
        transfer: "rest",
      }),
    RangeError,
  );
});

Deno.test("imageFolderStudyData: without val/, a 10% validation split of train/ grouped by patient", async () => {
  const root = await Deno.makeTempDir();
  const image = png({ width: 4, height: 4 });
  for (const split of ["train", "test"]) {
    for (const c of ["normal", "pneumonia"]) {
      await Deno.mkdir(join(root, split, c), { recursive: true });
      for (let i = 0; i < 20; i++) {
        // two images per patient
        const name = `person${Math.floor(i / 2)}_${c}_${i % 2}.png`;
        await Deno.writeFile(join(root, split, c, name), image);
      }
    }
  }
  const d = study.imageFolderStudyData(root, {
    size: 4,
    batchSize: 8,
    seed: 1,
  });
  try {
    assert.equal(d.dataset.train + d.dataset.val, 40);
    assert.equal(d.dataset.val % 2, 0, "patients are not split");
    assert.equal(d.dataset.labeled, d.dataset.train);
    assert.equal(d.dataset.transfer, undefined);
    assert.equal(d.loaders.transfer, null);
    assert.equal(
      d.dataset.valSource,
      `a stratified 10% split of ${
        join(root, "train")
      } (${d.dataset.val} images), grouped by patient id from the file names, replacing the missing val/ folder`,
    );
  } finally {
    d.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("imageFolderStudyData balance: a WeightedRandomSampler for the labeled loaders, balanced class weights from the training splits", async () => {
  const root = await Deno.makeTempDir();
  const image = png({ width: 4, height: 4 });
  // 1 normal to 3 pneumonia, as the chest X-ray training split
  for (const split of ["train", "test"]) {
    for (const [c, n] of [["normal", 10], ["pneumonia", 30]] as const) {
      await Deno.mkdir(join(root, split, c), { recursive: true });
      for (let i = 0; i < n; i++) {
        await Deno.writeFile(join(root, split, c, `${c}${i}.png`), image);
      }
    }
  }
  const opts = { size: 4, batchSize: 8, seed: 1, maxTrain: 36 };
  for (const balance of ["none", "sampler", "loss", "both"] as const) {
    const d = study.imageFolderStudyData(root, {
      ...opts,
      balance,
      labeled: 16,
      transfer: "rest",
    });
    try {
      const sampled = balance === "sampler" || balance === "both";
      const weighted = balance === "loss" || balance === "both";
      const { train, studentTrain, transfer } = d.loaders;
      for (const l of [train, studentTrain!]) {
        const dl = l as data.DataLoader;
        assert.equal(
          dl.sampler instanceof data.WeightedRandomSampler,
          sampled,
          balance,
        );
      }
      // the transfer images' labels are not for the students: never balanced
      assert.ok(
        !((transfer as data.DataLoader).sampler instanceof
          data.WeightedRandomSampler),
      );
      if (weighted) {
        // train: 36 images, 9 normal / 27 pneumonia: 36 / (2 × 9) = 2, 36 / 54
        assert.deepEqual(
          d.classWeights?.teacher.map((w) => +w.toFixed(6)),
          [2, +(36 / 54).toFixed(6)],
        );
        // students: 16 labeled, 4 / 12
        assert.deepEqual(
          d.classWeights?.student.map((w) => +w.toFixed(6)),
          [2, +(16 / 24).toFixed(6)],
        );
        assert.ok(
          d.description.some((l) =>
            l.startsWith("balance: cross-entropy class weights")
          ),
        );
      } else assert.equal(d.classWeights, null);
      assert.equal(
        d.description.some((l) => l.includes("WeightedRandomSampler")),
        sampled,
      );
      if (sampled) {
        // a sampled epoch is as many draws as the split has images, classes
        // about equally likely
        const order = (studentTrain as data.DataLoader)
          .sampler.sample(new Generator(3));
        assert.equal(order.length, 16);
      }
    } finally {
      d.close();
    }
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("imageFolderStudyData subset: at most N training images and the same fraction of validation and test, stratified, said in the description", () => {
  const d = study.imageFolderStudyData(bundled, {
    size: 8,
    batchSize: 50,
    subset: 100,
  });
  try {
    const { trainTargets, ...described } = d.dataset;
    assert.deepEqual(
      [0, 1].map((c) => trainTargets!.filter((t) => t === c).length),
      [50, 50],
    );
    assert.equal(described.train, 100);
    assert.equal(described.val, 20);
    assert.equal(described.test, 40);
    assert.match(described.valSource, /\(200 images\); 20 of them kept$/);
    assert.deepEqual(d.loaders.test.length, 1);
    assert.equal(
      d.description[1],
      "subset: a stratified 10% of every split (100 of 1000 training images, 20 validation, 40 of 400 test)",
    );
    assert.match(
      d.description.at(-1)!,
      /^class counts: train 50 shirt \/ 50 tshirt; test 20 shirt \/ 20 tshirt$/,
    );
  } finally {
    d.close();
  }
  // a subset at least as large as the split changes nothing
  const all = study.imageFolderStudyData(bundled, {
    size: 8,
    batchSize: 50,
    subset: 5000,
  });
  try {
    assert.equal(all.dataset.train, 1000);
    assert.equal(all.dataset.test, 400);
    assert.ok(!all.description.some((l) => l.startsWith("subset:")));
  } finally {
    all.close();
  }
  assert.throws(
    () =>
      study.imageFolderStudyData(bundled, {
        size: 8,
        batchSize: 8,
        subset: 2.5,
      }),
    RangeError,
    "subset 2.5 must be a whole number",
  );
});
