// Unit tests of the CPU backend's heavy kernels against naive reference
// implementations written here (float64 where it matters), adjoint identities
// and finite differences.

import assert from "node:assert/strict";
import type {
  AdamUpdate,
  BatchNormGeometry,
  Conv2dGeometry,
  Pool2dGeometry,
  SgdUpdate,
} from "../../src/backend/backend.ts";
import {
  gemmBackend,
  setGemmImpl,
  sgemm,
  sgemmTs,
} from "../../src/backend/cpu/gemm.ts";
import {
  conv2dBackwardData,
  conv2dBackwardFilter,
  conv2dForward,
  setConvAlgo,
} from "../../src/backend/cpu/conv.ts";
import {
  adaptiveAvgPool2d,
  adaptiveAvgPool2dBackward,
  avgPool2d,
  avgPool2dBackward,
  maxPool2d,
  maxPool2dBackward,
} from "../../src/backend/cpu/pool.ts";
import {
  batchNormBackward,
  batchNormEval,
  batchNormTrain,
} from "../../src/backend/cpu/batch_norm.ts";
import { softmax, softmaxBackward } from "../../src/backend/cpu/softmax.ts";
import { adamStep, sgdStep } from "../../src/backend/cpu/optim.ts";
import { openBlas, openBlasError } from "../../ffi/openblas.ts";
import { oneDnn, oneDnnError } from "../../ffi/onednn.ts";
import { convImplementations } from "../../src/backend/cpu/onednn_conv.ts";
import { binary, unary } from "../../src/backend/cpu/elementwise.ts";
import { setNativeKernels } from "../../src/backend/cpu/native.ts";
import { poolGeom } from "./_pool_geometry.ts";

// ---- helpers -------------------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = rng(1234);

function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
  rtol = 1e-4,
  atol = 1e-5,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    const tol = atol + rtol * Math.abs(e);
    if (!(Math.abs(a - e) <= tol)) {
      assert.fail(
        `${what}: element ${i} is ${a}, expected ${e} (|diff| ${
          Math.abs(a - e)
        } > ${tol})`,
      );
    }
  }
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function assertNear(a: number, e: number, what: string, rtol = 1e-4): void {
  const tol = rtol * Math.max(1, Math.abs(e));
  assert.ok(Math.abs(a - e) <= tol, `${what}: ${a} vs ${e}`);
}

// ---- GEMM ----------------------------------------------------------------

/** Naive row-major GEMM in float64 (the oracle). */
function gemmNaive(
  tA: boolean,
  tB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = tA ? a[p * lda + i] : a[i * lda + p];
        const bv = tB ? b[j * ldb + p] : b[p * ldb + j];
        s += av * bv;
      }
      const old = beta === 0 ? 0 : beta * c[i * ldc + j];
      c[i * ldc + j] = alpha * s + old;
    }
  }
}

const gemmShapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [4, 4, 4],
  [17, 33, 9],
  [64, 70, 300],
  [130, 5, 257],
  [5, 131, 64],
  [67, 67, 67],
];

type GemmFn = typeof sgemm;

function checkGemm(fn: GemmFn, label: string): void {
  for (
    const [tA, tB] of [[false, false], [true, false], [false, true], [
      true,
      true,
    ]] as const
  ) {
    for (const [m, n, k] of gemmShapes) {
      for (const [alpha, beta] of [[1, 0], [0.5, 1], [-1.5, 0.25]]) {
        // leading dimensions wider than the matrices, and offsets into
        // larger buffers
        const lda = (tA ? m : k) + 3;
        const ldb = (tB ? k : n) + 2;
        const ldc = n + 5;
        const aRows = tA ? k : m;
        const bRows = tB ? n : k;
        const aBuf = randn(aRows * lda + 7);
        const bBuf = randn(bRows * ldb + 5);
        const cBuf = randn(m * ldc + 3);
        if (beta === 0) cBuf.fill(NaN); // beta 0: C must not be read
        const a = aBuf.subarray(7);
        const b = bBuf.subarray(5);
        const expected = cBuf.slice();
        gemmNaive(
          tA,
          tB,
          m,
          n,
          k,
          alpha,
          a,
          lda,
          b,
          ldb,
          beta,
          expected.subarray(3),
          ldc,
        );
        const got = cBuf.slice();
        fn(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, got.subarray(3), ldc);
        // the whole buffer: the padding between rows must be untouched
        assertClose(
          got,
          expected,
          `${label} transA=${tA} transB=${tB} m=${m} n=${n} k=${k} alpha=${alpha} beta=${beta}`,
          1e-4,
          1e-4,
        );
      }
    }
  }
}

const blasAvailable = (() => {
  try {
    return openBlas() !== null;
  } catch {
    return false;
  }
})();

Deno.test("sgemmTs() matches the naive GEMM for all transposes", () => {
  checkGemm(sgemmTs, "sgemmTs");
});

Deno.test("sgemm() with setGemmImpl('typescript') matches the naive GEMM", () => {
  setGemmImpl("typescript");
  try {
    assert.equal(gemmBackend(), "typescript");
    checkGemm(sgemm, "sgemm[typescript]");
  } finally {
    setGemmImpl("auto");
  }
});

Deno.test({
  name: "sgemm() with setGemmImpl('openblas') matches the naive GEMM",
  ignore: !blasAvailable,
  fn() {
    setGemmImpl("openblas");
    try {
      assert.equal(gemmBackend(), "openblas");
      checkGemm(sgemm, "sgemm[openblas]");
    } finally {
      setGemmImpl("auto");
    }
  },
});
if (!blasAvailable) {
  Deno.test({
    name: `sgemm() through OpenBLAS skipped: ${openBlasError()}`,
    ignore: true,
    fn() {},
  });
}

