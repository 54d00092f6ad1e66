/**
 * Writes Fashion-MNIST as an image folder tree, `<out>/{train,val,test}/
 * <class>/<split>_<index>.{png,jpg}`, from Debian's `dataset-fashion-mnist`
 * IDX files (`apt-get install dataset-fashion-mnist`).
 *
 * The default writes the bundled binary task `examples/data/fashion-binary`:
 * class 0 (T-shirt/top, folder `tshirt`) vs class 6 (Shirt, folder `shirt`),
 * the hardest pair, shaped like the tutorial's two-class X-ray task:
 *
 * - train: the first 500 images of each class in the training file;
 * - val: the next 100 of each class in the training file (disjoint);
 * - test: the first 200 of each class in the test (t10k) file.
 *
 * Every 4th image (by position in its split) is a JPEG (quality 90, written
 * by imagescript as 3-channel), the rest 8-bit gray PNGs, so the loader is
 * exercised on both. `<index>` is the image's position in its IDX file, so
 * the tree is reproducible. A `manifest.json` records the counts.
 *
 * Usage:
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-ffi examples/data/make_fashion.ts
 * # all 10 classes, every image (60,000 train/val + 10,000 test):
 * deno run --allow-read --allow-write --allow-env --allow-ffi examples/data/make_fashion.ts \
 *   --all --out /tmp/fashion-mnist
 * ```
 *
 * Options: `--out DIR`, `--classes 0,6`, `--train N --val N --test N` (per
 * class; `--all` means every class and every image, val being the last 1000
 * of each class in the training file), `--jpeg-every N` (0: PNG only),
 * `--src DIR` (default /usr/share/datasets/fashion-mnist).
 *
 * (`--allow-ffi` is for imagescript's JPEG encoder, a native addon.)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { Image } from "npm:imagescript@1.3.1";
import png from "npm:imagescript@1.3.1/png/node.js";

/** Fashion-MNIST's classes, as folder names. */
export const CLASS_FOLDERS = [
  "tshirt",
  "trouser",
  "pullover",
  "dress",
  "coat",
  "sandal",
  "shirt",
  "sneaker",
  "bag",
  "ankle_boot",
];

/** An IDX file's contents. */
interface Idx {
  dims: number[];
  data: Uint8Array;
}

/**
 * Reads a gzip-compressed IDX file of unsigned bytes.
 *
 * @param path The `.gz` file.
 * @returns Its dims and data.
 */
export async function readIdx(path: string): Promise<Idx> {
  const raw = gunzipSync(await Deno.readFile(path));
  const b = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (view.getUint16(0) !== 0 || b[2] !== 0x08) {
    throw new Error(`${path}: not an IDX file of unsigned bytes`);
  }
  const nd = b[3];
  const dims = Array.from({ length: nd }, (_, i) => view.getUint32(4 + 4 * i));
  const data = b.subarray(4 + 4 * nd);
  if (data.length !== dims.reduce((a, d) => a * d, 1)) {
    throw new Error(`${path}: ${data.length} bytes for dims ${dims}`);
  }
  return { dims, data };
}

