/**
 * The kernel-by-kernel comparison of a CUDA backend against the CPU backend
 * (the oracle) on random inputs, through the backend contract alone. Used by
 * `backend_test.ts` (a real GPU) and `emulated_test.ts` (the kernels compiled
 * for the host and run on CPU threads behind a stand-in driver).
 *
 * @module
 */

import { assertClose } from "../_helpers.ts";
import type {
  Backend,
  BatchNormGeometry,
  BinaryOp,
  Conv2dGeometry,
  Pool2dGeometry,
  ReduceOp,
  Storage,
  TypedArray,
  UnaryOp,
} from "../../src/backend/backend.ts";
import { CpuBackend } from "../../src/backend/cpu/mod.ts";
import { setCudaMathMode } from "../../src/backend/cuda/mod.ts";
import * as fused from "../../src/backend/fused.ts";

const cpu = new CpuBackend();
let gpu: Backend = cpu;
/** Divides the larger sizes (the emulation is slow). */
let shrink = 1;
const big = (n: number) => Math.max(5, Math.floor(n / shrink) | 1);

// ---- inputs -----------------------------------------------------------------

let seed = 0x2545f491;
function rand(): number {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function randf(n: number, lo = -2, hi = 2): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}
function randi(n: number, lo: number, hi: number): Int32Array {
  return Int32Array.from(
    { length: n },
    () => lo + Math.floor((hi - lo) * rand()),
  );
}
/** Values away from zero, either sign. */
function nonzero(n: number): Float32Array {
  return randf(n, 0.1, 3).map((v) => (rand() < 0.5 ? -v : v));
}

interface Tol {
  rtol?: number;
  atol?: number;
}

/**
 * Runs `f` on both backends with the same host inputs, then compares what it
 * returns and the inputs listed in `inPlace`, after the run.
 */
function same(
  what: string,
  inputs: TypedArray[],
  f: (b: Backend, s: Storage[]) => Storage | Storage[] | void,
  tol: Tol = {},
  inPlace: number[] = [],
): void {
  const results = [cpu, gpu].map((b) => {
    const s = inputs.map((x) => b.upload(x));
    const r = f(b, s);
    const outs = r === undefined ? [] : Array.isArray(r) ? r : [r];
    const got = [...outs, ...inPlace.map((i) => s[i])].map((o) =>
      b.download(o)
    );
    for (const o of [...s, ...outs]) b.free(o);
    return got;
  });
  const [want, got] = results;
  want.forEach((w, i) => {
    const exact = w instanceof Int32Array;
    assertClose(got[i], w, {
      rtol: exact ? 0 : tol.rtol ?? 1e-5,
      atol: exact ? 0 : tol.atol ?? 1e-6,
      msg: `${what} (result ${i})`,
    });
    if ((got[i] instanceof Int32Array) !== exact) {
      throw new Error(`${what} (result ${i}): dtype differs from the CPU's`);
    }
  });
}

type Case = (t: Deno.TestContext) => Promise<void> | void;
const cases: [string, Case][] = [];
function gpuTest(name: string, fn: Case) {
  cases.push([name, fn]);
}

/**
 * Registers the comparison tests for a CUDA backend, or one ignored test
 * naming why there is none.
 *
 * @param label Test name prefix, e.g. `[cuda]`.
 * @param backend The backend under test, or null.
 * @param reason Why it is null.
 * @param options `shrink` divides the larger input sizes.
 */
export function kernelSuite(
  label: string,
  backend: Backend | null,
  reason: string,
  options: { shrink?: number } = {},
): void {
  if (!backend) {
    Deno.test({
      name: `${label} backend kernels vs CPU skipped: ${reason}`,
      ignore: true,
      fn() {},
    });
    return;
  }
  for (const [name, fn] of cases) {
    Deno.test(`${label} ${name}`, (t) => {
      gpu = backend;
      shrink = options.shrink ?? 1;
      return fn(t);
    });
  }
}

// ---- elementwise --------------------------------------------------------------

