/**
 * The cuDNN binding's marshalling, against a stand-in library built from
 * `tests/fixtures/ffi_mock/mock_cudnn.c` at test time: the symbol table is
 * accepted by `Deno.dlopen`, out-parameters and perf structs are read at the
 * offsets the C compiler uses, descriptors and algorithms are cached per
 * shape, statuses become errors carrying cuDNN's text, and the loader
 * pre-loads the sub-libraries. Runs on any machine with a C compiler; no GPU
 * involved.
 */

import assert from "node:assert/strict";
import {
  CUDNN_ALGO_PERF_LAYOUT,
  CUDNN_SONAME,
  CUDNN_SUBLIBRARIES,
  CUDNN_SYMBOLS,
  type CudnnLib,
  openCudnn,
  openCudnnIn,
  pickCudnnSymbols,
  readAlgoPerf,
} from "../../ffi/cudnn.ts";
import { BackendUnavailableError } from "../../ffi/find_library.ts";
import {
  Cudnn,
  CudnnError,
  type DeviceBuffer,
} from "../../src/backend/cuda/cudnn.ts";
import type {
  BatchNormGeometry,
  Conv2dGeometry,
} from "../../src/backend/backend.ts";

const SOURCE = new URL("../fixtures/ffi_mock/mock_cudnn.c", import.meta.url)
  .pathname;

const MOCK_SYMBOLS = {
  mock_count: { parameters: ["buffer"], result: "i32" },
  mock_fail: { parameters: ["buffer", "i32"], result: "void" },
  mock_args: { parameters: ["buffer", "buffer"], result: "i32" },
  mock_desc: { parameters: ["u64", "buffer"], result: "i32" },
  mock_perf_layout: { parameters: ["buffer"], result: "i32" },
} as const;

const enc = new TextEncoder();
const cstr = (s: string) => enc.encode(s + "\0");

function compiler(): string {
  return Deno.env.get("CC") ?? "cc";
}

function unavailableReason(): string | null {
  try {
    const out = new Deno.Command(compiler(), { args: ["--version"] })
      .outputSync();
    return out.success ? null : `${compiler()} --version failed`;
  } catch (e) {
    return `no C compiler (${compiler()}): ${(e as Error).message}`;
  }
}

function cc(args: string[]): void {
  const r = new Deno.Command(compiler(), { args }).outputSync();
  if (!r.success) {
    throw new Error(
      `Cannot build the cuDNN mock: ${compiler()} failed:\n` +
        new TextDecoder().decode(r.stderr),
    );
  }
}

/** A directory holding the mock as libcudnn.so.9 and empty sub-libraries. */
function buildMockDir(): string {
  const dir = Deno.makeTempDirSync({ prefix: "kdeno_mock_cudnn_" });
  cc(["-shared", "-fPIC", "-O1", "-o", `${dir}/${CUDNN_SONAME}`, SOURCE]);
  const empty = `${dir}/empty.c`;
  Deno.writeTextFileSync(empty, "int kdeno_mock_cudnn_sublibrary;\n");
  cc(["-shared", "-fPIC", "-o", `${dir}/empty.so`, empty]);
  for (const name of CUDNN_SUBLIBRARIES) {
    Deno.copyFileSync(`${dir}/empty.so`, `${dir}/${name}`);
  }
  return dir;
}

/** The mock's controls. */
class Mock {
  readonly lib: CudnnLib;
  readonly #ctl: Deno.DynamicLibrary<typeof MOCK_SYMBOLS>["symbols"];
  readonly #words = new BigUint64Array(32);
  readonly #ints = new Int32Array(12);

  constructor(readonly path: string) {
    this.lib = Deno.dlopen(path, CUDNN_SYMBOLS);
    this.#ctl = Deno.dlopen(path, MOCK_SYMBOLS).symbols;
  }

  count(name: string): number {
    return this.#ctl.mock_count(cstr(name));
  }

  /** Call counts of `names` since now, when the returned function runs. */
  counter(...names: string[]): () => Record<string, number> {
    const before = names.map((n) => this.count(n));
    return () =>
      Object.fromEntries(names.map((n, i) => [n, this.count(n) - before[i]]));
  }

  fail(name: string, code: number): void {
    this.#ctl.mock_fail(cstr(name), code);
  }

