// Transforms against torchvision 0.14 on PIL images (fixtures from
// tests/fixtures/images/generate.py), and the random transforms' contracts.
import assert from "node:assert/strict";
import { Generator } from "../../src/random.ts";
import { readImage } from "../../src/data/decode.ts";
import type { FloatImage, RawImage } from "../../src/data/image.ts";
import * as T from "../../src/data/transforms.ts";
import { blob, blobF32, expected, IMAGES } from "./_fixtures.ts";

function parseCase(name: string): T.Transform[] {
  const m = name.match(/^(\w+) (.*)$/)!;
  const arg = m[2].startsWith("[")
    ? JSON.parse(m[2])
    : Number(m[2].split(" ").pop());
  switch (m[1]) {
    case "Resize":
      return [new T.Resize(arg)];
    case "CenterCrop":
      return [new T.CenterCrop(arg)];
    case "RandomRotation": {
      const deg = Number(m[2].split(" ")[0]);
      return [
        new T.RandomRotation([deg, deg], { expand: m[2].endsWith("expand") }),
      ];
    }
    case "Grayscale":
      return [new T.Grayscale(arg)];
    case "ColorJitter": {
      const f = Number(m[2].split(" ")[1]);
      return [
        new T.ColorJitter(
          m[2].startsWith("brightness")
            ? { brightness: [f, f] }
            : { contrast: [f, f] },
        ),
      ];
    }
  }
  throw new Error(name);
}

/** The largest |a - b| in units of 1/255. */
function maxDiff255(out: FloatImage, want: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    m = Math.max(m, Math.abs(out.data[i] * 255 - want[i]));
  }
  return m;
}

Deno.test("transforms match torchvision on PIL images", async (t) => {
  const worst: Record<string, number> = {};
  for (const c of expected.cases) {
    await t.step(`${c.case}: ${c.file}`, async () => {
      const img = await readImage(IMAGES + c.file);
      const tf = new T.Compose([...parseCase(c.case), new T.ToTensor()]);
      const out = tf.call(img, new Generator(0)) as FloatImage;
      assert.deepEqual([out.channels, out.height, out.width], c.shape);
      const d = maxDiff255(out, blob(c.u8));
      worst[c.case] = Math.max(worst[c.case] ?? 0, d);
      // The bound: within 2/255 before normalisation. Lossless
      // sources must be exact (kdeno ports PIL's fixed-point resampler).
      const lossless = !c.file.endsWith(".jpg");
      assert.ok(
        d <= (lossless ? 1e-4 : 2 + 1e-4),
        `max |diff| ${d.toFixed(3)}/255`,
      );
    });
  }
  console.log("worst |diff| x 255 per case:", JSON.stringify(worst));
});

Deno.test("Resize + ToTensor + Normalize equals torchvision's float32 output", async (t) => {
  for (const n of [expected.normalize_png, expected.normalize]) {
    await t.step(n.file, async () => {
      const tf = new T.Compose([
        new T.Resize(n.resize),
        new T.ToTensor(),
        new T.Normalize(n.mean, n.std),
      ]);
      const out = tf.call(await readImage(IMAGES + n.file)) as FloatImage;
      const want = blobF32(n.f32);
      let m = 0;
      for (let i = 0; i < want.length; i++) {
        m = Math.max(m, Math.abs(out.data[i] - want[i]));
      }
      const bound = n.file.endsWith(".png")
        ? 1e-6
        : 2 / 255 / Math.min(...n.std) + 1e-6;
      assert.ok(m <= bound, `max |diff| ${m}`);
      // Unfused Normalize gives the same float32 values as the fused table.
      const img = new T.Resize(n.resize).call(await readImage(IMAGES + n.file));
      const a = new T.Normalize(n.mean, n.std).call(
        new T.ToTensor().call(img),
      ) as FloatImage;
      assert.deepEqual(a.data, out.data);
    });
  }
});

