import {
  goldenSuite,
  loadGolden,
  type OpRunner,
  tensorInput,
} from "../_helpers.ts";

const golden = await loadGolden("reduce");

const runners: Record<string, OpRunner> = {
  sum: (i, o) => tensorInput(i, "x").sum(o.dim, { keepdim: o.keepdim }),
  mean: (i, o) => tensorInput(i, "x").mean(o.dim, { keepdim: o.keepdim }),
  max: (i, o) => tensorInput(i, "x").max(o.dim, { keepdim: o.keepdim }),
  min: (i, o) => tensorInput(i, "x").min(o.dim, { keepdim: o.keepdim }),
  argmax: (i, o) => tensorInput(i, "x").argmax(o.dim, { keepdim: o.keepdim }),
  argmin: (i, o) => tensorInput(i, "x").argmin(o.dim, { keepdim: o.keepdim }),
  var: (i, o) =>
    tensorInput(i, "x").var(o.dim, {
      keepdim: o.keepdim,
      correction: o.correction,
    }),
  std: (i, o) =>
    tensorInput(i, "x").std(o.dim, {
      keepdim: o.keepdim,
      correction: o.correction,
    }),
};

goldenSuite(golden, runners);
