/**
 * The image pipeline's steps, one group per input: decode (full size and
 * with a JPEG draft), the PIL-exact resize to 224×224, ToTensor + Normalize
 * (fused), and a whole sample as the DataLoader makes it.
 *
 * ```sh
 * deno bench -A bench/data_bench.ts
 * ```
 *
 * The X-ray-sized group uses the synthetic JPEGs `bench/data_compare.ts`
 * writes to $TMPDIR/kdeno_xray_bench (skipped until they exist); the others
 * use the repository's own files. For the comparison with PIL + torchvision
 * run `deno run -A bench/data_compare.ts`.
 *
 * @module
 */
import { join } from "node:path";
import { Generator } from "../src/random.ts";
import { decodeImage, loadCodecs } from "../src/data/decode.ts";
import * as T from "../src/data/transforms.ts";
import { throughputBench, type Work } from "./_throughput.ts";

const ONE: Work = { unit: "img", amount: 1 };
const DECODE = "imagescript WASM decode";

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
  join(Deno.env.get("TMPDIR") ?? "/tmp", "kdeno_xray_bench", "PNEUMONIA"),
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
    return { width: 2 * ow, height: 2 * oh };
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
    name: "decode, draft 2x",
    fn: async () => void await decodeImage(bytes, { draft }),
  });
  throughputBench({
    origin: import.meta.url,
    work: ONE,
    backend: () => "TypeScript",
    group,
    name: "resize to 224",
    fn: () => void resize.call(full),
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
    backend: () => `${DECODE} + TypeScript`,
    group,
    name: "sample (draft decode + transform)",
    fn: async () => void tf.call(await decodeImage(bytes, { draft }), g),
  });
}
