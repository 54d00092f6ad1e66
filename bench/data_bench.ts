/**
 * The image pipeline's steps, one group per input: decode (full size and
 * with a JPEG draft), the PIL-exact resize to 224×224, ToTensor + Normalize
 * (fused), and a whole sample as the DataLoader makes it.
 *
 * ```sh
 * deno bench -A bench/data_bench.ts
 * ```
 *
 * The X-ray-sized group uses the chest X-ray stand-in that
 * `bench/data_compare.ts` writes to $TMPDIR/kdeno_standin_0.02 (or
 * `KDENO_STANDIN=<root>`; skipped until it exists); the others use the
 * repository's own files. JPEGs decode with TurboJPEG when it loads (else
 * imagescript); the resize runs in the native kernels when they build (the
 * "TypeScript resize" row runs the TypeScript oracle). The draft is
 * Pillow's `draft("RGB", (224, 224))`. For the comparison with PIL +
 * torchvision run `deno run -A bench/data_compare.ts`.
 *
 * @module
 */
import { join } from "node:path";
import { Generator } from "../src/random.ts";
import { decodeImage, jpegDecoder, loadCodecs } from "../src/data/decode.ts";
import { setNativeResize } from "../src/data/_resize.ts";
import { nativeKernels } from "../src/backend/cpu/native.ts";
import * as T from "../src/data/transforms.ts";
import { throughputBench, type Work } from "./_throughput.ts";

const ONE: Work = { unit: "img", amount: 1 };
const DECODE = jpegDecoder() === "turbojpeg"
  ? "TurboJPEG (JPEG) / imagescript"
  : "imagescript WASM decode";
const RESIZE = nativeKernels() ? "C" : "TypeScript";

await loadCodecs();
const tf = new T.Compose([
  new T.Resize([224, 224]),
  new T.RandomHorizontalFlip(),
  new T.ToTensor(),
  new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
]);
const resize = new T.Resize([224, 224]);
const norm = new T.Compose([
  new T.ToTensor(),
  new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
]);
const g = new Generator(0);

function firstFile(dir: string, ext: string): string | undefined {
  try {
    const name = [...Deno.readDirSync(dir)].map((e) => e.name).sort()
      .find((n) => n.endsWith(ext));
    return name && join(dir, name);
  } catch {
    return undefined;
  }
}

const xray = firstFile(
  join(
    Deno.env.get("KDENO_STANDIN") ??
      join(Deno.env.get("TMPDIR") ?? "/tmp", "kdeno_standin_0.02"),
    "train",
    "PNEUMONIA",
  ),
  ".jpeg",
);
const inputs: [string, string | undefined][] = [
  ["xray-like gray JPEG", xray],
  [
    "320x240 RGB JPEG",
    new URL("../tests/fixtures/images/large.jpg", import.meta.url).pathname,
  ],
  [
    "28x28 gray PNG",
    firstFile(
      new URL("../examples/data/fashion-binary/train/shirt", import.meta.url)
        .pathname,
      ".png",
    ),
  ],
];

for (const [group, path] of inputs) {
  if (!path) continue;
  const bytes = Deno.readFileSync(path);
  const draft = (w: number, h: number) => {
    const [ow, oh] = resize.outputSize(w, h);
    return { width: ow, height: oh };
  };
  const full = await decodeImage(bytes);
  const resized = resize.call(full);
  throughputBench({
    origin: import.meta.url,
    work: ONE,
    backend: () => DECODE,
    group,
    name: "decode",
    baseline: true,
    fn: async () => void await decodeImage(bytes),
  });
  throughputBench({
    origin: import.meta.url,
    work: ONE,
    backend: () => DECODE,
    group,
    name: "decode, draft (224, 224)",
    fn: async () => void await decodeImage(bytes, { draft }),
  });
  throughputBench({
    origin: import.meta.url,
    work: ONE,
    backend: () => RESIZE,
    group,
    name: "resize to 224",
    fn: () => void resize.call(full),
  });
  throughputBench({
    origin: import.meta.url,
    work: ONE,
    backend: () => "TypeScript",
    group,
    name: "TypeScript resize to 224 (the oracle)",
    fn: () => {
      setNativeResize(false);
      try {
        resize.call(full);
      } finally {
        setNativeResize(true);
      }
    },
  });
  throughputBench({
    origin: import.meta.url,
    work: ONE,
    backend: () => "TypeScript",
    group,
    name: "ToTensor + Normalize",
    fn: () => void norm.call(resized),
  });
  throughputBench({
    origin: import.meta.url,
    work: ONE,
    backend: () => `${DECODE} + ${RESIZE}`,
    group,
    name: "sample (draft decode + transform)",
    fn: async () => void tf.call(await decodeImage(bytes, { draft }), g),
  });
}