  /** The last call's arguments: `u(i)` as bigint, `f(i)` as a double. */
  args(name: string): { u(i: number): bigint; f(i: number): number } {
    const n = this.#ctl.mock_args(cstr(name), this.#words);
    const words = this.#words.slice(0, n);
    const view = new DataView(words.buffer);
    return {
      u: (i) => words[i],
      f: (i) => view.getFloat64(i * 8, true),
    };
  }

  /** What a descriptor was set to: its kind letter and the values set. */
  desc(d: bigint): { kind: string; v: number[] } {
    const kind = this.#ctl.mock_desc(d, this.#ints);
    return { kind: String.fromCharCode(kind), v: [...this.#ints] };
  }

  perfLayout(): number[] {
    const out = new Int32Array(8);
    this.#ctl.mock_perf_layout(out);
    return [...out];
  }
}

/** Device memory that is never touched: addresses and a log. */
class FakeAlloc {
  readonly sizes: number[] = [];
  readonly freed: bigint[] = [];
  readonly live = new Set<bigint>();
  #next = 0x5000_0000n;

  readonly alloc = (bytes: number): DeviceBuffer => {
    const ptr = this.#next;
    this.#next += 0x100_0000n;
    this.sizes.push(bytes);
    this.live.add(ptr);
    return {
      ptr,
      free: () => {
        this.freed.push(ptr);
        this.live.delete(ptr);
      },
    };
  };

  /** The address the i-th allocation got. */
  ptr(i: number): bigint {
    return 0x5000_0000n + BigInt(i) * 0x100_0000n;
  }
}

const STREAM = 0xabcd00n;
const X = 0x1000_0000n, W = 0x2000_0000n, Y = 0x3000_0000n;
const B = 0x4000_0000n;

function convGeometry(over: Partial<Conv2dGeometry> = {}): Conv2dGeometry {
  return {
    n: 2,
    c: 4,
    h: 8,
    w: 8,
    k: 6,
    r: 3,
    s: 3,
    oh: 8,
    ow: 8,
    stride: [1, 1],
    padding: [1, 1],
    dilation: [1, 1],
    groups: 2,
    ...over,
  };
}

function bnGeometry(over: Partial<BatchNormGeometry> = {}): BatchNormGeometry {
  return {
    n: 4,
    c: 16,
    hw: 49,
    eps: 1e-5,
    momentum: 0.1,
    activation: "none",
    ...over,
  };
}

const unavailable = unavailableReason();
const mockDir = unavailable ? null : buildMockDir();
const mock = mockDir ? new Mock(`${mockDir}/${CUDNN_SONAME}`) : null;
if (mockDir) {
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(mockDir, { recursive: true }); // mapped copies stay valid
    } catch {
      // already gone
    }
  });
}

function test(
  name: string,
  fn: (m: Mock, t: Deno.TestContext) => void | Promise<void>,
) {
  if (!mock) {
    Deno.test({
      name: `${name} (skipped: ${unavailable})`,
      ignore: true,
      fn() {},
    });
  } else {
    Deno.test(name, (t) => fn(mock, t));
  }
}

function make(m: Mock, alloc = new FakeAlloc()) {
  const dnn = new Cudnn(m.lib, Deno.UnsafePointer.create(STREAM), alloc.alloc);
  return { dnn, alloc };
}

// ---- the table ----------------------------------------------------------------

test("CUDNN_SYMBOLS opens with Deno.dlopen and optional symbols missing from the library are null", (m) => {
  const s = m.lib.symbols;
  assert.equal(Number(s.cudnnGetVersion()), 90600);
  assert.notEqual(s.cudnnGetConvolutionForwardAlgorithmMaxCount, null);
  assert.equal(s.cudnnGetConvolutionBackwardDataAlgorithmMaxCount, null);
  assert.equal(s.cudnnGetConvolutionBackwardFilterAlgorithmMaxCount, null);
  assert.equal(s.cudnnFindConvolutionForwardAlgorithm, null);
  assert.notEqual(s.cudnnGetLastErrorString, null);
});

test("pickCudnnSymbols() opens a library through a subset of the table", (m) => {
  const table = pickCudnnSymbols([
    "cudnnCreate",
    "cudnnGetErrorString",
    "cudnnGetVersion",
  ]);
  assert.deepEqual(Object.keys(table).sort(), [
    "cudnnCreate",
    "cudnnGetErrorString",
    "cudnnGetVersion",
  ]);
  const lib = Deno.dlopen(m.path, table);
  const out = new BigUint64Array(1);
  assert.equal(lib.symbols.cudnnCreate(out), 0);
  assert.ok(out[0] > 0n, "cudnnCreate wrote the handle out-parameter");
  const text = lib.symbols.cudnnGetErrorString(2000);
  assert.ok(text);
  assert.equal(
    Deno.UnsafePointerView.getCString(text),
    "CUDNN_STATUS_BAD_PARAM",
  );
  lib.close();
});

