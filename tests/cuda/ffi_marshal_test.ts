/**
 * The CUDA backend's marshalling, against a stand-in library built from
 * `tests/fixtures/ffi_mock/mock_cuda.c` at test time: kernelParams arenas,
 * out-parameters, status-to-error conversion, and every backend method
 * running through to the launches and library calls it should make. Runs on
 * any machine with a C compiler; no GPU involved.
 */

import assert from "node:assert/strict";
import { MockCuda, mockUnavailable } from "./_mock.ts";
import { KernelArgs } from "../../src/backend/cuda/kernel_args.ts";
import { writeLayout } from "../../src/backend/cuda/layout.ts";
import { CudaDevice } from "../../src/backend/cuda/device.ts";
import { NvrtcCompiler } from "../../src/backend/cuda/compiler.ts";
import {
  cublasStatusText,
  CudaError,
  cuResultText,
  nvrtcResultText,
} from "../../src/backend/cuda/errors.ts";
import { CudaBackend } from "../../src/backend/cuda/backend.ts";
import { setCudaMathMode } from "../../src/backend/cuda/gemm.ts";
import type { CudaStorage } from "../../src/backend/cuda/runtime.ts";
import type {
  AdaptivePool2dGeometry,
  BatchNormGeometry,
  Conv2dGeometry,
  Pool2dGeometry,
} from "../../src/backend/backend.ts";

const unavailable = mockUnavailable();
const mock = unavailable ? null : new MockCuda();
const cacheRoot = Deno.makeTempDirSync({ prefix: "kdeno_cuda_cache_" });

function test(name: string, fn: (m: MockCuda) => void | Promise<void>) {
  if (!mock) {
    Deno.test({
      name: `${name} (skipped: ${unavailable})`,
      ignore: true,
      fn() {},
    });
  } else {
    Deno.test(name, () => fn(mock));
  }
}

test("KernelArgs lays parameters out at their alignment and cuLaunchKernel reads each one", (m) => {
  const kinds = ["ptr", "i32", "f64", "f32", "layout2", "u32"] as const;
  const args = new KernelArgs(kinds);
  assert.deepEqual(args.offsets, [0, 8, 16, 24, 28, 128]);
  args.ptr(0, 0x1234_5678_9abcn).i32(1, -7).f64(2, Math.PI).f32(3, 1.5)
    .u32(5, 0xffff_fffe);
  writeLayout(args, 4, { shape: [2, 3], strides: [[3, 1], [0, 1]] }, "test");

  const device = new CudaDevice(m.libs.driver);
  const mod = device.loadModule(new TextEncoder().encode("kd_test\0"));
  const fn = device.getFunction(mod, "kd_test");
  m.expect("kd_test", kinds);
  device.launch(fn, 3, 64, args.params, 128);

  const launch = m.lastLaunch();
  assert.equal(launch.name, "kd_test");
  assert.deepEqual(launch.grid, [3, 1, 1]);
  assert.deepEqual(launch.block, [64, 1, 1]);
  assert.equal(launch.shared, 128);
  assert.ok(launch.streamOk, "launched on the backend's stream");
  assert.ok(launch.extraNull, "extra is NULL");
  const p = m.lastParams(); // packed back to back: 8 4 8 4 100 4
  assert.equal(p.byteLength, 128);
  assert.equal(p.getBigUint64(0, true), 0x1234_5678_9abcn);
  assert.equal(p.getInt32(8, true), -7);
  assert.equal(p.getFloat64(12, true), Math.PI);
  assert.equal(p.getFloat32(20, true), 1.5);
  assert.equal(p.getInt32(24, true), 2, "layout ndim");
  assert.deepEqual([p.getInt32(28, true), p.getInt32(32, true)], [2, 3]);
  assert.deepEqual([p.getInt32(60, true), p.getInt32(64, true)], [3, 1]);
  assert.deepEqual([p.getInt32(92, true), p.getInt32(96, true)], [0, 1]);
  assert.equal(p.getUint32(124, true), 0xffff_fffe);
});

