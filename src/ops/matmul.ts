/**
 * Matrix products: `matmul` with PyTorch's 1-D/2-D/batched rules, and
 * `linear`.
 *
 * @module
 */

import { isGradEnabled, record, traceOp } from "../autograd.ts";
import { DTypeError, fmtShape, ShapeError } from "../errors.ts";
import { isHalfDType } from "../backend/types.ts";
import type { Tensor } from "../tensor.ts";
import {
  backendOf,
  broadcastShapes,
  checkShape,
  MAX_ELEMENTS,
  requireFloatOrHalf,
  sizeOf,
  wrap,
} from "./_util.ts";
import { cast, rawBinary, sumTo } from "./elementwise.ts";
import { expand, reshape } from "./shape.ts";
import { sum } from "./reduce.ts";

/**
 * Batched GEMM on 3-D operands `[ba, *, *]`, `[bb, *, *]` with `ba`/`bb`
 * equal or 1; no autograd. `transA`/`transB` read the stored matrices
 * transposed.
 */
export function bmm(
  a: Tensor,
  b: Tensor,
  transA: boolean,
  transB: boolean,
): Tensor {
  const be = backendOf("matmul", a, b);
  const [ba, a1, a2] = a.shape;
  const [bb, b1, b2] = b.shape;
  const m = transA ? a2 : a1;
  const k = transA ? a1 : a2;
  const n = transB ? b1 : b2;
  const batch = Math.max(ba, bb);
  if (batch * m * n > MAX_ELEMENTS) checkShape("matmul", [batch, m, n]);
  const y = be.gemm(a.storage, b.storage, m, n, k, {
    transA,
    transB,
    batch,
    strideA: ba === 1 ? 0 : a1 * a2,
    strideB: bb === 1 ? 0 : b1 * b2,
  });
  return wrap(be, y, [batch, m, n]);
}

/**
 * Matrix product with `torch.matmul`'s rules: 1-D·1-D is a dot product, a
 * 1-D operand is promoted to a matrix and the added dim removed, and batch
 * dims broadcast.
 *
 * @example A matrix times a vector
 * ```ts
 * import { matmul, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const y = matmul(tensor([[1, 2], [3, 4]]), tensor([1, 1]));
 * assert.deepEqual(y.toArray(), [3, 7]);
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  requireFloatOrHalf("matmul", a, "left operand");
  requireFloatOrHalf("matmul", b, "right operand");
  if (isHalfDType(a.dtype) || isHalfDType(b.dtype)) {
    return viaFloat32("matmul", [a, b], ([af, bf]) => matmul(af!, bf!));
  }
  if (a.ndim === 0 || b.ndim === 0) {
    throw new ShapeError(
      `Cannot matmul shapes ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      }: both need at least 1 dim`,
    );
  }
  const aShape = a.ndim === 1 ? [1, a.shape[0]] : [...a.shape];
  const bShape = b.ndim === 1 ? [b.shape[0], 1] : [...b.shape];
  const k = aShape[aShape.length - 1];
  if (bShape[bShape.length - 2] !== k) {
    throw new ShapeError(
      `Cannot matmul shapes ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      }: inner sizes ${k} and ${bShape[bShape.length - 2]} differ`,
    );
  }
  const m = aShape[aShape.length - 2];
  const n = bShape[bShape.length - 1];
  const aBatch = aShape.slice(0, -2), bBatch = bShape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes("matmul", aBatch, bBatch);
  } catch {
    throw new ShapeError(
      `Cannot matmul shapes ${fmtShape(a.shape)} and ${
        fmtShape(b.shape)
      }: batch dims ${fmtShape(aBatch)} and ${
        fmtShape(bBatch)
      } do not broadcast`,
    );
  }
  const nb = sizeOf(batch);
  // operands as 3-D, expanding batch dims only when both are batched
  const as3 = (t: Tensor, tb: number[], r: number, c: number) => {
    if (sizeOf(tb) === 1) return reshape(t, [1, r, c]);
    const full = expand(reshape(t, [...tb, r, c]), [...batch, r, c]);
    return reshape(full, [nb, r, c]);
  };
  const a3 = as3(a, aBatch, m, k);
  const b3 = as3(b, bBatch, k, n);
  const y3 = bmm(a3, b3, false, false);
  let outShape = [...batch, m, n];
  if (a.ndim === 1) outShape = [...batch, n];
  if (b.ndim === 1) outShape = a.ndim === 1 ? [...batch] : [...batch, m];
  const y = reshape(y3, outShape);
  return record(y, [a, b], "matmul", (g) => {
    const g3 = reshape(g, [nb, m, n]);
    const out: (Tensor | null)[] = [null, null];
    if (a.requiresGrad) {
      // dA = g @ B^T
      const da = bmm(g3, b3, false, true);
      out[0] = sumTo(reshape(da, [...batch, m, k]), aShape);
      out[0] = reshape(out[0], a.shape);
    }
    if (b.requiresGrad) {
      // dB = A^T @ g
      const db = bmm(a3, g3, true, false);
      out[1] = sumTo(reshape(db, [...batch, k, n]), bShape);
      out[1] = reshape(out[1], b.shape);
    }
    return out;
  });
}

/**
 * `y = x @ weight^T + bias`, as `torch.nn.functional.linear`.
 *
 * @param x Input `[..., in]`.
 * @param weight `[out, in]`.
 * @param options `bias` `[out]`.
 * @returns `[..., out]`.
 */