function ramp(w: number, h: number, channels: 1 | 3 = 3): RawImage {
  const data = new Uint8Array(w * h * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
  return { width: w, height: h, channels, mode: "RGB", data };
}

function pixel(img: RawImage, x: number, y: number): number[] {
  const p = (y * img.width + x) * img.channels;
  return [...img.data.subarray(p, p + img.channels)];
}

Deno.test("random transforms repeat for a seed and differ across seeds", () => {
  const tf = new T.Compose([
    new T.RandomResizedCrop(16),
    new T.RandomHorizontalFlip(),
    new T.RandomRotation(20),
    new T.ColorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.4 }),
    new T.RandomCrop(12, { padding: 2 }),
    new T.ToTensor(),
  ]);
  const img = ramp(40, 30);
  const a = tf.call(img, new Generator(5)) as FloatImage;
  const b = tf.call(img, new Generator(5)) as FloatImage;
  const c = tf.call(img, new Generator(6)) as FloatImage;
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data, c.data);
  assert.deepEqual([a.channels, a.height, a.width], [3, 12, 12]);
});

Deno.test("RecordingGenerator records each random transform's outcome", async (t) => {
  const img = ramp(40, 30);
  const rrc = new T.RandomResizedCrop(16);
  const cases: [T.Transform, RegExp][] = [
    [rrc, /^rrcrop=\d+,\d+,\d+,\d+$/],
    [new T.RandomHorizontalFlip(), /^hflip=[01]$/],
    [new T.RandomVerticalFlip(), /^vflip=[01]$/],
    [new T.RandomRotation(20), /^rotate=-?\d+(\.\d+)?(e-?\d+)?$/],
    [
      new T.ColorJitter({ brightness: 0.4, saturation: 0.4 }),
      /^jitter=[bs][\d.]+,[bs][\d.]+$/,
    ],
    [new T.RandomCrop(12, { padding: 2 }), /^crop=\d+,\d+$/],
    [new T.RandomCrop([30, 40]), /^crop=0,0$/],
  ];
  for (const [tf, pattern] of cases) {
    await t.step(`${tf.constructor.name}: ${pattern.source}`, () => {
      for (const seed of [1, 2, 3]) {
        const g = new T.RecordingGenerator(seed);
        const out = tf.call(img, g) as RawImage;
        // the same draws as a plain generator
        assert.deepEqual(
          out.data,
          (tf.call(img, new Generator(seed)) as RawImage).data,
        );
        assert.equal(g.outcomes.length, 1);
        assert.match(g.outcomes[0], pattern);
      }
    });
  }
  await t.step("the outcome gives the output", () => {
    for (const seed of [4, 5, 6, 7]) {
      const g = new T.RecordingGenerator(seed);
      const out = new T.RandomCrop(12).call(img, g) as RawImage;
      const [top, left] = g.outcomes[0].slice(5).split(",").map(Number);
      assert.deepEqual(pixel(out, 0, 0), pixel(img, left, top));
      assert.deepEqual(pixel(out, 11, 11), pixel(img, left + 11, top + 11));
      const flip = new T.RecordingGenerator(seed);
      const f = new T.RandomHorizontalFlip().call(img, flip);
      assert.equal(f === img, flip.outcomes[0] === "hflip=0");
    }
    const g = new T.RecordingGenerator(8);
    rrc.call(img, g);
    const box = g.outcomes[0].slice(7).split(",").map(Number);
    assert.deepEqual(box, rrc.params(40, 30, new Generator(8)));
  });
  await t.step("a Lambda records nothing", () => {
    const g = new T.RecordingGenerator(0);
    new T.Lambda((x) => x).call(img, g);
    assert.deepEqual(g.outcomes, []);
  });
});

