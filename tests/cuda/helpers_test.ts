/**
 * The CUDA backend's pure helpers: dimension coalescing, compile targets,
 * the row-major GEMM mapping and launch shapes (the allocator's are in
 * allocator_test.ts). No library is opened.
 */

import assert from "node:assert/strict";
import { coalesce, isFlat } from "../../src/backend/cuda/layout.ts";
import { chooseTarget } from "../../src/backend/cuda/compiler.ts";
import {
  cublasGemmArgs,
  getCudaMathMode,
  setCudaMathMode,
} from "../../src/backend/cuda/gemm.ts";
import { reduceShape } from "../../src/backend/cuda/reduce.ts";
import { gridFor } from "../../src/backend/cuda/kernels.ts";

Deno.test("coalesce() merges dimensions every operand walks as one", () => {
  // contiguous [2, 3, 4] is one dimension of 24
  assert.deepEqual(coalesce([2, 3, 4], [[12, 4, 1], [12, 4, 1]]), {
    shape: [24],
    strides: [[1], [1]],
  });
  // broadcasting a row over [2, 3, 4]: the last two dims merge, the first stays
  assert.deepEqual(coalesce([2, 3, 4], [[12, 4, 1], [0, 4, 1]]), {
    shape: [2, 12],
    strides: [[12, 1], [0, 1]],
  });
  // size-1 dimensions vanish; a transpose does not merge
  assert.deepEqual(coalesce([1, 3, 1, 2], [[6, 1, 6, 3]]), {
    shape: [3, 2],
    strides: [[1, 3]],
  });
  assert.deepEqual(coalesce([1, 1], [[1, 1]]), { shape: [], strides: [[]] });
  assert.ok(isFlat(coalesce([2, 3], [[3, 1], [3, 1]])));
  assert.ok(isFlat(coalesce([], [[], []])));
  assert.ok(!isFlat(coalesce([2, 3], [[3, 1], [0, 1]])));
  assert.ok(!isFlat(coalesce([6], [[2]])));
});

Deno.test("chooseTarget() compiles CUBIN for a known sm_XY and PTX above it", () => {
  assert.deepEqual(chooseTarget(90, [75, 80, 90, 100]), {
    arch: "sm_90",
    kind: "cubin",
  });
  assert.deepEqual(chooseTarget(103, [75, 80, 90, 100]), {
    arch: "compute_100",
    kind: "ptx",
  });
  assert.throws(() => chooseTarget(60, [75, 80]), /sm_60/);
});

Deno.test("cublasGemmArgs() maps a row-major product to column-major cuBLAS", () => {
  // C[2,3] = A[2,4] B[4,3]: C^T = B^T A^T, B first, ld = stored row length
  assert.deepEqual(
    cublasGemmArgs(2, 3, 4, {
      transA: false,
      transB: false,
      batch: 5,
      strideA: 8,
      strideB: 0,
    }),
    {
      transa: 0,
      transb: 0,
      m: 3,
      n: 2,
      k: 4,
      lda: 3,
      ldb: 4,
      ldc: 3,
      strideA: 0,
      strideB: 8,
      strideC: 6,
    },
  );
  // y = x W^T (Linear): A = x [B, in], B = W stored [out, in]
  const lin = cublasGemmArgs(32, 10, 64, {
    transA: false,
    transB: true,
    batch: 1,
    strideA: 0,
    strideB: 0,
  });
  assert.deepEqual(
    [lin.transa, lin.transb, lin.m, lin.n, lin.k, lin.lda, lin.ldb, lin.ldc],
    [1, 0, 10, 32, 64, 64, 64, 10],
  );
  // dW = dy^T x: A = dy stored [B, out] transposed
  const dw = cublasGemmArgs(10, 64, 32, {
    transA: true,
    transB: false,
    batch: 1,
    strideA: 0,
    strideB: 0,
  });
  assert.deepEqual(
    [dw.transa, dw.transb, dw.lda, dw.ldb, dw.ldc],
    [0, 1, 64, 10, 64],
  );
});

Deno.test("setCudaMathMode() chooses TF32 and rejects anything else", () => {
  const before = getCudaMathMode();
  try {
    setCudaMathMode("tf32");
    assert.equal(getCudaMathMode(), "tf32");
    setCudaMathMode("fp32");
    assert.equal(getCudaMathMode(), "fp32");
    assert.throws(
      () => setCudaMathMode("fp16" as "fp32"),
      /"fp16" is not "fp32" or "tf32"/,
    );
  } finally {
    setCudaMathMode(before);
  }
});

Deno.test("reduceShape() and gridFor() pick launch shapes", () => {
  assert.deepEqual(reduceShape(10, 100000, 1), { kind: "rows", block: 512 });
  assert.deepEqual(reduceShape(1 << 20, 10, 1), { kind: "cols", block: 256 });
  assert.deepEqual(reduceShape(1 << 20, 1000, 1), { kind: "rows", block: 128 });
  assert.deepEqual(reduceShape(4096, 32, 64), { kind: "cols", block: 256 });
  assert.deepEqual(reduceShape(100, 5, 100), { kind: "rows", block: 32 });
  assert.equal(gridFor(0), 1);
  assert.equal(gridFor(257), 2);
  assert.equal(gridFor(1e12), 1 << 20);
});