// every op of the contract (a new one fails type-checking here until added)
const UNARY = Object.keys(
  {
    neg: 0,
    exp: 0,
    log: 0,
    sqrt: 0,
    rsqrt: 0,
    abs: 0,
    relu: 0,
    sigmoid: 0,
    tanh: 0,
    sign: 0,
    square: 0,
    reciprocal: 0,
  } satisfies Record<UnaryOp, 0>,
) as UnaryOp[];
const BINARY = Object.keys(
  {
    add: 0,
    sub: 0,
    mul: 0,
    div: 0,
    pow: 0,
    maximum: 0,
    minimum: 0,
    reluGrad: 0,
    eq: 0,
    ne: 0,
    lt: 0,
    le: 0,
    gt: 0,
    ge: 0,
  } satisfies Record<BinaryOp, 0>,
) as BinaryOp[];

gpuTest("unary() matches the CPU backend", async (t) => {
  const n = big(1_000_003); // odd, not a multiple of 4: the vector loop's tail runs too
  for (const op of UNARY) {
    await t.step(op, () => {
      const x = ["log", "sqrt", "rsqrt"].includes(op)
        ? randf(n, 0.01, 5)
        : op === "reciprocal"
        ? nonzero(n)
        : randf(n, -10, 10);
      same(op, [x], (b, [s]) => b.unary(op, s));
    });
  }
});

function operands(
  op: BinaryOp,
  n: number,
  int: boolean,
): [TypedArray, TypedArray] {
  if (int) {
    const a = randi(n, op === "pow" ? -4 : -50, op === "pow" ? 5 : 50);
    const b = op === "pow" ? randi(n, 0, 7) : randi(n, -50, 50);
    for (let i = 0; i < n; i += 3) b[i] = a[i]; // ties for the comparisons
    return [a, b];
  }
  const a = op === "pow" ? randf(n, 0.1, 3) : randf(n);
  const b = op === "div" ? nonzero(n) : randf(n);
  for (let i = 0; i < n; i += 3) if (op !== "div" && op !== "pow") b[i] = a[i];
  return [a, b];
}

gpuTest("binary() matches the CPU backend, flat and broadcast", async (t) => {
  for (const op of BINARY) {
    for (const int of [false, true]) {
      await t.step(`${op} ${int ? "int32" : "float32"}`, () => {
        const n = big(100_003);
        const [a, b] = operands(op, n, int);
        same(
          `${op} flat`,
          [a, b],
          (be, [x, y]) => be.binary(op, x, [1], y, [1], [n]),
        );
        // [7, 1, 33] against [1, 5, 33] -> [7, 5, 33]
        const [a2, b2] = operands(op, 7 * 33, int);
        const [, b3] = operands(op, 5 * 33, int);
        void b2;
        same(
          `${op} broadcast`,
          [a2, b3],
          (be, [x, y]) =>
            be.binary(op, x, [33, 0, 1], y, [0, 33, 1], [7, 5, 33]),
        );
      });
    }
  }
});

gpuTest(
  "binaryScalar() matches the CPU backend, both operand orders",
  async (t) => {
    for (const op of BINARY) {
      await t.step(op, () => {
        for (const reverse of [false, true]) {
          const x = op === "pow" && !reverse
            ? randf(1001, 0.1, 3)
            : nonzero(1001);
          same(
            `${op} f32`,
            [x],
            (b, [s]) => b.binaryScalar(op, s, 0.7, reverse),
          );
          const xi = op === "pow" ? randi(1001, 0, 6) : randi(1001, -20, 20);
          same(
            `${op} i32`,
            [xi],
            (b, [s]) => b.binaryScalar(op, s, 3, reverse),
          );
        }
      });
    }
  },
);