test("CudaDevice reads out-parameters: name, attributes, versions, addresses", (m) => {
  const device = new CudaDevice(m.libs.driver);
  assert.equal(device.name, "Mock GPU");
  assert.equal(device.computeCapability, 90);
  assert.equal(device.smCount, 132);
  assert.equal(device.driverVersion, 13000);
  m.fakeAddresses(true);
  try {
    assert.equal(device.memAlloc(1000), 0xDEAD0000n);
    assert.equal(m.lastAllocBytes(), 1000);
    assert.equal(device.memAlloc(8), 0xDEAD1000n);
    device.memFree(0xDEAD0000n);
  } finally {
    m.fakeAddresses(false);
  }
  assert.deepEqual(device.memInfo(), { free: 2 ** 30, total: 2 ** 31 });
  assert.equal(device.time(() => {}), 1.5);
});

test("status codes become errors carrying the library's own text", (m) => {
  const cu = m.libs.driver.symbols;
  assert.equal(
    cuResultText(cu, 2),
    "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory",
  );
  assert.equal(cuResultText(cu, 12345), "unknown CUresult (12345)");
  assert.equal(
    nvrtcResultText(m.libs.nvrtc.symbols, 6),
    "NVRTC_ERROR_COMPILATION (6)",
  );
  assert.equal(
    cublasStatusText(m.libs.cublas.symbols, 13),
    "CUBLAS_STATUS_EXECUTION_FAILED (13)",
  );

  const device = new CudaDevice(m.libs.driver);
  try {
    m.fail("cuStreamSynchronize", 700);
    device.synchronize();
    assert.fail("should have thrown");
  } catch (err) {
    assert.ok(err instanceof CudaError);
    assert.equal(err.code, 700);
    assert.equal(err.library, "CUDA driver");
    assert.equal(err.call, "cuStreamSynchronize");
    assert.match(
      err.message,
      /cuStreamSynchronize.*CUDA_ERROR_ILLEGAL_ADDRESS \(700\): an illegal memory access was encountered/,
    );
  }

  const compiler = new NvrtcCompiler(m.libs.nvrtc, 90, null);
  assert.throws(
    () => compiler.compile("#error broken\n", "broken.cu"),
    (err: unknown) =>
      err instanceof CudaError && err.library === "NVRTC" &&
      /nvrtcCompileProgram\(broken\.cu\)/.test(err.message) &&
      /NVRTC_ERROR_COMPILATION \(6\)/.test(err.message) &&
      /mock compile failure/.test(err.message),
  );

  m.fail("cuInit", 100);
  assert.throws(
    () => new CudaBackend(m.libs, { cacheDir: null }),
    /cuInit.*CUDA_ERROR_NO_DEVICE \(100\)/,
  );
});

test("NvrtcCompiler targets the device's sm_XY, falls back to PTX, caches on disk", (m) => {
  const dir = `${cacheRoot}/compiler`;
  const c1 = new NvrtcCompiler(m.libs.nvrtc, 90, dir);
  assert.equal(c1.arch, "sm_90");
  assert.equal(c1.kind, "cubin");
  assert.deepEqual(c1.version, [13, 0]);
  const before = m.counter("compile");
  const a = c1.compile('extern "C" __global__ void k() {}', "k.cu");
  assert.equal(a.from, "compiled");
  assert.ok(m.lastOptions().includes("--gpu-architecture=sm_90"));
  assert.equal(
    c1.compile('extern "C" __global__ void k() {}', "k.cu").from,
    "memory",
  );
  const c2 = new NvrtcCompiler(m.libs.nvrtc, 90, dir);
  const b = c2.compile('extern "C" __global__ void k() {}', "k.cu");
  assert.equal(b.from, "disk");
  assert.deepEqual(b.image, a.image);
  assert.equal(m.counter("compile"), before + 1);
  assert.equal([...Deno.readDirSync(dir)].length, 1);

  // a device newer than NVRTC: PTX for the newest architecture it knows
  const c3 = new NvrtcCompiler(m.libs.nvrtc, 130, null);
  assert.equal(c3.arch, "compute_120");
  assert.equal(c3.kind, "ptx");

  // an unwritable cache directory is not an error
  const c4 = new NvrtcCompiler(m.libs.nvrtc, 90, "/proc/kdeno-no-such-dir");
  assert.equal(c4.compile("// x", "x.cu").from, "compiled");
});

function f32(b: CudaBackend, values: number[]): CudaStorage {
  return b.upload(new Float32Array(values));
}

function i32(b: CudaBackend, values: number[]): CudaStorage {
  return b.upload(new Int32Array(values));
}

function range(n: number, scale = 1): number[] {
  return Array.from({ length: n }, (_, i) => (i % 7) * scale - 1);
}

function matmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let l = 0; l < k; l++) {
        const av = transA ? a[l * m + i] : a[i * k + l];
        const bv = transB ? b[j * k + l] : b[l * n + j];
        s += av * bv;
      }
      out.push(s);
    }
  }
  return out;
}

test("CudaBackend moves memory through the driver and reuses freed blocks", (m) => {
  const b = new CudaBackend(m.libs, { cacheDir: null });
  const data = new Float32Array([1, -2.5, 3, 4e-8, Infinity]);
  const s = b.upload(data);
  assert.equal(s.dtype, "float32");
  assert.equal(s.length, 5);
  assert.deepEqual(b.download(s), data);
  assert.deepEqual(
    b.download(b.upload(new Int32Array([7, -8]))),
    new Int32Array([7, -8]),
  );
  const view = new Float32Array([1, 2, 3, 4, 5]).subarray(2); // byteOffset 8
  assert.deepEqual([...b.download(b.upload(view))], [3, 4, 5]);
  assert.deepEqual(
    b.download(b.upload(new Float32Array(0))),
    new Float32Array(0),
  );

  b.fill(s, 0.25);
  assert.deepEqual([...b.download(s)], [0.25, 0.25, 0.25, 0.25, 0.25]);
  const z = b.zeros("int32", 3);
  b.fill(z, -3);
  assert.deepEqual([...b.download(z)], [-3, -3, -3]);
  assert.deepEqual([...b.download(b.zeros("float32", 4))], [0, 0, 0, 0]);

  const t = f32(b, [9, 8, 7, 6, 5]);
  b.assign(s, t);
  assert.deepEqual([...b.download(s)], [9, 8, 7, 6, 5]);
  assert.deepEqual([...b.download(b.cast(t, "float32"))], [9, 8, 7, 6, 5]);

  // a contiguous view is one copy from the right offset, no kernel
  m.launchLog();
  const v = b.stridedCopy(t, [2], [1], 2);
  assert.deepEqual([...b.download(v)], [7, 6]);
  b.stridedWrite(s, [2], [1], 3, v);
  assert.deepEqual([...b.download(s)], [9, 8, 7, 7, 6]);
  assert.deepEqual(m.launchLog(), []);

  // the caching allocator hands a freed block out again
  const x = b.zeros("float32", 1000);
  const addr = x.ptr;
  const allocs = m.counter("alloc");
  b.free(x);
  b.free(x); // twice is harmless
  const y = b.zeros("float32", 900); // best fit: the block x left
  assert.equal(y.ptr, addr);
  assert.equal(m.counter("alloc"), allocs, "served from the cache");
  assert.throws(() => b.download(x), /freed/);

  // out of memory with blocks cached: the cache is released and it retries
  b.free(y);
  b.free(b.zeros("float32", 3 << 18)); // a whole free 20 MiB segment
  const frees = m.counter("free");
  m.fail("cuMemAlloc_v2", 2);
  const big = b.zeros("float32", 6 << 20); // 24 MiB: no cached block fits
  assert.ok(m.counter("free") > frees, "cached blocks went back");
  b.free(big);
  const stats = b.memoryStats();
  assert.ok(stats.cachedBytes >= 24 << 20);
  b.emptyCache();
  // whole free segments went back; what stays cached is the free rest of
  // segments that still hold live blocks, as in PyTorch
  const after = b.memoryStats();
  assert.equal(after.segments, stats.segments - 1);
  assert.equal(after.cachedBytes, stats.cachedBytes - (24 << 20));
});

