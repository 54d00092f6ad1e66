// The C resampling passes (kd_resample_h_u8, kd_resample_v_u8) against the
// TypeScript ones they replace (the oracle, which tests/data/transforms_test.ts
// and turbojpeg_test.ts check against Pillow): the same bytes for every
// filter, channel count and size. CI has a C compiler (.ci/run), so the
// native kernels must build here.
import assert from "node:assert/strict";
import { resample, setNativeResize } from "../../src/data/_resize.ts";
import type { RawImage } from "../../src/data/image.ts";
import {
  nativeKernels,
  nativeKernelsError,
} from "../../src/backend/cpu/native.ts";

function image(w: number, h: number, ch: 1 | 3, seed: number): RawImage {
  const data = new Uint8Array(w * h * ch);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    // smooth ramps with noise and saturated patches (clipping paths)
    const x = (i / ch) % w, y = Math.floor(i / ch / w);
    const v = (x * 7 + y * 3) % 256 + ((s >>> 24) % 64) - 32;
    data[i] = (x % 37 < 5)
      ? 255
      : (y % 29 < 3)
      ? 0
      : Math.max(0, Math.min(255, v));
  }
  return { width: w, height: h, channels: ch, mode: "RGB", data };
}

Deno.test("the native kernels build (cc is installed)", () => {
  assert.ok(nativeKernels(), `native kernels: ${nativeKernelsError()}`);
});

Deno.test("native resampling equals the TypeScript oracle byte for byte", async (t) => {
  const sizes: [number, number, number, number][] = [
    [2000, 1600, 224, 224], // an X-ray to the tutorial's size
    [1001, 667, 224, 224],
    [500, 400, 224, 224],
    [28, 28, 224, 224], // upscale
    [37, 23, 224, 11], // up one way, down the other
    [224, 300, 224, 224], // vertical pass only
    [300, 224, 224, 224], // horizontal pass only
    [7, 5, 3, 2],
    [1, 1, 5, 4],
  ];
  let seed = 1;
  for (const filter of ["bilinear", "bicubic"] as const) {
    for (const [w, h, ow, oh] of sizes) {
      for (const ch of [1, 3] as const) {
        await t.step(`${filter} ${w}x${h}x${ch} -> ${ow}x${oh}`, () => {
          const img = image(w, h, ch, seed++);
          setNativeResize(false);
          const want = resample(img, ow, oh, filter);
          setNativeResize(true);
          const got = resample(img, ow, oh, filter);
          assert.deepEqual([got.width, got.height, got.channels], [
            want.width,
            want.height,
            want.channels,
          ]);
          let diff = 0;
          for (let i = 0; i < want.data.length; i++) {
            if (got.data[i] !== want.data[i]) diff++;
          }
          assert.equal(diff, 0, `${diff} bytes differ`);
        });
      }
    }
  }
  setNativeResize(true);
});