Deno.test("sgemm() in auto mode matches the naive GEMM", () => {
  checkGemm(sgemm, "sgemm[auto]");
});

Deno.test("sgemm() handles k = 0 and empty matrices", () => {
  for (const impl of ["typescript", "auto"] as const) {
    setGemmImpl(impl);
    try {
      const c = new Float32Array([1, 2, 3, 4]);
      sgemm(
        false,
        false,
        2,
        2,
        0,
        1,
        new Float32Array(0),
        1,
        new Float32Array(0),
        2,
        0.5,
        c,
        2,
      );
      assert.deepEqual([...c], [0.5, 1, 1.5, 2]);
      const c2 = new Float32Array([1, 2]);
      sgemm(
        false,
        false,
        0,
        2,
        3,
        1,
        new Float32Array(0),
        3,
        randn(6),
        2,
        0,
        c2,
        2,
      );
      assert.deepEqual([...c2], [1, 2]);
    } finally {
      setGemmImpl("auto");
    }
  }
});

Deno.test("sgemm() warns once on stderr when OpenBLAS cannot be loaded", async () => {
  const url = new URL("../../src/backend/cpu/gemm.ts", import.meta.url).href;
  const code = `
    import { sgemm, gemmBackend } from ${JSON.stringify(url)};
    const n = 64;
    const a = new Float32Array(n * n).fill(1), c = new Float32Array(n * n);
    sgemm(false, false, n, n, n, 1, a, n, a, n, 0, c, n);
    sgemm(false, false, n, n, n, 1, a, n, a, n, 0, c, n);
    console.log(gemmBackend(), c[0]);
  `;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, code);
  const out = await new Deno.Command(Deno.execPath(), {
    // no --allow-ffi
    args: ["run", "--no-config", "--allow-read", file],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  await Deno.remove(file);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(stdout.trim(), "typescript 64");
  assert.equal(stderr.match(/OpenBLAS was not loaded/g)?.length, 1, stderr);
  assert.match(stderr, /--allow-ffi/);
});

Deno.test("sgemm() throws naming the path, without falling back, when KDENO_OPENBLAS names a library that does not load", async () => {
  const url = new URL("../../src/backend/cpu/gemm.ts", import.meta.url).href;
  const dir = await Deno.makeTempDir();
  const bogus = `${dir}/libopenblas.so.0`;
  await Deno.writeTextFile(bogus, "this is not a shared object\n");
  await Deno.writeTextFile(
    `${dir}/main.ts`,
    `import { sgemm } from ${JSON.stringify(url)};
    const run = (n) => {
      const a = new Float32Array(n * n).fill(1), c = new Float32Array(n * n);
      sgemm(false, false, n, n, n, 1, a, n, a, n, 0, c, n);
      return c[0];
    };
    console.log(run(2)); // too small for OpenBLAS: the TypeScript kernel
    try {
      console.log(run(64));
    } catch (e) {
      console.log(e.name);
      console.log(e.message);
    }`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--allow-read",
        "--allow-env",
        "--allow-ffi",
        `${dir}/main.ts`,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", KDENO_OPENBLAS: bogus },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const [small, name, message, tried] = stdout.split("\n");
    assert.equal(small, "2");
    assert.equal(name, "BackendUnavailableError");
    assert.equal(
      message,
      "Cannot load OpenBLAS named by KDENO_OPENBLAS: tried 1 location(s):",
    );
    assert.ok(tried.startsWith(`  ${bogus}: `), tried);
    assert.match(stdout, /unset KDENO_OPENBLAS/);
    assert.doesNotMatch(stderr, /OpenBLAS was not loaded/); // no fallback
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- convolution ---------------------------------------------------------

function convGeom(
  n: number,
  c: number,
  h: number,
  w: number,
  k: number,
  r: number,
  s: number,
  opts: {
    stride?: [number, number];
    padding?: [number, number];
    dilation?: [number, number];
    groups?: number;
  } = {},
): Conv2dGeometry {
  const stride = opts.stride ?? [1, 1];
  const padding = opts.padding ?? [0, 0];
  const dilation = opts.dilation ?? [1, 1];
  const oh = Math.floor(
    (h + 2 * padding[0] - dilation[0] * (r - 1) - 1) / stride[0],
  ) + 1;
  const ow = Math.floor(
    (w + 2 * padding[1] - dilation[1] * (s - 1) - 1) / stride[1],
  ) + 1;
  return {
    n,
    c,
    h,
    w,
    k,
    r,
    s,
    oh,
    ow,
    stride,
    padding,
    dilation,
    groups: opts.groups ?? 1,
  };
}

/** Visits every (output, input, weight) index triple of a convolution. */
function convVisit(
  g: Conv2dGeometry,
  f: (yi: number, xi: number, wi: number) => void,
): void {
  const cg = g.c / g.groups;
  const kg = g.k / g.groups;
  for (let b = 0; b < g.n; b++) {
    for (let kk = 0; kk < g.k; kk++) {
      const gi = Math.floor(kk / kg);
      for (let oy = 0; oy < g.oh; oy++) {
        for (let ox = 0; ox < g.ow; ox++) {
          const yi = ((b * g.k + kk) * g.oh + oy) * g.ow + ox;
          for (let ci = 0; ci < cg; ci++) {
            for (let kr = 0; kr < g.r; kr++) {
              const iy = oy * g.stride[0] - g.padding[0] + kr * g.dilation[0];
              if (iy < 0 || iy >= g.h) continue;
              for (let ks = 0; ks < g.s; ks++) {
                const ix = ox * g.stride[1] - g.padding[1] +
                  ks * g.dilation[1];
                if (ix < 0 || ix >= g.w) continue;
                const xi = ((b * g.c + gi * cg + ci) * g.h + iy) * g.w + ix;
                const wi = ((kk * cg + ci) * g.r + kr) * g.s + ks;
                f(yi, xi, wi);
              }
            }
          }
        }
      }
    }
  }
}

function convNaive(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  g: Conv2dGeometry,
): Float64Array {
  const y = new Float64Array(g.n * g.k * g.oh * g.ow);
  if (bias) {
    for (let i = 0; i < y.length; i++) {
      y[i] = bias[Math.floor(i / (g.oh * g.ow)) % g.k];
    }
  }
  convVisit(g, (yi, xi, wi) => {
    y[yi] += x[xi] * w[wi];
  });
  return y;
}

function convDataNaive(
  dy: Float32Array,
  w: Float32Array,
  g: Conv2dGeometry,
): Float64Array {
  const dx = new Float64Array(g.n * g.c * g.h * g.w);
  convVisit(g, (yi, xi, wi) => {
    dx[xi] += dy[yi] * w[wi];
  });
  return dx;
}

function convFilterNaive(
  x: Float32Array,
  dy: Float32Array,
  g: Conv2dGeometry,
): Float64Array {
  const dw = new Float64Array(g.k * (g.c / g.groups) * g.r * g.s);
  convVisit(g, (yi, xi, wi) => {
    dw[wi] += dy[yi] * x[xi];
  });
  return dw;
}

const convCases: [string, Conv2dGeometry][] = [
  ["3x3 padding 1", convGeom(2, 3, 7, 6, 4, 3, 3, { padding: [1, 1] })],
  ["3x3 stride 2", convGeom(2, 4, 9, 8, 6, 3, 3, { stride: [2, 2] })],
  [
    "3x3 stride 2 padding 1 (ResNet downsampling)",
    convGeom(3, 8, 8, 8, 16, 3, 3, { stride: [2, 2], padding: [1, 1] }),
  ],
  [
    "dilation 2 padding 2",
    convGeom(2, 3, 9, 10, 5, 3, 3, { dilation: [2, 2], padding: [2, 2] }),
  ],
  [
    "groups 2",
    convGeom(2, 4, 6, 6, 6, 3, 3, { groups: 2, padding: [1, 1] }),
  ],
  [
    "depthwise (groups = channels)",
    convGeom(2, 5, 7, 7, 10, 3, 3, { groups: 5, padding: [1, 1] }),
  ],
  ["1x1 pointwise", convGeom(3, 6, 5, 4, 7, 1, 1)],
  [
    "1x1 stride 2 (downsample)",
    convGeom(2, 6, 7, 7, 5, 1, 1, { stride: [2, 2] }),
  ],
  [
    "7x7 stride 2 padding 3 (ResNet stem)",
    convGeom(2, 3, 15, 13, 8, 7, 7, { stride: [2, 2], padding: [3, 3] }),
  ],
  [
    "2x3 kernel, stride (2, 1), padding (1, 0), dilation (1, 2)",
    convGeom(2, 3, 8, 11, 4, 2, 3, {
      stride: [2, 1],
      padding: [1, 0],
      dilation: [1, 2],
    }),
  ],
  [
    "padding larger than the kernel reach",
    convGeom(1, 2, 3, 3, 3, 2, 2, { padding: [2, 2], stride: [3, 3] }),
  ],
  [
    "large plane (per-image im2col path)",
    convGeom(2, 3, 34, 33, 5, 3, 3, { padding: [1, 1] }),
  ],
  [
    "large plane, many taps, groups 2",
    convGeom(2, 16, 33, 32, 12, 3, 3, { padding: [1, 1], groups: 2 }),
  ],
];

for (const algo of ["auto", "onednn", "im2col", "direct"] as const) {
  Deno.test(`conv2d kernels (${algo}) match the naive convolution`, async (t) => {
    if (algo === "onednn") requireOneDnn();
    setConvAlgo(algo);
    try {
      for (const [name, g] of convCases) {
        await t.step(name, () => {
          const x = randn(g.n * g.c * g.h * g.w);
          const w = randn(g.k * (g.c / g.groups) * g.r * g.s);
          const bias = randn(g.k);
          const dy = randn(g.n * g.k * g.oh * g.ow);
          assertClose(
            conv2dForward(x, w, bias, g),
            convNaive(x, w, bias, g),
            `${name} forward`,
          );
          assertClose(
            conv2dForward(x, w, null, g),
            convNaive(x, w, null, g),
            `${name} forward without bias`,
          );
          const dx = conv2dBackwardData(dy, w, g);
          assertClose(dx, convDataNaive(dy, w, g), `${name} backward data`);
          const dw = conv2dBackwardFilter(x, dy, g);
          assertClose(
            dw,
            convFilterNaive(x, dy, g),
            `${name} backward filter`,
            1e-4,
            1e-4,
          );
          // adjoint identities: <conv(x, w), dy> = <x, dx> = <w, dw>
          const lhs = dot(conv2dForward(x, w, null, g), dy);
          assertNear(dot(x, dx), lhs, `${name} <x, convBackwardData(dy)>`);
          assertNear(dot(w, dw), lhs, `${name} <w, convBackwardFilter(dy)>`);
        });
      }
    } finally {
      setConvAlgo("auto");
    }
  });
}

/** oneDNN is a CI dependency: its tests fail, not skip, when it is missing. */
function requireOneDnn(): void {
  if (oneDnn() === null) {
    throw new Error(
      `oneDNN did not load (${oneDnnError()}); install libdnnl2 ` +
        "(apt-get install libdnnl2) — CI does",
    );
  }
}

Deno.test("oneDNN runs the convolutions it can, and only 1x1 ones go to GEMM under auto", () => {
  requireOneDnn();
  setConvAlgo("auto");
  // geometries no other test uses, so the cache holds only what this test ran
  const g = convGeom(2, 3, 11, 10, 5, 3, 3, {
    dilation: [2, 2],
    padding: [2, 2],
  });
  const p = convGeom(3, 6, 5, 5, 7, 1, 1);
  const x = randn(g.n * g.c * g.h * g.w);
  const w = randn(g.k * g.c * g.r * g.s);
  const dy = randn(g.n * g.k * g.oh * g.ow);
  conv2dForward(x, w, null, g);
  conv2dBackwardData(dy, w, g);
  conv2dBackwardFilter(x, dy, g);
  conv2dForward(randn(p.n * p.c * p.h * p.w), randn(p.k * p.c), null, p);
  const impls = Object.entries(convImplementations());
  const mine = impls.filter(([k]) => k.includes("n2 c3 11x10 k5 3x3"));
  assert.deepEqual(mine.map(([k]) => k.split(" ")[0]).sort(), [
    "bwdData",
    "bwdWeights",
    "fwd",
  ]);
  for (const [k, impl] of mine) {
    assert.notEqual(impl, "(typescript)", `${k} fell back to TypeScript`);
  }
  assert.ok(
    !impls.some(([k]) => k.includes("n3 c6 5x5 k7 1x1")),
    "a 1x1 convolution went to oneDNN under auto",
  );
});

Deno.test("conv2d gradients match finite differences", () => {
  const g = convGeom(2, 2, 5, 4, 3, 3, 2, {
    padding: [1, 1],
    stride: [2, 1],
  });
  const x = randn(g.n * g.c * g.h * g.w);
  const w = randn(g.k * g.c * g.r * g.s);
  const dy = randn(g.n * g.k * g.oh * g.ow);
  const loss = (xx: Float32Array, ww: Float32Array) =>
    dot(conv2dForward(xx, ww, null, g), dy);
  const dx = conv2dBackwardData(dy, w, g);
  const dw = conv2dBackwardFilter(x, dy, g);
  const eps = 1e-2;
  for (let i = 0; i < x.length; i += 3) {
    const xp = x.slice();
    const xm = x.slice();
    xp[i] += eps;
    xm[i] -= eps;
    const fd = (loss(xp, w) - loss(xm, w)) / (xp[i] - xm[i]);
    assertNear(dx[i], fd, `dx[${i}]`, 1e-3);
  }
  for (let i = 0; i < w.length; i++) {
    const wp = w.slice();
    const wm = w.slice();
    wp[i] += eps;
    wm[i] -= eps;
    const fd = (loss(x, wp) - loss(x, wm)) / (wp[i] - wm[i]);
    assertNear(dw[i], fd, `dw[${i}]`, 1e-3);
  }
});

// ---- pooling -------------------------------------------------------------

function maxPoolNaive(
  x: Float32Array,
  g: Pool2dGeometry,
): { y: Float64Array; idx: Int32Array } {
  const y = new Float64Array(g.n * g.c * g.oh * g.ow);
  const idx = new Int32Array(y.length);
  let q = 0;
  for (let pl = 0; pl < g.n * g.c; pl++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++, q++) {
        let best = -Infinity;
        let bi = -1;
        for (let i = 0; i < g.kernel[0]; i++) {
          const iy = oy * g.stride[0] - g.padding[0] + i * g.dilation[0];
          if (iy < 0 || iy >= g.h) continue;
          for (let j = 0; j < g.kernel[1]; j++) {
            const ix = ox * g.stride[1] - g.padding[1] + j * g.dilation[1];
            if (ix < 0 || ix >= g.w) continue;
            const v = x[pl * g.h * g.w + iy * g.w + ix];
            if (bi < 0) bi = iy * g.w + ix;
            if (v > best || Number.isNaN(v)) {
              best = v;
              bi = iy * g.w + ix;
            }
          }
        }
        y[q] = best;
        idx[q] = bi;
      }
    }
  }
  return { y, idx };
}

function avgPoolNaive(x: Float32Array, g: Pool2dGeometry): Float64Array {
  const y = new Float64Array(g.n * g.c * g.oh * g.ow);
  let q = 0;
  for (let pl = 0; pl < g.n * g.c; pl++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++, q++) {
        const y0 = oy * g.stride[0] - g.padding[0];
        const x0 = ox * g.stride[1] - g.padding[1];
        // cells of the padded input covered by the window
        const y1 = Math.min(y0 + g.kernel[0], g.h + g.padding[0]);
        const x1 = Math.min(x0 + g.kernel[1], g.w + g.padding[1]);
        let sum = 0;
        let cnt = 0;
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) {
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            sum += x[pl * g.h * g.w + iy * g.w + ix];
            cnt++;
          }
        }
        const div = g.countIncludePad ? (y1 - y0) * (x1 - x0) : cnt;
        y[q] = cnt === 0 ? 0 : sum / div;
      }
    }
  }
  return y;
}

