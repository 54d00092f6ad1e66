// conv2d forward / backward-data / backward-filter on ResNet-18's layer
// shapes and the tutorial StudentNet's convolution, batch 32.
//
//   deno bench -A bench/conv_bench.ts   one group per shape and pass:
//                                       typescript (direct or im2col + TS
//                                       GEMM, oneDNN off: baseline, one call,
//                                       on 4 of the 8 shapes) vs the
//                                       default (oneDNN when it loads, else
//                                       im2col + OpenBLAS); `deno task
//                                       bench` prints which one ran
//   deno run -A bench/conv_bench.ts     a milliseconds summary table
//   KDENO_BENCH_BATCH=8 ...             another batch size
//   KDENO_BENCH_GEMM=typescript ...     the summary with the TS GEMM

import type { Conv2dGeometry } from "../src/backend/backend.ts";
import {
  conv2dBackwardData,
  conv2dBackwardFilter,
  conv2dForward,
  setConvAlgo,
} from "../src/backend/cpu/conv.ts";
import { gemmBackend, setGemmImpl } from "../src/backend/cpu/gemm.ts";
import {
  convImplementations,
  setOneDnnKernels,
} from "../src/backend/cpu/onednn_conv.ts";
import { throughputBench } from "./_throughput.ts";

const BATCH = Number(Deno.env.get("KDENO_BENCH_BATCH") ?? 32);

function geom(
  c: number,
  size: number,
  k: number,
  kernel: number,
  stride: number,
  pad: number,
): Conv2dGeometry {
  const o = Math.floor((size + 2 * pad - kernel) / stride) + 1;
  return {
    n: BATCH,
    c,
    h: size,
    w: size,
    k,
    r: kernel,
    s: kernel,
    oh: o,
    ow: o,
    stride: [stride, stride],
    padding: [pad, pad],
    dilation: [1, 1],
    groups: 1,
  };
}

const SHAPES: [string, Conv2dGeometry][] = [
  ["resnet conv1 7x7/2 3->64 @224", geom(3, 224, 64, 7, 2, 3)],
  ["resnet 3x3 64->64 @56", geom(64, 56, 64, 3, 1, 1)],
  ["resnet 3x3/2 64->128 @56", geom(64, 56, 128, 3, 2, 1)],
  ["resnet 3x3 128->128 @28", geom(128, 28, 128, 3, 1, 1)],
  ["resnet 3x3 256->256 @14", geom(256, 14, 256, 3, 1, 1)],
  ["resnet 3x3 512->512 @7", geom(512, 7, 512, 3, 1, 1)],
  ["resnet 1x1/2 64->128 @56 (downsample)", geom(64, 56, 128, 1, 2, 0)],
  ["student 3x3 3->4 @224", geom(3, 224, 4, 3, 1, 1)],
];

