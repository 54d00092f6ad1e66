/**
 * The CUDA half-precision path of `amp.autocast` on the emulated device: the
 * float32 → float16 / bfloat16 kernels against PyTorch's bits
 * (`tests/amp/fixtures/half.json`), and matrix products under autocast
 * reaching `cublasGemmEx` / `cublasGemmStridedBatchedEx` with half data,
 * `CUBLAS_COMPUTE_32F` and a float32 output, computing the product of the
 * rounded inputs. This checks marshalling and arithmetic on the stand-in
 * cuBLAS only; tensor-core numerics are checked on a GPU by
 * `bench/gpu_check.sh`.
 */

import assert from "node:assert/strict";
import { amp } from "../../mod.ts";
import { emulationUnavailable, MockCuda } from "./_mock.ts";
import { CudaBackend } from "../../src/backend/cuda/backend.ts";
import { CachingAllocator } from "../../src/backend/cuda/allocator.ts";
import { CudaDevice } from "../../src/backend/cuda/device.ts";
import { NvrtcCompiler } from "../../src/backend/cuda/compiler.ts";
import { KernelCache } from "../../src/backend/cuda/kernels.ts";
import { CudaRuntime } from "../../src/backend/cuda/runtime.ts";
import { toHalf } from "../../src/backend/cuda/half.ts";
import { setCudaAutocastDtype } from "../../src/backend/cuda/autocast_state.ts";
import {
  CUBLAS_COMPUTE_32F,
  CUBLAS_GEMM_DEFAULT,
  CUDA_R_16BF,
  CUDA_R_16F,
  CUDA_R_32F,
} from "../../ffi/cublas.ts";

const noEmu = emulationUnavailable();
const mock = noEmu ? null : await MockCuda.emulated();

function test(name: string, fn: (m: MockCuda) => void) {
  Deno.test({
    name: `[cuda emulated on CPU] ${name}` +
      (noEmu ? ` (skipped: ${noEmu})` : ""),
    ignore: mock === null,
    fn: () => fn(mock!),
  });
}

const fx = JSON.parse(
  await Deno.readTextFile(
    new URL("../amp/fixtures/half.json", import.meta.url),
  ),
) as { f32_bits: number[]; f16_bits: number[]; bf16_bits: number[] };

test("the rounding kernels give PyTorch's bits", (m) => {
  const device = new CudaDevice(m.libs.driver);
  const rt = new CudaRuntime(
    device,
    new CachingAllocator({
      alloc: (b) => device.memAlloc(b),
      free: (a) => device.memFree(a),
    }),
    new KernelCache(
      device,
      new NvrtcCompiler(m.libs.nvrtc, device.computeCapability, null),
    ),
  );
  const x = new Float32Array(new Int32Array(fx.f32_bits).buffer);
  const xs = rt.alloc("float32", x.length);
  device.copyToDevice(xs.pointer, x, x.byteLength);
  for (const dtype of ["float16", "bfloat16"] as const) {
    const h = toHalf(rt, xs, dtype);
    const out = new Float32Array(h.length);
    device.copyToHost(out, h.pointer, out.byteLength);
    device.synchronize();
    const bits = new Uint16Array(out.buffer, 0, x.length);
    const want = dtype === "float16" ? fx.f16_bits : fx.bf16_bits;
    for (let i = 0; i < x.length; i++) {
      if (dtype === "bfloat16" && Number.isNaN(x[i])) {
        // PyTorch's CUDA and scalar paths write 0x7FC0, its CPU vector path 0xFFFF
        assert.equal(bits[i], 0x7fc0, `NaN at ${i}`);
        continue;
      }
      assert.equal(
        bits[i],
        want[i],
        `${dtype} of float32 bits 0x${(fx.f32_bits[i] >>> 0).toString(16)}`,
      );
    }
    rt.free(h);
  }
});