const maxCases: [string, Pool2dGeometry][] = [
  ["2x2 stride 2", poolGeom(2, 3, 8, 6, [2, 2])],
  ["2x2 stride 2, odd input", poolGeom(2, 3, 7, 9, [2, 2])],
  [
    "3x3 stride 2 padding 1 (ResNet)",
    poolGeom(2, 3, 9, 8, [3, 3], { stride: [2, 2], padding: [1, 1] }),
  ],
  [
    "dilation 2",
    poolGeom(1, 2, 10, 9, [3, 2], { stride: [1, 2], dilation: [2, 2] }),
  ],
  [
    "ceil mode",
    poolGeom(2, 2, 8, 7, [3, 3], { stride: [2, 2], ceil: true }),
  ],
  [
    "ceil mode with padding and dilation",
    poolGeom(1, 2, 9, 10, [3, 3], {
      stride: [2, 3],
      padding: [1, 1],
      dilation: [2, 1],
      ceil: true,
    }),
  ],
];

Deno.test("maxPool2d() matches the naive max pool", async (t) => {
  for (const [name, g] of maxCases) {
    await t.step(name, () => {
      const x = randn(g.n * g.c * g.h * g.w);
      const { y, indices } = maxPool2d(x, g);
      const ref = maxPoolNaive(x, g);
      assertClose(y, ref.y, `${name} values`, 0, 0);
      assert.deepEqual([...indices], [...ref.idx], `${name} indices`);
      const dy = randn(y.length);
      const dx = maxPool2dBackward(dy, indices, g);
      const dxRef = new Float64Array(x.length);
      const plane = g.h * g.w;
      for (let q = 0; q < dy.length; q++) {
        const pl = Math.floor(q / (g.oh * g.ow));
        dxRef[pl * plane + ref.idx[q]] += dy[q];
      }
      assertClose(dx, dxRef, `${name} backward`);
      // without the argmax (inference): the same values
      const bare = maxPool2d(x, g, false);
      assertClose(bare.y, ref.y, `${name} values without indices`, 0, 0);
      assert.equal(bare.indices.length, 0);
    });
  }
});

