/**
 * Writes a stand-in for the Kaggle chest X-ray set ("Chest X-Ray Images
 * (Pneumonia)", Kermany et al.), which cannot be downloaded here: the same
 * folder layout, class counts (scaled), file names, image sizes, JPEG
 * encoding and file sizes, with content that looks vaguely like a chest
 * radiograph and a class difference a model can learn.
 *
 * ```sh
 * deno run -A bench/make_xray_standin.ts --out /tmp/chest_xray [--scale 0.05] [--seed 0]
 * ```
 *
 * - Layout: `train/`, `val/`, `test/`, each with `NORMAL/` and `PNEUMONIA/`.
 * - Counts: the real set's (train 1341 / 3875, val 8 / 8, test 234 / 390)
 *   times `--scale`, rounded, at least 1 per folder.
 * - Names: NORMAL `IM-0115-0001.jpeg` and `NORMAL2-IM-1427-0001.jpeg`;
 *   PNEUMONIA `person1_bacteria_1.jpeg`, `person1_virus_6.jpeg` (about two
 *   bacterial images for one viral, as in the real set). Patients (the
 *   number after `IM-` or `person`) have 1–3 images and never span splits,
 *   so the patient-grouped split of `src/study` has groups to keep together.
 * - Images: width 1000–2500 px, height 0.7–1.05 × width (at least 700);
 *   8-bit grayscale baseline JPEG through libjpeg-turbo's `tjCompress2`
 *   (quality `--quality`, default 85), every 20th file a 3-channel 4:2:0 JPEG
 *   (the real set has a few RGB files). Files are 55–450 KB, about
 *   200 KB on average.
 * - Content: dark background, bright body, two dark lung fields with ribs,
 *   spine and heart, smooth and fine noise; PNEUMONIA adds hazy
 *   patchy opacities in one or both lungs (the consolidation that
 *   distinguishes the classes on real films).
 *
 * Deterministic: the same `--seed` and `--scale` give the same bytes.
 * Needs TurboJPEG (Debian: `apt-get install libturbojpeg0`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  openTurboJpeg,
  TJFLAG_NOREALLOC,
  TJPF_GRAY,
  TJPF_RGB,
  TJSAMP_420,
  TJSAMP_GRAY,
} from "../ffi/turbojpeg.ts";

/** The real set's image counts per split and class. */
export const REAL_COUNTS = {
  train: { NORMAL: 1341, PNEUMONIA: 3875 },
  val: { NORMAL: 8, PNEUMONIA: 8 },
  test: { NORMAL: 234, PNEUMONIA: 390 },
} as const;

/** Options of {@linkcode makeStandin}. */
export interface StandinOptions {
  /** The folder to write (created; existing files are overwritten). */
  out: string;
  /** Fraction of the real counts (default 0.05). */
  scale?: number;
  /** Seed (default 0). */
  seed?: number;
  /** JPEG quality (default 85). */
  quality?: number;
  /** Called after each file, for progress. */
  onFile?: (done: number, total: number) => void;
}

/** A small seeded generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A 1-D profile `exp(-|(i - c) / s|^(2 * k))` over `n` samples: Gaussian for
 * `k` 1, flatter-topped for 2.
 */
function profile(n: number, c: number, s: number, k = 1): Float32Array {
  const p = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const d = (i - c) / s;
    p[i] = Math.exp(-((d * d) ** k));
  }
  return p;
}

/**
 * Renders one radiograph-like gray image.
 *
 * @param w Width.
 * @param h Height.
 * @param pneumonia Whether to add opacities.
 * @param r The image's generator.
 * @returns `w * h` bytes.
 */
