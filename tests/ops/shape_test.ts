import { cat, stack, type Tensor } from "../../mod.ts";
import {
  goldenSuite,
  type Inputs,
  loadGolden,
  type OpRunner,
  tensorInput,
} from "../_helpers.ts";

const golden = await loadGolden("shape");

const x = (i: Inputs): Tensor => tensorInput(i, "x");
/** The list inputs of cat/stack, named t0, t1, ... in order. */
const list = (i: Inputs): Tensor[] =>
  Object.keys(i).filter((k) => /^t\d+$/.test(k)).map((k) => tensorInput(i, k));

const runners: Record<string, OpRunner> = {
  reshape: (i, o) => x(i).reshape(o.shape),
  view: (i, o) => x(i).view(o.shape),
  permute: (i, o) => {
    const y = x(i).permute(o.dims);
    return o.thenReshape ? y.reshape(o.thenReshape) : y;
  },
  transpose: (i, o) => x(i).transpose(o.dim0, o.dim1),
  t: (i) => x(i).t(),
  flatten: (i, o) => x(i).flatten(o.startDim, o.endDim),
  squeeze: (i, o) => x(i).squeeze(o.dim),
  unsqueeze: (i, o) => x(i).unsqueeze(o.dim),
  expand: (i, o) => {
    const y = x(i).expand(o.shape);
    return o.thenContiguous ? y.contiguous() : y;
  },
  cat: (i, o) => cat(list(i), o.dim),
  stack: (i, o) => stack(list(i), o.dim),
  slice: (i, o) => x(i).slice(o.dim, o.start, o.end, o.step),
  narrow: (i, o) => x(i).narrow(o.dim, o.start, o.length),
  indexSelect: (i, o) => x(i).indexSelect(o.dim, tensorInput(i, "index")),
  gather: (i, o) => x(i).gather(o.dim, tensorInput(i, "index")),
};

goldenSuite(golden, runners);