test("CUDNN_ALGO_PERF_LAYOUT matches the C compiler and readAlgoPerf() decodes what cuDNN wrote", (m) => {
  const L = CUDNN_ALGO_PERF_LAYOUT;
  assert.deepEqual(m.perfLayout(), [
    L.size,
    L.algo,
    L.status,
    L.time,
    L.memory,
    L.determinism,
    L.mathType,
    L.reserved,
  ]);
  const perf = new Uint8Array(L.size * 8);
  const count = new Int32Array(1);
  const nullPtr = Deno.UnsafePointer.create(0x10n);
  const rc = m.lib.symbols.cudnnGetConvolutionForwardAlgorithm_v7(
    nullPtr,
    nullPtr,
    nullPtr,
    nullPtr,
    nullPtr,
    8,
    count,
    perf,
  );
  assert.equal(rc, 0);
  assert.equal(count[0], 4);
  const view = new DataView(perf.buffer);
  assert.deepEqual(readAlgoPerf(view, 0), {
    algo: 1,
    status: 0,
    time: -1,
    memory: 2 ** 32,
    determinism: 1,
    mathType: 3,
  });
  assert.deepEqual(readAlgoPerf(view, 1), {
    algo: 6,
    status: 0,
    time: -1,
    memory: 8192,
    determinism: 1,
    mathType: 1,
  });
  assert.equal(readAlgoPerf(view, 2).status, 3000);
  assert.deepEqual(readAlgoPerf(view, 3), {
    algo: 2,
    status: 0,
    time: -1,
    memory: 4096,
    determinism: 0,
    mathType: 3,
  });
});

// ---- the handle ------------------------------------------------------------------

test("new Cudnn() creates a handle, binds it to the stream and reads the version", (m) => {
  const calls = m.counter("cudnnCreate", "cudnnSetStream");
  const { dnn } = make(m);
  assert.deepEqual(calls(), { cudnnCreate: 1, cudnnSetStream: 1 });
  assert.equal(dnn.version, 90600);
  const a = m.args("cudnnSetStream");
  assert.ok(a.u(0) > 0n, "the handle cudnnCreate wrote");
  assert.equal(a.u(1), STREAM);
  assert.equal(dnn.mathMode, "fp32");
  dnn.destroy();
});

// ---- convolution ----------------------------------------------------------------