Deno.test("RandomHorizontalFlip() and RandomVerticalFlip() mirror the image", () => {
  const img = ramp(5, 4);
  const h = new T.RandomHorizontalFlip(1).call(img) as RawImage;
  const v = new T.RandomVerticalFlip(1).call(img) as RawImage;
  assert.deepEqual(pixel(h, 0, 1), pixel(img, 4, 1));
  assert.deepEqual(pixel(v, 2, 0), pixel(img, 2, 3));
  assert.equal(new T.RandomHorizontalFlip(0).call(img), img);
  const f = new T.ToTensor().call(img) as FloatImage;
  const hf = new T.RandomHorizontalFlip(1).call(f) as FloatImage;
  assert.equal(hf.data[0], f.data[4]);
  assert.deepEqual(img.data, ramp(5, 4).data, "input untouched");
});

Deno.test("RandomRotation() by ±180 turns the image over", () => {
  const img = ramp(6, 4);
  const r = new T.RandomRotation([180, 180]).call(img) as RawImage;
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 6; x++) {
      assert.deepEqual(pixel(r, x, y), pixel(img, 5 - x, 3 - y));
    }
  }
  const e = new T.RandomRotation([90, 90], { expand: true }).call(
    img,
  ) as RawImage;
  assert.deepEqual([e.width, e.height], [4, 6]);
  // Counter-clockwise: the top-right corner goes to the top-left.
  assert.deepEqual(pixel(e, 0, 0), pixel(img, 5, 0));
});

Deno.test("RandomCrop() pads and crops; Pad() modes follow torchvision", () => {
  const img = ramp(4, 3, 1);
  const c = new T.RandomCrop([5, 6], { padIfNeeded: true }).call(
    img,
    new Generator(1),
  ) as RawImage;
  assert.deepEqual([c.width, c.height], [6, 5]);
  assert.throws(() => new T.RandomCrop(8).call(img), /larger than the image/);
  const row = (
    im: RawImage,
    y: number,
  ) => [...im.data.subarray(y * im.width, (y + 1) * im.width)];
  const src = [0, 7, 14, 21];
  assert.deepEqual(
    row(new T.Pad([2, 0], { paddingMode: "reflect" }).call(img) as RawImage, 0),
    [14, 7, ...src, 14, 7],
  );
  assert.deepEqual(
    row(
      new T.Pad([2, 0], { paddingMode: "symmetric" }).call(img) as RawImage,
      0,
    ),
    [7, 0, ...src, 21, 14],
  );
  assert.deepEqual(
    row(new T.Pad([2, 0], { paddingMode: "edge" }).call(img) as RawImage, 0),
    [0, 0, ...src, 21, 21],
  );
  assert.deepEqual(
    row(new T.Pad([1, 0], { fill: 9 }).call(img) as RawImage, 0),
    [9, ...src, 9],
  );
});

Deno.test("RandomResizedCrop() returns its size and falls back to a centre crop", () => {
  const out = new T.RandomResizedCrop([10, 14]).call(
    ramp(50, 40),
    new Generator(3),
  ) as RawImage;
  assert.deepEqual([out.height, out.width], [10, 14]);
  // An impossible scale range forces the fallback (a centre crop at the
  // nearest allowed ratio).
  const rrc = new T.RandomResizedCrop(8, { scale: [2, 3] });
  assert.deepEqual(rrc.params(100, 20, new Generator(0)), [0, 36, 20, 27]);
});

Deno.test("Compose() splits into Worker specs and a main-thread tail", () => {
  const c = new T.Compose([new T.Resize(8), (x) => x, new T.ToTensor()]);
  assert.equal(c.transforms.length, 3);
  assert.ok(c.transforms[1] instanceof T.Lambda);
  assert.equal(c.transforms[1].spec(), undefined);
  const r = T.fromSpec(new T.Resize([3, 4]).spec());
  assert.deepEqual(r.call(ramp(8, 6)).width, 4);
  assert.throws(() => new T.Normalize([0.5], [0]), /zero/);
  assert.throws(
    () => new T.Resize(8).call(new T.ToTensor().call(ramp(2, 2))),
    /before ToTensor/,
  );
  assert.throws(
    () => new T.Normalize([0.5], [0.5]).call(ramp(2, 2)),
    /after ToTensor/,
  );
});