Deno.test("maxPool2d() keeps PyTorch's first-of-equal argmax, with and without NaN planes", () => {
  for (
    const g of [
      poolGeom(2, 3, 9, 10, [3, 3], { stride: [2, 2], padding: [1, 1] }),
      poolGeom(2, 3, 8, 10, [2, 2]),
    ]
  ) {
    // few distinct values: many ties inside each window
    const x = randn(g.n * g.c * g.h * g.w).map((v) => Math.round(v));
    x[7] = -0;
    x[g.h * g.w + 12] = NaN; // plane 1 takes the exact loop, the others not
    x[2 * g.h * g.w + 3] = -Infinity;
    for (const need of [true, false]) {
      const { y, indices } = maxPool2d(x, g, need);
      const ref = maxPoolNaive(x, g);
      assertClose(y, ref.y, `values (indices ${need})`, 0, 0);
      if (need) assert.deepEqual([...indices], [...ref.idx]);
    }
  }
});

Deno.test("maxPool2d() propagates NaN and handles -Infinity like PyTorch", () => {
  for (
    const g of [
      poolGeom(1, 1, 4, 4, [2, 2]),
      poolGeom(1, 1, 4, 4, [3, 3], { stride: [1, 1], padding: [1, 1] }),
    ]
  ) {
    const x = randn(16);
    x[5] = NaN;
    x[0] = -Infinity;
    x[1] = -Infinity;
    x[4] = -Infinity;
    const { y, indices } = maxPool2d(x, g);
    const ref = maxPoolNaive(x, g);
    assertClose(y, ref.y, "values", 0, 0);
    assert.deepEqual([...indices], [...ref.idx]);
    assertClose(maxPool2d(x, g, false).y, ref.y, "values, no indices", 0, 0);
  }
  const allInf = new Float32Array(4).fill(-Infinity);
  const r = maxPool2d(allInf, poolGeom(1, 1, 2, 2, [2, 2]));
  assert.equal(r.y[0], -Infinity);
  assert.equal(r.indices[0], 0);
});

