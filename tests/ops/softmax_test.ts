import { goldenSuite, loadGolden, tensorInput } from "../_helpers.ts";

const golden = await loadGolden("softmax");

goldenSuite(golden, {
  softmax: (i, o) => tensorInput(i, "x").softmax(o.dim),
  logSoftmax: (i, o) => tensorInput(i, "x").logSoftmax(o.dim),
});