gpuTest(
  "where(), clamp(), cast(), axpy(), fill() match the CPU backend",
  () => {
    const cond = randi(4 * 5, 0, 2);
    const condF = Float32Array.from(cond, (v, i) => (v ? 2.5 : i % 2 ? -0 : 0));
    const a = randf(3 * 4 * 5);
    const b = randf(5);
    for (const c of [cond, condF]) {
      same(
        "where",
        [c, a, b],
        (be, [cs, as, bs]) =>
          be.where(cs, [0, 5, 1], as, [20, 5, 1], bs, [0, 0, 1], [3, 4, 5]),
      );
    }
    const x = randf(10_001, -3, 3);
    for (const [lo, hi] of [[-0.5, 0.5], [-Infinity, 0], [0, Infinity]]) {
      same(`clamp ${lo} ${hi}`, [x], (be, [s]) => be.clamp(s, lo, hi));
    }
    same(
      "clamp int32",
      [randi(1000, -9, 9)],
      (be, [s]) => be.clamp(s, -3, 2.5),
    );
    const wide = Float32Array.from(randf(1000, -1e10, 1e10));
    wide.set([NaN, Infinity, -Infinity, -2.7, 2.7, 0.5, -0.5]);
    same("cast f32->i32", [wide], (be, [s]) => be.cast(s, "int32"));
    same(
      "cast i32->f32",
      [randi(1000, -1e9, 1e9)],
      (be, [s]) => be.cast(s, "float32"),
    );
    same(
      "axpy f32",
      [randf(10_001), randf(10_001)],
      (be, [d, s]) => be.axpy(d, s, 0.3),
      {},
      [0],
    );
    same(
      "axpy i32",
      [randi(1000, -99, 99), randi(1000, -99, 99)],
      (be, [d, s]) => be.axpy(d, s, -2),
      {},
      [0],
    );
    same(
      "fill / zeros / assign",
      [randf(1003), randi(1003, 0, 9)],
      (be, [f, i]) => {
        be.fill(f, -1.25);
        be.fill(i, 7);
        const z = be.zeros("float32", 17);
        const c = be.zeros("int32", 1003);
        be.assign(c, i);
        return [f, i, z, c];
      },
    );
  },
);

// ---- data movement ------------------------------------------------------------

gpuTest(
  "stridedCopy(), stridedWrite() and indexing match the CPU backend",
  () => {
    const x = randf(2 * 3 * 4 * 5);
    // permute(3, 1, 0, 2) of a contiguous [2, 3, 4, 5]
    same(
      "stridedCopy permute",
      [x],
      (b, [s]) => b.stridedCopy(s, [5, 3, 2, 4], [1, 20, 60, 5], 0),
    );
    same(
      "stridedCopy slice",
      [x],
      (b, [s]) => b.stridedCopy(s, [2, 2, 3], [60, 10, 1], 7),
    );
    same(
      "stridedCopy broadcast",
      [randf(4)],
      (b, [s]) => b.stridedCopy(s, [3, 4], [0, 1], 0),
    );
    same(
      "stridedCopy contiguous",
      [x],
      (b, [s]) => b.stridedCopy(s, [3, 20], [20, 1], 60),
    );
    same(
      "stridedWrite",
      [randf(120), randf(120)],
      (b, [d, s]) => b.stridedWrite(d, [5, 3, 2, 4], [1, 20, 60, 5], 0, s),
      {},
      [0],
    );

    for (const int of [false, true]) {
      const src = int ? randi(4 * 10 * 6, -9, 9) : randf(4 * 10 * 6);
      const idx = randi(7, 0, 10);
      same(
        "indexSelect",
        [src, idx],
        (b, [s, i]) => b.indexSelect(s, 4, 10, 6, i),
      );
      const add = int ? randi(4 * 7 * 6, -9, 9) : randf(4 * 7 * 6);
      same(
        "indexAdd",
        [src, idx, add],
        (b, [d, i, a]) => b.indexAdd(d, 4, 10, 6, i, a),
        {},
        [0],
      );
      const index = randi(3 * 4 * 5, 0, 8);
      const g = int ? randi(3 * 8 * 5, -9, 9) : randf(3 * 8 * 5);
      same("gather", [g, index], (b, [s, i]) => b.gather(s, 3, 8, 5, i, 4));
      const sa = int ? randi(3 * 4 * 5, -9, 9) : randf(3 * 4 * 5);
      same(
        "scatterAdd",
        [g, index, sa],
        (b, [d, i, a]) => b.scatterAdd(d, 3, 8, 5, i, 4, a),
        {},
        [0],
      );
    }
  },
);

// ---- reductions, softmax, gemm --------------------------------------------------

