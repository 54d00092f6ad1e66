import { nn } from "../../mod.ts";
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
