// Seeded byte-level fuzzing of the image decoder (tests/_fuzz.ts): mutants
// of valid PNG, JPEG and GIF files decode or fail with a typed kdeno error,
// each case within the time bound and the process within 1 GiB of peak
// resident memory. PNG mutants get their chunk CRCs recomputed, or nearly
// all would stop at the CRC check. A seed that ever failed goes into its
// file's `regressions`, replayed first on every run.
import assert from "node:assert/strict";
import { decodeImage, loadCodecs } from "../../src/data/decode.ts";
import { fuzz } from "../_fuzz.ts";
import { fixPngCrcs } from "./_craft.ts";
import { IMAGES } from "./_fixtures.ts";

await loadCodecs();

const FILES: { file: string; cases: number; regressions: number[] }[] = [
  { file: "rgb8.png", cases: 1500, regressions: [] },
  { file: "interlaced.png", cases: 1000, regressions: [] },
  { file: "palette_trns.png", cases: 1000, regressions: [] },
  { file: "bilevel.png", cases: 500, regressions: [] },
  { file: "baseline.jpg", cases: 1500, regressions: [] },
  { file: "progressive.jpg", cases: 1500, regressions: [] },
  { file: "cmyk.jpg", cases: 1000, regressions: [] },
  // 2830: a 65407 × 65535 screen (ran for minutes); 1074: a 12079 × 12079
  // first frame (634 MiB) before the header checks.
  { file: "image.gif", cases: 3000, regressions: [2830, 1074] },
];

for (const { file, cases, regressions } of FILES) {
  Deno.test(`decodeImage() survives ${cases} mutants of ${file}`, async () => {
    const input = await Deno.readFile(IMAGES + file);
    const fix = file.endsWith(".png") ? fixPngCrcs : (b: Uint8Array) => b;
    const { parsed, refused } = await fuzz({
      input,
      parse: (bytes, seed) =>
        decodeImage(fix(bytes), { path: `${file} (seed ${seed})` }),
      cases,
      regressions,
      maxPeakBytes: 1024 ** 3,
    });
    assert.equal(parsed + refused, cases + regressions.length);
    // Both outcomes occur, or the mutants do not reach the decoder.
    assert.ok(parsed > 0, `${parsed} parsed`);
    assert.ok(refused > 0, `${refused} refused`);
  });
}