test("CudaBackend.gemm maps row-major products onto column-major cuBLAS", (m) => {
  const b = new CudaBackend(m.libs, { cacheDir: null });
  const state = m.blasState();
  assert.ok(state.streamOk, "cuBLAS runs on the backend's stream");
  assert.equal(state.workspace, 32 * 1024 * 1024, "workspace set after stream");
  const [M, N, K] = [3, 4, 5];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const a = new Float32Array(range(M * K, 0.5));
      const bb = new Float32Array(range(K * N, 0.25).reverse());
      const c = b.gemm(b.upload(a), b.upload(bb), M, N, K, {
        transA,
        transB,
        batch: 1,
        strideA: 0,
        strideB: 0,
      });
      assert.deepEqual(
        [...b.download(c)],
        matmul(a, bb, M, N, K, transA, transB),
        `transA=${transA} transB=${transB}`,
      );
    }
  }
  // batched, A shared across the batch (stride 0)
  const a = new Float32Array(range(M * K));
  const bb = new Float32Array(range(2 * K * N, 0.5));
  const c = b.download(
    b.gemm(b.upload(a), b.upload(bb), M, N, K, {
      transA: false,
      transB: false,
      batch: 2,
      strideA: 0,
      strideB: K * N,
    }),
  );
  assert.deepEqual(
    [...c],
    [
      ...matmul(a, bb.subarray(0, K * N), M, N, K, false, false),
      ...matmul(a, bb.subarray(K * N), M, N, K, false, false),
    ],
  );
  // k = 0 gives zeros without calling cuBLAS
  const calls = m.gemmCalls();
  const z = b.gemm(b.zeros("float32", 0), b.zeros("float32", 0), 2, 2, 0, {
    transA: false,
    transB: false,
    batch: 1,
    strideA: 0,
    strideB: 0,
  });
  assert.deepEqual([...b.download(z)], [0, 0, 0, 0]);
  assert.equal(m.gemmCalls(), calls);

  assert.equal(m.blasState().mathMode, 0, "strict fp32 by default");
  setCudaMathMode("tf32");
  try {
    b.gemm(b.upload(a), b.upload(bb), M, N, K, {
      transA: false,
      transB: false,
      batch: 1,
      strideA: 0,
      strideB: 0,
    });
    assert.equal(m.blasState().mathMode, 3, "CUBLAS_TF32_TENSOR_OP_MATH");
  } finally {
    setCudaMathMode("fp32");
  }
  m.fail("cublasSgemm_v2", 13);
  assert.throws(
    () =>
      b.gemm(b.upload(a), b.upload(bb), M, N, K, {
        transA: false,
        transB: false,
        batch: 1,
        strideA: 0,
        strideB: 0,
      }),
    /cublasSgemm_v2 \(cuBLAS\): CUBLAS_STATUS_EXECUTION_FAILED \(13\)/,
  );
});

test("CudaBackend passes each kernel the arguments its C signature takes", (m) => {
  const b = new CudaBackend(m.libs, { cacheDir: `${cacheRoot}/backend` });
  const a = f32(b, range(6));
  const row = f32(b, range(3));
  m.expect("kd_binary_add_f32_s", ["ptr", "ptr", "ptr", "u32", "layout2"]);
  const y = b.binary("add", a, [3, 1], row, [0, 1], [2, 3]);
  let p = m.lastParams();
  assert.equal(m.lastLaunch().name, "kd_binary_add_f32_s");
  assert.equal(p.getBigUint64(0, true), y.ptr);
  assert.equal(p.getBigUint64(8, true), a.ptr);
  assert.equal(p.getBigUint64(16, true), row.ptr);
  assert.equal(p.getUint32(24, true), 6);
  assert.equal(p.getInt32(28, true), 2); // ndim
  assert.deepEqual([p.getInt32(32, true), p.getInt32(36, true)], [2, 3]);
  assert.deepEqual([p.getInt32(64, true), p.getInt32(68, true)], [3, 1]);
  assert.deepEqual([p.getInt32(96, true), p.getInt32(100, true)], [0, 1]);
  assert.ok(m.lastOptions().includes("--gpu-architecture=sm_90"));
  const modules = m.counter("module");
  assert.ok(b.precompile() >= 0);
  assert.equal(m.counter("module"), modules + 9, "the 9 modules not yet used");

  const g: Conv2dGeometry = {
    n: 2,
    c: 4,
    h: 5,
    w: 6,
    k: 8,
    r: 3,
    s: 2,
    oh: 3,
    ow: 5,
    stride: [2, 1],
    padding: [1, 0],
    dilation: [1, 1],
    groups: 2,
  };
  const x = f32(b, range(2 * 4 * 5 * 6));
  const wt = f32(b, range(8 * 2 * 3 * 2));
  m.expect("kd_conv2d_fwd", ["ptr", "ptr", "ptr", "ptr", "u32", "conv"]);
  const out = b.conv2d(x, wt, null, g);
  p = m.lastParams();
  assert.equal(p.getBigUint64(0, true), out.ptr);
  assert.equal(p.getBigUint64(24, true), 0n, "no bias: NULL");
  assert.equal(p.getUint32(32, true), 2 * 8 * 3 * 5);
  const fields = Array.from(
    { length: 16 },
    (_, i) => p.getInt32(36 + 4 * i, true),
  );
  assert.deepEqual(fields, [2, 4, 5, 6, 8, 3, 2, 3, 5, 2, 1, 1, 0, 1, 1, 2]);
  assert.equal(m.lastLaunch().grid[0], 1);

  m.expect("kd_adam", [
    "ptr",
    "ptr",
    "ptr",
    "ptr",
    "ptr",
    "u32",
    "f32",
    "f32",
    "f32",
    "f32",
    "f32",
    "i32",
    "f32",
    "f32",
    "i32",
  ]);
  const prm = f32(b, range(6));
  b.adamStep(prm, a, b.zeros("float32", 6), b.zeros("float32", 6), null, {
    lr: 0.01,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0.5,
    decoupled: true,
    step: 2,
    amsgrad: false,
  });
  p = m.lastParams();
  assert.equal(p.getBigUint64(32, true), 0n, "no maxExpAvgSq: NULL");
  assert.equal(p.getUint32(40, true), 6);
  assert.equal(p.getInt32(64, true), 1, "decoupled");
  assert.ok(Math.abs(p.getFloat32(68, true) - 0.01 / (1 - 0.9 ** 2)) < 1e-7);
  assert.ok(
    Math.abs(p.getFloat32(72, true) - Math.sqrt(1 - 0.999 ** 2)) < 1e-7,
  );
});