async function encodeJpeg(
  px: Uint8Array,
  w: number,
  h: number,
): Promise<Uint8Array> {
  const img = new Image(w, h);
  for (let i = 0; i < w * h; i++) {
    img.bitmap[4 * i] = img.bitmap[4 * i + 1] = img.bitmap[4 * i + 2] = px[i];
    img.bitmap[4 * i + 3] = 255;
  }
  return await img.encodeJPEG(90);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string" },
      src: { type: "string", default: "/usr/share/datasets/fashion-mnist" },
      classes: { type: "string", default: "0,6" },
      train: { type: "string", default: "500" },
      val: { type: "string", default: "100" },
      test: { type: "string", default: "200" },
      all: { type: "boolean", default: false },
      "jpeg-every": { type: "string", default: "4" },
    },
  });
  const out = values.out ??
    (values.all
      ? undefined
      : new URL("./fashion-binary", import.meta.url).pathname);
  if (!out) throw new Error("--all needs --out DIR");
  const classes = values.all
    ? CLASS_FOLDERS.map((_, i) => i)
    : values.classes.split(",").map(Number);
  const jpegEvery = Number(values["jpeg-every"]);
  const n = values.all ? { train: Infinity, val: 1000, test: Infinity } : {
    train: Number(values.train),
    val: Number(values.val),
    test: Number(values.test),
  };

  const src = values.src;
  const [trX, trY, teX, teY] = await Promise.all([
    readIdx(join(src, "train-images-idx3-ubyte.gz")),
    readIdx(join(src, "train-labels-idx1-ubyte.gz")),
    readIdx(join(src, "t10k-images-idx3-ubyte.gz")),
    readIdx(join(src, "t10k-labels-idx1-ubyte.gz")),
  ]);
  const [, H, W] = trX.dims;

  // Which IDX positions go where, per class.
  const pick = (labels: Uint8Array, c: number) =>
    [...labels.keys()].filter((i) => labels[i] === c);
  const plan: {
    split: string;
    images: Idx;
    positions: number[];
    cls: number;
  }[] = [];
  for (const c of classes) {
    const tr = pick(trY.data, c);
    const te = pick(teY.data, c);
    const nVal = Math.min(n.val, tr.length);
    const trainPos = values.all
      ? tr.slice(0, tr.length - nVal)
      : tr.slice(0, n.train);
    const valPos = values.all
      ? tr.slice(tr.length - nVal)
      : tr.slice(n.train, n.train + n.val);
    plan.push({ split: "train", images: trX, positions: trainPos, cls: c });
    plan.push({ split: "val", images: trX, positions: valPos, cls: c });
    plan.push({
      split: "test",
      images: teX,
      positions: te.slice(0, n.test),
      cls: c,
    });
  }

  await Deno.remove(out, { recursive: true }).catch(() => {});
  const manifest: Record<
    string,
    Record<string, { png: number; jpeg: number }>
  > = {};
  let bytes = 0;
  for (const { split, images, positions, cls } of plan) {
    const dir = join(out, split, CLASS_FOLDERS[cls]);
    await Deno.mkdir(dir, { recursive: true });
    const counts = { png: 0, jpeg: 0 };
    for (const [k, pos] of positions.entries()) {
      const px = images.data.subarray(pos * H * W, (pos + 1) * H * W);
      const name = `${split}_${String(pos).padStart(5, "0")}`;
      let file: Uint8Array;
      if (jpegEvery > 0 && k % jpegEvery === jpegEvery - 1) {
        file = await encodeJpeg(px, W, H);
        await Deno.writeFile(join(dir, `${name}.jpg`), file);
        counts.jpeg++;
      } else {
        file = png.encode(px, { width: W, height: H, channels: 1, level: 9 });
        await Deno.writeFile(join(dir, `${name}.png`), file);
        counts.png++;
      }
      bytes += file.length;
    }
    (manifest[split] ??= {})[CLASS_FOLDERS[cls]] = counts;
  }
  await Deno.writeTextFile(
    join(out, "manifest.json"),
    JSON.stringify(
      {
        source:
          "Fashion-MNIST (Debian dataset-fashion-mnist), see examples/data/make_fashion.ts",
        fashionMnistLabels: Object.fromEntries(
          classes.map((c) => [CLASS_FOLDERS[c], c]),
        ),
        counts: manifest,
      },
      null,
      2,
    ) + "\n",
  );
  const total = Object.values(manifest).flatMap((s) => Object.values(s))
    .reduce((a, c) => a + c.png + c.jpeg, 0);
  console.log(
    `wrote ${total} images (${(bytes / 1e6).toFixed(2)} MB) to ${out}`,
  );
}

if (import.meta.main) await main();
