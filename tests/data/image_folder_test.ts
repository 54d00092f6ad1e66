// ImageFolder: the bundled Fashion-MNIST subset, torchvision's layout rules,
// junk skipping, conversions to RGB, and every folder-level error.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DataError } from "../../src/errors.ts";
import { Generator } from "../../src/random.ts";
import { ImageFolder, imageFolderSplits } from "../../src/data/image_folder.ts";
import * as T from "../../src/data/transforms.ts";
import { IMAGES, tempDir } from "./_fixtures.ts";

const BUNDLED =
  new URL("../../examples/data/fashion-binary/", import.meta.url).pathname;

Deno.test("the bundled dataset loads with the counts make_fashion.ts wrote", async () => {
  const manifest = JSON.parse(
    await Deno.readTextFile(join(BUNDLED, "manifest.json")),
  );
  const splits = imageFolderSplits(BUNDLED);
  assert.deepEqual(Object.keys(splits), ["train", "val", "test"]);
  for (const [split, ds] of Object.entries(splits)) {
    assert.deepEqual(ds.classes, ["shirt", "tshirt"]);
    for (const cls of ds.classes) {
      const files = ds.samples.filter(([, y]) => y === ds.classToIdx[cls]).map((
        [p],
      ) => p);
      const want = manifest.counts[split][cls];
      assert.equal(
        files.filter((p) => p.endsWith(".png")).length,
        want.png,
        `${split}/${cls} png`,
      );
      assert.equal(
        files.filter((p) => p.endsWith(".jpg")).length,
        want.jpeg,
        `${split}/${cls} jpg`,
      );
    }
  }
  assert.equal(splits.train.length, 1000);
  assert.equal(splits.val.length, 200);
  assert.equal(splits.test.length, 400);
  // Sorted within each class, classes in order: targets never decrease.
  const t = splits.test.targets;
  assert.ok(t.every((y, i) => i === 0 || y >= t[i - 1]));
  const [x, y] = await splits.test.get(0);
  assert.deepEqual(x.shape, [3, 28, 28]);
  assert.equal(y, 0);
});

async function copy(name: string, to: string): Promise<void> {
  await Deno.mkdir(join(to, ".."), { recursive: true });
  await Deno.copyFile(IMAGES + name, to);
}

Deno.test("ImageFolder() follows torchvision's layout and skips junk", async () => {
  const [root, cleanup] = await tempDir();
  try {
    await copy("rgb8.png", join(root, "b/x.png"));
    await copy("baseline.jpg", join(root, "a/IMG.JPG"));
    await copy("gray.jpg", join(root, "a/z.jpeg"));
    await copy("palette.png", join(root, "a/sub/y.png"));
    await copy("rgba.png", join(root, "a/.ipynb_checkpoints/c.png"));
    await copy("rgb8.png", join(root, "a/._z.jpeg")); // AppleDouble junk
    await copy("rgb8.png", join(root, "__MACOSX/a/x.png"));
    await copy("rgb8.png", join(root, ".hidden/x.png"));
    await Deno.writeTextFile(join(root, "a/notes.txt"), "not an image");
    await Deno.writeTextFile(join(root, "README.md"), "not a class");
    const ds = new ImageFolder(root);
    assert.deepEqual(ds.classes, ["a", "b"]);
    assert.deepEqual(ds.classToIdx, { a: 0, b: 1 });
    assert.deepEqual(ds.samples, [
      [join(root, "a/IMG.JPG"), 0],
      [join(root, "a/z.jpeg"), 0],
      [join(root, "a/sub/y.png"), 0],
      [join(root, "b/x.png"), 1],
    ]);
    assert.deepEqual(ds.targets, [0, 0, 0, 1]);
    // Gray and palette images become 3 channels.
    for (let i = 0; i < ds.length; i++) {
      const [x] = await ds.get(i);
      assert.deepEqual(x.shape, [3, 36, 48]);
    }
    const only = new ImageFolder(root, { extensions: [".PNG"] });
    assert.equal(only.length, 2);
    const tt = new ImageFolder(root, { targetTransform: (y) => 1 - y });
    assert.equal((await tt.get(0))[1], 1);
  } finally {
    await cleanup();
  }
});