gpuTest(
  "reduce() matches the CPU backend for every op, dtype and shape",
  async (t) => {
    const ops: ReduceOp[] = ["sum", "max", "min", "argmax", "argmin"];
    const shapes: [number, number, number][] = [
      [1, big(100_000), 1], // one long row: block per output
      [37, big(1000), 1],
      [5000, 10, 1], // many short rows: thread per output
      [3, 50, 700], // strided rows, many outputs
      [2, big(3000), 5], // strided rows, few outputs
      [4, 1, 3],
    ];
    for (const [outer, r, inner] of shapes) {
      await t.step(`[${outer}, ${r}, ${inner}]`, () => {
        const n = outer * r * inner;
        const xf = randf(n);
        const xi = randi(n, -5, 6); // ties: arg-reductions take the first
        for (const op of ops) {
          same(
            `${op} f32`,
            [xf],
            (b, [s]) => b.reduce(op, s, outer, r, inner),
            {
              rtol: 1e-6,
              atol: 1e-5,
            },
          );
          same(`${op} i32`, [xi], (b, [s]) => b.reduce(op, s, outer, r, inner));
        }
      });
    }
  },
);

gpuTest("softmax() and softmaxBackward() match the CPU backend", async (t) => {
  for (
    const [outer, n, inner] of [[64, 10, 1], [3, 1000, 1], [4, 7, 3000], [
      2,
      5,
      3,
    ]]
  ) {
    for (const log of [false, true]) {
      await t.step(`[${outer}, ${n}, ${inner}] log=${log}`, () => {
        const x = randf(outer * n * inner, -5, 5);
        same("forward", [x], (b, [s]) => b.softmax(s, outer, n, inner, log));
        const y = cpu.download(
          cpu.softmax(cpu.upload(x), outer, n, inner, log),
        );
        same(
          "backward",
          [y, randf(x.length)],
          (b, [ys, dy]) => b.softmaxBackward(ys, dy, outer, n, inner, log),
        );
      });
    }
  }
});

gpuTest(
  "gemm() matches the CPU backend: transposes, batches, TF32",
  async (t) => {
    const cases: [number, number, number, number, number, number][] = [
      // m, n, k, batch, strideA factor, strideB factor
      [33, 65, 17, 1, 0, 0],
      [128, 96, 300, 1, 0, 0],
      [16, 24, 40, 3, 1, 0], // B shared across the batch
      [16, 24, 40, 3, 1, 1],
    ];
    for (const [m, n, k, batch, fa, fb] of cases) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          await t.step(
            `${m}x${n}x${k} batch ${batch} tA=${transA} tB=${transB}`,
            () => {
              const a = randf(m * k * (fa ? batch : 1), -1, 1);
              const b = randf(k * n * (fb ? batch : 1), -1, 1);
              const o = {
                transA,
                transB,
                batch,
                strideA: fa * m * k,
                strideB: fb * k * n,
              };
              same(
                "fp32",
                [a, b],
                (be, [as, bs]) => be.gemm(as, bs, m, n, k, o),
                {
                  rtol: 1e-4,
                  atol: 1e-4,
                },
              );
            },
          );
        }
      }
    }
    setCudaMathMode("tf32");
    try {
      const [m, n, k] = [256, 256, 64];
      same(
        "tf32",
        [randf(m * k, -1, 1), randf(k * n, -1, 1)],
        (be, [a, b]) =>
          be.gemm(a, b, m, n, k, {
            transA: false,
            transB: false,
            batch: 1,
            strideA: 0,
            strideB: 0,
          }),
        { rtol: 1e-2, atol: 3e-2 },
      );
    } finally {
      setCudaMathMode("fp32");
    }
  },
);

// ---- convolution, pooling, batch norm -------------------------------------------

function convGeometry(
  n: number,
  c: number,
  h: number,
  w: number,
  k: number,
  r: number,
  s: number,
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number],
  groups: number,
): Conv2dGeometry {
  const out = (i: number, kk: number, d: number) =>
    Math.floor((i + 2 * padding[d] - dilation[d] * (kk - 1) - 1) / stride[d]) +
    1;
  return {
    n,
    c,
    h,
    w,
    k,
    r,
    s,
    oh: out(h, r, 0),
    ow: out(w, s, 1),
    stride,
    padding,
    dilation,
    groups,
  };
}

