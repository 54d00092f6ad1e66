import assert from "node:assert/strict";
import { manualSeed, nn, noGrad, ones, randn, zeros } from "../../mod.ts";
import {
  goldenSuite,
  loadGolden,
  optionalInput,
  tensorInput,
} from "../_helpers.ts";

const F = nn.functional;
const golden = await loadGolden("norm");

// Training-mode cases also check that runningMean and runningVar were
// updated in place (the fixture's "after" values).
goldenSuite(golden, {
  batchNorm: (i, o) =>
    F.batchNorm(
      tensorInput(i, "x"),
      tensorInput(i, "runningMean"),
      tensorInput(i, "runningVar"),
      {
        ...o,
        weight: optionalInput(i, "weight"),
        bias: optionalInput(i, "bias"),
      },
    ),
});

Deno.test("batchNorm(..., { relu: true }) equals relu(batchNorm(...)) in every mode, with gradients", () => {
  manualSeed(7);
  const x = randn([3, 4, 5, 5]);
  const w = randn([4]);
  const b = randn([4]);
  for (const training of [true, false]) {
    for (const grad of [true, false]) {
      const run = (relu: boolean) => {
        const xx = x.detach().requiresGrad_(grad);
        const rm = zeros([4]);
        const rv = ones([4]);
        const f = () =>
          F.batchNorm(xx, rm, rv, { weight: w, bias: b, training, relu });
        let y = grad ? f() : noGrad(f);
        if (!relu) y = y.relu();
        if (grad) y.mul(y).sum().backward();
        return { y: y.data(), g: grad ? xx.grad!.data() : null };
      };
      const [a, c] = [run(true), run(false)];
      const what = `training ${training}, gradients ${grad}`;
      for (let i = 0; i < a.y.length; i++) {
        assert.ok(Math.abs(a.y[i] - c.y[i]) <= 1e-6, `${what}: y[${i}]`);
        if (a.g && c.g) {
          assert.ok(Math.abs(a.g[i] - c.g[i]) <= 1e-5, `${what}: grad[${i}]`);
        }
      }
    }
  }
});
