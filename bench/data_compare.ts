/**
 * kdeno's image pipeline against PIL + torchvision's DataLoader (Debian's
 * python3-torch and python3-torchvision) on the same files with the same
 * number of workers, in one run on one machine:
 *
 * ```sh
 * deno run -A bench/data_compare.ts [--epochs 3] [--only substring]
 *   [--standin DIR] [--standin-scale 0.02]
 * ```
 *
 * Each workload loads an ImageFolder tree with the tutorial's training
 * transform (Resize to 224×224, RandomHorizontalFlip, ToTensor, Normalize),
 * batches of 32, shuffled: one warm-up epoch, then `--epochs` timed ones
 * (medians reported; worker start-up is inside each epoch on both sides,
 * as neither keeps workers between epochs). PyTorch runs with
 * `torch.set_num_threads(1)`. Two lines per workload,
 * `<workload> per-core kdeno=<x> pytorch=<y> ratio=<kdeno/pytorch>`: images
 * per CPU-second of the whole process (kdeno's Worker threads; PyTorch's
 * worker processes), the per-core rate, which other jobs on the machine
 * disturb little; and `<workload> wall ...`: images per second of wall
 * clock. Results go to bench/results/data_compare.json.
 *
 * Workloads: `xray` is the chest X-ray stand-in's `train/` folder
 * (bench/make_xray_standin.ts: the Kaggle set's sizes, 1000–2500 px wide,
 * grayscale JPEGs with every 20th RGB, 55–450 KB; written once into
 * `$TMPDIR/kdeno_standin_<scale>` unless `--standin DIR` names a stand-in
 * root; scale 0.02 gives 105 training images); `fashion` is the bundled
 * Fashion-MNIST subset (1,000 28×28 PNG/JPEG, upscaled to 224). kdeno's
 * default decodes at full size with TurboJPEG, giving torchvision's pixels
 * exactly (PIL's decode and Resize); the `draft` rows decode JPEGs with a
 * DCT-domain draft (`ImageFolder`'s `draft: 1`, which gives exactly PIL's
 * `Image.draft("RGB", (224, 224))` pixels) against PyTorch without a draft
 * (torchvision's loader never calls it), and print PIL with the same draft
 * beside it (`pil-draft=`); the `cached` row is kdeno's `cache: true` after
 * its first epoch (PyTorch has no equivalent and decodes every epoch).
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { join } from "node:path";
import { data, transforms as T } from "../mod.ts";
import { makeStandin } from "./make_xray_standin.ts";
import { jpegDecoder } from "../src/data/decode.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    epochs: { type: "string", default: "3" },
    only: { type: "string" },
    python: { type: "string", default: "/usr/bin/python3" },
    standin: { type: "string" },
    "standin-scale": { type: "string", default: "0.02" },
  },
});
const epochs = Number(values.epochs);
const PY = new URL("./data_compare_torch.py", import.meta.url).pathname;
const FASHION =
  new URL("../examples/data/fashion-binary/train", import.meta.url).pathname;
const STANDIN = values.standin ??
  join(
    Deno.env.get("TMPDIR") ?? "/tmp",
    `kdeno_standin_${Number(values["standin-scale"])}`,
  );
const XRAY = join(STANDIN, "train");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? s[s.length >> 1]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function python(args: string[]): Promise<string> {
  const out = await new Deno.Command(values.python, {
    args: [PY, ...args],
    stderr: "inherit",
  })
    .output();
  if (!out.success) {
    throw new Error(`${values.python} ${PY} ${args.join(" ")} failed`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function ensureXray(): Promise<void> {
  try {
    Deno.statSync(join(XRAY, "PNEUMONIA"));
    return;
  } catch { /* not made yet */ }
  if (values.standin) throw new Error(`${XRAY}/PNEUMONIA not found`);
  const scale = Number(values["standin-scale"]);
  console.error(
    `writing the chest X-ray stand-in (scale ${scale}) to ${STANDIN} ...`,
  );
  await makeStandin({ out: STANDIN, scale });
}

