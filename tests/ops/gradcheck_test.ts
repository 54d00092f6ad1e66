// Finite-difference gradient checks of composite ops, through the public API
// only. Each check compares backward() with central differences of
// sum(f(x) * w) for a fixed random w, in float32 with step 1e-2. The inputs
// come from a small seeded generator here, not from the code under test.
import {
  cat,
  nn,
  noGrad,
  setBackend,
  stack,
  type Tensor,
  tensor,
} from "../../mod.ts";
import {
  assertClose,
  availableBackends,
  missingBackends,
} from "../_helpers.ts";

const F = nn.functional;

/** mulberry32: a tiny seeded generator, so inputs never depend on kdeno. */
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

function normal(n: number, seed: number, scale = 1, shift = 0): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - r(), v = r();
    out[i] = shift +
      scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

interface Arg {
  shape: number[];
  data: Float32Array | Int32Array;
  /** Checked (and requiring grad) unless false; int32 args never are. */
  grad?: boolean;
}

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function arg(shape: number[], seed: number, scale = 1, shift = 0): Arg {
  return { shape, data: normal(size(shape), seed, scale, shift) };
}

function constant(shape: number[], seed: number, scale = 1, shift = 0): Arg {
  return { ...arg(shape, seed, scale, shift), grad: false };
}

function labels(values: number[]): Arg {
  return { shape: [values.length], data: Int32Array.from(values), grad: false };
}

function make(a: Arg, requiresGrad: boolean, data = a.data): Tensor {
  return tensor(data, {
    shape: a.shape,
    dtype: data instanceof Int32Array ? "int32" : "float32",
    requiresGrad,
  });
}

const checked = (a: Arg): boolean =>
  a.grad !== false && a.data instanceof Float32Array;

function gradcheck(
  f: (...xs: Tensor[]) => Tensor,
  args: Arg[],
  { h = 1e-2, rtol = 1e-2, atol = 1e-3 } = {},
): void {
  const out0 = noGrad(() => f(...args.map((a) => make(a, false))));
  const w = tensor(normal(out0.numel(), 12345), { shape: [...out0.shape] });
  const objective = (xs: Tensor[]): number =>
    noGrad(() => f(...xs).mul(w).sum().item());

  const leaves = args.map((a) => make(a, checked(a)));
  f(...leaves).mul(w).sum().backward();

  args.forEach((a, k) => {
    if (!checked(a)) return;
    const grad = leaves[k].grad;
    if (!grad) throw new Error(`input ${k}: .grad is null after backward()`);
    const numeric = new Float32Array(a.data.length);
    for (let i = 0; i < a.data.length; i++) {
      const at = (delta: number) => {
        const d = Float32Array.from(a.data);
        d[i] += delta;
        return objective(
          args.map((b, j) => make(b, false, j === k ? d : b.data)),
        );
      };
      numeric[i] = (at(h) - at(-h)) / (2 * h);
    }
    assertClose(grad.data(), numeric, {
      rtol,
      atol,
      shape: a.shape,
      msg: `input ${k} ${
        JSON.stringify(a.shape)
      }: backward() vs central differences`,
    });
  });
}

