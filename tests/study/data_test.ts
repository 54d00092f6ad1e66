import assert from "node:assert/strict";
import { join } from "node:path";
import { study } from "../../mod.ts";
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
    assert.deepEqual(d.dataset, {
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