test(
  "conv2dForward() makes descriptors once per shape and chooses the algorithm once",
  async (m, t) => {
    const { dnn, alloc } = make(m);
    const g = convGeometry();
    const calls = m.counter(
      "cudnnCreateTensorDescriptor",
      "cudnnCreateFilterDescriptor",
      "cudnnCreateConvolutionDescriptor",
      "cudnnGetConvolutionForwardAlgorithm_v7",
      "cudnnFindConvolutionForwardAlgorithmEx",
      "cudnnGetConvolutionForwardWorkspaceSize",
      "cudnnConvolutionForward",
      "cudnnAddTensor",
    );
    dnn.conv2dForward(X, W, B, Y, g);
    dnn.conv2dForward(X + 64n, W, B, Y + 64n, { ...g }); // equal geometry, new object

    await t.step("one create per descriptor, one search, two runs", () => {
      assert.deepEqual(calls(), {
        cudnnCreateTensorDescriptor: 3, // x, y, bias [1, k, 1, 1]
        cudnnCreateFilterDescriptor: 1,
        cudnnCreateConvolutionDescriptor: 1,
        cudnnGetConvolutionForwardAlgorithm_v7: 1,
        cudnnFindConvolutionForwardAlgorithmEx: 1,
        cudnnGetConvolutionForwardWorkspaceSize: 1,
        cudnnConvolutionForward: 2,
        cudnnAddTensor: 2,
      });
      assert.deepEqual(dnn.cacheSizes, {
        tensors: 3,
        filters: 1,
        convolutions: 1,
        algorithms: 1,
      });
    });

    await t.step(
      "Find failed, so the heuristic's first usable FMA candidate won",
      () => {
        // candidates: 4 GiB (over the limit), tensor-op (not in fp32), failed, GEMM
        assert.deepEqual(dnn.algorithmFor("forward", g), {
          algo: 2,
          mathType: 3,
          workspaceBytes: 2096,
          source: "heuristic",
        });
        const find = m.args("cudnnFindConvolutionForwardAlgorithmEx");
        assert.equal(find.u(2), X);
        assert.equal(find.u(4), W);
        assert.equal(find.u(7), Y);
        assert.equal(find.u(8), 8n, "requested MaxCount's 8 algorithms");
        assert.equal(find.u(11), alloc.ptr(0), "benchmarked in a temporary");
        assert.equal(
          find.u(12),
          4096n,
          "sized by the largest usable candidate",
        );
        assert.deepEqual(alloc.sizes, [4096, 2096]);
        assert.deepEqual(alloc.freed, [alloc.ptr(0)]);
        assert.equal(dnn.workspaceBytes, 2096);
      },
    );

    await t.step(
      "cudnnConvolutionForward gets the descriptors, algorithm and workspace",
      () => {
        const a = m.args("cudnnConvolutionForward");
        assert.equal(a.f(1), 1, "alpha");
        assert.equal(a.f(10), 0, "beta");
        assert.deepEqual(m.desc(a.u(2)), {
          kind: "t",
          v: [0, 0, 2, 4, 8, 8, 0, 0, 0, 0, 0, 0], // NCHW, FLOAT, n c h w
        });
        assert.equal(a.u(3), X + 64n);
        assert.deepEqual(m.desc(a.u(4)).v.slice(0, 6), [0, 0, 6, 2, 3, 3]); // k, c/groups, r, s
        assert.equal(m.desc(a.u(4)).kind, "f");
        assert.equal(a.u(5), W);
        assert.deepEqual(m.desc(a.u(6)), {
          kind: "c",
          // pads, strides, dilations, CROSS_CORRELATION, FLOAT, FMA_MATH, groups
          v: [1, 1, 1, 1, 1, 1, 1, 0, 3, 2, 0, 0],
        });
        assert.equal(a.u(7), 2n, "algo");
        assert.equal(a.u(8), alloc.ptr(1), "the shared workspace");
        assert.equal(a.u(9), 2096n);
        assert.deepEqual(m.desc(a.u(11)).v.slice(0, 6), [0, 0, 2, 6, 8, 8]);
        assert.equal(a.u(12), Y + 64n);
      },
    );

    await t.step(
      "the bias is added with cudnnAddTensor over [1, k, 1, 1]",
      () => {
        const a = m.args("cudnnAddTensor");
        assert.equal(a.f(1), 1);
        assert.deepEqual(m.desc(a.u(2)).v.slice(0, 6), [0, 0, 1, 6, 1, 1]);
        assert.equal(a.u(3), B);
        assert.equal(a.f(4), 1, "beta 1 adds onto y");
        assert.deepEqual(m.desc(a.u(5)).v.slice(0, 6), [0, 0, 2, 6, 8, 8]);
        assert.equal(a.u(6), Y + 64n);
      },
    );

    await t.step("no bias, no cudnnAddTensor", () => {
      const c = m.counter("cudnnAddTensor", "cudnnConvolutionForward");
      dnn.conv2dForward(X, W, null, Y, g);
      assert.deepEqual(c(), { cudnnAddTensor: 0, cudnnConvolutionForward: 1 });
    });
    dnn.destroy();
  },
);