export function linear(
  x: Tensor,
  weight: Tensor,
  options: { bias?: Tensor | null } = {},
): Tensor {
  requireFloatOrHalf("linear", x);
  if (
    weight.ndim !== 2 || x.ndim < 1 || x.shape[x.ndim - 1] !== weight.shape[1]
  ) {
    throw new ShapeError(
      `Cannot apply linear: input of shape ${
        fmtShape(x.shape)
      } and weight of shape ${fmtShape(weight.shape)} (expected input [..., ${
        weight.shape[1]
      }])`,
    );
  }
  const [outF, inF] = weight.shape;
  const bias = options.bias ?? null;
  if (
    isHalfDType(x.dtype) || isHalfDType(weight.dtype) ||
    (bias && isHalfDType(bias.dtype))
  ) {
    return viaFloat32(
      "linear",
      [x, weight, bias],
      ([xf, wf, bf]) => linear(xf!, wf!, { bias: bf }),
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new ShapeError(
      `Cannot apply linear: bias of shape ${
        fmtShape(bias.shape)
      }, expected [${outF}]`,
    );
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  // without a graph nothing holds the views below: free them before
  // returning (a dropped view keeps the input's storage alive until the
  // collector runs)
  const needGrad = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  const rows = x.numel() / inF;
  const x2 = reshape(x, [1, rows, inF]);
  const w3 = reshape(weight, [1, outF, inF]);
  const prod = bmm(x2, w3, false, true);
  let y = reshape(prod, [...x.shape.slice(0, -1), outF]);
  if (bias) {
    // the product before the bias is in no graph (backward reads x2, w3)
    const pre = y;
    y = rawBinary("add", pre, bias);
    if (pre !== prod) pre.dispose();
  }
  if (prod !== y) prod.dispose();
  if (!needGrad) {
    if (x2 !== x) x2.dispose();
    w3.dispose();
  }
  return record(y, inputs, "linear", (g) => {
    const g3 = reshape(g, [1, rows, outF]);
    const dx = x.requiresGrad
      ? reshape(bmm(g3, w3, false, false), x.shape)
      : null;
    const dw = weight.requiresGrad
      ? reshape(bmm(g3, x2, true, false), weight.shape)
      : null;
    const out: (Tensor | null)[] = [dx, dw];
    if (bias) {
      out.push(bias.requiresGrad ? sum(reshape(g, [rows, outF]), 0) : null);
    }
    return out;
  });
}

/**
 * A matrix product of float16 or bfloat16 operands: computed in float32
 * (every half value is exact in float32, the sums accumulate in float32)
 * and rounded once to the operands' dtype, as PyTorch's CPU bfloat16
 * matmul does. Operands of different dtypes are refused, as PyTorch
 * refuses them. No gradient flows (half tensors do not require gradients).
 */
function viaFloat32(
  op: string,
  ts: readonly (Tensor | null)[],
  f: (fs: (Tensor | null)[]) => Tensor,
): Tensor {
  const present = ts.filter((t): t is Tensor => t !== null);
  const dt = present[0].dtype;
  if (present.some((t) => t.dtype !== dt)) {
    throw new DTypeError(
      `Cannot ${op}: operands of shapes ${
        present.map((t) => fmtShape(t.shape)).join(", ")
      } have dtypes ${
        present.map((t) => t.dtype).join(", ")
      }; convert them to one dtype first`,
    );
  }
  const fs = ts.map((t) => t && cast(t, "float32"));
  const y = f(fs);
  for (const t of fs) t?.dispose();
  const out = cast(y, dt);
  y.dispose();
  return traceOp(out, present, op);
}
