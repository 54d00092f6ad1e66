// JPEG decoding through TurboJPEG against Pillow 9.4's pixels
// (tests/fixtures/jpeg, written by tests/fixtures/jpeg/generate.py): full
// size, gray as "L", drafts, decode + Resize(224), the errors, and the
// fallback to imagescript (subprocesses with KDENO_TURBOJPEG set).
//
// CI installs libturbojpeg0 (.ci/run); without it these tests fail rather
// than skip.
import assert from "node:assert/strict";
import {
  BackendUnavailableError,
  DataError,
  DecompressionBombError,
} from "../../src/errors.ts";
import { decodeImage, jpegDecoder, readImage } from "../../src/data/decode.ts";
import { resample } from "../../src/data/_resize.ts";
import type { RawImage } from "../../src/data/image.ts";
import { pilDraftScale } from "../../src/data/_turbojpeg.ts";

const DIR = new URL("../fixtures/jpeg/", import.meta.url).pathname;

interface Out {
  width: number;
  height: number;
  sha256: string;
}
interface Expected {
  files: Record<string, {
    mode: string;
    width: number;
    height: number;
    rgb: Out;
    l?: Out;
    draft: (Out & { size: [number, number]; scale: number })[];
    resize224?: Out;
    draft224_resize224?: Out;
  }>;
  truncated: string;
}
const expected: Expected = JSON.parse(
  await Deno.readTextFile(DIR + "expected.json"),
);

async function sha256(b: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((v) => v.toString(16).padStart(2, "0"))
    .join("");
}

/** The RGB bytes an image stands for (a gray plane copied to R, G, B). */
function rgbBytes(img: RawImage): Uint8Array {
  if (img.channels === 3) return img.data;
  const out = new Uint8Array(img.data.length * 3);
  for (let i = 0; i < img.data.length; i++) {
    out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = img.data[i];
  }
  return out;
}

async function assertSame(img: RawImage, want: Out, what: string) {
  assert.deepEqual(
    [img.width, img.height],
    [want.width, want.height],
    `${what}: size`,
  );
  assert.equal(
    await sha256(rgbBytes(img)),
    want.sha256,
    `${what}: pixels differ from Pillow's`,
  );
}

Deno.test("TurboJPEG is loaded (libturbojpeg0; CI installs it)", () => {
  assert.equal(jpegDecoder(), "turbojpeg");
});

Deno.test("full-size decoding equals Pillow's convert('RGB') and 'L' exactly", async (t) => {
  for (const [name, e] of Object.entries(expected.files)) {
    await t.step(`${name} (${e.mode} ${e.width}x${e.height})`, async () => {
      const img = await readImage(DIR + name);
      assert.equal(img.mode, "RGB");
      assert.equal(img.channels, e.mode === "L" ? 1 : 3, "stored channels");
      await assertSame(img, e.rgb, `${name} RGB`);
      if (e.l) {
        assert.equal(
          await sha256(img.data),
          e.l.sha256,
          `${name}: the gray plane differs from Pillow's "L"`,
        );
      }
    });
  }
});

Deno.test("draft decoding equals Pillow's Image.draft('RGB', size) exactly", async (t) => {
  for (const [name, e] of Object.entries(expected.files)) {
    for (const d of e.draft) {
      await t.step(`${name} draft ${d.size.join("x")}`, async () => {
        const img = await readImage(DIR + name, {
          draft: { width: d.size[0], height: d.size[1] },
        });
        await assertSame(img, d, `${name} draft ${d.size}`);
      });
    }
  }
});

Deno.test("decode + Resize(224) equals PIL + torchvision's Resize, with and without a draft", async (t) => {
  for (const [name, e] of Object.entries(expected.files)) {
    if (!e.resize224 || !e.draft224_resize224) continue;
    await t.step(name, async () => {
      const full = await readImage(DIR + name);
      await assertSame(resample(full, 224, 224), e.resize224!, "full");
      const draft = await readImage(DIR + name, {
        draft: { width: 224, height: 224 },
      });
      await assertSame(
        resample(draft, 224, 224),
        e.draft224_resize224!,
        "draft",
      );
    });
  }
});

