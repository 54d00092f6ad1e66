// The chest X-ray stand-in generator (bench/make_xray_standin.ts) at a tiny
// scale: the Kaggle layout, counts, file names and patients, JPEGs that
// decode at the promised sizes, and the same bytes for the same seed.
import assert from "node:assert/strict";
import { join } from "node:path";
import { makeStandin, REAL_COUNTS } from "../../bench/make_xray_standin.ts";
import { readImage } from "../../src/data/decode.ts";
import { readJpegHeader } from "../../src/data/_jpeg_header.ts";
import { tempDir } from "./_fixtures.ts";

const SCALE = 0.002;

Deno.test("makeStandin() writes the Kaggle layout, names and sizes", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const { files } = await makeStandin({ out: dir, scale: SCALE, seed: 3 });
    const patients = new Map<string, string>(); // patient -> split
    for (const split of ["train", "val", "test"] as const) {
      for (const cls of ["NORMAL", "PNEUMONIA"] as const) {
        const names = [...Deno.readDirSync(join(dir, split, cls))].map((e) =>
          e.name
        );
        const want = Math.max(1, Math.round(REAL_COUNTS[split][cls] * SCALE));
        assert.equal(names.length, want, `${split}/${cls}`);
        for (const n of names) {
          const m = cls === "NORMAL"
            ? /^(?:NORMAL2-)?IM-(\d{4})-\d{4}\.jpeg$/.exec(n)
            : /^person(\d+)_(?:bacteria|virus)_\d+\.jpeg$/.exec(n);
          assert.ok(m, `${split}/${cls}/${n}`);
          const id = `${cls}:${m[1]}`;
          assert.ok(
            (patients.get(id) ?? split) === split,
            `patient ${id} in two splits`,
          );
          patients.set(id, split);
        }
      }
    }
    let rgb = 0;
    for (const f of files) {
      const bytes = await Deno.readFile(join(dir, f));
      const h = readJpegHeader(bytes)!;
      assert.ok(h.width >= 1000 && h.width <= 2500, `${f}: width ${h.width}`);
      assert.ok(
        h.height >= 700 && h.height <= 2700,
        `${f}: height ${h.height}`,
      );
      assert.ok(!h.progressive);
      if (h.components === 3) rgb++;
      else assert.equal(h.components, 1, f);
    }
    assert.ok(rgb <= Math.ceil(files.length / 20), `${rgb} RGB files`);
    const img = await readImage(join(dir, files[0]));
    assert.equal(img.channels, 1);
  } finally {
    await cleanup();
  }
});

Deno.test("makeStandin() is deterministic given the seed", async () => {
  const [a, ca] = await tempDir();
  const [b, cb] = await tempDir();
  try {
    const fa = await makeStandin({ out: a, scale: 0.0005, seed: 1 });
    const fb = await makeStandin({ out: b, scale: 0.0005, seed: 1 });
    assert.deepEqual(fa.files, fb.files);
    for (const f of fa.files) {
      assert.deepEqual(
        await Deno.readFile(join(a, f)),
        await Deno.readFile(join(b, f)),
        f,
      );
    }
  } finally {
    await ca();
    await cb();
  }
});