export function renderChest(
  w: number,
  h: number,
  pneumonia: boolean,
  r: () => number,
): Uint8Array {
  const out = new Uint8Array(w * h);
  const f = new Float32Array(w * h);
  const u = (a: number, b: number) => a + (b - a) * r();
  // Patient: position, size and exposure vary a little.
  const cx = w * u(0.47, 0.53), cy = h * u(0.5, 0.56);
  const rx = w * u(0.4, 0.47), ry = h * u(0.5, 0.6);
  const bodyLevel = u(150, 190), background = u(10, 35);
  const lungDepth = u(80, 115);
  const lungY = h * u(0.42, 0.5), lungSy = h * u(0.22, 0.27);
  const lx = [cx - w * u(0.17, 0.21), cx + w * u(0.17, 0.21)];
  const lungSx = w * u(0.1, 0.13);
  const lungColsL = profile(w, lx[0], lungSx, 2);
  const lungColsR = profile(w, lx[1], lungSx, 2);
  const lungRows = profile(h, lungY, lungSy, 2);
  const spineCols = profile(w, cx, w * 0.035);
  const heartCols = profile(w, cx + w * 0.05, w * 0.09);
  const heartRows = profile(h, h * 0.62, h * 0.1);
  // Ribs: sin(y / period + bend(x)) split into separable parts.
  const period = h / u(18, 24);
  const bendS = new Float32Array(w), bendC = new Float32Array(w);
  for (let x = 0; x < w; x++) {
    const a = 1.8 * Math.sin((x - cx) / (w / 3.2)) *
        Math.sign(x - cx) + u(-0.02, 0.02);
    bendS[x] = Math.sin(a);
    bendC[x] = Math.cos(a);
  }
  const ribS = new Float32Array(h), ribC = new Float32Array(h);
  for (let y = 0; y < h; y++) {
    ribS[y] = Math.sin(y / period);
    ribC[y] = Math.cos(y / period);
  }
  const ribAmp = u(22, 32);
  // Opacities (PNEUMONIA): 2-5 hazy patches in the lungs.
  const blobs: { c: Float32Array; r: Float32Array; amp: number }[] = [];
  if (pneumonia) {
    const n = 2 + Math.floor(r() * 4);
    const side = r();
    for (let i = 0; i < n; i++) {
      const s = side < 0.35 ? 0 : side < 0.7 ? 1 : (r() < 0.5 ? 0 : 1);
      blobs.push({
        c: profile(w, lx[s] + lungSx * u(-0.7, 0.7), lungSx * u(0.35, 0.8)),
        r: profile(h, lungY + lungSy * u(-0.4, 1.0), lungSy * u(0.3, 0.7)),
        amp: u(45, 80),
      });
    }
  }
  // Smooth texture: a coarse random grid, bilinearly interpolated.
  const gw = 24, gh = 20;
  const grid = new Float32Array((gw + 1) * (gh + 1));
  for (let i = 0; i < grid.length; i++) grid[i] = u(-8, 8);
  let noise = (r() * 4294967296) >>> 0 || 1;
  const noiseAmp = u(5, 9);
  for (let y = 0; y < h; y++) {
    const dy = (y - cy) / ry, dy2 = dy * dy;
    const gy = (y / h) * gh, gy0 = Math.floor(gy), fy = gy - gy0;
    const lr = lungRows[y], rs = ribS[y], rc = ribC[y], hr = heartRows[y];
    for (let x = 0; x < w; x++) {
      const dx = (x - cx) / rx;
      const e = dx * dx + dy2;
      // body: bright inside a soft-edged ellipse
      const body = e < 0.85 ? 1 : e > 1.15 ? 0 : (1.15 - e) / 0.3;
      const lung = (lungColsL[x] + lungColsR[x]) * lr;
      const rib = ribAmp * (rs * bendC[x] + rc * bendS[x]);
      let v = background + body * (bodyLevel - background);
      v += body * (30 * spineCols[x] + 35 * heartCols[x] * hr);
      v -= body * lung * (lungDepth - (rib > 0 ? rib : 0));
      for (const b of blobs) v += body * b.amp * b.c[x] * b.r[y];
      const gx = (x / w) * gw, gx0 = Math.floor(gx), fx = gx - gx0;
      const g = gy0 * (gw + 1) + gx0;
      v += (grid[g] * (1 - fx) + grid[g + 1] * fx) * (1 - fy) +
        (grid[g + gw + 1] * (1 - fx) + grid[g + gw + 2] * fx) * fy;
      noise ^= noise << 13;
      noise ^= noise >>> 17;
      noise ^= noise << 5;
      v += noiseAmp * (((noise >>> 0) / 4294967296) - 0.5);
      f[y * w + x] = v;
    }
  }
  for (let i = 0; i < f.length; i++) {
    const v = f[i];
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
  }
  return out;
}

/**
 * Encodes 8-bit pixels as a baseline JPEG with TurboJPEG.
 *
 * @param px Gray (`channels` 1) or RGB pixels.
 * @param w Width.
 * @param h Height.
 * @param channels 1 or 3.
 * @param quality JPEG quality 1–100.
 * @returns The file's bytes.
 */
export function encodeJpeg(
  px: Uint8Array,
  w: number,
  h: number,
  channels: 1 | 3,
  quality: number,
): Uint8Array {
  const tj = openTurboJpeg();
  if (!tj) {
    throw new Error(
      "TurboJPEG is needed to write the stand-in (apt-get install libturbojpeg0)",
    );
  }
  const t = tj.symbols;
  const samp = channels === 1 ? TJSAMP_GRAY : TJSAMP_420;
  const cap = Number(t.tjBufSize(w, h, samp));
  const buf = new Uint8Array(cap);
  const ptr = new BigUint64Array([
    BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf))),
  ]);
  const size = new BigUint64Array([BigInt(cap)]);
  const handle = t.tjInitCompress();
  try {
    const rc = t.tjCompress2(
      handle,
      px,
      w,
      w * channels,
      h,
      channels === 1 ? TJPF_GRAY : TJPF_RGB,
      ptr,
      size,
      samp,
      quality,
      TJFLAG_NOREALLOC,
    );
    if (rc !== 0) {
      const p = t.tjGetErrorStr2(handle);
      throw new Error(
        `tjCompress2: ${p ? Deno.UnsafePointerView.getCString(p) : rc}`,
      );
    }
  } finally {
    t.tjDestroy(handle);
  }
  return buf.slice(0, Number(size[0]));
}