Deno.test("pilDraftScale() picks the scale Pillow picks", () => {
  for (const e of Object.values(expected.files)) {
    for (const d of e.draft) {
      if (Math.max(e.width, e.height) < 8) continue; // decoded at full size
      assert.equal(
        pilDraftScale(e.width, e.height, {
          width: d.size[0],
          height: d.size[1],
        }),
        d.scale,
        `${e.width}x${e.height} draft ${d.size}`,
      );
    }
  }
  assert.equal(pilDraftScale(2000, 1600, { width: 224, height: 224 }), 4);
  assert.equal(pilDraftScale(1024, 768, { width: 224, height: 224 }), 2);
  assert.equal(pilDraftScale(300, 300, { width: 224, height: 224 }), 1);
});

Deno.test("a truncated JPEG is refused as Pillow refuses it; corrupt scan data is not", async () => {
  assert.match(expected.truncated, /truncated/); // what Pillow said
  await assert.rejects(
    readImage(DIR + "truncated.jpg"),
    (e: Error) =>
      e instanceof DataError && e.message.includes("truncated.jpg") &&
      /truncated/.test(e.message),
  );
  // corrupt.jpg decodes to Pillow's pixels (checked above) despite the
  // libjpeg warning; a cut-off file without the warning text is refused too.
  const bytes = await Deno.readFile(DIR + "rgb420.jpg");
  for (const cut of [0.3, 0.9, 0.999]) {
    await assert.rejects(
      decodeImage(bytes.subarray(0, Math.floor(bytes.length * cut)), {
        path: `cut${cut}.jpg`,
      }),
      DataError,
    );
  }
});

Deno.test("the header limits hold on the TurboJPEG path", async () => {
  const bytes = await Deno.readFile(DIR + "xray_gray.jpg");
  await assert.rejects(
    decodeImage(bytes, { path: "x.jpg", maxImagePixels: 640 * 512 - 1 }),
    (e: Error) =>
      e instanceof DecompressionBombError && e.message.includes("x.jpg"),
  );
  // A frame header claiming 60000 x 60000: refused before any allocation.
  const big = bytes.slice();
  const sof = big.findIndex((v, i) => v === 0xff && big[i + 1] === 0xc0);
  big.set([0xea, 0x60, 0xea, 0x60], sof + 5);
  await assert.rejects(
    decodeImage(big, { path: "bomb.jpg" }),
    DecompressionBombError,
  );
  // Lifting the pixel limit still leaves the size check (the file is far
  // too small for 3.6e9 pixels).
  await assert.rejects(
    decodeImage(big, { path: "bomb.jpg", maxImagePixels: null }),
    (e: Error) =>
      e instanceof DataError && /corrupt or truncated/.test(e.message),
  );
});

/** Runs a snippet in a fresh Deno with `env`, returning stdout and stderr. */
async function sub(
  code: string,
  env: Record<string, string>,
  flags = ["-A"],
): Promise<{ ok: boolean; out: string; err: string }> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, code);
  try {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, "--no-lock", file],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return {
      ok: r.success,
      out: dec.decode(r.stdout),
      err: dec.decode(r.stderr),
    };
  } finally {
    await Deno.remove(file);
  }
}

const DECODE = new URL("../../src/data/decode.ts", import.meta.url).href;

Deno.test("KDENO_TURBOJPEG=0: imagescript decodes, with a one-line notice once", async () => {
  const r = await sub(
    `import { readImage, jpegDecoder } from "${DECODE}";
     const a = await readImage("${DIR}rgb420.jpg");
     const b = await readImage("${DIR}gray_odd.jpg");
     console.log(jpegDecoder(), a.width, a.height, a.channels, b.channels);`,
    { KDENO_TURBOJPEG: "0" },
  );
  assert.ok(r.ok, r.err);
  assert.equal(r.out.trim(), "imagescript 256 192 3 1");
  const notices = r.err.split("\n").filter((l) => l.includes("TurboJPEG"));
  assert.equal(notices.length, 1, r.err);
  assert.match(notices[0], /imagescript/);
});

