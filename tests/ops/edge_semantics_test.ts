// -0, NaN and ±Infinity through ReLU, clamp and max pooling, forward and
// backward, on every backend (the CUDA conformance test runs this folder on
// the emulated device too). JSON fixtures cannot hold NaN, infinities or the
// sign of a zero, so the expected values are written here: each is what
// PyTorch 1.13 (CPU) returned for the same call, observed with
//   torch.relu(x), torch.clamp(x, lo, hi), F.max_pool2d(x, k, s, p)
// and `.backward(torch.ones_like(y))` (or the upstream gradient named).
// In short, as observed:
// - relu keeps -0 (relu(-0.0) is -0.0: clamp_min(x, 0) returns x unless
//   x < 0), keeps NaN, maps -Infinity to +0; its gradient is
//   `y <= 0 ? 0 : dy` (a select: a NaN y passes dy, a NaN dy at a negative
//   x gives 0).
// - clamp keeps NaN and -0; its gradient is dy where lo <= x <= hi
//   (inclusive), else 0, and 0 at a NaN.
// - max pooling: the first of equal values wins (so -0 before +0 gives -0),
//   a NaN wins over every number and a later NaN over an earlier one,
//   padding is -Infinity; the gradient goes to the chosen position.
import assert from "node:assert/strict";
import { nn, setBackend, type Tensor, tensor } from "../../mod.ts";
import { availableBackends, missingBackends } from "../_helpers.ts";

const F = nn.functional;
const NAN = NaN;
const INF = Infinity;

