/**
 * Elementwise ops with broadcasting, and their gradients.
 *
 * @module
 */

import type { BinaryOp, DType, UnaryOp } from "../backend/backend.ts";
import { type HalfDType, isHalfDType } from "../backend/types.ts";
import { roundThrough } from "../backend/half_bits.ts";
import { record, traceOp } from "../autograd.ts";
import { DTypeError, fmtShape } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import {
  backendOf,
  broadcastShapes,
  broadcastStrides,
  promote,
  requireFloat,
  wrap,
} from "./_util.ts";
import { reshape } from "./shape.ts";
import { sum } from "./reduce.ts";

/**
 * Converts to `dtype`, as `x.to(dtype)` in PyTorch: float to int truncates
 * toward zero; to float16 and bfloat16 rounds to nearest, ties to even
 * (bit for bit as PyTorch's CPU conversion); from them is exact. No
 * gradient flows through it.
 *
 * @param x The tensor.
 * @param dtype The target dtype.
 * @returns `x` itself when it already has `dtype`, else a converted copy.
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const b = x.backend;
  const y = wrap(b, b.cast(x.storage, dtype), x.shape);
  return traceOp(y, [x], "cast", { dtype });
}

/** Sums a broadcast gradient back down to `shape`. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (
    g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])
  ) {
    return g;
  }
  const lead = g.shape.length - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.shape.length; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  }
  const s = dims.length ? sum(g, dims, { keepdim: true }) : g;
  return reshape(s, shape);
}

function scalarDtype(t: Tensor, s: number, op: BinaryOp): DType {
  if (isHalfDType(t.dtype)) return "float32"; // computed in float32
  if (op === "div") return "float32";
  return t.dtype === "int32" && Number.isInteger(s) ? "int32" : "float32";
}

/**
 * A float32 result `y` of an op on half tensors rounded back to `dtype`
 * (comparisons keep their int32 masks); frees `y`.
 */
function roundBack(y: Tensor, dtype: DType): Tensor {
  if (y.dtype !== "float32") return y;
  const z = cast(y, dtype);
  y.dispose();
  return z;
}

/** Frees `t` when it is a conversion made for the op, not an operand. */
function dropTemp(t: Tensor, operand: Tensor | number): void {
  if (t !== operand) t.dispose();
}

/**
 * Runs a binary kernel with broadcasting and dtype promotion; no autograd.
 * float16 and bfloat16 operands are computed in float32 and the result
 * rounded back to the promoted half type, as PyTorch's CPU kernels do (a
 * half type with int32 or a scalar stays that half type; float16 with
 * bfloat16 gives float32; with float32 gives float32).
 */
export function rawBinary(
  op: BinaryOp,
  a: Tensor | number,
  b: Tensor | number,
): Tensor {
  if (typeof a === "number" && typeof b === "number") {
    throw new TypeError(`Cannot ${op}: at least one operand must be a tensor`);
  }
  // a scalar with a half tensor is first rounded to the half type, as
  // PyTorch wraps it in a tensor of the common dtype
  if (typeof b === "number" && isHalfDType((a as Tensor).dtype)) {
    b = roundThrough([b], (a as Tensor).dtype as HalfDType)[0];
  }
  if (typeof a === "number" && isHalfDType((b as Tensor).dtype)) {
    a = roundThrough([a], (b as Tensor).dtype as HalfDType)[0];
  }
  if (typeof b === "number") {
    const at = a as Tensor;
    const x = cast(at, scalarDtype(at, b, op));
    const be = at.backend;
    const y = wrap(be, be.binaryScalar(op, x.storage, b, false), at.shape);
    if (!isHalfDType(at.dtype)) return y;
    dropTemp(x, at);
    return roundBack(y, at.dtype);
  }
  if (typeof a === "number") {
    const x = cast(b, scalarDtype(b, a, op));
    const be = b.backend;
    const y = wrap(be, be.binaryScalar(op, x.storage, a, true), b.shape);
    if (!isHalfDType(b.dtype)) return y;
    dropTemp(x, b);
    return roundBack(y, b.dtype);
  }
  const be = backendOf(op, a, b);
  const shape = broadcastShapes(op, a.shape, b.shape);
  let dt = promote(a.dtype, b.dtype);
  if (isHalfDType(dt)) {
    const ac = cast(a, "float32"), bc = cast(b, "float32");
    const y = rawBinary(op, ac, bc);
    dropTemp(ac, a);
    dropTemp(bc, b);
    return roundBack(y, dt);
  }
  if (op === "div") dt = "float32";
  const ac = cast(a, dt), bc = cast(b, dt);
  return wrap(
    be,
    be.binary(
      op,
      ac.storage,
      broadcastStrides(a.shape, shape),
      bc.storage,
      broadcastStrides(b.shape, shape),
      shape,
    ),
    shape,
  );
}

