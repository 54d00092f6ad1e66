// conv2d forward / backward-data / backward-filter on ResNet-18's layer
// shapes and the tutorial StudentNet's convolution, batch 32.
//
//   deno bench -A bench/conv_bench.ts   one group per shape and pass:
//                                       typescript (direct or im2col + TS
//                                       GEMM, baseline) vs the default
//                                       (im2col + OpenBLAS when it loads)
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

/** The TypeScript-only configuration: TS GEMM, algorithm chosen by size. */
function typescriptOnly(fn: () => void): () => void {
  return () => {
    setGemmImpl("typescript");
    try {
      fn();
    } finally {
      setGemmImpl("auto");
    }
  };
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
      Deno.bench({
        group,
        name: "typescript",
        baseline: true,
        n: 2,
        warmup: 1,
        fn: typescriptOnly(() => run(c)),
      });
      Deno.bench({
        group,
        name: gemmBackend() === "openblas" ? "openblas" : "auto",
        n: 3,
        warmup: 1,
        fn: () => {
          run(c);
        },
      });
      if (c.name.startsWith("student")) {
        for (const algo of ["direct", "im2col"] as const) {
          Deno.bench({
            group,
            name: `${algo} (${gemmBackend()} GEMM)`,
            n: 3,
            warmup: 1,
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
