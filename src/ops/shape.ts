/**
 * Shape ops. `reshape` shares storage; the others copy through the
 * backend's strided kernels, so every tensor stays contiguous.
 *
 * @module
 */

import { record } from "../autograd.ts";
import { fmtShape, ShapeError } from "../errors.ts";
import { shareStorage, StorageRef, type Tensor } from "../tensor.ts";
import {
  backendOf,
  checkShape,
  contiguousStrides,
  normDim,
  requireInt,
  sizeOf,
  wrap,
} from "./_util.ts";
import { sumTo } from "./elementwise.ts";

/** A new shape with one -1 resolved; throws ShapeError when sizes differ. */
export function resolveShape(
  op: string,
  from: readonly number[],
  to: readonly number[],
): number[] {
  const n = sizeOf(from);
  const out = [...to];
  const neg = out.indexOf(-1);
  if (neg !== out.lastIndexOf(-1)) {
    throw new ShapeError(
      `Cannot ${op} to ${fmtShape(to)}: only one dim can be -1`,
    );
  }
  if (neg >= 0) {
    const rest = sizeOf(out.filter((_, i) => i !== neg));
    if (rest === 0 || n % rest !== 0) {
      throw new ShapeError(
        `Cannot ${op} tensor of shape ${fmtShape(from)} (${n} elements) to ${
          fmtShape(to)
        }`,
      );
    }
    out[neg] = n / rest;
  }
  checkShape(op, out);
  if (sizeOf(out) !== n) {
    throw new ShapeError(
      `Cannot ${op} tensor of shape ${fmtShape(from)} (${n} elements) to ${
        fmtShape(to)
      } (${sizeOf(out)} elements)`,
    );
  }
  return out;
}

/**
 * Same data, new shape (shares storage).
 *
 * @example One dimension inferred with -1
 * ```ts
 * import { arange, reshape } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(reshape(arange(6), [2, -1]).toArray(), [[0, 1, 2], [3, 4, 5]]);
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = resolveShape("reshape", x.shape, shape);
  if (s.length === x.shape.length && s.every((d, i) => d === x.shape[i])) {
    return x;
  }
  void x.storage; // throws if disposed
  const y = shareStorage(x, s);
  return record(y, [x], "reshape", (g) => [reshape(g, x.shape)]);
}

/** Copies a strided view of `x` into a new contiguous tensor; no autograd. */
export function viewCopy(
  x: Tensor,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): Tensor {
  const be = x.backend;
  return wrap(be, be.stridedCopy(x.storage, shape, strides, offset), shape);
}

/**
 * Reorders dims.
 *
 * @example NHWC to NCHW
 * ```ts
 * import { permute, zeros } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(permute(zeros([2, 28, 28, 3]), [0, 3, 1, 2]).shape, [2, 3, 28, 28]);
 * ```
 */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const nd = x.ndim;
  const p = dims.map((d) => normDim("permute", d, nd, x.shape));
  if (p.length !== nd || new Set(p).size !== nd) {
    throw new ShapeError(
      `Cannot permute tensor of shape ${fmtShape(x.shape)} with dims ${
        fmtShape(dims)
      }: expected a permutation of ${nd} dims`,
    );
  }
  if (p.every((d, i) => d === i)) return x;
  const st = contiguousStrides(x.shape);
  const y = viewCopy(x, p.map((d) => x.shape[d]), p.map((d) => st[d]), 0);
  const inv = new Array<number>(nd);
  p.forEach((d, i) => (inv[d] = i));
  const op = { name: "permute", attrs: { perm: p } };
  return record(y, [x], op, (g) => [permute(g, inv)]);
}

/** Swaps two dims. */
export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const a = normDim("transpose", dim0, x.ndim, x.shape);
  const b = normDim("transpose", dim1, x.ndim, x.shape);
  const p = [...x.shape.keys()];
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

/** Flattens dims `startDim..endDim` into one. */
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim("flatten", startDim, x.ndim, x.shape);
  const e = normDim("flatten", endDim, x.ndim, x.shape);
  if (s > e) {
    throw new ShapeError(
      `Cannot flatten tensor of shape ${
        fmtShape(x.shape)
      }: startDim ${startDim} comes after endDim ${endDim}`,
    );
  }
  const shape = [
    ...x.shape.slice(0, s),
    sizeOf(x.shape.slice(s, e + 1)),
    ...x.shape.slice(e + 1),
  ];
  return reshape(x, shape);
}