Deno.test("ImageFolder() drops alpha and repeats gray planes", async () => {
  const [root, cleanup] = await tempDir();
  try {
    await copy("gray_alpha.png", join(root, "c/la.png"));
    await copy("rgba.png", join(root, "c/rgba.png"));
    const ds = new ImageFolder(root);
    const [la] = await ds.get(0);
    const v = la.toArray() as number[][][];
    assert.deepEqual(v[0], v[1]);
    assert.deepEqual(v[1], v[2]);
    const [rgba] = await ds.get(1);
    const [rgb] = await new ImageFolder(root, {
      transform: [new T.ToTensor()],
    }).get(1, new Generator(0));
    assert.deepEqual(rgba.shape, [3, 36, 48]);
    assert.deepEqual(rgba.toArray(), rgb.toArray());
  } finally {
    await cleanup();
  }
});

function assertDataError(
  fn: () => unknown,
  ...parts: (string | RegExp)[]
): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof DataError, `${e.name}: ${e.message}`);
    for (const p of parts) {
      if (typeof p === "string") {
        assert.ok(e.message.includes(p), `${e.message} lacks ${p}`);
      } else assert.match(e.message, p);
    }
    return true;
  });
}

Deno.test("ImageFolder() and imageFolderSplits() raise DataErrors naming the folder", async (t) => {
  const [root, cleanup] = await tempDir();
  try {
    await t.step("missing root", () => {
      assertDataError(
        () => new ImageFolder(join(root, "nope")),
        join(root, "nope"),
        /no such folder/,
      );
    });
    await t.step("no class folders", async () => {
      await copy("rgb8.png", join(root, "flat/x.png"));
      assertDataError(
        () => new ImageFolder(join(root, "flat")),
        join(root, "flat"),
        /no class folders/,
        /point root/,
      );
    });
    await t.step("empty class folder", async () => {
      await copy("rgb8.png", join(root, "ds/a/x.png"));
      await Deno.mkdir(join(root, "ds/b"));
      assertDataError(
        () => new ImageFolder(join(root, "ds")),
        join(root, "ds/b"),
        /no images/,
      );
      assert.equal(
        new ImageFolder(join(root, "ds"), { allowEmpty: true }).classes.length,
        2,
      );
      await Deno.writeTextFile(join(root, "ds/b/x.txt"), "");
      assertDataError(
        () => new ImageFolder(join(root, "ds")),
        join(root, "ds/b"),
        /1 other files/,
      );
      await Deno.remove(join(root, "ds/b"), { recursive: true });
    });
    await copy("rgb8.png", join(root, "sp/train/a/x.png"));
    await copy("rgb8.png", join(root, "sp/train/b/x.png"));
    await copy("rgb8.png", join(root, "sp/val/a/x.png"));
    await copy("rgb8.png", join(root, "sp/val/b/x.png"));
    await t.step("missing split folder", () => {
      assertDataError(
        () => imageFolderSplits(join(root, "sp")),
        join(root, "sp/test"),
        /no such folder/,
        /has: train, val/,
      );
    });
    await t.step("split classes differ from train's", async () => {
      await copy("rgb8.png", join(root, "sp/test/a/x.png"));
      await copy("rgb8.png", join(root, "sp/test/c/x.png"));
      assertDataError(
        () => imageFolderSplits(join(root, "sp")),
        join(root, "sp/test"),
        "missing: b",
        "extra: c",
      );
    });
    await t.step("a bad image", async () => {
      await Deno.writeFile(join(root, "ds/a/bad.jpg"), new Uint8Array(0));
      const ds = new ImageFolder(join(root, "ds"));
      await assert.rejects(
        ds.get(0),
        (e: Error) =>
          e instanceof DataError &&
          e.message.includes(join(root, "ds/a/bad.jpg")),
      );
      const skip = new ImageFolder(join(root, "ds"), { onError: "skip" });
      await assert.rejects(skip.get(0), DataError);
      assert.deepEqual(skip.skipped.map((s) => s.path), [
        join(root, "ds/a/bad.jpg"),
      ]);
    });
  } finally {
    await cleanup();
  }
});