gpuTest(
  "conv2d() forward and both gradients match the CPU backend",
  async (t) => {
    const geometries: [string, Conv2dGeometry][] = [
      [
        "3x3 pad 1",
        convGeometry(2, 4, 9, 8, 6, 3, 3, [1, 1], [1, 1], [1, 1], 1),
      ],
      [
        "strided, dilated, grouped",
        convGeometry(2, 4, 11, 9, 6, 3, 2, [2, 1], [0, 1], [2, 1], 2),
      ],
      [
        "1x1 stride 2",
        convGeometry(3, 8, 7, 7, 5, 1, 1, [2, 2], [0, 0], [1, 1], 1),
      ],
      [
        "7x7 stride 2 pad 3",
        convGeometry(2, 3, 20, 20, 8, 7, 7, [2, 2], [3, 3], [1, 1], 1),
      ],
    ];
    for (const [name, g] of geometries) {
      await t.step(name, () => {
        const x = randf(g.n * g.c * g.h * g.w);
        const wt = randf(g.k * (g.c / g.groups) * g.r * g.s);
        const bias = randf(g.k);
        const dy = randf(g.n * g.k * g.oh * g.ow);
        const tol = { rtol: 1e-4, atol: 1e-4 };
        same(
          "forward",
          [x, wt, bias],
          (b, [xs, ws, bs]) => b.conv2d(xs, ws, bs, g),
          tol,
        );
        same(
          "forward, no bias",
          [x, wt],
          (b, [xs, ws]) => b.conv2d(xs, ws, null, g),
          tol,
        );
        same(
          "backward data",
          [dy, wt],
          (b, [d, ws]) => b.conv2dBackwardData(d, ws, g),
          tol,
        );
        same(
          "backward filter",
          [x, dy],
          (b, [xs, d]) => b.conv2dBackwardFilter(xs, d, g),
          tol,
        );
      });
    }
  },
);

function poolGeometry(
  n: number,
  c: number,
  h: number,
  w: number,
  kernel: [number, number],
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number],
  countIncludePad: boolean,
  ceil = false,
): Pool2dGeometry {
  const out = (i: number, d: number) => {
    const span = i + 2 * padding[d] - dilation[d] * (kernel[d] - 1) - 1;
    let o =
      (ceil ? Math.ceil(span / stride[d]) : Math.floor(span / stride[d])) + 1;
    if (ceil && (o - 1) * stride[d] >= i + padding[d]) o--;
    return o;
  };
  return {
    n,
    c,
    h,
    w,
    oh: out(h, 0),
    ow: out(w, 1),
    kernel,
    stride,
    padding,
    dilation,
    countIncludePad,
  };
}

gpuTest("pooling forward and backward match the CPU backend", async (t) => {
  const geometries: [string, Pool2dGeometry][] = [
    [
      "2x2 stride 2",
      poolGeometry(2, 3, 8, 8, [2, 2], [2, 2], [0, 0], [1, 1], true),
    ],
    [
      "3x3 stride 2 pad 1",
      poolGeometry(2, 3, 9, 7, [3, 3], [2, 2], [1, 1], [1, 1], true),
    ],
    [
      "3x3 pad 1, padding not counted, ceil",
      poolGeometry(1, 2, 8, 9, [3, 3], [2, 2], [1, 1], [1, 1], false, true),
    ],
    [
      "dilated",
      poolGeometry(1, 2, 10, 10, [3, 2], [1, 2], [1, 0], [2, 1], true),
    ],
  ];
  for (const [name, g] of geometries) {
    await t.step(name, () => {
      const x = randf(g.n * g.c * g.h * g.w);
      const dy = randf(g.n * g.c * g.oh * g.ow);
      same("maxPool2d", [x], (b, [s]) => {
        const r = b.maxPool2d(s, g);
        return [r.y, r.indices];
      });
      const idx = cpu.download(cpu.maxPool2d(cpu.upload(x), g).indices);
      same(
        "maxPool2dBackward",
        [dy, idx],
        (b, [d, i]) => b.maxPool2dBackward(d, i, g),
      );
      if (g.dilation[0] === 1 && g.dilation[1] === 1) {
        same("avgPool2d", [x], (b, [s]) => b.avgPool2d(s, g));
        same("avgPool2dBackward", [dy], (b, [d]) => b.avgPool2dBackward(d, g));
      }
    });
  }
  await t.step("adaptive", () => {
    for (const [h, w, oh, ow] of [[7, 5, 3, 2], [8, 8, 1, 1], [5, 6, 5, 6]]) {
      const x = randf(2 * 3 * h * w);
      same(
        "adaptiveAvgPool2d",
        [x],
        (b, [s]) => b.adaptiveAvgPool2d(s, { n: 2, c: 3, h, w, oh, ow }),
      );
      same(
        "adaptiveAvgPool2dBackward",
        [randf(2 * 3 * oh * ow)],
        (b, [d]) =>
          b.adaptiveAvgPool2dBackward(d, { n: 2, c: 3, h, w, oh, ow }),
      );
    }
  });
});