/** Element for element with Object.is: -0 differs from +0, NaN equals NaN. */
function assertSame(
  actual: ArrayLike<number>,
  expected: readonly number[],
  msg: string,
): void {
  assert.equal(actual.length, expected.length, `${msg}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Object.is(actual[i], expected[i]),
      `${msg}: [${i}] is ${Object.is(actual[i], -0) ? "-0" : actual[i]}, ` +
        `PyTorch gives ${Object.is(expected[i], -0) ? "-0" : expected[i]}`,
    );
  }
}

function leaf(data: number[], shape = [data.length]): Tensor {
  return tensor(Float32Array.from(data), { shape, requiresGrad: true });
}

/** Forward values and the input gradient for upstream `dy` (default ones). */
function run(
  f: (x: Tensor) => Tensor,
  data: number[],
  shape = [data.length],
  dy?: number[],
): { y: number[]; dx: number[] } {
  const x = leaf(data, shape);
  const y = f(x);
  const g = dy
    ? tensor(Float32Array.from(dy), { shape: y.shape })
    : tensor(new Float32Array(y.data().length).fill(1), { shape: y.shape });
  y.backward(g);
  return { y: [...y.data()], dx: [...x.grad!.data()] };
}

const EDGES = [-0, 0, NAN, INF, -INF, -1, 2];

const cases: Record<string, () => void> = {
  "relu() keeps -0 and NaN; its gradient is a select"() {
    const { y, dx } = run((x) => x.relu(), EDGES);
    assertSame(y, [-0, 0, NAN, INF, 0, 0, 2], "relu");
    assertSame(dx, [0, 0, 1, 1, 0, 0, 1], "relu backward");
    const nanGrad = run((x) => x.relu(), [-1, 1], [2], [NAN, NAN]);
    assertSame(nanGrad.dx, [0, NAN], "relu backward of a NaN gradient");
  },
  "relu() on 2^17 elements (the threaded, vectorised kernels)"() {
    const n = 1 << 17;
    const data = Array.from({ length: n }, (_, i) => EDGES[i % EDGES.length]);
    const { y, dx } = run((x) => x.relu(), data);
    const ey = [-0, 0, NAN, INF, 0, 0, 2];
    const ed = [0, 0, 1, 1, 0, 0, 1];
    assertSame(y, data.map((_, i) => ey[i % 7]), "relu");
    assertSame(dx, data.map((_, i) => ed[i % 7]), "relu backward");
  },
  "clamp() keeps -0 and NaN; its gradient is inclusive and 0 at NaN"() {
    const both = run((x) => x.clamp(-1, 1), EDGES);
    assertSame(both.y, [-0, 0, NAN, 1, -1, -1, 1], "clamp(-1, 1)");
    assertSame(both.dx, [1, 1, 0, 0, 0, 1, 0], "clamp(-1, 1) backward");
    const xs = [-0, 0, NAN, INF, -INF, -1, 0, 1];
    const lo = run((x) => x.clamp(0), xs);
    assertSame(lo.y, [-0, 0, NAN, INF, 0, 0, 0, 1], "clamp(0)");
    assertSame(lo.dx, [1, 1, 0, 1, 0, 0, 1, 1], "clamp(0) backward");
    const point = run((x) => x.clamp(0, 0), xs);
    assertSame(point.y, [-0, 0, NAN, 0, 0, 0, 0, 0], "clamp(0, 0)");
    assertSame(point.dx, [1, 1, 0, 0, 0, 0, 1, 0], "clamp(0, 0) backward");
  },
  "maxPool2d() 2x2: the first of equal values wins, NaN wins"() {
    const windows: [number[], number, number[]][] = [
      [[-0, 0, -1, -2], -0, [1, 0, 0, 0]],
      [[0, -0, -1, -2], 0, [1, 0, 0, 0]],
      [[-0, -0, -1, -1], -0, [1, 0, 0, 0]],
      [[1, 1, 0, 0], 1, [1, 0, 0, 0]],
      [[NAN, 1, 2, 3], NAN, [1, 0, 0, 0]],
      [[1, NAN, 2, 3], NAN, [0, 1, 0, 0]],
      [[NAN, NAN, 0, 5], NAN, [0, 1, 0, 0]],
      [[0, 5, NAN, 1], NAN, [0, 0, 1, 0]],
      [[INF, 1, 2, 3], INF, [1, 0, 0, 0]],
      [[-INF, -INF, -INF, -INF], -INF, [1, 0, 0, 0]],
    ];
    for (const [w, ey, edx] of windows) {
      const { y, dx } = run((x) => F.maxPool2d(x, 2), w, [1, 1, 2, 2]);
      assertSame(y, [ey], `maxPool2d of [${w}]`);
      assertSame(dx, edx, `maxPool2d backward of [${w}]`);
    }
  },
  "maxPool2d() 3x3 and padded windows: -0 ties, NaN, -Infinity"() {
    // 2x2, stride 1, padding 1 on a 2x2 plane of -Infinity: 3x3 windows,
    // each takes its first cell; PyTorch's gradient is [[4, 2], [2, 1]].
    const pad = run(
      (x) => F.maxPool2d(x, 2, { stride: 1, padding: 1 }),
      [-INF, -INF, -INF, -INF],
      [1, 1, 2, 2],
    );
    assertSame(pad.y, new Array(9).fill(-INF), "padded max of -Infinity");
    assertSame(pad.dx, [4, 2, 2, 1], "padded max backward");
    // 3x3 stride 2 padding 1 on 4x4: windows rows/cols [0,2), [1,4)
    const plane = [
      -0,
      0,
      -1,
      -1, //
      0,
      -0,
      -1,
      -1, //
      -1,
      -1,
      -0,
      0, //
      -1,
      -1,
      0,
      -0, //
    ];
    const t = run(
      (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
      plane,
      [1, 1, 4, 4],
    );
    assertSame(t.y, [-0, 0, 0, -0], "3x3 max: the first of -0 and +0");
    assertSame(
      t.dx,
      [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      "3x3 max backward",
    );
    plane[6] = NAN;
    const n = run(
      (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
      plane,
      [1, 1, 4, 4],
    );
    assertSame(n.y, [-0, NAN, 0, NAN], "3x3 max with a NaN");
  },
};

for (const backend of availableBackends()) {
  Deno.test(
    `[${backend}] relu(), clamp() and maxPool2d() follow PyTorch on -0, NaN and infinities`,
    async (t) => {
      setBackend(backend);
      for (const [name, check] of Object.entries(cases)) {
        await t.step(name, check);
      }
    },
  );
}
for (const [backend, reason] of missingBackends()) {
  Deno.test({
    name: `[${backend}] edge semantics skipped: ${reason}`,
    ignore: true,
    fn() {},
  });
}