test("setMathMode() switches between FMA (fp32) and the tensor-op candidate (tf32), caching both", (m) => {
  const { dnn, alloc } = make(m);
  const g = convGeometry({ n: 3 });
  dnn.setMathMode("tf32");
  const calls = m.counter(
    "cudnnCreateConvolutionDescriptor",
    "cudnnGetConvolutionForwardAlgorithm_v7",
  );
  dnn.conv2dForward(X, W, null, Y, g);
  assert.deepEqual(dnn.algorithmFor("forward", g), {
    algo: 6,
    mathType: 1, // run with the math type the heuristic reported
    workspaceBytes: 6096,
    source: "heuristic",
  });
  const tf32 = m.args("cudnnConvolutionForward");
  assert.equal(tf32.u(7), 6n);
  assert.equal(m.desc(tf32.u(6)).v[8], 1, "TENSOR_OP_MATH on the descriptor");
  assert.equal(
    m.args("cudnnFindConvolutionForwardAlgorithmEx").u(12),
    8192n,
    "tf32 sizes Find by the tensor-op candidate too",
  );
  assert.equal(m.args("cudnnSetConvolutionMathType").u(1), 1n);

  dnn.setMathMode("fp32");
  dnn.conv2dForward(X, W, null, Y, g);
  const fp32 = m.args("cudnnConvolutionForward");
  assert.equal(fp32.u(7), 2n);
  assert.equal(m.desc(fp32.u(6)).v[8], 3, "FMA_MATH: no TF32");
  dnn.setMathMode("tf32");
  dnn.conv2dForward(X, W, null, Y, g);
  assert.equal(m.args("cudnnConvolutionForward").u(7), 6n);
  // tf32: DEFAULT (search) + TENSOR_OP (run); fp32: FMA
  assert.deepEqual(calls(), {
    cudnnCreateConvolutionDescriptor: 3,
    cudnnGetConvolutionForwardAlgorithm_v7: 2,
  });
  assert.deepEqual(alloc.sizes, [8192, 6096, 4096]);
  assert.throws(
    () => dnn.setMathMode("tf16" as "tf32"),
    (e) => e instanceof TypeError && /"tf16"/.test(e.message),
  );
  dnn.destroy();
});

test(
  "conv2dBackwardData() and conv2dBackwardFilter() pick Find's winner or fall back, sharing one growing workspace",
  async (m, t) => {
    const { dnn, alloc } = make(m);
    const g = convGeometry({ n: 4 });
    const DY = 0x6000_0000n, DX = 0x7000_0000n, DW = 0x8000_0000n;
    dnn.conv2dForward(X, W, null, Y, g); // workspace 2096
    dnn.conv2dBackwardData(DY, W, DX, g);

    await t.step(
      "backward data: Find's second result (the first failed) wins",
      () => {
        assert.deepEqual(dnn.algorithmFor("backwardData", g), {
          algo: 4,
          mathType: 3,
          workspaceBytes: 4096,
          source: "find",
        });
        const find = m.args("cudnnFindConvolutionBackwardDataAlgorithmEx");
        assert.deepEqual([find.u(2), find.u(4), find.u(7)], [W, DY, DX]);
        assert.equal(find.u(8), 6n, "no MaxCount symbol: the enum's COUNT");
        assert.equal(find.u(12), 1n << 20n);
        const a = m.args("cudnnConvolutionBackwardData");
        assert.equal(a.f(1), 1);
        assert.equal(m.desc(a.u(2)).kind, "f");
        assert.equal(a.u(3), W);
        assert.deepEqual(m.desc(a.u(4)).v.slice(2, 6), [4, 6, 8, 8], "dy");
        assert.equal(a.u(5), DY);
        assert.equal(a.u(7), 4n);
        assert.equal(a.u(9), 4096n);
        assert.equal(a.f(10), 0);
        assert.deepEqual(m.desc(a.u(11)).v.slice(2, 6), [4, 4, 8, 8], "dx");
        assert.equal(a.u(12), DX);
      },
    );

    dnn.conv2dBackwardFilter(X, DY, DW, g);
    await t.step(
      "backward filter: nothing Find timed succeeded, so the heuristic",
      () => {
        assert.deepEqual(dnn.algorithmFor("backwardFilter", g), {
          algo: 3,
          mathType: 3,
          workspaceBytes: 3096,
          source: "heuristic",
        });
        const a = m.args("cudnnConvolutionBackwardFilter");
        assert.equal(a.u(3), X);
        assert.equal(a.u(5), DY);
        assert.equal(a.u(7), 3n);
        assert.equal(a.u(9), 3096n);
        assert.equal(a.f(10), 0, "beta 0 overwrites dw");
        assert.equal(m.desc(a.u(11)).kind, "f");
        assert.equal(a.u(12), DW);
      },
    );

    await t.step(
      "the workspace grew once (2096 → 4096) and temporaries were freed",
      () => {
        // find fwd, ws, find bwd-data, ws grown, find bwd-filter
        assert.deepEqual(alloc.sizes, [4096, 2096, 1 << 20, 4096, 512]);
        assert.deepEqual(alloc.freed, [
          alloc.ptr(0),
          alloc.ptr(2),
          alloc.ptr(1),
          alloc.ptr(4),
        ]);
        assert.equal(dnn.workspaceBytes, 4096);
        assert.equal(
          m.args("cudnnConvolutionBackwardFilter").u(8),
          alloc.ptr(3),
        );
      },
    );

    dnn.destroy();
    assert.equal(alloc.live.size, 0, "destroy() freed the workspace");
  },
);