function randn(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

interface Case {
  name: string;
  g: Conv2dGeometry;
  x: Float32Array;
  w: Float32Array;
  dy: Float32Array;
  gflop: number;
}

/** The shapes `deno bench` also runs on the TypeScript kernels. */
const TS_SHAPES = new Set([
  "resnet conv1 7x7/2 3->64 @224",
  "resnet 3x3 128->128 @28",
  "resnet 1x1/2 64->128 @56 (downsample)",
  "student 3x3 3->4 @224",
]);

const cases: Case[] = SHAPES.map(([name, g]) => ({
  name,
  g,
  x: randn(g.n * g.c * g.h * g.w, 1),
  w: randn(g.k * g.c * g.r * g.s, 2),
  dy: randn(g.n * g.k * g.oh * g.ow, 3),
  gflop: (2 * g.n * g.k * g.oh * g.ow * g.c * g.r * g.s) / 1e9,
}));

const passes = {
  forward: (c: Case) => conv2dForward(c.x, c.w, null, c.g),
  "backward data": (c: Case) => conv2dBackwardData(c.dy, c.w, c.g),
  "backward filter": (c: Case) => conv2dBackwardFilter(c.x, c.dy, c.g),
};

/**
 * The TypeScript-only configuration: oneDNN off, TS GEMM, direct or im2col
 * chosen by size.
 */
function typescriptOnly(fn: () => void): () => void {
  return () => {
    setGemmImpl("typescript");
    setOneDnnKernels(false);
    try {
      fn();
    } finally {
      setOneDnnKernels(true);
      setGemmImpl("auto");
    }
  };
}

const GEMM_NAME = { openblas: "OpenBLAS", typescript: "TypeScript" } as const;

/** oneDNN's primitive names per pass, as its cache keys them. */
const ONEDNN_PASS = {
  forward: "fwd",
  "backward data": "bwdData",
  "backward filter": "bwdWeights",
} as const;

/**
 * The backend the default configuration ran for `c` and `pass`: oneDNN
 * when it built a primitive for this geometry, else TypeScript im2col or
 * direct loops with the GEMM in use.
 */
function defaultBackend(c: Case, pass: keyof typeof ONEDNN_PASS): string {
  const g = c.g;
  const prefix = `${ONEDNN_PASS[pass]} n${g.n} c${g.c} ${g.h}x${g.w} ` +
    `k${g.k} ${g.r}x${g.s} s${g.stride} `;
  const impl = Object.entries(convImplementations())
    .find(([k]) => k.startsWith(prefix))?.[1];
  if (impl !== undefined && impl !== "(typescript)") return `oneDNN ${impl}`;
  return `TypeScript conv + ${GEMM_NAME[gemmBackend()]} GEMM`;
}

if (import.meta.main) {
  const best = (f: () => void) => {
    f();
    let t = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      f();
      t = Math.min(t, performance.now() - t0);
    }
    return t;
  };
  const only = Deno.args[0];
  const gemm = Deno.env.get("KDENO_BENCH_GEMM");
  if (gemm === "typescript" || gemm === "openblas") setGemmImpl(gemm);
  console.log(`batch ${BATCH}, GEMM: ${gemmBackend()} (ms, best of 2)`);
  console.log(
    "shape".padEnd(40) + "GFLOP".padStart(7) + "forward".padStart(10) +
      "bwd data".padStart(10) + "bwd filt".padStart(10),
  );
  for (const c of cases) {
    if (only && !c.name.includes(only)) continue;
    const row = Object.values(passes).map((p) => best(() => p(c)));
    console.log(
      c.name.padEnd(40) + c.gflop.toFixed(2).padStart(7) +
        row.map((t) => t.toFixed(1).padStart(10)).join(""),
    );
  }
} else {
  for (const c of cases) {
    for (const [pass, run] of Object.entries(passes)) {
      const group = `${c.name} ${pass} (${c.gflop.toFixed(2)} GFLOP)`;
      const work = { unit: "GFLOP", amount: c.gflop } as const;
      const origin = import.meta.url;
      // The TypeScript baseline takes 1-2 s a call at batch 32: one call,
      // on the shapes that differ in kind (kernel size, stride, channels),
      // keeps `deno task bench` under 3 minutes on 2 cores.
      throughputBench({
        origin,
        group,
        name: "typescript",
        baseline: true,
        ignore: !TS_SHAPES.has(c.name),
        n: 1,
        warmup: 0,
        work,
        backend: () => "TypeScript (oneDNN off, TS GEMM)",
        fn: typescriptOnly(() => run(c)),
      });
      throughputBench({
        origin,
        group,
        name: "default",
        n: 3,
        warmup: 1,
        work,
        backend: () => defaultBackend(c, pass as keyof typeof ONEDNN_PASS),
        fn: () => {
          run(c);
        },
      });
      if (c.name.startsWith("student")) {
        for (const algo of ["direct", "im2col"] as const) {
          throughputBench({
            origin,
            group,
            name: `${algo} (${gemmBackend()} GEMM)`,
            n: 3,
            warmup: 1,
            work,
            backend: () =>
              `TypeScript ${algo} + ${GEMM_NAME[gemmBackend()]} GEMM`,
            fn: () => {
              setConvAlgo(algo);
              try {
                run(c);
              } finally {
                setConvAlgo("auto");
              }
            },
          });
        }
      }
    }
  }
}
