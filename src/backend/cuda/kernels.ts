/**
 * CUDA C programs and their kernels: the shared prelude, the shape of a
 * program (source plus each kernel's parameter list, which the PTX test
 * checks against the compiled entry points), and the cache that compiles a
 * program on first use and hands out launchable kernels.
 *
 * @module
 */

import { type ArgKind, KernelArgs } from "./kernel_args.ts";
import type { CudaDevice } from "./device.ts";
import type { NvrtcCompiler } from "./compiler.ts";
import { CudaError } from "./errors.ts";

/** One CUDA C program: a family of kernels compiled together. */
export interface KernelModule {
  /** A short name, used as the file name in compiler messages. */
  readonly name: string;
  /** CUDA C, without the prelude. */
  readonly source: string;
  /** Each `extern "C"` kernel and its parameters, in order. */
  readonly kernels: Readonly<Record<string, readonly ArgKind[]>>;
}

/**
 * Definitions every program starts with. Only compiler built-ins are used
 * (NVRTC programs get no host headers), so no `INFINITY`, `FLT_MAX`,
 * `INT_MAX` or `size_t`.
 */
export const PRELUDE = `
typedef unsigned int u32;
typedef unsigned long long u64;
#define KD_INF __int_as_float(0x7f800000)
#define KD_INT_MAX 2147483647
#define KD_INT_MIN (-2147483647 - 1)
// grid-stride loop over [0, n); n < 2^31, so i + stride never wraps
#define KD_FOR(i, n) \\
  for (u32 i = blockIdx.x * blockDim.x + threadIdx.x; i < (u32)(n); \\
       i += blockDim.x * gridDim.x)

// shape and per-operand strides of a strided view, innermost dim last
template <int N> struct KdLayout { int ndim; int shape[8]; int st[N][8]; };

// element offsets of flat index i through each operand's strides
template <int N>
__device__ __forceinline__ void kd_offsets(const KdLayout<N>& l, u32 i,
                                           int* off) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
#pragma unroll
  for (int d = 7; d >= 0; --d) {
    if (d < l.ndim) {
      u32 s = (u32)l.shape[d];
      int c = (int)(i % s);
      i /= s;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += c * l.st[k][d];
    }
  }
}

// JavaScript's ToInt32 (what storing into an Int32Array does)
__device__ __forceinline__ int kd_d2i(double v) {
  if (v >= -2147483648.0 && v <= 2147483647.0) return (int)v;
  if (!(v == v) || v == (double)KD_INF || v == -(double)KD_INF) return 0;
  double m = fmod(trunc(v), 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return (int)(u32)m;
}

// reductions across a warp (every lane gets the result) and a block
template <class A, class Op>
__device__ __forceinline__ A kd_warp_reduce(A v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// blockDim.x must be a multiple of 32; every thread gets the result
template <class A, class Op>
__device__ __forceinline__ A kd_block_reduce(A v, Op op, A identity) {
  __shared__ A sh[32];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  const int nw = blockDim.x >> 5;
  v = kd_warp_reduce(v, op);
  __syncthreads();  // sh may still be read by a previous call
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : identity;
  return kd_warp_reduce(v, op);
}
struct KdAdd {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const {
    return a + b;
  }
};
// max/min that let NaN win, as PyTorch's do
struct KdMax {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const {
    return (a != a || a > b) ? a : b;
  }
};
struct KdMin {
  template <class A> __device__ __forceinline__ A operator()(A a, A b) const {
    return (a != a || a < b) ? a : b;
  }
};
`;

/** The full source NVRTC compiles for a module. */
export function moduleSource(m: KernelModule): string {
  return PRELUDE + m.source;
}

/** Threads per block for elementwise kernels. */
export const BLOCK = 256;

/**
 * Blocks for a grid-stride loop over `n` items.
 *
 * @param n Items.
 * @param block Threads per block.
 * @returns At least 1, at most 2^20 blocks.
 */
export function gridFor(n: number, block = BLOCK): number {
  return Math.max(1, Math.min(Math.ceil(n / block), 1 << 20));
}

/** A loaded kernel with its own argument arena. */
export class Kernel {
  /** The kernel's name. */
  readonly name: string;
  /** Its argument arena: write the values, then {@link launch}. */
  readonly args: KernelArgs;
  readonly #fn: Deno.PointerObject;
  readonly #device: CudaDevice;

  /**
   * @param device The device.
   * @param fn The function handle.
   * @param name The kernel's name.
   * @param kinds Its parameters.
   */
  constructor(
    device: CudaDevice,
    fn: Deno.PointerObject,
    name: string,
    kinds: readonly ArgKind[],
  ) {
    this.#device = device;
    this.#fn = fn;
    this.name = name;
    this.args = new KernelArgs(kinds);
  }

  /**
   * Queues the kernel with the values currently in {@link args}.
   *
   * @param grid Blocks.
   * @param block Threads per block.
   * @param sharedBytes Dynamic shared memory.
   */
  launch(grid: number, block: number = BLOCK, sharedBytes = 0): void {
    this.#device.launch(this.#fn, grid, block, this.args.params, sharedBytes);
  }
}

/** Compiles modules on first use and keeps their kernels. */
export class KernelCache {
  readonly #device: CudaDevice;
  readonly #compiler: NvrtcCompiler;
  readonly #kernels = new Map<string, Kernel>();
  readonly #modules = new Map<KernelModule, Deno.PointerObject>();

  /**
   * @param device The device to load modules on.
   * @param compiler The compiler.
   */
  constructor(device: CudaDevice, compiler: NvrtcCompiler) {
    this.#device = device;
    this.#compiler = compiler;
  }

  /**
   * The kernel `name` of module `m`, compiling and loading `m` on first use.
   *
   * @param m The module.
   * @param name An `extern "C"` kernel of it.
   * @returns The kernel.
   */
  get(m: KernelModule, name: string): Kernel {
    const have = this.#kernels.get(name);
    if (have) return have;
    const kinds = m.kernels[name];
    if (!kinds) {
      throw new CudaError("CUDA driver", name, 0, `not a kernel of ${m.name}`);
    }
    const fn = this.#device.getFunction(this.#module(m), name);
    const k = new Kernel(this.#device, fn, name, kinds);
    this.#kernels.set(name, k);
    return k;
  }

  /**
   * Compiles (or loads from the cache) and loads module `m` now rather than
   * on first use.
   *
   * @param m The module.
   */
  load(m: KernelModule): void {
    this.#module(m);
  }

  #module(m: KernelModule): Deno.PointerObject {
    const have = this.#modules.get(m);
    if (have) return have;
    const source = moduleSource(m);
    const compiled = this.#compiler.compile(source, `${m.name}.cu`);
    let mod: Deno.PointerObject;
    try {
      mod = this.#device.loadModule(compiled.image);
    } catch (e) {
      if (compiled.from === "compiled") throw e;
      // a stale or damaged cached image: compile afresh
      this.#compiler.forget(source);
      mod = this.#device.loadModule(
        this.#compiler.compile(source, `${m.name}.cu`).image,
      );
    }
    this.#modules.set(m, mod);
    return mod;
  }
}
