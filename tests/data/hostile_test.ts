// Hostile image files and folders, made in the test from bytes: decompression
// bombs (PNG, JPEG, GIF), files too small for the pixels they declare, the
// pixel limit on the main thread and on Workers, FIFOs and devices, links
// that loop or lead into other classes, and decoding without --allow-env.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DataError, DecompressionBombError } from "../../src/errors.ts";
import { decodeImage, readImage } from "../../src/data/decode.ts";
import { DataLoader } from "../../src/data/data_loader.ts";
import { ImageFolder } from "../../src/data/image_folder.ts";
import * as T from "../../src/data/transforms.ts";
import { gif, jpegWithSize, png } from "./_craft.ts";
import { expected, IMAGES, tempDir } from "./_fixtures.ts";

/** Asserts that `p` rejects with a DecompressionBombError matching `re`. */
async function assertBomb(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof DecompressionBombError, `${e.name}: ${e.message}`);
    assert.ok(e instanceof DataError, "a DataError, so skip mode counts it");
    assert.match(e.message, re);
    return true;
  });
}

/** Asserts that `p` rejects with a plain (not bomb) DataError matching `re`. */
async function assertCorrupt(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof DataError, `${e.name}: ${e.message}`);
    assert.ok(!(e instanceof DecompressionBombError), e.message);
    assert.match(e.message, re);
    return true;
  });
}