const avgCases: [string, Pool2dGeometry][] = [
  ["2x2 stride 2", poolGeom(2, 3, 8, 6, [2, 2])],
  [
    "3x3 stride 2 padding 1, count_include_pad",
    poolGeom(2, 2, 9, 8, [3, 3], { stride: [2, 2], padding: [1, 1] }),
  ],
  [
    "3x3 stride 2 padding 1, exclude pad",
    poolGeom(2, 2, 9, 8, [3, 3], {
      stride: [2, 2],
      padding: [1, 1],
      countIncludePad: false,
    }),
  ],
  [
    "ceil mode, count_include_pad",
    poolGeom(1, 2, 8, 7, [3, 3], { stride: [2, 2], ceil: true }),
  ],
  [
    "ceil mode with padding, count_include_pad",
    poolGeom(1, 2, 6, 7, [4, 3], {
      stride: [3, 2],
      padding: [1, 1],
      ceil: true,
    }),
  ],
  [
    "ceil mode with padding, exclude pad",
    poolGeom(1, 2, 6, 7, [4, 3], {
      stride: [3, 2],
      padding: [1, 1],
      ceil: true,
      countIncludePad: false,
    }),
  ],
];

Deno.test("avgPool2d() matches the naive average pool", async (t) => {
  for (const [name, g] of avgCases) {
    await t.step(name, () => {
      const x = randn(g.n * g.c * g.h * g.w);
      const y = avgPool2d(x, g);
      assertClose(y, avgPoolNaive(x, g), `${name} forward`);
      // avg pooling is linear: backward is its adjoint, checked entry by
      // entry against the naive forward applied to unit vectors
      const dy = randn(y.length);
      const dx = avgPool2dBackward(dy, g);
      assertNear(dot(x, dx), dot(y, dy), `${name} adjoint`);
      const e = new Float32Array(x.length);
      for (let i = 0; i < x.length; i += 5) {
        e.fill(0);
        e[i] = 1;
        assertNear(dx[i], dot(avgPoolNaive(e, g), dy), `${name} dx[${i}]`);
      }
    });
  }
});

