import { nn } from "../../mod.ts";
import {
  goldenSuite,
  loadGolden,
  optionalInput,
  tensorInput,
} from "../_helpers.ts";

const F = nn.functional;
const golden = await loadGolden("conv");

goldenSuite(golden, {
  conv2d: (i, o) =>
    F.conv2d(tensorInput(i, "x"), tensorInput(i, "weight"), {
      ...o,
      bias: optionalInput(i, "bias"),
    }),
});