gpuTest("batch norm train, eval and backward match the CPU backend", () => {
  const [n, c, hw] = [4, 3, 25];
  const x = randf(n * c * hw, -3, 5);
  const w = randf(c, 0.5, 1.5);
  const bias = randf(c);
  const rm = randf(c);
  const rv = randf(c, 0.5, 2);
  const tol = { rtol: 1e-4, atol: 1e-5 };
  const g: BatchNormGeometry = {
    n,
    c,
    hw,
    eps: 1e-5,
    momentum: 0.1,
    activation: "none",
  };
  const none = {
    weight: null,
    bias: null,
    runningMean: null,
    runningVar: null,
  };
  same(
    "train",
    [x, w, bias, rm, rv],
    (b, [xs, ws, bs, m, v]) => {
      const p = { weight: ws, bias: bs, runningMean: m, runningVar: v };
      const r = b.batchNormTrain(xs, p, g);
      return [r.y, r.mean, r.invStd];
    },
    tol,
    [3, 4],
  );
  same("train, no affine, no running stats", [x], (b, [xs]) => {
    const r = b.batchNormTrain(xs, none, g);
    return [r.y, r.mean, r.invStd];
  }, tol);
  same(
    "eval",
    [x, w, bias, rm, rv],
    (b, [xs, ws, bs, m, v]) =>
      b.batchNormEval(
        xs,
        { weight: ws, bias: bs, runningMean: m, runningVar: v },
        g,
      ),
    tol,
  );
  const st = cpu.batchNormTrain(cpu.upload(x), none, g);
  const mean = cpu.download(st.mean);
  const invStd = cpu.download(st.invStd);
  // eps 1e-5 takes cuDNN's backward where cuDNN loads, 1e-6 the NVRTC one
  // (backward uses the saved invStd; eps only picks the kernel)
  for (const eps of [1e-5, 1e-6]) {
    for (const weight of [w, null]) {
      same(`backward, eps ${eps}, weight ${weight ? "given" : "null"}`, [
        x,
        randf(x.length),
        mean,
        invStd,
        ...(weight ? [weight] : []),
      ], (b, [xs, dy, m, is, ws]) => {
        const saved = { mean: m, invStd: is };
        const r = b.batchNormBackward(xs, dy, ws ?? null, saved, { ...g, eps });
        return [r.dx, r.dweight, r.dbias];
      }, tol);
    }
  }
});

gpuTest(
  "float16 and bfloat16 storage: cast, fill, zeros, assign match the CPU backend",
  () => {
    // values over float16's range and subnormals, odd lengths (the half
    // storage takes ceil(n / 2) words)
    const x = randf(1001, -3, 3);
    x.set([
      0,
      -0,
      1,
      -1,
      65504,
      65519,
      65520,
      1e5,
      -1e5,
      2 ** -24,
      2 ** -25,
      3e-8,
      6e-5,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      1 + 2 ** -8,
      3e38,
      -3e38,
      Infinity,
      -Infinity,
    ]);
    const ints = randi(999, -70000, 70000);
    for (const dt of ["float16", "bfloat16"] as const) {
      same(`cast f32->${dt}`, [x], (b, [s]) => b.cast(s, dt));
      same(`cast ${dt}->f32`, [x], (b, [s]) => {
        const h = b.cast(s, dt);
        const y = b.cast(h, "float32");
        b.free(h);
        return y;
      });
      same(`cast i32->${dt}->i32`, [ints], (b, [s]) => {
        const h = b.cast(s, dt);
        return [h, b.cast(h, "int32")];
      });
      same(`cast ${dt} to the other half type`, [x], (b, [s]) => {
        const h = b.cast(s, dt);
        const y = b.cast(h, dt === "float16" ? "bfloat16" : "float16");
        b.free(h);
        return y;
      });
      for (const n of [0, 1, 7, 1000]) {
        same(`zeros/fill ${dt} n=${n}`, [], (b) => {
          const z = b.zeros(dt, n);
          const f = b.zeros(dt, n);
          b.fill(f, -2.7);
          return [z, f];
        });
      }
      same(`assign and upload ${dt}`, [x], (b, [s]) => {
        const h = b.cast(s, dt);
        const up = b.upload(b.download(h), dt);
        const c = b.zeros(dt, x.length);
        b.assign(c, up);
        b.free(h);
        b.free(up);
        return c;
      });
    }
  },
);