const isT = (v: Tensor | number): v is Tensor => typeof v !== "number";

/** A binary op's name and operands, as a trace reports them. */
const binary = (name: string, a: Tensor | number, b: Tensor | number) => ({
  name,
  attrs: { operands: [a, b] },
});

/**
 * `a + b` with broadcasting, as `torch.add`.
 *
 * @example Broadcasting a row over a matrix
 * ```ts
 * import { add, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const y = add(tensor([[1, 2], [3, 4]]), tensor([10, 20]));
 * assert.deepEqual(y.toArray(), [[11, 22], [13, 24]]);
 * ```
 */
export function add(a: Tensor | number, b: Tensor | number): Tensor {
  const y = rawBinary("add", a, b);
  return record(y, [a, b].filter(isT), binary("add", a, b), (g) => {
    const out: (Tensor | null)[] = [];
    if (isT(a)) out.push(sumTo(g, a.shape));
    if (isT(b)) out.push(sumTo(g, b.shape));
    return out;
  });
}

/** `a - b` with broadcasting. */
export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  const y = rawBinary("sub", a, b);
  return record(y, [a, b].filter(isT), binary("sub", a, b), (g) => {
    const out: (Tensor | null)[] = [];
    if (isT(a)) out.push(sumTo(g, a.shape));
    if (isT(b)) out.push(sumTo(neg(g), b.shape));
    return out;
  });
}

/** `a * b` with broadcasting. */
export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  const y = rawBinary("mul", a, b);
  return record(y, [a, b].filter(isT), binary("mul", a, b), (g) => {
    const out: (Tensor | null)[] = [];
    if (isT(a)) {
      out.push(a.requiresGrad ? sumTo(rawBinary("mul", g, b), a.shape) : null);
    }
    if (isT(b)) {
      out.push(b.requiresGrad ? sumTo(rawBinary("mul", g, a), b.shape) : null);
    }
    return out;
  });
}

/** `a / b` (true division) with broadcasting. */
export function div(a: Tensor | number, b: Tensor | number): Tensor {
  const y = rawBinary("div", a, b);
  return record(y, [a, b].filter(isT), binary("div", a, b), (g) => {
    const out: (Tensor | null)[] = [];
    if (isT(a)) {
      out.push(a.requiresGrad ? sumTo(rawBinary("div", g, b), a.shape) : null);
    }
    if (isT(b)) {
      // d(a/b)/db = -a / b^2 = -y / b
      out.push(
        b.requiresGrad
          ? sumTo(neg(rawBinary("mul", g, rawBinary("div", y, b))), b.shape)
          : null,
      );
    }
    return out;
  });
}

/** `a ** b` with broadcasting. */
export function pow(a: Tensor | number, b: Tensor | number): Tensor {
  const y = rawBinary("pow", a, b);
  return record(y, [a, b].filter(isT), binary("pow", a, b), (g) => {
    const out: (Tensor | null)[] = [];
    if (isT(a)) {
      if (!a.requiresGrad) out.push(null);
      else if (typeof b === "number") {
        out.push(
          b === 0 ? rawBinary("mul", g, 0) : rawBinary(
            "mul",
            rawBinary("mul", g, rawBinary("pow", a, b - 1)),
            b,
          ),
        );
      } else {
        // b * a^(b-1), with 0 where b == 0 (PyTorch's convention)
        const bm1 = rawBinary("sub", b, 1);
        const d = rawBinary("mul", b, rawBinary("pow", a, bm1));
        const masked = whereRaw(rawBinary("eq", b, 0), 0, d);
        out.push(sumTo(rawBinary("mul", g, masked), a.shape));
      }
    }
    if (isT(b)) {
      if (!b.requiresGrad) out.push(null);
      else {
        // a^b * log(a), with 0 where a == 0 and b >= 0
        const la = typeof a === "number" ? Math.log(a) : unaryRaw("log", a);
        const d = rawBinary("mul", y, la);
        const masked = typeof a === "number"
          ? (a === 0 ? whereRaw(rawBinary("ge", b, 0), 0, d) : d)
          : whereRaw(
            rawBinary("mul", rawBinary("eq", a, 0), rawBinary("ge", b, 0)),
            0,
            d,
          );
        out.push(sumTo(rawBinary("mul", g, masked), b.shape));
      }
    }
    return out;
  });
}