Deno.test("avgPool2d() ceil-mode divisor follows PyTorch", () => {
  // torch.nn.functional.avg_pool2d(torch.ones(1, 1, 5, 5), 2, 2, 0,
  // ceil_mode=True) = [[1, 1, 1], [1, 1, 1], [1, 1, 1]] (the clipped last
  // window divides by its 1 or 2 real cells)
  const g = poolGeom(1, 1, 5, 5, [2, 2], { ceil: true });
  assert.equal(g.oh, 3);
  const y = avgPool2d(new Float32Array(25).fill(1), g);
  assert.deepEqual([...y], new Array(9).fill(1));
  // with padding 1 and count_include_pad: torch gives 0.25 in the corners
  const g2 = poolGeom(1, 1, 4, 4, [2, 2], { padding: [1, 1] });
  const y2 = avgPool2d(new Float32Array(16).fill(1), g2);
  assert.equal(y2[0], 0.25);
  assert.equal(y2[1], 0.5);
});

Deno.test("adaptiveAvgPool2d() matches PyTorch's bins", async (t) => {
  for (
    const [h, w, oh, ow] of [[7, 7, 1, 1], [10, 7, 4, 3], [5, 5, 5, 5], [
      6,
      9,
      4,
      2,
    ], [3, 4, 5, 6]]
  ) {
    await t.step(`${h}x${w} -> ${oh}x${ow}`, () => {
      const n = 2;
      const c = 3;
      const x = randn(n * c * h * w);
      const ag = { n, c, h, w, oh, ow };
      const y = adaptiveAvgPool2d(x, ag);
      const ref = new Float64Array(n * c * oh * ow);
      let q = 0;
      for (let pl = 0; pl < n * c; pl++) {
        for (let i = 0; i < oh; i++) {
          for (let j = 0; j < ow; j++, q++) {
            const hs = Math.floor((i * h) / oh);
            const he = Math.ceil(((i + 1) * h) / oh);
            const ws = Math.floor((j * w) / ow);
            const we = Math.ceil(((j + 1) * w) / ow);
            let s = 0;
            for (let a = hs; a < he; a++) {
              for (let b = ws; b < we; b++) s += x[pl * h * w + a * w + b];
            }
            ref[q] = s / ((he - hs) * (we - ws));
          }
        }
      }
      assertClose(y, ref, "forward");
      const dy = randn(y.length);
      const dx = adaptiveAvgPool2dBackward(dy, ag);
      assertNear(dot(x, dx), dot(y, dy), "adjoint");
    });
  }
});

// ---- batch norm ----------------------------------------------------------

function bnNaive(
  x: ArrayLike<number>,
  weight: Float32Array | null,
  bias: Float32Array | null,
  n: number,
  c: number,
  hw: number,
  eps: number,
): { y: Float64Array; mean: Float64Array; varB: Float64Array } {
  const y = new Float64Array(n * c * hw);
  const mean = new Float64Array(c);
  const varB = new Float64Array(c);
  const cnt = n * hw;
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < hw; i++) s += x[(b * c + ch) * hw + i];
    }
    const m = s / cnt;
    let v = 0;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < hw; i++) v += (x[(b * c + ch) * hw + i] - m) ** 2;
    }
    v /= cnt;
    mean[ch] = m;
    varB[ch] = v;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < hw; i++) {
        const q = (b * c + ch) * hw + i;
        y[q] = ((x[q] - m) / Math.sqrt(v + eps)) * (weight ? weight[ch] : 1) +
          (bias ? bias[ch] : 0);
      }
    }
  }
  return { y, mean, varB };
}

function bnGeom(
  n: number,
  c: number,
  hw: number,
  eps: number,
  momentum = 0.1,
): BatchNormGeometry {
  return { n, c, hw, eps, momentum, activation: "none" };
}

Deno.test("batchNormTrain() matches the naive batch norm and updates running stats", () => {
  for (const [n, c, hw] of [[4, 3, 10], [2, 5, 1], [3, 2, 49]]) {
    for (const affine of [true, false]) {
      const x = randn(n * c * hw, 3);
      for (let i = 0; i < x.length; i++) x[i] += 2; // non-zero mean
      const weight = affine ? randn(c) : null;
      const bias = affine ? randn(c) : null;
      const rm = randn(c);
      const rv = new Float32Array(c).fill(1.5);
      const rm0 = rm.slice();
      const rv0 = rv.slice();
      const eps = 1e-5;
      const mom = 0.1;
      const g = bnGeom(n, c, hw, eps, mom);
      const p = { weight, bias, runningMean: rm, runningVar: rv };
      const out = batchNormTrain(x, p, g);
      const ref = bnNaive(x, weight, bias, n, c, hw, eps);
      assertClose(out.y, ref.y, "y");
      assertClose(out.mean, ref.mean, "mean");
      assertClose(
        out.invStd,
        Array.from(ref.varB, (v) => 1 / Math.sqrt(v + eps)),
        "invStd",
      );
      const cnt = n * hw;
      assertClose(
        rm,
        Array.from(rm0, (r, ch) => (1 - mom) * r + mom * ref.mean[ch]),
        "running mean",
      );
      assertClose(
        rv,
        Array.from(
          rv0,
          (r, ch) => (1 - mom) * r + mom * (ref.varB[ch] * cnt) / (cnt - 1),
        ),
        "running var (unbiased)",
      );
      // without running stats
      const out2 = batchNormTrain(
        x,
        { weight, bias, runningMean: null, runningVar: null },
        g,
      );
      assertClose(out2.y, ref.y, "y without running stats");
    }
  }
});

Deno.test("batchNormEval() uses the running statistics", () => {
  const [n, c, hw] = [3, 4, 5];
  const x = randn(n * c * hw);
  const w = randn(c);
  const b = randn(c);
  const rm = randn(c);
  const rv = new Float32Array(c).map(() => 0.5 + rand());
  const g = bnGeom(n, c, hw, 1e-5);
  const y = batchNormEval(
    x,
    { weight: w, bias: b, runningMean: rm, runningVar: rv },
    g,
  );
  const ref = Array.from(x, (v, i) => {
    const ch = Math.floor(i / hw) % c;
    return ((v - rm[ch]) / Math.sqrt(rv[ch] + 1e-5)) * w[ch] + b[ch];
  });
  assertClose(y, ref, "eval");
  const y2 = batchNormEval(
    x,
    { weight: null, bias: null, runningMean: rm, runningVar: rv },
    g,
  );
  assertClose(
    y2,
    Array.from(x, (v, i) => {
      const ch = Math.floor(i / hw) % c;
      return (v - rm[ch]) / Math.sqrt(rv[ch] + 1e-5);
    }),
    "eval without affine",
  );
});

