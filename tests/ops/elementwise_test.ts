import { type Tensor, where } from "../../mod.ts";
import {
  goldenSuite,
  type Inputs,
  loadGolden,
  type OpRunner,
  tensorInput,
} from "../_helpers.ts";

const golden = await loadGolden("elementwise");

const x = (i: Inputs): Tensor => tensorInput(i, "x");
const other = (i: Inputs): Tensor | number => i.other;

const binary: Record<string, (a: Tensor, b: Tensor | number) => Tensor> = {
  add: (a, b) => a.add(b),
  sub: (a, b) => a.sub(b),
  mul: (a, b) => a.mul(b),
  div: (a, b) => a.div(b),
  pow: (a, b) => a.pow(b),
  maximum: (a, b) => a.maximum(b),
  minimum: (a, b) => a.minimum(b),
  eq: (a, b) => a.eq(b),
  ne: (a, b) => a.ne(b),
  lt: (a, b) => a.lt(b),
  le: (a, b) => a.le(b),
  gt: (a, b) => a.gt(b),
  ge: (a, b) => a.ge(b),
};

const unary: Record<string, (a: Tensor) => Tensor> = {
  neg: (a) => a.neg(),
  exp: (a) => a.exp(),
  log: (a) => a.log(),
  sqrt: (a) => a.sqrt(),
  rsqrt: (a) => a.rsqrt(),
  abs: (a) => a.abs(),
  relu: (a) => a.relu(),
  sigmoid: (a) => a.sigmoid(),
  tanh: (a) => a.tanh(),
  square: (a) => a.square(),
};

const runners: Record<string, OpRunner> = {
  clamp: (i, o) => x(i).clamp(o.min, o.max),
  where: (i) =>
    where(tensorInput(i, "condition"), x(i), tensorInput(i, "other")),
};
for (const [op, f] of Object.entries(binary)) {
  runners[op] = (i) => f(x(i), other(i));
}
for (const [op, f] of Object.entries(unary)) {
  runners[op] = (i) => f(x(i));
}

goldenSuite(golden, runners);