test("algoSearch: 'heuristic' never calls Find", (m) => {
  const alloc = new FakeAlloc();
  const dnn = new Cudnn(m.lib, null, alloc.alloc, { algoSearch: "heuristic" });
  const calls = m.counter(
    "cudnnFindConvolutionBackwardDataAlgorithmEx",
    "cudnnGetConvolutionBackwardDataAlgorithm_v7",
  );
  dnn.conv2dBackwardData(Y, W, X, convGeometry({ n: 5 }));
  assert.deepEqual(calls(), {
    cudnnFindConvolutionBackwardDataAlgorithmEx: 0,
    cudnnGetConvolutionBackwardDataAlgorithm_v7: 1,
  });
  assert.equal(m.args("cudnnConvolutionBackwardData").u(7), 1n);
  assert.deepEqual(alloc.sizes, [1096]);
  dnn.destroy();
});

test("a failed call throws CudnnError with cudnnGetErrorString and the last error text", (m) => {
  const { dnn } = make(m);
  const g = convGeometry({ n: 6 });
  dnn.conv2dForward(X, W, null, Y, g);
  m.fail("cudnnConvolutionForward", 2000);
  assert.throws(
    () => dnn.conv2dForward(X, W, null, Y, g),
    (e) => {
      assert.ok(e instanceof CudnnError);
      assert.equal(e.call, "cudnnConvolutionForward");
      assert.equal(e.code, 2000);
      assert.equal(
        e.message,
        "Cannot run cudnnConvolutionForward (cuDNN): " +
          "CUDNN_STATUS_BAD_PARAM (2000): mock: cudnnConvolutionForward failed",
      );
      return true;
    },
  );
  assert.match(dnn.statusText(1234), /^CUDNN_STATUS_UNKNOWN_TO_MOCK \(1234\)$/);
  dnn.conv2dForward(X, W, null, Y, g); // and it still works
  dnn.destroy();
});

test("a descriptor whose setter fails is destroyed and not cached", (m) => {
  const { dnn } = make(m);
  const g = convGeometry({ k: 8 });
  const calls = m.counter(
    "cudnnCreateFilterDescriptor",
    "cudnnDestroyFilterDescriptor",
  );
  m.fail("cudnnSetFilter4dDescriptor", 3000);
  assert.throws(
    () => dnn.conv2dForward(X, W, null, Y, g),
    /cudnnSetFilter4dDescriptor \(cuDNN\): CUDNN_STATUS_NOT_SUPPORTED \(3000\)/,
  );
  assert.deepEqual(calls(), {
    cudnnCreateFilterDescriptor: 1,
    cudnnDestroyFilterDescriptor: 1,
  });
  assert.equal(dnn.cacheSizes.filters, 0);
  dnn.conv2dForward(X, W, null, Y, g);
  assert.equal(dnn.cacheSizes.filters, 1);
  dnn.destroy();
});

test("conv2dForward() refuses a geometry whose output size is wrong before calling cuDNN", (m) => {
  const { dnn } = make(m);
  const calls = m.counter("cudnnCreateTensorDescriptor");
  assert.throws(
    () => dnn.conv2dForward(X, W, null, Y, convGeometry({ oh: 7 })),
    (e) => e instanceof RangeError && /gives output \[8, 8\]/.test(e.message),
  );
  assert.throws(
    () => dnn.conv2dForward(X, W, null, Y, convGeometry({ groups: 3 })),
    RangeError,
  );
  assert.deepEqual(calls(), { cudnnCreateTensorDescriptor: 0 });
  dnn.destroy();
});

// ---- batch norm -----------------------------------------------------------------

