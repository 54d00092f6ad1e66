// Decoding real files (tests/fixtures/images, made by ImageMagick and PIL)
// against PIL's `Image.open(f).convert("RGB")`, and every decode error.
import assert from "node:assert/strict";
import { DataError } from "../../src/errors.ts";
import { decodeImage, readImage, sniffFormat } from "../../src/data/decode.ts";
import type { RawImage } from "../../src/data/image.ts";
import { blob, expected, IMAGES, tempDir } from "./_fixtures.ts";

/** Max |a - b| over RGB, with gray-stored images read as R = G = B. */
function maxDiff(img: RawImage, rgb: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    for (let c = 0; c < 3; c++) {
      const v = img.data[i * img.channels + (img.channels === 1 ? 0 : c)];
      m = Math.max(m, Math.abs(v - rgb[3 * i + c]));
    }
  }
  return m;
}

// Tolerances: PNG/GIF are lossless (0); JPEGs differ from libjpeg-turbo by
// IDCT and chroma-upsampling rounding.
const TOLERANCE: Record<string, number> = {
  "baseline.jpg": 4,
  "progressive.jpg": 4,
  "yuv444.jpg": 2,
  "gray.jpg": 1,
  "gray_progressive.jpg": 1,
  "cmyk.jpg": 2,
};
// Stored as one plane (R = G = B).
const GRAY = new Set([
  "gray.jpg",
  "gray_progressive.jpg",
  "gray8.png",
  "gray16.png",
  "gray_alpha.png",
  "bilevel.png",
]);

Deno.test("decodeImage() matches PIL's convert('RGB') on every fixture", async (t) => {
  for (const [name, e] of Object.entries(expected.decode)) {
    await t.step(`${name} (PIL mode ${e.mode})`, async () => {
      const img = await readImage(IMAGES + name);
      assert.equal(img.width, e.width);
      assert.equal(img.height, e.height);
      assert.equal(img.mode, "RGB");
      assert.equal(img.channels, GRAY.has(name) ? 1 : 3, "stored channels");
      if (!e.rgb) return;
      let want = blob(e.rgb);
      if (name === "gray16.png") {
        // PIL clips 16-bit gray to 255; kdeno keeps the high byte of each
        // sample, which the generator wrote as min(v * 257 + 3, 65535).
        const g8 = blob(expected.decode["gray8.png"].rgb!);
        want = g8.map((v) => Math.min(v * 257 + 3, 65535) >> 8);
      }
      assert.ok(
        maxDiff(img, want) <= (TOLERANCE[name] ?? 0),
        `${name}: max |diff| ${maxDiff(img, want)} > ${TOLERANCE[name] ?? 0}`,
      );
    });
  }
});

Deno.test("sniffFormat() names formats by their bytes", async () => {
  const f = async (n: string) => sniffFormat(await Deno.readFile(IMAGES + n));
  assert.equal(await f("baseline.jpg"), "JPEG");
  assert.equal(await f("rgb8.png"), "PNG");
  assert.equal(await f("image.gif"), "GIF");
  assert.equal(await f("unsupported.tif"), "TIFF");
  assert.equal(await f("unsupported.bmp"), "BMP");
  assert.equal(await f("unsupported.webp"), "WebP");
  assert.equal(sniffFormat(new TextEncoder().encode("hello world")), undefined);
});

Deno.test("readImage() decodes a JPEG draft at a reduced scale", async () => {
  const full = await readImage(IMAGES + "large.jpg");
  const half = await readImage(IMAGES + "large.jpg", {
    draft: { width: 150, height: 100 },
  });
  const eighth = await readImage(IMAGES + "large.jpg", {
    draft: { width: 10, height: 10 },
  });
  assert.deepEqual([full.width, full.height], [320, 240]);
  assert.deepEqual([half.width, half.height], [160, 120]);
  assert.deepEqual([eighth.width, eighth.height], [40, 30]);
});

Deno.test("readImage() raises a DataError naming the file", async (t) => {
  const [dir, cleanup] = await tempDir();
  const jpg = await Deno.readFile(IMAGES + "baseline.jpg");
  const png = await Deno.readFile(IMAGES + "rgb8.png");
  const cases: [string, Uint8Array | string, RegExp][] = [
    [
      "truncated.jpg",
      jpg.slice(0, jpg.length >> 1),
      /corrupt or truncated JPEG/,
    ],
    ["header_only.jpg", jpg.slice(0, 200), /corrupt or truncated JPEG/],
    [
      "truncated.png",
      png.slice(0, png.length >> 1),
      /corrupt or truncated PNG/,
    ],
    ["empty.jpg", new Uint8Array(0), /empty \(0 bytes\)/],
    [
      "text.jpg",
      "this is not an image\n",
      /not an image: it starts with bytes 74 68 69 73/,
    ],
    [
      "garbage.jpg",
      Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, ...new Array(300).fill(7)]),
      /corrupt or truncated JPEG/,
    ],
    [
      "tiff.jpg",
      await Deno.readFile(IMAGES + "unsupported.tif"),
      /unsupported format TIFF/,
    ],
    [
      "bmp.png",
      await Deno.readFile(IMAGES + "unsupported.bmp"),
      /unsupported format BMP/,
    ],
    [
      "webp.jpg",
      await Deno.readFile(IMAGES + "unsupported.webp"),
      /unsupported format WebP/,
    ],
  ];
  try {
    for (const [name, bytes, re] of cases) {
      await t.step(name, async () => {
        const p = `${dir}/${name}`;
        if (typeof bytes === "string") await Deno.writeTextFile(p, bytes);
        else await Deno.writeFile(p, bytes);
        await assert.rejects(readImage(p), (e: Error) => {
          assert.ok(e instanceof DataError, `${e.name}: ${e.message}`);
          assert.ok(e.message.includes(p), e.message);
          assert.match(e.message, re);
          return true;
        });
      });
    }
    await t.step("missing file", async () => {
      await assert.rejects(readImage(`${dir}/nope.jpg`), (e: Error) => {
        assert.ok(e instanceof DataError);
        assert.ok(e.message.includes(`${dir}/nope.jpg`));
        return true;
      });
    });
    await t.step("a good file still decodes after failures", async () => {
      const img = await decodeImage(jpg);
      assert.equal(img.width, 48);
    });
  } finally {
    await cleanup();
  }
});
