import { nn } from "../../mod.ts";
import { goldenSuite, loadGolden, tensorInput } from "../_helpers.ts";

const F = nn.functional;
const golden = await loadGolden("pool");

goldenSuite(golden, {
  maxPool2d: (i, { kernelSize, ...o }) =>
    F.maxPool2d(tensorInput(i, "x"), kernelSize, o),
  avgPool2d: (i, { kernelSize, ...o }) =>
    F.avgPool2d(tensorInput(i, "x"), kernelSize, o),
  adaptiveAvgPool2d: (i, o) =>
    F.adaptiveAvgPool2d(tensorInput(i, "x"), o.outputSize),
});