async function kdeno(
  root: string,
  numWorkers: number,
  options: { draft?: number; cache?: boolean },
): Promise<Rates> {
  const ds = new data.ImageFolder(root, {
    transform: [
      new T.Resize([224, 224]),
      new T.RandomHorizontalFlip(),
      new T.ToTensor(),
      new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ],
    ...options,
  });
  const loader = new data.DataLoader(ds, {
    batchSize: 32,
    shuffle: true,
    numWorkers,
    seed: 0,
  });
  const wall: number[] = [], cpu: number[] = [];
  for (let e = 0; e <= epochs; e++) {
    const t0 = performance.now(), c0 = cpuSeconds();
    let n = 0;
    for await (const [x, y] of loader) {
      n += x.shape[0];
      x.dispose();
      y.dispose();
    }
    if (e > 0) {
      wall.push(n / ((performance.now() - t0) / 1000));
      cpu.push(n / (cpuSeconds() - c0));
    }
  }
  return { wall, cpu };
}

/** CPU seconds of this process, Worker threads included. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function torch(
  root: string,
  workers: number,
  draft = false,
): Promise<Rates> {
  const line = await python([
    "run",
    root,
    String(workers),
    String(epochs),
    "224",
    ...(draft ? ["draft"] : []),
  ]);
  const r = JSON.parse(line.trim().split("\n").pop()!);
  return { wall: r.imgs_per_s, cpu: r.imgs_per_cpu_s };
}

/** Per-epoch rates: wall clock, and per CPU-second (per core). */
interface Rates {
  wall: number[];
  cpu: number[];
}

interface Workload {
  name: string;
  root: () => string;
  workers: number;
  options: { draft?: number; cache?: boolean };
}

const workloads: Workload[] = [];
for (const workers of [0, 2]) {
  workloads.push(
    {
      name: `xray jpeg->224 workers=${workers}`,
      root: () => XRAY,
      workers,
      options: {},
    },
    {
      name: `xray jpeg->224 workers=${workers} draft`,
      root: () => XRAY,
      workers,
      options: { draft: 1 },
    },
    {
      name: `fashion 28->224 workers=${workers}`,
      root: () => FASHION,
      workers,
      options: {},
    },
  );
}
workloads.push({
  name: "xray jpeg->224 workers=2 cached",
  root: () => XRAY,
  workers: 2,
  options: { cache: true },
});

const selected = workloads.filter((w) =>
  !values.only || w.name.includes(values.only)
);
if (selected.some((w) => w.root() === XRAY)) await ensureXray();
console.log(`kdeno JPEG decoder: ${jpegDecoder()}`);

const results = [];
const line = (name: string, k: number, p: number) =>
  console.log(
    `${name} kdeno=${k.toFixed(1)} pytorch=${p.toFixed(1)} ratio=${
      (k / p).toFixed(2)
    }`,
  );
for (const w of selected) {
  // Interleaved: kdeno, PyTorch, kdeno, PyTorch; medians over all epochs.
  const k: Rates = { wall: [], cpu: [] }, p: Rates = { wall: [], cpu: [] };
  const pd: Rates = { wall: [], cpu: [] }; // PIL with the same draft
  const draft = (w.options.draft ?? 0) > 0;
  for (let round = 0; round < 2; round++) {
    const kr = await kdeno(w.root(), w.workers, w.options);
    const pr = await torch(w.root(), w.workers);
    k.wall.push(...kr.wall), k.cpu.push(...kr.cpu);
    p.wall.push(...pr.wall), p.cpu.push(...pr.cpu);
    if (draft) {
      const dr = await torch(w.root(), w.workers, true);
      pd.wall.push(...dr.wall), pd.cpu.push(...dr.cpu);
    }
  }
  const r = {
    workload: w.name,
    perCore: { kdeno: median(k.cpu), pytorch: median(p.cpu) },
    wall: { kdeno: median(k.wall), pytorch: median(p.wall) },
    kdeno: k,
    pytorch: p,
    ...(draft
      ? {
        pilDraft: {
          perCore: median(pd.cpu),
          wallMedian: median(pd.wall),
          runs: pd,
        },
      }
      : {}),
  };
  results.push(r);
  const extra = (v: number) => draft ? ` pil-draft=${v.toFixed(1)}` : "";
  line(`${w.name} per-core`, r.perCore.kdeno, r.perCore.pytorch);
  if (draft) console.log(`  ${extra(median(pd.cpu)).trim()} (per-core)`);
  line(`${w.name} wall`, r.wall.kdeno, r.wall.pytorch);
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL("./results/data_compare.json", import.meta.url),
  JSON.stringify(
    { date: new Date().toISOString(), unit: "img/s", epochs, results },
    null,
    2,
  ) + "\n",
);