/** Drops size-1 dims (only `dim` when given). */
export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normDim("squeeze", dim, x.ndim, x.shape);
  if (x.shape[d] !== 1) return x;
  return reshape(x, x.shape.filter((_, i) => i !== d));
}

/** Inserts a size-1 dim at `dim`. */
export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim("unsqueeze", dim, x.ndim + 1, x.shape);
  const s = [...x.shape];
  s.splice(d, 0, 1);
  return reshape(x, s);
}

/** Broadcasts to `shape` (-1 keeps a dim); the copy is real. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.ndim;
  if (lead < 0) {
    throw new ShapeError(
      `Cannot expand tensor of shape ${fmtShape(x.shape)} to ${
        fmtShape(shape)
      }: fewer dims`,
    );
  }
  const target = shape.map((d, i) => (d === -1 ? x.shape[i - lead] : d));
  const st = contiguousStrides(x.shape);
  const strides = target.map((d, i) => {
    if (i < lead) return 0;
    const src = x.shape[i - lead];
    if (src === d) return st[i - lead];
    if (src === 1) return 0;
    throw new ShapeError(
      `Cannot expand tensor of shape ${fmtShape(x.shape)} to ${
        fmtShape(shape)
      }: dim ${i} has size ${src}, which is not 1`,
    );
  });
  checkShape("expand", target);
  if (target.length === x.ndim && target.every((d, i) => d === x.shape[i])) {
    return x;
  }
  const y = viewCopy(x, target, strides, 0);
  return record(y, [x], "expand", (g) => [sumTo(g, x.shape)]);
}

/** Python slicing `x[start:end:step]` on one dim. */
export function slice(
  x: Tensor,
  dim: number,
  start: number,
  end?: number,
  step = 1,
): Tensor {
  const d = normDim("slice", dim, x.ndim, x.shape);
  const size = x.shape[d];
  if (!Number.isInteger(step) || step <= 0) {
    throw new ShapeError(
      `Cannot slice: step ${step} must be a positive integer`,
    );
  }
  const clampIdx = (i: number) =>
    Math.min(Math.max(i < 0 ? i + size : i, 0), size);
  const s = clampIdx(start);
  const e = Math.max(clampIdx(end ?? size), s);
  const len = Math.ceil((e - s) / step);
  const st = contiguousStrides(x.shape);
  const shape = [...x.shape];
  shape[d] = len;
  const strides = [...st];
  strides[d] = st[d] * step;
  const offset = s * st[d];
  const y = viewCopy(x, shape, strides, offset);
  const op = { name: "slice", attrs: { dim: d, start: s, end: e, step } };
  return record(y, [x], op, (g) => {
    const be = g.backend;
    const out = be.zeros("float32", x.numel());
    be.stridedWrite(out, shape, strides, offset, g.storage);
    return [wrap(be, out, x.shape)];
  });
}

/**
 * Concatenates along `dim`; all other sizes must match.
 *
 * @example Two batches joined
 * ```ts
 * import { cat, ones, zeros } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(cat([zeros([2, 3]), ones([1, 3])]).shape, [3, 3]);
 * ```
 */
export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) {
    throw new ShapeError("Cannot cat: expected at least one tensor");
  }
  const ref = tensors[0];
  const be = backendOf("cat", ...tensors);
  const d = normDim("cat", dim, ref.ndim, ref.shape);
  for (const t of tensors) {
    if (
      t.ndim !== ref.ndim ||
      t.shape.some((s, i) => i !== d && s !== ref.shape[i])
    ) {
      throw new ShapeError(
        `Cannot cat tensors of shapes ${
          tensors.map((u) => fmtShape(u.shape)).join(", ")
        } along dim ${dim}: sizes must match except in that dim`,
      );
    }
    if (t.dtype !== ref.dtype) {
      throw new ShapeError(
        `Cannot cat tensors of dtypes ${
          tensors.map((u) => u.dtype).join(", ")
        }`,
      );
    }
  }
  const shape = [...ref.shape];
  shape[d] = tensors.reduce((acc, t) => acc + t.shape[d], 0);
  const out = be.zeros(ref.dtype, sizeOf(shape));
  const st = contiguousStrides(shape);
  let off = 0;
  for (const t of tensors) {
    if (t.numel() > 0) {
      be.stridedWrite(out, t.shape, st, off * st[d], t.storage);
    }
    off += t.shape[d];
  }
  const y = wrap(be, out, shape);
  return record(y, tensors, { name: "cat", attrs: { dim: d } }, (g) => {
    let o = 0;
    return tensors.map((t) => {
      const part = t.requiresGrad ? slice(g, d, o, o + t.shape[d]) : null;
      o += t.shape[d];
      return part;
    });
  });
}