Deno.test("batchNormBackward() matches finite differences", () => {
  for (const affine of [true, false]) {
    const [n, c, hw] = [3, 2, 4];
    const x = randn(n * c * hw, 2);
    const weight = affine ? randn(c) : null;
    const bias = affine ? randn(c) : null;
    const dy = randn(x.length);
    const eps = 1e-5;
    const g = bnGeom(n, c, hw, eps);
    const saved = batchNormTrain(
      x,
      { weight, bias, runningMean: null, runningVar: null },
      g,
    );
    const { dx, dweight, dbias } = batchNormBackward(x, dy, weight, saved, g);
    const loss = (
      xx: ArrayLike<number>,
      ww: Float32Array | null,
      bb: Float32Array | null,
    ) => dot(bnNaive(xx, ww, bb, n, c, hw, eps).y, dy);
    const h = 1e-4;
    const x64 = Float64Array.from(x);
    for (let i = 0; i < x.length; i++) {
      const xp = x64.slice();
      const xm = x64.slice();
      xp[i] += h;
      xm[i] -= h;
      const fd = (loss(xp, weight, bias) - loss(xm, weight, bias)) / (2 * h);
      assertNear(dx[i], fd, `dx[${i}]`, 1e-3);
    }
    // dweight/dbias: the loss is linear in them
    const ref = bnNaive(x, null, null, n, c, hw, eps).y;
    for (let ch = 0; ch < c; ch++) {
      let dw = 0;
      let db = 0;
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < hw; i++) {
          const q = (b * c + ch) * hw + i;
          dw += ref[q] * dy[q];
          db += dy[q];
        }
      }
      assertNear(dweight[ch], dw, `dweight[${ch}]`, 1e-4);
      assertNear(dbias[ch], db, `dbias[${ch}]`, 1e-4);
    }
  }
});

Deno.test("ReLU and its gradient follow PyTorch on NaN, -0 and infinities", () => {
  // PyTorch 1.13: relu(-0.0) is -0.0 (clamp_min keeps x unless x < 0), and
  // threshold_backward is `y <= 0 ? 0 : dy`, so a NaN y passes dy and a NaN
  // dy at a negative x gives 0. Small and large sizes, native and TypeScript.
  for (const native of [true, false]) {
    setNativeKernels(native);
    try {
      for (const size of [8, 1 << 17]) {
        const x = new Float32Array(size);
        x.set([-0, NaN, -3, 2, Infinity, -Infinity]);
        const y = unary("relu", x);
        const what = `size ${size}, native ${native}`;
        assert.deepEqual([...y.subarray(0, 6)], [-0, NaN, 0, 2, Infinity, 0]);
        assert.ok(Object.is(y[0], -0), `relu(-0) is -0 (${what})`);
        assert.ok(Object.is(y[5], 0), `relu(-Infinity) is +0 (${what})`);
        const dy = new Float32Array(size).fill(5);
        dy[2] = NaN;
        const g = binary("reluGrad", dy, [1], y, [1], [size]) as Float32Array;
        assert.deepEqual([...g.subarray(0, 6)], [0, 5, 0, 5, 5, 0], what);
      }
    } finally {
      setNativeKernels(true);
    }
  }
});

// ---- softmax -------------------------------------------------------------

function softmaxNaive(
  x: ArrayLike<number>,
  outer: number,
  n: number,
  inner: number,
  log: boolean,
): Float64Array {
  const y = new Float64Array(outer * n * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let m = -Infinity;
      for (let i = 0; i < n; i++) m = Math.max(m, x[(o * n + i) * inner + j]);
      let s = 0;
      for (let i = 0; i < n; i++) s += Math.exp(x[(o * n + i) * inner + j] - m);
      for (let i = 0; i < n; i++) {
        const q = (o * n + i) * inner + j;
        y[q] = log ? x[q] - m - Math.log(s) : Math.exp(x[q] - m) / s;
      }
    }
  }
  return y;
}

Deno.test("softmax() and its gradient match the naive versions", async (t) => {
  for (
    const [outer, n, inner] of [
      [4, 10, 1],
      [3, 5, 7],
      [1, 1, 1],
      [2, 1000, 1],
      [2, 3, 64],
    ]
  ) {
    for (const log of [false, true]) {
      await t.step(
        `[${outer}, ${n}, ${inner}] ${log ? "log" : ""}softmax`,
        () => {
          const x = randn(outer * n * inner, 5);
          x[0] += 1000; // stability
          const y = softmax(x, outer, n, inner, log);
          assertClose(
            y,
            softmaxNaive(x, outer, n, inner, log),
            "forward",
            1e-5,
            1e-6,
          );
          const dy = randn(y.length);
          const dx = softmaxBackward(y, dy, outer, n, inner, log);
          if (n > 50) return;
          const x64 = Float64Array.from(x);
          const h = 1e-5;
          for (let i = 0; i < x.length; i += 3) {
            const xp = x64.slice();
            const xm = x64.slice();
            xp[i] += h;
            xm[i] -= h;
            const fd = (dot(softmaxNaive(xp, outer, n, inner, log), dy) -
              dot(softmaxNaive(xm, outer, n, inner, log), dy)) / (2 * h);
            assertNear(dx[i], fd, `dx[${i}]`, 1e-3);
          }
        },
      );
    }
  }
});

