/**
 * Builds `tests/fixtures/ffi_mock/mock_cuda.c` into a temporary shared
 * library at test time and opens it with the real symbol tables, so the CUDA
 * backend's marshalling runs against it on machines without a GPU.
 *
 * @module
 */

import { CUDA_SYMBOLS } from "../../ffi/cuda.ts";
import { NVRTC_SYMBOLS } from "../../ffi/nvrtc.ts";
import { CUBLAS_SYMBOLS } from "../../ffi/cublas.ts";
import type { CudaLibraries } from "../../ffi/cuda_libs.ts";
import {
  ARG_LAYOUT,
  type ArgKind,
} from "../../src/backend/cuda/kernel_args.ts";
import { moduleSource } from "../../src/backend/cuda/kernels.ts";
import { KERNEL_MODULES } from "../../src/backend/cuda/modules.ts";

const FIXTURES = new URL("../fixtures/ffi_mock/", import.meta.url).pathname;
const SOURCE = `${FIXTURES}mock_cuda.c`;

/** The mock's control functions. */
export const MOCK_SYMBOLS = {
  mock_fail: { parameters: ["buffer", "i32"], result: "i32" },
  mock_counter: { parameters: ["buffer"], result: "i32" },
  mock_set_fake_addresses: { parameters: ["i32"], result: "i32" },
  mock_last_alloc_bytes: { parameters: [], result: "u64" },
  mock_expect_params: {
    parameters: ["buffer", "i32", "buffer"],
    result: "i32",
  },
  mock_last_launch: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  mock_last_params: { parameters: ["buffer", "i32"], result: "i32" },
  mock_launch_log: { parameters: ["buffer", "i32"], result: "i32" },
  mock_last_options: { parameters: ["buffer", "i32"], result: "i32" },
  mock_blas_state: { parameters: ["buffer"], result: "i32" },
  mock_gemm_calls: { parameters: [], result: "i32" },
  mock_gemm_ex_types: { parameters: ["buffer"], result: "i32" },
} as const;

const enc = new TextEncoder();
const dec = new TextDecoder();
const cstr = (s: string) => enc.encode(s + "\0");
const fromC = (b: Uint8Array) => dec.decode(b.subarray(0, b.indexOf(0)));

let built: string | null = null;

/**
 * Why the mock cannot be built here, or null when it can (a C compiler named
 * by `$CC`, else `cc`, answers).
 *
 * @returns The reason, or null.
 */
export function mockUnavailable(): string | null {
  try {
    const out = new Deno.Command(compiler(), { args: ["--version"] })
      .outputSync();
    return out.success ? null : `${compiler()} --version failed`;
  } catch (e) {
    return `no C compiler (${compiler()}): ${(e as Error).message}`;
  }
}

function compiler(): string {
  return Deno.env.get("CC") ?? "cc";
}

function cxx(): string {
  return Deno.env.get("CXX") ?? "c++";
}

async function run(cmd: string, args: string[]): Promise<void> {
  const r = await new Deno.Command(cmd, { args }).output();
  if (!r.success) {
    throw new Error(
      `Cannot build the CUDA emulation: ${cmd} ${args.join(" ")} failed:\n` +
        dec.decode(r.stderr),
    );
  }
}

/**
 * Why the emulated device cannot be built here (no C++ compiler, or
 * `KDENO_CUDA_EMULATION=0`), or null.
 *
 * @returns The reason, or null.
 */
export function emulationUnavailable(): string | null {
  if (Deno.env.get("KDENO_CUDA_EMULATION") === "0") {
    return "KDENO_CUDA_EMULATION=0";
  }
  const noCc = mockUnavailable();
  if (noCc) return noCc;
  try {
    const out = new Deno.Command(cxx(), { args: ["--version"] }).outputSync();
    return out.success ? null : `${cxx()} --version failed`;
  } catch (e) {
    return `no C++ compiler (${cxx()}): ${(e as Error).message}`;
  }
}

/**
 * Builds the mock linked with `cuda_emu.cpp` and every kernel module compiled
 * as host C++, so `cuLaunchKernel` really runs the kernels (on CPU threads).
 *
 * @returns The path of the library.
 */
async function buildEmulated(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kdeno_emu_cuda_" });
  const flags = ["-std=c++17", "-O1", "-fPIC", "-w", "-c"];
  const jobs = KERNEL_MODULES.map(async (m) => {
    const regs = Object.keys(m.kernels).map((k, i) =>
      `static EmuReg reg${i}("${k}", [](void** p) { emu_call(${k}, p); });`
    );
    const cpp = `${dir}/${m.name}.cpp`;
    await Deno.writeTextFile(
      cpp,
      `#include "${FIXTURES}cuda_emu.h"\n${moduleSource(m)}\n${
        regs.join("\n")
      }\n`,
    );
    await run(cxx(), [...flags, cpp, "-o", `${dir}/${m.name}.o`]);
    return `${dir}/${m.name}.o`;
  });
  jobs.push(
    run(cxx(), [...flags, `${FIXTURES}cuda_emu.cpp`, "-o", `${dir}/emu.o`])
      .then(() => `${dir}/emu.o`),
    run(compiler(), ["-O1", "-fPIC", "-c", SOURCE, "-o", `${dir}/mock.o`])
      .then(() => `${dir}/mock.o`),
  );
  const objects = await Promise.all(jobs);
  const out = `${dir}/libemucuda.so`;
  await run(cxx(), ["-shared", "-o", out, ...objects]);
  return out;
}