/** Stacks equal-shaped tensors along a new dim. */
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) {
    throw new ShapeError("Cannot stack: expected at least one tensor");
  }
  const s0 = tensors[0].shape;
  for (const t of tensors) {
    if (t.shape.join() !== s0.join()) {
      throw new ShapeError(
        `Cannot stack tensors of shapes ${
          tensors.map((u) => fmtShape(u.shape)).join(", ")
        }: all shapes must be equal`,
      );
    }
  }
  const d = normDim("stack", dim, s0.length + 1, s0);
  return cat(tensors.map((t) => unsqueeze(t, d)), d);
}

/** Picks entries of `dim` by a 1-D int32 index. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  requireInt("indexSelect", index);
  const be = backendOf("indexSelect", x, index);
  const d = normDim("indexSelect", dim, x.ndim, x.shape);
  if (index.ndim > 1) {
    throw new ShapeError(
      `Cannot indexSelect: index of shape ${fmtShape(index.shape)} must be 1-D`,
    );
  }
  const idx = index.data();
  for (const i of idx) {
    if (i < 0 || i >= x.shape[d]) {
      throw new ShapeError(
        `Cannot indexSelect: index ${i} is out of range for dim ${d} of size ${
          x.shape[d]
        } (shape ${fmtShape(x.shape)})`,
      );
    }
  }
  const outer = sizeOf(x.shape.slice(0, d));
  const inner = sizeOf(x.shape.slice(d + 1));
  const shape = [...x.shape];
  shape[d] = index.numel();
  const y = wrap(
    be,
    be.indexSelect(x.storage, outer, x.shape[d], inner, index.storage),
    shape,
  );
  const op = { name: "indexSelect", attrs: { dim: d, index } };
  return record(y, [x], op, (g) => {
    const out = be.zeros("float32", x.numel());
    be.indexAdd(out, outer, x.shape[d], inner, index.storage, g.storage);
    return [wrap(be, out, x.shape)];
  });
}

/**
 * `torch.gather`: picks along `dim` by an int32 index of the same rank.
 *
 * @example The logit of each sample's own class
 * ```ts
 * import { gather, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const logits = tensor([[0.5, 1.5], [2.5, 3.5]]);
 * const labels = tensor([[1], [0]], { dtype: "int32" });
 * assert.deepEqual(gather(logits, 1, labels).toArray(), [[1.5], [2.5]]);
 * ```
 */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  requireInt("gather", index);
  const be = backendOf("gather", x, index);
  const d = normDim("gather", dim, x.ndim, x.shape);
  if (index.ndim !== x.ndim) {
    throw new ShapeError(
      `Cannot gather: index of shape ${
        fmtShape(index.shape)
      } must have as many dims as input of shape ${fmtShape(x.shape)}`,
    );
  }
  for (let i = 0; i < x.ndim; i++) {
    if (i !== d && index.shape[i] !== x.shape[i]) {
      throw new ShapeError(
        `Cannot gather: index of shape ${
          fmtShape(index.shape)
        } must match input of shape ${fmtShape(x.shape)} except in dim ${d}`,
      );
    }
  }
  const idx = index.data();
  for (const i of idx) {
    if (i < 0 || i >= x.shape[d]) {
      throw new ShapeError(
        `Cannot gather: index ${i} is out of range for dim ${d} of size ${
          x.shape[d]
        }`,
      );
    }
  }
  const outer = sizeOf(x.shape.slice(0, d));
  const inner = sizeOf(x.shape.slice(d + 1));
  const m = index.shape[d];
  const y = wrap(
    be,
    be.gather(x.storage, outer, x.shape[d], inner, index.storage, m),
    index.shape,
  );
  const op = { name: "gather", attrs: { dim: d, index } };
  return record(y, [x], op, (g) => {
    const out = be.zeros("float32", x.numel());
    be.scatterAdd(out, outer, x.shape[d], inner, index.storage, m, g.storage);
    return [wrap(be, out, x.shape)];
  });
}

/** A copy that shares no storage. */
export function clone(x: Tensor): Tensor {
  const be = x.backend;
  const s = be.zeros(x.dtype, x.numel());
  be.assign(s, x.storage);
  const y = wrap(be, s, x.shape);
  return record(y, [x], "clone", (g) => [g]);
}

export { StorageRef };
