import { nn } from "../../mod.ts";
import {
  goldenSuite,
  loadGolden,
  type OpRunner,
  optionalInput,
  tensorInput,
} from "../_helpers.ts";

const F = nn.functional;
const golden = await loadGolden("matmul");

const runners: Record<string, OpRunner> = {
  matmul: (i, o) => {
    let a = tensorInput(i, "x");
    let b = tensorInput(i, "other");
    if (o.transposeX) a = a.t();
    if (o.transposeOther) b = b.t();
    return a.matmul(b);
  },
  linear: (i) =>
    F.linear(tensorInput(i, "x"), tensorInput(i, "weight"), {
      bias: optionalInput(i, "bias"),
    }),
};

goldenSuite(golden, runners);