const checks: [string, () => void][] = [
  [
    "softmax() then a weighted sum",
    () => gradcheck((x) => x.softmax(1), [arg([3, 4], 1)]),
  ],
  ["logSoftmax() feeding nllLoss()", () =>
    gradcheck(
      (x, t) => F.nllLoss(x.logSoftmax(1), t),
      [arg([4, 5], 2), labels([0, 4, 2, 2])],
    )],
  ["crossEntropy() with weight and labelSmoothing", () =>
    gradcheck(
      (x, t, wt) => F.crossEntropy(x, t, { weight: wt, labelSmoothing: 0.1 }),
      [arg([4, 3], 3), labels([1, 0, 2, 1]), constant([3], 4, 0.2, 1)],
    )],
  [
    "distillation loss (crossEntropy + klDiv batchmean at T = 2)",
    () =>
      gradcheck((s, t, y) => {
        const T = 2, alpha = 0.25;
        const soft = F.klDiv(s.div(T).logSoftmax(1), t.div(T).softmax(1), {
          reduction: "batchmean",
        }).mul(T * T);
        return F.crossEntropy(s, y).mul(1 - alpha).add(soft.mul(alpha));
      }, [arg([4, 3], 5), constant([4, 3], 6), labels([2, 0, 1, 1])]),
  ],
  ["klDiv() mean with logTarget", () =>
    gradcheck(
      (x, t) => F.klDiv(x.logSoftmax(1), t.logSoftmax(1), { logTarget: true }),
      [arg([3, 4], 7), constant([3, 4], 8)],
    )],
  ["layer norm built from mean() and var()", () =>
    gradcheck((x) => {
      const mu = x.mean(-1, { keepdim: true });
      const v = x.var(-1, { keepdim: true, correction: 0 });
      return x.sub(mu).div(v.add(1e-5).sqrt());
    }, [arg([3, 5], 9)])],
  ["two-layer perceptron with tanh", () =>
    gradcheck(
      (x, w1, b1, w2) => F.linear(F.linear(x, w1, { bias: b1 }).tanh(), w2),
      [arg([2, 3], 10), arg([4, 3], 11, 0.5), arg([4], 12), arg([2, 4], 13)],
    )],
  ["conv2d() with padding, sigmoid(), avgPool2d()", () =>
    gradcheck(
      (x, w, b) =>
        F.avgPool2d(F.conv2d(x, w, { bias: b, padding: 1 }).sigmoid(), 2),
      [arg([1, 2, 5, 5], 14), arg([2, 2, 3, 3], 15, 0.3), arg([2], 16)],
    )],
  ["strided grouped conv2d()", () =>
    gradcheck(
      (x, w) => F.conv2d(x, w, { stride: 2, groups: 2, dilation: [1, 2] }),
      [arg([1, 4, 6, 7], 17), arg([2, 2, 2, 2], 18, 0.5)],
    )],
  ["conv2d() then batchNorm() in training", () =>
    gradcheck(
      (x, w, g, b) => {
        const y = F.conv2d(x, w, { padding: 1 });
        return F.batchNorm(
          y,
          tensor(new Float32Array(3), { shape: [3] }),
          tensor(new Float32Array(3).fill(1), { shape: [3] }),
          { weight: g, bias: b, training: true },
        );
      },
      [
        arg([2, 2, 3, 3], 19),
        arg([3, 2, 3, 3], 20, 0.3),
        arg([3], 21, 0.2, 1),
        arg([3], 22),
      ],
      { rtol: 2e-2, atol: 2e-3 },
    )],
  ["binaryCrossEntropyWithLogits() with weight and posWeight", () =>
    gradcheck(
      (x, t, wt, pw) =>
        F.binaryCrossEntropyWithLogits(x, t.sigmoid(), {
          weight: wt,
          posWeight: pw,
        }),
      [
        arg([3, 4], 23),
        constant([3, 4], 24),
        constant([4], 25, 0.2, 1),
        constant([4], 26, 0.3, 1.5),
      ],
    )],
  ["mseLoss() of sigmoid()", () =>
    gradcheck(
      (x, t) => F.mseLoss(x.sigmoid(), t, { reduction: "sum" }),
      [arg([3, 4], 27), arg([3, 4], 28)],
    )],
  ["pow(), div(), sqrt(), exp() chain", () =>
    gradcheck(
      (x, y) =>
        x.square().add(1).sqrt().div(x.neg().exp().add(1)).add(
          y.pow(x.mul(0.5)),
        ).add(y.pow(1.5)).add(y.rsqrt()),
      [arg([2, 3], 29), arg([2, 3], 30, 0.2, 1.5)],
    )],
  ["std() and var() over several dims", () =>
    gradcheck(
      (x) =>
        x.std([0, 2]).add(x.var(1, { correction: 0 }).sum()).add(
          x.std().mul(x.mean()),
        ),
      [arg([2, 3, 4], 31)],
    )],
  ["broadcast, expand(), cat(), stack() and gather()", () =>
    gradcheck(
      (a, b, idx) =>
        stack([
          cat([a.mul(b), a.expand([3, 2]).exp()], 1),
          cat([b.unsqueeze(0).expand([3, 4]), a.square().expand([3, 2])], 1),
        ], 1).reshape([6, 6]).gather(1, idx),
      [arg([3, 1], 32), arg([4], 33), {
        shape: [6, 3],
        data: Int32Array.from([
          0,
          5,
          1,
          1,
          2,
          0,
          3,
          4,
          4,
          5,
          3,
          3,
          2,
          1,
          0,
          5,
          5,
          2,
        ]),
        grad: false,
      }],
    )],
  ["batched matmul() with broadcast batch dims", () =>
    gradcheck(
      (a, b) => a.matmul(b),
      [arg([2, 1, 2, 3], 34), arg([3, 3, 2], 35)],
    )],
  [
    "adaptiveAvgPool2d() to a non-divisible size, then linear()",
    () =>
      gradcheck(
        (x, w) => F.linear(F.adaptiveAvgPool2d(x, [3, 4]).flatten(1), w),
        [arg([1, 2, 5, 7], 36), arg([2, 24], 37, 0.3)],
      ),
  ],
  [
    "slice() with step, narrow(), permute(), reshape(), indexSelect()",
    () =>
      gradcheck(
        (x, idx) =>
          x.slice(2, 1, 6, 2).narrow(1, 1, 2).permute([2, 0, 1]).reshape([
            3,
            4,
          ]).indexSelect(0, idx).tanh(),
        [arg([2, 4, 6], 38), {
          shape: [4],
          data: Int32Array.from([2, 0, 2, 1]),
          grad: false,
        }],
      ),
  ],
  [
    "maxPool2d() with overlapping windows on well-separated values",
    () =>
      gradcheck(
        (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
        // a permutation of 0..48 scaled by 0.1: neighbours differ by at least
        // 0.1, so a 1e-2 step never changes which element wins a window
        [{
          shape: [1, 1, 7, 7],
          data: Float32Array.from(
            Array.from({ length: 49 }, (_, i) => ((i * 19) % 49) * 0.1),
          ),
        }],
      ),
  ],
];

for (const backend of availableBackends()) {
  Deno.test(`[${backend}] backward() agrees with finite differences`, async (t) => {
    setBackend(backend);
    for (const [name, check] of checks) {
      await t.step(`backward() agrees with finite differences: ${name}`, check);
    }
  });
}
for (const [backend, reason] of missingBackends()) {
  Deno.test({
    name: `[${backend}] gradcheck skipped: ${reason}`,
    ignore: true,
    fn() {},
  });
}