test(
  "batchNormTrain(), batchNormEval() and batchNormBackward() pass spatial mode, factors and pointers",
  async (m, t) => {
    const { dnn } = make(m);
    const g = bnGeometry();
    const { n, c, hw } = g;
    const p = (i: number) => 0x9000_0000n + BigInt(i) * 0x1000n;
    const calls = m.counter("cudnnDeriveBNTensorDescriptor");

    await t.step("training, no running statistics", () => {
      dnn.batchNormTrain({
        x: p(0),
        y: p(1),
        weight: p(2),
        bias: p(3),
        runningMean: null,
        runningVar: null,
        mean: p(6),
        invStd: p(7),
      }, g);
      const a = m.args("cudnnBatchNormalizationForwardTraining");
      assert.equal(a.u(1), 1n, "CUDNN_BATCHNORM_SPATIAL");
      assert.deepEqual([a.f(2), a.f(3)], [1, 0]);
      assert.deepEqual(m.desc(a.u(4)).v.slice(0, 6), [0, 0, n, c, hw, 1]);
      assert.equal(a.u(5), p(0));
      assert.equal(a.u(6), a.u(4), "y shares x's descriptor");
      assert.equal(a.u(7), p(1));
      assert.deepEqual(m.desc(a.u(8)).kind, "b");
      assert.deepEqual(
        m.desc(a.u(8)).v.slice(0, 2),
        [1, c],
        "derived, spatial",
      );
      assert.deepEqual([a.u(9), a.u(10)], [p(2), p(3)]);
      assert.equal(a.f(11), 0.1, "exponentialAverageFactor = momentum");
      assert.deepEqual([a.u(12), a.u(13)], [0n, 0n], "NULL running buffers");
      assert.equal(a.f(14), 1e-5);
      assert.deepEqual([a.u(15), a.u(16)], [p(6), p(7)]);
    });

    await t.step("training, with running statistics", () => {
      dnn.batchNormTrain({
        x: p(0),
        y: p(0),
        weight: p(2),
        bias: p(3),
        runningMean: p(4),
        runningVar: p(5),
        mean: p(6),
        invStd: p(7),
      }, bnGeometry({ momentum: 0.25, eps: 1e-3 }));
      const a = m.args("cudnnBatchNormalizationForwardTraining");
      assert.deepEqual([a.u(5), a.u(7)], [p(0), p(0)], "in place");
      assert.deepEqual([a.u(12), a.u(13)], [p(4), p(5)]);
      assert.equal(a.f(11), 0.25);
      assert.equal(a.f(14), 1e-3);
      assert.throws(
        () =>
          dnn.batchNormTrain({
            x: p(0),
            y: p(1),
            weight: p(2),
            bias: p(3),
            runningMean: p(4),
            runningVar: null,
            mean: p(6),
            invStd: p(7),
          }, g),
        TypeError,
      );
    });

    await t.step("inference", () => {
      dnn.batchNormEval({
        x: p(0),
        y: p(1),
        weight: p(2),
        bias: p(3),
        runningMean: p(4),
        runningVar: p(5),
      }, g);
      const a = m.args("cudnnBatchNormalizationForwardInference");
      assert.equal(a.u(1), 1n);
      assert.deepEqual([a.f(2), a.f(3)], [1, 0]);
      assert.deepEqual([a.u(5), a.u(7)], [p(0), p(1)]);
      assert.deepEqual([a.u(9), a.u(10), a.u(11), a.u(12)], [
        p(2),
        p(3),
        p(4),
        p(5),
      ]);
      assert.equal(a.f(13), 1e-5);
    });

    await t.step("backward", () => {
      dnn.batchNormBackward({
        x: p(0),
        dy: p(10),
        weight: p(2),
        dx: p(11),
        dweight: p(12),
        dbias: p(13),
        mean: p(6),
        invStd: p(7),
      }, g);
      const a = m.args("cudnnBatchNormalizationBackward");
      assert.equal(a.u(1), 1n);
      assert.deepEqual([a.f(2), a.f(3), a.f(4), a.f(5)], [1, 0, 1, 0]);
      assert.deepEqual([a.u(7), a.u(9), a.u(11)], [p(0), p(10), p(11)]);
      assert.equal(m.desc(a.u(12)).kind, "b");
      assert.deepEqual([a.u(13), a.u(14), a.u(15)], [p(2), p(12), p(13)]);
      assert.equal(a.f(16), 1e-5);
      assert.deepEqual([a.u(17), a.u(18)], [p(6), p(7)]);
    });

    await t.step("the derived descriptor was made once", () => {
      assert.deepEqual(calls(), { cudnnDeriveBNTensorDescriptor: 1 });
    });
    dnn.destroy();
  },
);

// ---- teardown -----------------------------------------------------------------