function minmax(
  op: "maximum" | "minimum",
  a: Tensor | number,
  b: Tensor | number,
): Tensor {
  const y = rawBinary(op, a, b);
  return record(y, [a, b].filter(isT), binary(op, a, b), (g) => {
    // ties share the gradient equally, as PyTorch does
    const out: (Tensor | null)[] = [];
    const side = (self: Tensor | number, other: Tensor | number) => {
      const win = rawBinary(op === "maximum" ? "gt" : "lt", self, other);
      const tie = rawBinary("eq", self, other);
      const w = rawBinary(
        "add",
        cast(win, "float32"),
        rawBinary("mul", cast(tie, "float32"), 0.5),
      );
      return rawBinary("mul", g, w);
    };
    if (isT(a)) out.push(sumTo(side(a, b), a.shape));
    if (isT(b)) out.push(sumTo(side(b, a), b.shape));
    return out;
  });
}

/** Elementwise maximum with broadcasting (NaN propagates). */
export function maximum(a: Tensor | number, b: Tensor | number): Tensor {
  return minmax("maximum", a, b);
}

/** Elementwise minimum with broadcasting (NaN propagates). */
export function minimum(a: Tensor | number, b: Tensor | number): Tensor {
  return minmax("minimum", a, b);
}

/** A comparison giving an int32 0/1 mask. */
export function compare(
  op: "eq" | "ne" | "lt" | "le" | "gt" | "ge",
  a: Tensor | number,
  b: Tensor | number,
): Tensor {
  const y = rawBinary(op, a, b);
  return traceOp(y, [a, b].filter(isT), op, { operands: [a, b] });
}

/**
 * Runs a unary kernel; no autograd. int32 gives float32; float16 and
 * bfloat16 are computed in float32 and rounded back.
 */
export function unaryRaw(op: UnaryOp, x: Tensor): Tensor {
  const xf = cast(x, "float32");
  const y = wrap(x.backend, x.backend.unary(op, xf.storage), x.shape);
  if (!isHalfDType(x.dtype)) return y;
  xf.dispose();
  return roundBack(y, x.dtype);
}

function unaryOp(
  op: UnaryOp,
  x: Tensor,
  grad: (g: Tensor, x: Tensor, y: Tensor) => Tensor,
): Tensor {
  const y = unaryRaw(op, x);
  return record(y, [x], op, (g) => [grad(g, x, y)]);
}

/** `-x`. */
export function neg(x: Tensor): Tensor {
  if (x.dtype === "int32") return rawBinary("mul", x, -1);
  return unaryOp("neg", x, (g) => unaryRaw("neg", g));
}
/** `e^x`. */
export function exp(x: Tensor): Tensor {
  return unaryOp("exp", x, (g, _x, y) => rawBinary("mul", g, y));
}
/** Natural logarithm. */
export function log(x: Tensor): Tensor {
  return unaryOp("log", x, (g, x) => rawBinary("div", g, x));
}
/** Square root. */
export function sqrt(x: Tensor): Tensor {
  return unaryOp(
    "sqrt",
    x,
    (g, _x, y) => rawBinary("div", g, rawBinary("mul", y, 2)),
  );
}
/** `1 / sqrt(x)`. */
export function rsqrt(x: Tensor): Tensor {
  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
  return unaryOp(
    "rsqrt",
    x,
    (g, _x, y) =>
      rawBinary("mul", g, rawBinary("mul", rawBinary("pow", y, 3), -0.5)),
  );
}
/** Absolute value (int32 stays int32). */
export function abs(x: Tensor): Tensor {
  if (x.dtype === "int32") {
    return cast(unaryRaw("abs", x), "int32");
  }
  return unaryOp("abs", x, (g, x) => rawBinary("mul", g, unaryRaw("sign", x)));
}
/** `x * x`. */
export function square(x: Tensor): Tensor {
  return unaryOp(
    "square",
    x,
    (g, x) => rawBinary("mul", g, rawBinary("mul", x, 2)),
  );
}
/** `max(x, 0)`. */
export function relu(x: Tensor): Tensor {
  return unaryOp(
    "relu",
    x,
    (g, _x, y) => rawBinary("reluGrad", g, y),
  );
}
/** Logistic sigmoid. */
export function sigmoid(x: Tensor): Tensor {
  return unaryOp(
    "sigmoid",
    x,
    (g, _x, y) =>
      rawBinary("mul", g, rawBinary("mul", y, rawBinary("sub", 1, y))),
  );
}
/** Hyperbolic tangent. */
export function tanh(x: Tensor): Tensor {
  return unaryOp(
    "tanh",
    x,
    (g, _x, y) =>
      rawBinary("mul", g, rawBinary("sub", 1, rawBinary("mul", y, y))),
  );
}
/** Sign: -1, 0 or 1 (no gradient). */
export function sign(x: Tensor): Tensor {
  return traceOp(unaryRaw("sign", x), [x], "sign");
}