Deno.test("KDENO_TURBOJPEG naming a missing library: BackendUnavailableError, no silent fallback", async () => {
  const r = await sub(
    `import { readImage } from "${DECODE}";
     try { await readImage("${DIR}rgb420.jpg"); console.log("decoded"); }
     catch (e) { console.log(e.name); console.log(e.message); }`,
    { KDENO_TURBOJPEG: "/nonexistent/libturbojpeg.so.0" },
  );
  assert.ok(r.ok, r.err);
  const [name, ...msg] = r.out.trim().split("\n");
  assert.equal(name, new BackendUnavailableError("", []).name);
  assert.match(msg.join("\n"), /KDENO_TURBOJPEG/);
  assert.match(msg.join("\n"), /\/nonexistent\/libturbojpeg\.so\.0: not found/);
});

Deno.test("without --allow-ffi, JPEGs fall back to imagescript with the notice", async () => {
  const r = await sub(
    `import { readImage } from "${DECODE}";
     const a = await readImage("${DIR}rgb422_odd.jpg");
     console.log(a.width, a.height);`,
    {},
    ["--allow-read", "--allow-env"],
  );
  assert.ok(r.ok, r.err);
  assert.equal(r.out.trim(), "161 121");
  assert.match(r.err, /TurboJPEG not loaded \(no --allow-ffi\)/);
});

const MOD = new URL("../../mod.ts", import.meta.url).href;

Deno.test("KDENO_TURBOJPEG=0 with decoding Workers: the notice comes once, from the main thread", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kdeno_tj_" });
  try {
    for (
      const [cls, files] of [["a", ["rgb420.jpg", "gray_odd.jpg"]], [
        "b",
        ["rgb444_odd.jpg", "progressive420.jpg"],
      ]] as const
    ) {
      await Deno.mkdir(`${dir}/${cls}`);
      for (const f of files) await Deno.copyFile(DIR + f, `${dir}/${cls}/${f}`);
    }
    const r = await sub(
      `import { data, transforms as T } from "${MOD}";
       const ds = new data.ImageFolder("${dir}", { transform: [new T.Resize([32, 32]), new T.ToTensor()] });
       const loader = new data.DataLoader(ds, { batchSize: 1, numWorkers: 2 });
       let n = 0;
       for await (const [x] of loader) n += x.shape[0];
       console.log(n);`,
      { KDENO_TURBOJPEG: "0" },
    );
    assert.ok(r.ok, r.err);
    assert.equal(r.out.trim(), "4");
    const notices = r.err.split("\n").filter((l) => l.includes("TurboJPEG"));
    assert.equal(notices.length, 1, r.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recycled decode buffers never change a sample already made", async () => {
  const { buildPipeline, planPipeline, runSample } = await import(
    "../../src/data/_pipeline.ts"
  );
  const { Resize } = await import("../../src/data/transforms.ts");
  const files = [
    "xray_gray.jpg",
    "tiny.jpg",
    "rgb420.jpg",
    "xray_gray.jpg",
    "gray_odd.jpg",
    "cmyk.jpg",
    "rgb422_odd.jpg", // last: a reused buffer would now hold its pixels
  ];
  for (const keepCache of [false, true]) {
    // [h, w] as torchvision; 512 x 640 keeps the X-ray's decoded pixels
    for (const [h, w] of [[32, 48], [512, 640]]) {
      const { plan, head } = planPipeline([new Resize([h, w])], {
        draft: 0,
        maxImagePixels: Infinity,
      });
      const p = buildPipeline(plan, head);
      // expected outputs first, in buffers of their own
      const wants: Uint8Array[] = [];
      for (const f of files) {
        wants.push(resample(await readImage(DIR + f), w, h).data.slice());
      }
      const made = [];
      for (const f of files) {
        made.push(await runSample(p, { path: DIR + f, seed: 0 }, keepCache));
      }
      for (let i = 0; i < files.length; i++) {
        const want = wants[i];
        const got = made[i].out as RawImage;
        assert.equal(
          await sha256(got.data),
          await sha256(want),
          `${files[i]} (#${i}, keepCache ${keepCache}, ${h}x${w})`,
        );
        if (keepCache) {
          assert.equal(
            await sha256(made[i].cache!.data),
            await sha256(want),
          );
        }
      }
    }
  }
});