/** One file to write. */
interface Planned {
  split: string;
  cls: "NORMAL" | "PNEUMONIA";
  name: string;
}

/** Names files as the real set does, patients never spanning splits. */
function plan(scale: number, r: () => number): Planned[] {
  const files: Planned[] = [];
  let imPatient = 115, person = 1;
  for (const split of ["train", "val", "test"] as const) {
    for (const cls of ["NORMAL", "PNEUMONIA"] as const) {
      const n = Math.max(1, Math.round(REAL_COUNTS[split][cls] * scale));
      let k = 0;
      while (k < n) {
        const images = Math.min(n - k, 1 + Math.floor(r() * r() * 3));
        if (cls === "NORMAL") {
          const prefix = r() < 0.3 ? "NORMAL2-" : "";
          const id = String(imPatient).padStart(4, "0");
          imPatient += 1 + Math.floor(r() * 3);
          for (let i = 1; i <= images; i++) {
            const seq = String(i).padStart(4, "0");
            files.push({ split, cls, name: `${prefix}IM-${id}-${seq}.jpeg` });
          }
        } else {
          const kind = r() < 0.65 ? "bacteria" : "virus";
          let seq = 1 + Math.floor(r() * 20);
          for (let i = 0; i < images; i++) {
            files.push({
              split,
              cls,
              name: `person${person}_${kind}_${seq}.jpeg`,
            });
            seq += 1 + Math.floor(r() * 3);
          }
          person += 1;
        }
        k += images;
      }
    }
  }
  return files;
}

/**
 * Writes the stand-in set (see the module notes).
 *
 * @param options Where, how many, seed, quality.
 * @returns The files written (relative paths) and their total bytes.
 */
export async function makeStandin(
  options: StandinOptions,
): Promise<{ files: string[]; bytes: number }> {
  const scale = options.scale ?? 0.05;
  const seed = options.seed ?? 0;
  const quality = options.quality ?? 85;
  if (!(scale > 0)) throw new RangeError(`--scale must be > 0, got ${scale}`);
  const files = plan(scale, rng(seed * 7919 + 1));
  const written: string[] = [];
  let bytes = 0;
  for (const split of ["train", "val", "test"]) {
    for (const cls of ["NORMAL", "PNEUMONIA"]) {
      await Deno.mkdir(join(options.out, split, cls), { recursive: true });
    }
  }
  for (let i = 0; i < files.length; i++) {
    const p = files[i];
    const r = rng((seed + 1) * 1_000_003 + i * 2_654_435_761);
    const w = 1000 + Math.floor(r() * 1501);
    const h = Math.max(700, Math.round(w * (0.7 + 0.35 * r())));
    const gray = renderChest(w, h, p.cls === "PNEUMONIA", r);
    let jpeg: Uint8Array;
    if (i % 20 === 19) {
      // an RGB file: the gray film with a faint tint, 4:2:0
      const rgb = new Uint8Array(w * h * 3);
      for (let k = 0; k < w * h; k++) {
        const v = gray[k];
        rgb[3 * k] = v;
        rgb[3 * k + 1] = v;
        rgb[3 * k + 2] = v > 3 ? v - 3 : 0;
      }
      jpeg = encodeJpeg(rgb, w, h, 3, quality);
    } else {
      jpeg = encodeJpeg(gray, w, h, 1, quality);
    }
    const rel = join(p.split, p.cls, p.name);
    await Deno.writeFile(join(options.out, rel), jpeg);
    written.push(rel);
    bytes += jpeg.length;
    options.onFile?.(i + 1, files.length);
  }
  return { files: written, bytes };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string" },
      scale: { type: "string", default: "0.05" },
      seed: { type: "string", default: "0" },
      quality: { type: "string", default: "85" },
    },
  });
  if (!values.out) {
    console.error(
      "usage: deno run -A bench/make_xray_standin.ts --out DIR [--scale 0.05] [--seed 0] [--quality 85]",
    );
    Deno.exit(2);
  }
  const t0 = performance.now();
  const { files, bytes } = await makeStandin({
    out: values.out,
    scale: Number(values.scale),
    seed: Number(values.seed),
    quality: Number(values.quality),
    onFile: (d, n) => {
      if (d % 50 === 0 || d === n) console.error(`${d}/${n}`);
    },
  });
  console.log(
    `wrote ${files.length} JPEGs (${(bytes / 1e6).toFixed(1)} MB, ${
      (bytes / files.length / 1e3).toFixed(0)
    } KB each on average) to ${values.out} in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}