/** Clamps to `[min, max]`; the gradient passes where `min <= x <= max`. */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  if (min === undefined && max === undefined) {
    throw new TypeError(
      `Cannot clamp tensor of shape ${
        fmtShape(x.shape)
      }: give min, max or both`,
    );
  }
  const lo = min ?? -Infinity, hi = max ?? Infinity;
  if (isHalfDType(x.dtype)) {
    // bounds rounded to the half type first, as PyTorch's kernel reads them
    const r = (v?: number) =>
      v === undefined ? v : roundThrough([v], x.dtype as HalfDType)[0];
    const xf = cast(x, "float32");
    const y = clamp(xf, r(min), r(max));
    xf.dispose();
    return traceOp(roundBack(y, x.dtype), [x], "clamp", { min: lo, max: hi });
  }
  const be = x.backend;
  const y = wrap(be, be.clamp(x.storage, lo, hi), x.shape);
  if (x.dtype !== "float32") return y;
  const op = { name: "clamp", attrs: { min: lo, max: hi } };
  return record(y, [x], op, (g) => {
    const inside = rawBinary(
      "mul",
      rawBinary("ge", x, lo),
      rawBinary("le", x, hi),
    );
    return [whereRaw(inside, g, 0)];
  });
}

/** `where` without autograd. */
export function whereRaw(
  cond: Tensor,
  a: Tensor | number,
  b: Tensor | number,
): Tensor {
  const ref = isT(a) ? a : isT(b) ? b : cond;
  const be = backendOf("where", cond, ...[a, b].filter(isT));
  let dt: DType = isT(a) && isT(b)
    ? promote(a.dtype, b.dtype)
    : isT(a)
    ? (Number.isInteger(b) ? a.dtype : "float32")
    : isT(b)
    ? (Number.isInteger(a) ? b.dtype : "float32")
    : "float32";
  if (!isT(a) && !isT(b)) dt = "float32";
  void ref;
  if (isHalfDType(dt)) {
    // computed in float32, rounded back
    const f = (v: Tensor | number) =>
      isT(v) ? cast(v, "float32") : roundThrough([v], dt as HalfDType)[0];
    const af = f(a), bf = f(b);
    const y = whereRaw(cond, af, bf);
    if (isT(af)) dropTemp(af, a);
    if (isT(bf)) dropTemp(bf, b);
    return roundBack(y, dt);
  }
  const toT = (v: Tensor | number): Tensor =>
    isT(v) ? cast(v, dt) : wrap(
      be,
      be.upload(dt === "int32" ? Int32Array.of(v) : Float32Array.of(v)),
      [],
    );
  const at = toT(a), bt = toT(b);
  let shape = broadcastShapes("where", cond.shape, at.shape);
  shape = broadcastShapes("where", shape, bt.shape);
  const y = be.where(
    cond.storage,
    broadcastStrides(cond.shape, shape),
    at.storage,
    broadcastStrides(at.shape, shape),
    bt.storage,
    broadcastStrides(bt.shape, shape),
    shape,
  );
  const out = wrap(be, y, shape);
  if (!isT(a)) at.dispose();
  if (!isT(b)) bt.dispose();
  return out;
}

/**
 * `cond ? a : b` elementwise with broadcasting, as `torch.where`.
 *
 * @param cond An int32 (or float32) mask; nonzero selects `a`.
 * @param a Values where `cond` holds.
 * @param b Values elsewhere.
 * @returns The selection.
 */
export function where(
  cond: Tensor,
  a: Tensor | number,
  b: Tensor | number,
): Tensor {
  if (cond.dtype !== "int32" && cond.dtype !== "float32") {
    throw new DTypeError(`Cannot where: condition dtype ${cond.dtype}`);
  }
  const y = whereRaw(cond, a, b);
  const op = { name: "where", attrs: { operands: [a, b], cond } };
  return record(y, [a, b].filter(isT), op, (g) => {
    const out: (Tensor | null)[] = [];
    if (isT(a)) {
      out.push(a.requiresGrad ? sumTo(whereRaw(cond, g, 0), a.shape) : null);
    }
    if (isT(b)) {
      out.push(b.requiresGrad ? sumTo(whereRaw(cond, 0, g), b.shape) : null);
    }
    return out;
  });
}

export { requireFloat };