test("every CudaBackend method runs through to the kernels it should launch", (m) => {
  const b = new CudaBackend(m.libs, { cacheDir: `${cacheRoot}/backend` });
  const x = f32(b, range(24));
  const xi = i32(b, range(24));
  const idx = i32(b, [2, 0, 1]);
  const pg: Pool2dGeometry = {
    n: 1,
    c: 2,
    h: 4,
    w: 3,
    oh: 2,
    ow: 1,
    kernel: [2, 3],
    stride: [2, 3],
    padding: [0, 0],
    dilation: [1, 1],
    countIncludePad: true,
  };
  const ag: AdaptivePool2dGeometry = { n: 1, c: 2, h: 4, w: 3, oh: 2, ow: 2 };
  const bg: BatchNormGeometry = {
    n: 1,
    c: 2,
    hw: 12,
    eps: 1e-5,
    momentum: 0.1,
    activation: "none",
  };
  const cg: Conv2dGeometry = {
    n: 1,
    c: 2,
    h: 4,
    w: 3,
    k: 3,
    r: 1,
    s: 1,
    oh: 4,
    ow: 3,
    stride: [1, 1],
    padding: [0, 0],
    dilation: [1, 1],
    groups: 1,
  };
  const w3 = f32(b, range(6));
  const c2 = f32(b, [1, 2]);
  const cases: [string, () => unknown, string[]][] = [
    ["unary", () => b.unary("sigmoid", x), ["kd_unary_sigmoid"]],
    ["binary flat", () => b.binary("mul", x, [1], x, [1], [24]), [
      "kd_binary_mul_f32",
    ]],
    ["binary compare", () => b.binary("le", xi, [1], xi, [0], [24]), [
      "kd_binary_le_i32_s",
    ]],
    ["binaryScalar", () => b.binaryScalar("pow", x, 2, true), [
      "kd_bscalar_pow_f32",
    ]],
    ["where", () => b.where(xi, [1], x, [1], x, [0], [24]), ["kd_where_i32"]],
    ["clamp", () => b.clamp(xi, -Infinity, 3), ["kd_clamp_i32"]],
    ["cast", () => b.cast(x, "int32"), ["kd_cast_f32_i32"]],
    ["axpy", () => b.axpy(x, x, 0.5), ["kd_axpy_f32"]],
    ["stridedCopy", () => b.stridedCopy(x, [4, 6], [1, 4], 0), [
      "kd_strided_copy",
    ]],
    ["stridedWrite", () => b.stridedWrite(x, [2, 3], [1, 2], 1, w3), [
      "kd_strided_write",
    ]],
    ["indexSelect", () => b.indexSelect(x, 2, 4, 3, idx), ["kd_index_select"]],
    ["indexAdd", () => b.indexAdd(x, 2, 4, 3, idx, f32(b, range(18))), [
      "kd_index_add_f32",
    ]],
    ["gather", () => b.gather(x, 2, 4, 3, i32(b, range(6).map(Math.abs)), 1), [
      "kd_gather",
    ]],
    [
      "scatterAdd",
      () =>
        b.scatterAdd(
          xi,
          2,
          4,
          3,
          i32(b, [1, 1, 1, 0, 0, 0]),
          1,
          i32(b, range(6)),
        ),
      ["kd_scatter_add_i32"],
    ],
    ["reduce rows", () => b.reduce("sum", x, 2, 12, 1), [
      "kd_reduce_sum_f32_rows",
    ]],
    [
      "reduce cols",
      () => b.reduce("argmin", b.zeros("int32", 4096 * 2), 2048, 2, 2),
      [
        "kd_reduce_argmin_i32_cols",
      ],
    ],
    ["softmax", () => b.softmax(x, 2, 3, 4, true), ["kd_softmax_rows"]],
    [
      "softmax cols",
      () => b.softmax(b.zeros("float32", 4096 * 3), 2, 3, 2048, false),
      [
        "kd_softmax_cols",
      ],
    ],
    ["softmaxBackward", () => b.softmaxBackward(x, x, 4, 6, 1, false), [
      "kd_softmax_bwd_rows",
    ]],
    ["conv2d", () => b.conv2d(x, w3, f32(b, [1, 2, 3]), cg), ["kd_conv2d_fwd"]],
    [
      "conv2dBackwardData",
      () => b.conv2dBackwardData(f32(b, range(36)), w3, cg),
      [
        "kd_conv2d_bwd_data",
      ],
    ],
    [
      "conv2dBackwardFilter",
      () => b.conv2dBackwardFilter(x, f32(b, range(36)), cg),
      [
        "kd_conv2d_bwd_filter",
      ],
    ],
    ["maxPool2d", () => b.maxPool2d(x, pg), ["kd_maxpool_fwd"]],
    [
      "maxPool2dBackward",
      () => b.maxPool2dBackward(f32(b, range(4)), i32(b, [0, 1, 2, 3]), pg),
      ["kd_maxpool_bwd"],
    ],
    ["avgPool2d", () => b.avgPool2d(x, pg), ["kd_avgpool_fwd"]],
    ["avgPool2dBackward", () => b.avgPool2dBackward(f32(b, range(4)), pg), [
      "kd_avgpool_bwd",
    ]],
    ["adaptiveAvgPool2d", () => b.adaptiveAvgPool2d(x, ag), [
      "kd_adaptive_avg_fwd",
    ]],
    [
      "adaptiveAvgPool2dBackward",
      () => b.adaptiveAvgPool2dBackward(f32(b, range(8)), ag),
      ["kd_adaptive_avg_bwd"],
    ],
    [
      "batchNormTrain",
      () =>
        b.batchNormTrain(x, {
          weight: c2,
          bias: null,
          runningMean: c2,
          runningVar: c2,
        }, bg),
      ["kd_bn_train"],
    ],
    [
      "batchNormEval",
      () =>
        b.batchNormEval(x, {
          weight: null,
          bias: c2,
          runningMean: c2,
          runningVar: c2,
        }, bg),
      ["kd_bn_eval"],
    ],
    [
      "batchNormBackward",
      () => b.batchNormBackward(x, x, c2, { mean: c2, invStd: c2 }, bg),
      ["kd_bn_bwd"],
    ],
    [
      "sgdStep",
      () =>
        b.sgdStep(x, x, b.zeros("float32", 24), {
          lr: 0.1,
          momentum: 0.9,
          dampening: 0,
          weightDecay: 0,
          nesterov: true,
          firstStep: true,
        }),
      ["kd_sgd"],
    ],
    [
      "adamStep",
      () =>
        b.adamStep(
          x,
          x,
          b.zeros("float32", 24),
          b.zeros("float32", 24),
          b.zeros("float32", 24),
          {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weightDecay: 0,
            decoupled: false,
            step: 1,
            amsgrad: true,
          },
        ),
      ["kd_adam"],
    ],
    ["synchronize", () => b.synchronize(), []],
  ];
  m.launchLog();
  for (const [what, run, kernels] of cases) {
    run();
    assert.deepEqual(m.launchLog(), kernels, what);
    assert.ok(m.lastLaunch().streamOk, `${what}: on the backend's stream`);
  }
  assert.throws(
    () => b.unary("exp", xi),
    /takes float32/,
  );
  assert.throws(
    () => b.binary("add", x, [1], xi, [1], [24]),
    /dtypes float32 and int32 differ/,
  );
});