const LIMIT = /over the limit of 89,478,485 \(maxImagePixels/;

Deno.test("decodeImage() refuses decompression bombs from their headers", async (t) => {
  const jpg = await Deno.readFile(IMAGES + "baseline.jpg");
  await t.step("a GIF of 40 bytes with a 65535 × 65535 screen", async () => {
    const b = gif({
      width: 65535,
      height: 65535,
      frame: { x: 0, y: 0, width: 1, height: 1 },
    });
    assert.ok(b.length < 57, `${b.length} bytes`);
    await assertBomb(
      decodeImage(b, { path: "bomb.gif" }),
      /bomb\.gif: the \d+-byte GIF declares a 65535 × 65535 screen \(4,294,836,225 pixels\)/,
    );
    await assertBomb(decodeImage(b), LIMIT);
  });
  await t.step("a GIF whose first frame is 65535 × 65535", async () => {
    const b = gif({
      width: 8,
      height: 8,
      frame: { x: 0, y: 0, width: 65535, height: 65535 },
      pixels: "none",
    });
    await assertBomb(decodeImage(b), /65535 × 65535 first frame/);
  });
  await t.step("a real 20000 × 20000 PNG of a few KB", async () => {
    const b = png({ width: 20000, height: 20000, bitDepth: 1 });
    assert.ok(b.length < 389_000, `${b.length} bytes`);
    await assertBomb(
      decodeImage(b, { path: "big.png" }),
      /big\.png: the [\d,]+-byte PNG declares a 20000 × 20000 image \(400,000,000 pixels\)/,
    );
  });
  await t.step("a 1.3 KB JPEG that claims 65535 × 65535", async () => {
    const b = jpegWithSize(jpg, 65535, 65535);
    await assertBomb(
      decodeImage(b),
      /the 1,367-byte JPEG declares a 65535 × 65535 image/,
    );
  });
});

Deno.test("decodeImage() refuses files too small for the pixels they declare", async (t) => {
  const jpg = await Deno.readFile(IMAGES + "baseline.jpg");
  // Each was decoded (or allocated for) in full before failing, or not
  // failing: the 2000 × 2000 JPEG "decoded" from a 48 × 36 one's data.
  await t.step("JPEG: 2000 × 2000 in 1,367 bytes", async () => {
    await assertCorrupt(
      decodeImage(jpegWithSize(jpg, 2000, 2000)),
      /corrupt or truncated JPEG \(its image is 2000 × 2000, 4,000,000 pixels, but a 1,367-byte file can code at most 2,799,616\)/,
    );
  });
  await t.step("PNG: 9000 × 9000 with 20 bytes of IDAT", async () => {
    const idat = png({ width: 9000, height: 1 }).subarray(0, 20);
    await assertCorrupt(
      decodeImage(png({ width: 9000, height: 9000, idat })),
      /corrupt or truncated PNG \(its image is 9000 × 9000, 81,000,000 pixels, but 20 bytes of IDAT data can code at most 20,640\)/,
    );
  });
  await t.step("GIF: a 3000 × 3000 frame with no pixel data", async () => {
    await assertCorrupt(
      decodeImage(gif({ width: 3000, height: 3000, pixels: "none" })),
      /corrupt or truncated GIF \(its first frame is 3000 × 3000, 9,000,000 pixels, but 1 byte of LZW data can code at most 16,384\)/,
    );
  });
  await t.step("an empty 0 × 10 image", async () => {
    await assertCorrupt(
      decodeImage(png({ width: 0, height: 10 })),
      /corrupt or truncated PNG \(it declares an empty 0 × 10 image\)/,
    );
  });
  await t.step("the honest files of the same sizes decode", async () => {
    const p = await decodeImage(png({ width: 2000, height: 2000 }));
    assert.deepEqual([p.width, p.height], [2000, 2000]);
    const g = await decodeImage(gif({ width: 300, height: 200 }));
    assert.deepEqual([g.width, g.height, g.data[0]], [300, 200, 255]);
  });
});

Deno.test("decodeImage() maxImagePixels raises, lowers or lifts the limit", async (t) => {
  const rgb8 = await Deno.readFile(IMAGES + "rgb8.png");
  const { width, height } = expected.decode["rgb8.png"];
  await t.step("one pixel under the image refuses it", async () => {
    await assertBomb(
      decodeImage(rgb8, { maxImagePixels: width * height - 1 }),
      /over the limit of 1,727 \(maxImagePixels/,
    );
  });
  await t.step("the image's own size decodes it", async () => {
    const img = await decodeImage(rgb8, { maxImagePixels: width * height });
    assert.deepEqual([img.width, img.height], [width, height]);
  });
  // Lifted, a 20000 × 20000 PNG gets past the limit to the next check (its
  // data is cut, so nothing is decoded).
  const big = png({ width: 20000, height: 20000, bitDepth: 1 });
  const cut = big.subarray(0, 60);
  for (const maxImagePixels of [null, Infinity, 4e8]) {
    await t.step(`maxImagePixels: ${maxImagePixels} lifts it`, async () => {
      await assertCorrupt(
        decodeImage(cut, { maxImagePixels }),
        /corrupt or truncated PNG \(its image is 20000 × 20000/,
      );
    });
  }
  await t.step("other values are a RangeError", async () => {
    for (const v of [0, -1, NaN]) {
      await assert.rejects(
        decodeImage(rgb8, { maxImagePixels: v }),
        RangeError,
      );
      assert.throws(
        () => new ImageFolder(IMAGES, { maxImagePixels: v }),
        /ImageFolder: maxImagePixels must be a positive number/,
      );
    }
  });
});

Deno.test("readImage() refuses FIFOs, devices and folders without reading them", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const fifo = join(dir, "x.png");
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(made.success, "mkfifo");
    await assertCorrupt(
      readImage(fifo),
      /Cannot read image .*x\.png: not a regular file \(a FIFO\)/,
    );
    await assertCorrupt(
      readImage("/dev/zero"),
      /not a regular file \(a device\)/,
    );
    await assertCorrupt(readImage(dir), /not a regular file \(a directory\)/);
  } finally {
    await cleanup();
  }
});

/** Writes `root/<class>/<file>` from fixtures or bytes. */
async function put(
  root: string,
  path: string,
  from: string | Uint8Array,
): Promise<string> {
  const p = join(root, path);
  await Deno.mkdir(join(p, ".."), { recursive: true });
  if (typeof from === "string") await Deno.copyFile(IMAGES + from, p);
  else await Deno.writeFile(p, from);
  return p;
}

Deno.test("DataLoader() skips and counts decompression bombs under onError: skip", async (t) => {
  const [root, cleanup] = await tempDir();
  const warn = console.warn;
  try {
    const bomb = await put(
      root,
      "a/bomb.gif",
      gif({
        width: 65535,
        height: 65535,
        frame: { x: 0, y: 0, width: 1, height: 1 },
      }),
    );
    await put(root, "a/ok.png", "rgb8.png");
    await put(root, "b/ok.jpg", "baseline.jpg");
    for (const numWorkers of [0, 1]) {
      await t.step(`${numWorkers} workers`, async () => {
        const ds = new ImageFolder(root, {
          transform: [new T.Resize([8, 8]), new T.ToTensor()],
          onError: "skip",
        });
        const loader = new DataLoader(ds, { batchSize: 3, numWorkers });
        const warnings: string[] = [];
        console.warn = (m: string) => warnings.push(m);
        let n = 0;
        for await (const [x] of loader) n += x.shape[0];
        console.warn = warn;
        assert.equal(n, 2);
        assert.deepEqual(loader.skipped.map((s) => s.path), [bomb]);
        assert.match(loader.skipped[0].reason, LIMIT);
        assert.deepEqual(ds.skipped.map((s) => s.path), [bomb]);
        assert.match(warnings.join("\n"), /skipped 1 unreadable image/);
      });
    }
    await t.step("raise: get() throws the DecompressionBombError", async () => {
      const ds = new ImageFolder(root);
      const i = ds.samples.findIndex(([p]) => p === bomb);
      await assertBomb(ds.get(i), LIMIT);
      await assertBomb(ds.getImage(i), LIMIT);
    });
  } finally {
    console.warn = warn;
    await cleanup();
  }
});

Deno.test("ImageFolder() maxImagePixels reaches the Workers", async (t) => {
  const [root, cleanup] = await tempDir();
  const warn = console.warn;
  try {
    const p = await put(root, "a/x.png", "rgb8.png");
    const { width, height } = expected.decode["rgb8.png"];
    const load = async (
      maxImagePixels: number | null,
      onError: "skip" | "raise",
    ) => {
      const ds = new ImageFolder(root, {
        transform: [new T.ToTensor()],
        maxImagePixels,
        onError,
      });
      const loader = new DataLoader(ds, { batchSize: 1, numWorkers: 1 });
      let n = 0;
      for await (const [x] of loader) n += x.shape[0];
      return { n, skipped: loader.skipped };
    };
    console.warn = () => {};
    await t.step(
      "under the limit: refused on the Worker, skipped",
      async () => {
        const { n, skipped } = await load(width * height - 1, "skip");
        assert.equal(n, 0);
        assert.deepEqual(skipped.map((s) => s.path), [p]);
        assert.match(skipped[0].reason, /over the limit of 1,727/);
      },
    );
    await t.step("under the limit, raise: a DataError naming it", async () => {
      await assert.rejects(load(1000, "raise"), (e: Error) => {
        assert.ok(e instanceof DataError, `${e.name}: ${e.message}`);
        assert.match(e.message, /x\.png: .*over the limit of 1,000/);
        return true;
      });
    });
    await t.step("at its size, and lifted: loaded", async () => {
      assert.equal((await load(width * height, "skip")).n, 1);
      assert.equal((await load(null, "skip")).n, 1);
    });
  } finally {
    console.warn = warn;
    await cleanup();
  }
});

Deno.test("ImageFolder() follows links once and never into another class", async (t) => {
  const [dir, cleanup] = await tempDir();
  try {
    const root = join(dir, "root");
    const x = await put(root, "a/x.png", "rgb8.png");
    const y = await put(root, "b/y.png", "gray8.png");
    await put(dir, "elsewhere/z.png", "palette.png");
    await put(dir, "elsewhere/deeper/w.png", "rgba.png");
    await Deno.symlink(".", join(root, "a/self1"));
    await Deno.symlink(".", join(root, "a/self2"));
    await Deno.symlink("..", join(root, "a/up"));
    await Deno.symlink("../b", join(root, "a/to_b"));
    await Deno.mkdir(join(root, "a/sub"));
    await Deno.symlink("../..", join(root, "a/sub/up2"));
    await Deno.symlink(join(dir, "elsewhere"), join(root, "a/ext1"));
    await Deno.symlink(join(dir, "elsewhere"), join(root, "a/ext2"));
    await Deno.symlink(join(dir, "elsewhere/deeper"), join(root, "a/ext3"));
    await Deno.symlink(join(dir, "elsewhere"), join(root, "b/ext"));
    await Deno.symlink(join(dir, "root"), join(dir, "elsewhere/loop"));
    await Deno.symlink(dir, join(root, "a/above"));
    await Deno.symlink("/", join(root, "b/slash"));
    const ds = new ImageFolder(root);
    await t.step(
      "a link to ., .., /, above the root or to a sibling class adds nothing",
      () => {
        assert.deepEqual(ds.classes, ["a", "b"]);
        assert.ok(ds.samples.some(([p, l]) => p === x && l === 0));
        assert.ok(ds.samples.some(([p, l]) => p === y && l === 1));
        assert.ok(
          !ds.samples.some(([p, l]) => p.endsWith("y.png") && l === 0),
          "class b's image relabelled as a",
        );
      },
    );
    await t.step("a folder elsewhere is walked once per class", () => {
      assert.deepEqual(ds.samples, [
        [x, 0],
        [join(root, "a/ext1/z.png"), 0],
        [join(root, "a/ext1/deeper/w.png"), 0],
        [y, 1],
        [join(root, "b/ext/z.png"), 1],
        [join(root, "b/ext/deeper/w.png"), 1],
      ]);
    });
  } finally {
    await cleanup();
  }
});

Deno.test("ImageFolder() lists only regular files and links to them", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const root = join(dir, "root");
    const x = await put(root, "a/x.png", "rgb8.png");
    await put(dir, "w.png", "rgba.png");
    await Deno.symlink(join(dir, "w.png"), join(root, "a/linked.png"));
    const made = await new Deno.Command("mkfifo", {
      args: [join(root, "a/fifo.png")],
    }).output();
    assert.ok(made.success, "mkfifo");
    await Deno.symlink("/dev/zero", join(root, "a/zero.jpg"));
    await Deno.symlink(join(dir, "missing.png"), join(root, "a/broken.png"));
    await Deno.symlink("loop.png", join(root, "a/loop.png"));
    const ds = new ImageFolder(root);
    assert.deepEqual(ds.samples, [[join(root, "a/linked.png"), 0], [x, 0]]);
    const [img] = await ds.get(0);
    assert.deepEqual(img.shape, [3, 36, 48]);
  } finally {
    await cleanup();
  }
});

Deno.test("decoding without --allow-env gives a typed error naming the permission", async () => {
  const probe = new URL("./_no_env_probe.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--no-prompt", probe],
    cwd: new URL("../..", import.meta.url).pathname,
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, stderr);
  assert.doesNotMatch(stderr, /Uncaught/, "a Worker's stack trace");
  const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.where), [
    "readImage",
    "DataLoader numWorkers 0",
    "DataLoader numWorkers 1",
  ]);
  for (const l of lines) {
    assert.equal(l.name, "BackendUnavailableError", JSON.stringify(l));
    assert.match(l.message, /Cannot load imagescript's image codecs/);
    assert.match(l.message, /--allow-env/);
  }
});