function build(): string {
  if (built) return built;
  const dir = Deno.makeTempDirSync({ prefix: "kdeno_mock_cuda_" });
  const out = `${dir}/libmockcuda.so`;
  const r = new Deno.Command(compiler(), {
    args: ["-shared", "-fPIC", "-O1", "-o", out, SOURCE],
  }).outputSync();
  if (!r.success) {
    throw new Error(
      `Cannot build the CUDA mock: ${compiler()} failed:\n` +
        dec.decode(r.stderr),
    );
  }
  return built = out;
}

/** The last `cuLaunchKernel` the mock received. */
export interface MockLaunch {
  name: string;
  grid: [number, number, number];
  block: [number, number, number];
  shared: number;
  streamOk: boolean;
  extraNull: boolean;
}

/** The mock library, opened as the driver, NVRTC and cuBLAS. */
export class MockCuda {
  /** The path of the built library. */
  readonly path: string;
  /** The mock opened with the real symbol tables. */
  readonly libs: CudaLibraries;
  readonly #ctl: Deno.DynamicLibrary<typeof MOCK_SYMBOLS>["symbols"];

  /**
   * Opens the mock; `path` may name another build of it (see
   * {@link MockCuda.emulated}).
   *
   * @param path The library, default the plain mock built on first use.
   */
  constructor(path: string = build()) {
    this.path = path;
    this.libs = {
      driver: Deno.dlopen(this.path, CUDA_SYMBOLS),
      nvrtc: Deno.dlopen(this.path, NVRTC_SYMBOLS),
      cublas: Deno.dlopen(this.path, CUBLAS_SYMBOLS),
      paths: {
        driver: this.path,
        nvrtc: this.path,
        cublas: this.path,
        preloaded: [],
      },
    };
    this.#ctl = Deno.dlopen(this.path, MOCK_SYMBOLS).symbols;
  }

  /**
   * The mock whose `cuLaunchKernel` runs every kdeno kernel on host threads.
   *
   * @returns The opened library.
   */
  static async emulated(): Promise<MockCuda> {
    return new MockCuda(await buildEmulated());
  }

  /** Makes the next call of `fn` return `code`. */
  fail(fn: string, code: number): void {
    this.#ctl.mock_fail(cstr(fn), code);
  }

  /** `alloc`, `free`, `launch`, `compile`, `module` or `sync` counts. */
  counter(what: string): number {
    return this.#ctl.mock_counter(cstr(what));
  }

  /** Fake addresses (0xDEAD0000 + 0x1000 i) instead of real memory. */
  fakeAddresses(on: boolean): void {
    this.#ctl.mock_set_fake_addresses(on ? 1 : 0);
  }

  /** Bytes of the last `cuMemAlloc_v2`. */
  lastAllocBytes(): number {
    return Number(this.#ctl.mock_last_alloc_bytes());
  }

  /** Tells the mock the parameter sizes of kernel `name`, so it records them. */
  expect(name: string, kinds: readonly ArgKind[]): void {
    const sizes = new Int32Array(kinds.map((k) => ARG_LAYOUT[k].size));
    this.#ctl.mock_expect_params(cstr(name), sizes.length, sizes);
  }

  /** The last launch. */
  lastLaunch(): MockLaunch {
    const name = new Uint8Array(128);
    const d = new Uint32Array(9);
    this.#ctl.mock_last_launch(name, name.length, d);
    return {
      name: fromC(name),
      grid: [d[0], d[1], d[2]],
      block: [d[3], d[4], d[5]],
      shared: d[6],
      streamOk: d[7] === 1,
      extraNull: d[8] === 1,
    };
  }

  /** The parameter bytes of the last expected launch, packed back to back. */
  lastParams(): DataView {
    const buf = new Uint8Array(1024);
    const n = this.#ctl.mock_last_params(buf, buf.length);
    return new DataView(buf.buffer, 0, n);
  }

  /** Kernel names launched since the last call. */
  launchLog(): string[] {
    const buf = new Uint8Array(65536);
    this.#ctl.mock_launch_log(buf, buf.length);
    return fromC(buf).split("\n").filter((s) => s.length > 0);
  }

  /** The options of the last `nvrtcCompileProgram`. */
  lastOptions(): string[] {
    const buf = new Uint8Array(4096);
    this.#ctl.mock_last_options(buf, buf.length);
    return fromC(buf).split("\n").filter((s) => s.length > 0);
  }

  /** cuBLAS state: math mode, whether its stream is ours, workspace bytes. */
  blasState(): { mathMode: number; streamOk: boolean; workspace: number } {
    const out = new BigInt64Array(3);
    this.#ctl.mock_blas_state(out);
    return {
      mathMode: Number(out[0]),
      streamOk: out[1] === 1n,
      workspace: Number(out[2]),
    };
  }

  /** Number of GEMM calls so far. */
  gemmCalls(): number {
    return this.#ctl.mock_gemm_calls();
  }

  /** The data and compute types and algorithm of the last `cublasGemm*Ex`. */
  gemmExTypes(): {
    a: number;
    b: number;
    c: number;
    compute: number;
    algo: number;
  } {
    const out = new Int32Array(5);
    this.#ctl.mock_gemm_ex_types(out);
    return { a: out[0], b: out[1], c: out[2], compute: out[3], algo: out[4] };
  }
}