gpuTest("batch norm + ReLU (fused entry points) match the CPU backend", () => {
  const [n, c, hw] = [4, 3, 25];
  // values around 0 so the ReLU masks about half of them
  const x = randf(n * c * hw, -3, 3);
  const w = randf(c, 0.5, 1.5);
  const bias = randf(c);
  const rm = randf(c);
  const rv = randf(c, 0.5, 2);
  const tol = { rtol: 1e-4, atol: 1e-5 };
  // eps 1e-5 takes cuDNN where it loads, 1e-6 the NVRTC kernels
  for (const eps of [1e-5, 1e-6]) {
    const g: BatchNormGeometry = {
      n,
      c,
      hw,
      eps,
      momentum: 0.1,
      activation: "relu",
    };
    same(
      `train + relu, eps ${eps}`,
      [x, w, bias, rm, rv],
      (b, s) => {
        const [xs, ws, bs, m, v] = s;
        const p = { weight: ws, bias: bs, runningMean: m, runningVar: v };
        const r = fused.batchNormTrain(b, xs, p, g);
        return [r.y, r.mean, r.invStd];
      },
      tol,
      [3, 4],
    );
    same(`eval + relu, eps ${eps}`, [x, w, bias, rm, rv], (b, s) => {
      const [xs, ws, bs, m, v] = s;
      const p = { weight: ws, bias: bs, runningMean: m, runningVar: v };
      return fused.batchNormEval(b, xs, p, g);
    }, tol);
    same(`backward through relu, eps ${eps}`, [x, w, randf(x.length)], (
      b,
      [xs, ws, dy],
    ) => {
      const none = {
        weight: ws,
        bias: null,
        runningMean: null,
        runningVar: null,
      };
      const r = fused.batchNormTrain(b, xs, none, g);
      const d = fused.batchNormBackward(b, xs, dy, r.y, ws, r, g);
      b.free(r.mean);
      b.free(r.invStd);
      return [r.y, d.dx, d.dweight, d.dbias];
    }, tol);
  }
});

// ---- optimizers -------------------------------------------------------------------

gpuTest("sgdStep() and adamStep() match the CPU backend", () => {
  const n = 10_007;
  for (const momentum of [0, 0.9]) {
    for (const nesterov of [false, true]) {
      for (const firstStep of [true, false]) {
        same(
          `sgd momentum ${momentum} nesterov ${nesterov} first ${firstStep}`,
          [randf(n), randf(n), randf(n)],
          (b, [p, g, buf]) =>
            b.sgdStep(p, g, momentum ? buf : null, {
              lr: 0.05,
              momentum,
              dampening: nesterov ? 0 : 0.1,
              weightDecay: 1e-2,
              nesterov,
              firstStep,
            }),
          { rtol: 1e-5, atol: 1e-6 },
          [0, 2],
        );
      }
    }
  }
  for (const decoupled of [false, true]) {
    for (const amsgrad of [false, true]) {
      same(
        `adam decoupled ${decoupled} amsgrad ${amsgrad}`,
        [
          randf(n),
          randf(n),
          randf(n, -0.1, 0.1),
          randf(n, 0, 0.1),
          randf(n, 0, 0.1),
        ],
        (b, [p, g, m, v, vmax]) =>
          b.adamStep(p, g, m, v, amsgrad ? vmax : null, {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weightDecay: 0.01,
            decoupled,
            step: 3,
            amsgrad,
          }),
        { rtol: 1e-5, atol: 1e-6 },
        [0, 2, 3, 4],
      );
    }
  }
});
