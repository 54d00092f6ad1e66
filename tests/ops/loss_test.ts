import { nn } from "../../mod.ts";
import {
  goldenSuite,
  loadGolden,
  optionalInput,
  tensorInput,
} from "../_helpers.ts";

const F = nn.functional;
const golden = await loadGolden("loss");

goldenSuite(golden, {
  crossEntropy: (i, o) =>
    F.crossEntropy(tensorInput(i, "input"), tensorInput(i, "target"), {
      ...o,
      weight: optionalInput(i, "weight"),
    }),
  nllLoss: (i, o) =>
    F.nllLoss(tensorInput(i, "input"), tensorInput(i, "target"), {
      ...o,
      weight: optionalInput(i, "weight"),
    }),
  klDiv: (i, o) =>
    F.klDiv(tensorInput(i, "input"), tensorInput(i, "target"), o),
  mseLoss: (i, o) =>
    F.mseLoss(tensorInput(i, "input"), tensorInput(i, "target"), o),
  binaryCrossEntropyWithLogits: (i, o) =>
    F.binaryCrossEntropyWithLogits(
      tensorInput(i, "input"),
      tensorInput(i, "target"),
      {
        ...o,
        weight: optionalInput(i, "weight"),
        posWeight: optionalInput(i, "posWeight"),
      },
    ),
});