test("destroy() destroys each cached descriptor once, frees the workspace and the handle", (m) => {
  const kinds = ["Tensor", "Filter", "Convolution"];
  const names = kinds.flatMap((k) => [
    `cudnnCreate${k}Descriptor`,
    `cudnnDestroy${k}Descriptor`,
  ]);
  const calls = m.counter(...names, "cudnnDestroy");
  const { dnn, alloc } = make(m);
  const g = convGeometry({ h: 16, w: 16, oh: 16, ow: 16 });
  dnn.conv2dForward(X, W, B, Y, g);
  dnn.batchNormTrain(
    {
      x: X,
      y: Y,
      weight: W,
      bias: B,
      runningMean: null,
      runningVar: null,
      mean: X,
      invStd: Y,
    },
    bnGeometry({ n: 2, c: 6, hw: 256 }),
  );
  dnn.destroy();
  dnn.destroy(); // twice is harmless
  const d = calls();
  for (const k of kinds) {
    assert.ok(d[`cudnnCreate${k}Descriptor`] > 0, k);
    assert.equal(
      d[`cudnnDestroy${k}Descriptor`],
      d[`cudnnCreate${k}Descriptor`],
      `${k}: every descriptor destroyed once`,
    );
  }
  assert.equal(d.cudnnDestroy, 1);
  assert.equal(alloc.live.size, 0);
  assert.throws(() => dnn.conv2dForward(X, W, B, Y, g), ReferenceError);
});

// ---- opening ------------------------------------------------------------------

test("openCudnnIn() pre-loads every sub-library by absolute path before the shim", () => {
  const dir = mockDir!;
  const opened = openCudnnIn(dir);
  assert.equal(opened.path, `${dir}/${CUDNN_SONAME}`);
  assert.deepEqual(
    opened.preloaded,
    CUDNN_SUBLIBRARIES.map((n) => `${dir}/${n}`),
  );
  assert.deepEqual(opened.preloadFailed, []);
  assert.equal(opened.version, 90600);
  opened.lib.close();
});

test(
  "openCudnnIn() and openCudnn() say which paths failed and why",
  async (_m, t) => {
    const good = mockDir!;
    const empty = Deno.makeTempDirSync({ prefix: "kdeno_cudnn_empty_" });
    const broken = Deno.makeTempDirSync({ prefix: "kdeno_cudnn_broken_" });
    Deno.copyFileSync(`${good}/${CUDNN_SONAME}`, `${broken}/${CUDNN_SONAME}`);
    Deno.writeTextFileSync(`${broken}/libcudnn_ops.so.9`, "not an ELF file");
    const optional = Deno.makeTempDirSync({ prefix: "kdeno_cudnn_adv_" });
    for (const name of [CUDNN_SONAME, ...CUDNN_SUBLIBRARIES]) {
      Deno.copyFileSync(`${good}/${name}`, `${optional}/${name}`);
    }
    Deno.writeTextFileSync(`${optional}/libcudnn_adv.so.9`, "not an ELF file");

    await t.step("no shim in the directory", () => {
      assert.throws(
        () => openCudnnIn(empty),
        (e) =>
          e instanceof BackendUnavailableError &&
          e.tried[0] === `${empty}/${CUDNN_SONAME}: not found`,
      );
    });
    await t.step("a required sub-library that does not load", () => {
      assert.throws(
        () => openCudnnIn(broken),
        (e) =>
          e instanceof BackendUnavailableError &&
          e.tried.some((s) => s.startsWith(`${broken}/libcudnn_ops.so.9: `)),
      );
    });
    await t.step(
      "an optional sub-library that does not load is reported",
      () => {
        const opened = openCudnnIn(optional);
        assert.equal(opened.preloadFailed.length, 1);
        assert.ok(
          opened.preloadFailed[0].startsWith(`${optional}/libcudnn_adv`),
        );
        opened.lib.close();
      },
    );
    await t.step("openCudnn() tries each directory, then the soname", () => {
      const opened = openCudnn([empty, broken, good]);
      assert.equal(opened.path, `${good}/${CUDNN_SONAME}`);
      opened.lib.close();
      let viaLoader: ReturnType<typeof openCudnn> | null = null;
      try {
        viaLoader = openCudnn([empty]); // a machine with cuDNN on its loader path
      } catch (e) {
        assert.ok(e instanceof BackendUnavailableError);
        assert.deepEqual(e.tried[0], `${empty}/${CUDNN_SONAME}: not found`);
        assert.ok(e.tried[1].startsWith(`${CUDNN_SONAME}: `));
        assert.match(e.message, /KDENO_CUDA_LIB_DIRS/);
      }
      viaLoader?.lib.close();
    });
    for (const d of [empty, broken, optional]) {
      Deno.removeSync(d, { recursive: true });
    }
  },
);