Deno.test("softmax() is stable for large and -Infinity inputs", () => {
  const y = softmax(new Float32Array([1e4, 1e4, -Infinity]), 1, 3, 1, false);
  assert.deepEqual([...y], [0.5, 0.5, 0]);
  const ly = softmax(new Float32Array([1e4, 1e4, -Infinity]), 1, 3, 1, true);
  assertClose(ly, [-Math.LN2, -Math.LN2, -Infinity], "log");
});

// ---- optimizers ----------------------------------------------------------

const f = Math.fround;

/** torch.optim.SGD, one op at a time with float32 rounding like tensors. */
function sgdRef(
  p: Float32Array,
  g: Float32Array,
  buf: Float32Array | null,
  o: SgdUpdate,
): void {
  for (let i = 0; i < p.length; i++) {
    let d = g[i];
    if (o.weightDecay !== 0) d = f(d + f(o.weightDecay * p[i]));
    if (o.momentum !== 0 && buf) {
      buf[i] = o.firstStep
        ? d
        : f(f(buf[i] * o.momentum) + f(d * (1 - o.dampening)));
      d = o.nesterov ? f(d + f(buf[i] * o.momentum)) : buf[i];
    }
    p[i] = f(p[i] - f(d * o.lr));
  }
}

/** torch.optim.Adam / AdamW (1.13 single-tensor path). */
function adamRef(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  mx: Float32Array | null,
  o: AdamUpdate,
): void {
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const stepSize = o.lr / bc1;
  const bc2s = Math.sqrt(bc2);
  for (let i = 0; i < p.length; i++) {
    if (o.decoupled) p[i] = f(p[i] * (1 - o.lr * o.weightDecay));
    let d = g[i];
    if (!o.decoupled && o.weightDecay !== 0) {
      d = f(d + f(p[i] * o.weightDecay));
    }
    m[i] = f(f(m[i] * o.beta1) + f(d * (1 - o.beta1)));
    v[i] = f(f(v[i] * o.beta2) + f(f(d * d) * (1 - o.beta2)));
    let vv = v[i];
    if (o.amsgrad && mx) {
      mx[i] = Math.max(mx[i], v[i]);
      vv = mx[i];
    }
    const denom = f(f(f(Math.sqrt(vv)) / bc2s) + o.eps);
    p[i] = f(p[i] - f(stepSize * f(m[i] / denom)));
  }
}

Deno.test("sgdStep() follows torch.optim.SGD", async (t) => {
  const variants: [string, Partial<SgdUpdate>][] = [
    ["plain", {}],
    ["weight decay", { weightDecay: 0.01 }],
    ["momentum", { momentum: 0.9 }],
    ["momentum + dampening", { momentum: 0.9, dampening: 0.3 }],
    ["nesterov + weight decay", {
      momentum: 0.9,
      nesterov: true,
      weightDecay: 1e-4,
    }],
  ];
  for (const [name, opts] of variants) {
    await t.step(name, () => {
      const p = randn(50);
      const pr = p.slice();
      const buf = new Float32Array(50);
      const bufR = new Float32Array(50);
      for (let step = 1; step <= 4; step++) {
        const g = randn(50);
        const g0 = g.slice();
        const o: SgdUpdate = {
          lr: 0.1,
          momentum: 0,
          dampening: 0,
          weightDecay: 0,
          nesterov: false,
          firstStep: step === 1,
          ...opts,
        };
        sgdStep(p, g, o.momentum ? buf : null, o);
        sgdRef(pr, g, o.momentum ? bufR : null, o);
        assert.deepEqual(g, g0, "the gradient is not modified");
        assertClose(p, pr, `param after step ${step}`, 1e-6, 1e-7);
        assertClose(buf, bufR, `buffer after step ${step}`, 1e-6, 1e-7);
      }
    });
  }
});

Deno.test("adamStep() follows torch.optim.Adam and AdamW", async (t) => {
  const variants: [string, Partial<AdamUpdate>][] = [
    ["adam", {}],
    ["adam + L2 weight decay", { weightDecay: 0.01 }],
    ["adamw", { weightDecay: 0.01, decoupled: true }],
    ["adam amsgrad", { amsgrad: true }],
    ["adamw amsgrad", { amsgrad: true, decoupled: true, weightDecay: 0.1 }],
  ];
  for (const [name, opts] of variants) {
    await t.step(name, () => {
      const n = 64;
      const p = randn(n);
      const pr = p.slice();
      const [m, v, mx] = [
        new Float32Array(n),
        new Float32Array(n),
        new Float32Array(n),
      ];
      const [mr, vr, mxr] = [
        new Float32Array(n),
        new Float32Array(n),
        new Float32Array(n),
      ];
      for (let step = 1; step <= 5; step++) {
        const g = randn(n, step === 3 ? 0.01 : 1); // a smaller gradient exercises amsgrad
        const g0 = g.slice();
        const o: AdamUpdate = {
          lr: 1e-3,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0,
          decoupled: false,
          step,
          amsgrad: false,
          ...opts,
        };
        adamStep(p, g, m, v, o.amsgrad ? mx : null, o);
        adamRef(pr, g, mr, vr, o.amsgrad ? mxr : null, o);
        assert.deepEqual(g, g0, "the gradient is not modified");
        assertClose(p, pr, `param after step ${step}`, 1e-6, 1e-7);
        assertClose(m, mr, `exp_avg after step ${step}`, 1e-5, 1e-7);
        assertClose(v, vr, `exp_avg_sq after step ${step}`, 1e-5, 1e-9);
        if (o.amsgrad) {
          assertClose(mx, mxr, `max_exp_avg_sq ${step}`, 1e-5, 1e-9);
        }
      }
    });
  }
});