/** Row-major op(A) op(B) of float32 inputs, accumulated in double. */
function reference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
): Float32Array {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let l = 0; l < k; l++) {
        const av = transA ? a[l * m + i] : a[i * k + l];
        const bv = transB ? b[j * k + l] : b[l * n + j];
        s += av * bv;
      }
      c[i * n + j] = s;
    }
  }
  return c;
}

test("matrix products under autocast run cublasGemmEx on rounded inputs", (m) => {
  const be = new CudaBackend(m.libs, { cacheDir: null, cudnn: false });
  const [M, N, K] = [5, 3, 7];
  const a = new Float32Array(M * K).map((_, i) => Math.sin(i + 0.3) * 3.1);
  const b = new Float32Array(K * N).map((_, i) => Math.cos(i * 1.7) / 7);
  for (const dtype of ["float16", "bfloat16"] as const) {
    for (
      const [transA, transB] of [[false, false], [true, false], [false, true]]
    ) {
      const prev = setCudaAutocastDtype(dtype);
      let c;
      try {
        c = be.download(
          be.gemm(be.upload(a), be.upload(b), M, N, K, {
            transA,
            transB,
            batch: 1,
            strideA: 0,
            strideB: 0,
          }),
        );
      } finally {
        setCudaAutocastDtype(prev);
      }
      const want = reference(
        amp.roundThrough(a, dtype),
        amp.roundThrough(b, dtype),
        M,
        N,
        K,
        transA,
        transB,
      );
      assert.deepEqual([...c], [...want], `${dtype} ${transA} ${transB}`);
      const plain = reference(a, b, M, N, K, transA, transB);
      assert.notDeepEqual([...c], [...plain], "the inputs were rounded");
      assert.deepEqual(m.gemmExTypes(), {
        a: dtype === "float16" ? CUDA_R_16F : CUDA_R_16BF,
        b: dtype === "float16" ? CUDA_R_16F : CUDA_R_16BF,
        c: CUDA_R_32F,
        compute: CUBLAS_COMPUTE_32F,
        algo: CUBLAS_GEMM_DEFAULT,
      });
    }
  }
  // batched: cublasGemmStridedBatchedEx, one B shared (stride 0)
  const batch = 3;
  const ab = new Float32Array(batch * M * K).map((_, i) => Math.sin(i) * 2);
  setCudaAutocastDtype("bfloat16");
  let cb;
  try {
    cb = be.download(
      be.gemm(be.upload(ab), be.upload(b), M, N, K, {
        transA: false,
        transB: false,
        batch,
        strideA: M * K,
        strideB: 0,
      }),
    );
  } finally {
    setCudaAutocastDtype(null);
  }
  for (let i = 0; i < batch; i++) {
    const want = reference(
      amp.roundThrough(ab.subarray(i * M * K, (i + 1) * M * K), "bfloat16"),
      amp.roundThrough(b, "bfloat16"),
      M,
      N,
      K,
      false,
      false,
    );
    assert.deepEqual([...cb.subarray(i * M * N, (i + 1) * M * N)], [...want]);
  }
  // outside autocast: float32 products again
  const c32 = be.download(
    be.gemm(be.upload(a), be.upload(b), M, N, K, {
      transA: false,
      transB: false,
      batch: 1,
      strideA: 0,
      strideB: 0,
    }),
  );
  assert.deepEqual([...c32], [...reference(a, b, M, N, K, false, false)]);
  // the scratch buffers go back to the allocator: only C stays
  const [ua, ub] = [be.upload(a), be.upload(b)];
  const live = be.memoryStats().liveBytes;
  setCudaAutocastDtype("float16");
  try {
    be.gemm(ua, ub, M, N, K, {
      transA: false,
      transB: false,
      batch: 1,
      strideA: 0,
      strideB: 0,
    });
  } finally {
    setCudaAutocastDtype(null);
  }
  assert.equal(be.memoryStats().liveBytes - live, 512);
});
