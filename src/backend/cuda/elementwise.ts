/**
 * Elementwise kernels: unary functions, binary functions with broadcasting
 * (a flat kernel for equal contiguous operands, a strided one otherwise),
 * binary with a scalar, `where`, `clamp`, `cast` and `axpy`.
 *
 * float32 arithmetic runs in float, as PyTorch's does; int32 arithmetic runs
 * in double and is stored the way JavaScript stores into an `Int32Array`
 * (truncate, wrap; NaN and infinities give 0), as the CPU backend does.
 *
 * @module
 */

import type { BinaryOp, DType, Storage, UnaryOp } from "../backend.ts";
import type { ArgKind } from "./kernel_args.ts";
import { gridFor, type KernelModule } from "./kernels.ts";
import { coalesce, isFlat, numel, writeLayout } from "./layout.ts";
import { cuda, type CudaRuntime, type CudaStorage } from "./runtime.ts";

const UNARY: Record<UnaryOp, string> = {
  neg: "-v",
  exp: "expf(v)",
  log: "logf(v)",
  sqrt: "sqrtf(v)",
  rsqrt: "1.0f / sqrtf(v)",
  abs: "fabsf(v)",
  // PyTorch's clamp_min(x, 0): -0 and NaN stay (tests/ops/edge_semantics_test.ts)
  relu: "v < 0.0f ? 0.0f : v",
  sigmoid: "v >= 0.0f ? 1.0f / (1.0f + expf(-v)) : expf(v) / (1.0f + expf(v))",
  tanh: "tanhf(v)",
  sign: "v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f)",
  square: "v * v",
  reciprocal: "1.0f / v",
};

/** Each binary op's expression in `a`, `b`; comparisons give int32 0/1. */
const BINARY: Record<BinaryOp, { expr: string; compare: boolean }> = {
  add: { expr: "a + b", compare: false },
  sub: { expr: "a - b", compare: false },
  mul: { expr: "a * b", compare: false },
  div: { expr: "a / b", compare: false },
  pow: { expr: "kd_pow(a, b)", compare: false },
  maximum: { expr: "(a != a || a > b) ? a : b", compare: false },
  minimum: { expr: "(a != a || a < b) ? a : b", compare: false },
  reluGrad: { expr: "b <= 0 ? 0 : a", compare: false },
  eq: { expr: "a == b", compare: true },
  ne: { expr: "a != b", compare: true },
  lt: { expr: "a < b", compare: true },
  le: { expr: "a <= b", compare: true },
  gt: { expr: "a > b", compare: true },
  ge: { expr: "a >= b", compare: true },
};

function dt(dtype: DType): "f32" | "i32" {
  return dtype === "float32" ? "f32" : "i32";
}

const unarySource = `
// four elements per thread through 128-bit loads (allocations are 256-byte
// aligned and storage always starts at one)
template <class F>
__device__ __forceinline__ void kd_map1(float* __restrict__ y,
                                        const float* __restrict__ x, u32 n,
                                        F f) {
  const u32 n4 = n >> 2;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  float4* y4 = reinterpret_cast<float4*>(y);
  KD_FOR(i, n4) {
    float4 v = x4[i], r;
    r.x = f(v.x); r.y = f(v.y); r.z = f(v.z); r.w = f(v.w);
    y4[i] = r;
  }
  KD_FOR(j, n - (n4 << 2)) {
    u32 i = (n4 << 2) + j;
    y[i] = f(x[i]);
  }
}
#define KD_UNARY(name, expr)                                              \\
  struct KdU_##name {                                                     \\
    __device__ __forceinline__ float operator()(float v) const {          \\
      return (expr);                                                      \\
    }                                                                     \\
  };                                                                      \\
  extern "C" __global__ void kd_unary_##name(                             \\
      float* __restrict__ y, const float* __restrict__ x, u32 n) {        \\
    kd_map1(y, x, n, KdU_##name());                                       \\
  }
${Object.entries(UNARY).map(([op, e]) => `KD_UNARY(${op}, ${e})`).join("\n")}

extern "C" __global__ void kd_clamp_f32(float* __restrict__ y,
                                        const float* __restrict__ x, u32 n,
                                        float lo, float hi) {
  KD_FOR(i, n) {
    float v = x[i];
    y[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}
extern "C" __global__ void kd_clamp_i32(int* __restrict__ y,
                                        const int* __restrict__ x, u32 n,
                                        double lo, double hi) {
  KD_FOR(i, n) {
    double v = (double)x[i];
    y[i] = kd_d2i(v < lo ? lo : (v > hi ? hi : v));
  }
}
extern "C" __global__ void kd_cast_f32_i32(int* __restrict__ y,
                                           const float* __restrict__ x,
                                           u32 n) {
  KD_FOR(i, n) y[i] = kd_d2i((double)x[i]);
}
extern "C" __global__ void kd_cast_i32_f32(float* __restrict__ y,
                                           const int* __restrict__ x, u32 n) {
  KD_FOR(i, n) y[i] = (float)x[i];
}
extern "C" __global__ void kd_axpy_f32(float* __restrict__ dst,
                                       const float* __restrict__ src, u32 n,
                                       double alpha) {
  KD_FOR(i, n) dst[i] = (float)((double)dst[i] + alpha * (double)src[i]);
}
extern "C" __global__ void kd_axpy_i32(int* __restrict__ dst,
                                       const int* __restrict__ src, u32 n,
                                       double alpha) {
  KD_FOR(i, n) dst[i] = kd_d2i((double)dst[i] + alpha * (double)src[i]);
}
`;

/** Unary functions, clamp, cast and axpy. */
export const UNARY_MODULE: KernelModule = {
  name: "unary",
  source: unarySource,
  kernels: {
    ...Object.fromEntries(
      Object.keys(UNARY).map((op) => [`kd_unary_${op}`, ["ptr", "ptr", "u32"]]),
    ),
    kd_clamp_f32: ["ptr", "ptr", "u32", "f32", "f32"],
    kd_clamp_i32: ["ptr", "ptr", "u32", "f64", "f64"],
    kd_cast_f32_i32: ["ptr", "ptr", "u32"],
    kd_cast_i32_f32: ["ptr", "ptr", "u32"],
    kd_axpy_f32: ["ptr", "ptr", "u32", "f64"],
    kd_axpy_i32: ["ptr", "ptr", "u32", "f64"],
  },
};

// name, storage type, output type, compute type, expression, conversion
const binaryInstances: [string, string, string, string, string, string][] = [];
for (const [op, { expr, compare }] of Object.entries(BINARY)) {
  binaryInstances.push(
    [
      `${op}_f32`,
      "float",
      compare ? "int" : "float",
      "float",
      expr,
      compare ? "(int)" : "(float)",
    ],
    [`${op}_i32`, "int", "int", "double", expr, compare ? "(int)" : "kd_d2i"],
  );
}

const binarySource = `
__device__ __forceinline__ float kd_pow(float a, float b) { return powf(a, b); }
// int32 operands (held in doubles): exact powers by squaring, as an integer
// power should be (the library pow is only accurate to 2 ulp)
__device__ __forceinline__ double kd_pow(double a, double b) {
  if (b >= 0.0 && b <= 64.0 && b == trunc(b) && a == trunc(a)) {
    double r = 1.0, base = a;
    for (int e = (int)b; e; e >>= 1) {
      if (e & 1) r *= base;
      base *= base;
    }
    return r;
  }
  return pow(a, b);
}
__device__ __forceinline__ float kd_from_bits(u32 u, float) {
  return __uint_as_float(u);
}
__device__ __forceinline__ int kd_from_bits(u32 u, int) { return (int)u; }
__device__ __forceinline__ u32 kd_to_bits(float v) { return __float_as_uint(v); }
__device__ __forceinline__ u32 kd_to_bits(int v) { return (u32)v; }

// equal contiguous operands: four 32-bit elements per thread (128-bit loads)
template <class T, class O, class F>
__device__ __forceinline__ void kd_map2(O* __restrict__ y,
                                        const T* __restrict__ a,
                                        const T* __restrict__ b, u32 n, F f) {
  const u32 n4 = n >> 2;
  const uint4* a4 = reinterpret_cast<const uint4*>(a);
  const uint4* b4 = reinterpret_cast<const uint4*>(b);
  uint4* y4 = reinterpret_cast<uint4*>(y);
  KD_FOR(i, n4) {
    uint4 va = a4[i], vb = b4[i], r;
    r.x = kd_to_bits(f(kd_from_bits(va.x, T()), kd_from_bits(vb.x, T())));
    r.y = kd_to_bits(f(kd_from_bits(va.y, T()), kd_from_bits(vb.y, T())));
    r.z = kd_to_bits(f(kd_from_bits(va.z, T()), kd_from_bits(vb.z, T())));
    r.w = kd_to_bits(f(kd_from_bits(va.w, T()), kd_from_bits(vb.w, T())));
    y4[i] = r;
  }
  KD_FOR(j, n - (n4 << 2)) {
    u32 i = (n4 << 2) + j;
    y[i] = f(a[i], b[i]);
  }
}

#define KD_BINARY(name, T, O, C, expr, CONV)                                \\
  struct KdB_##name {                                                       \\
    __device__ __forceinline__ O operator()(C a, C b) const {               \\
      return CONV(expr);                                                    \\
    }                                                                       \\
  };                                                                        \\
  extern "C" __global__ void kd_binary_##name(                              \\
      O* __restrict__ y, const T* __restrict__ a, const T* __restrict__ b,  \\
      u32 n) {                                                              \\
    kd_map2<T, O>(y, a, b, n, KdB_##name());                                \\
  }                                                                         \\
  extern "C" __global__ void kd_binary_##name##_s(                          \\
      O* __restrict__ y, const T* __restrict__ a, const T* __restrict__ b,  \\
      u32 n, KdLayout<2> l) {                                               \\
    KdB_##name f;                                                           \\
    KD_FOR(i, n) {                                                          \\
      int off[2];                                                           \\
      kd_offsets<2>(l, i, off);                                             \\
      y[i] = f(a[off[0]], b[off[1]]);                                       \\
    }                                                                       \\
  }                                                                         \\
  extern "C" __global__ void kd_bscalar_##name(                             \\
      O* __restrict__ y, const T* __restrict__ x, u32 n, double s,          \\
      int reverse) {                                                        \\
    KdB_##name f;                                                           \\
    const C c = (C)s;                                                       \\
    if (reverse) {                                                          \\
      KD_FOR(i, n) y[i] = f(c, (C)x[i]);                                    \\
    } else {                                                                \\
      KD_FOR(i, n) y[i] = f((C)x[i], c);                                    \\
    }                                                                       \\
  }
${
  binaryInstances.map(([name, t, o, c, e, conv]) =>
    `KD_BINARY(${name}, ${t}, ${o}, ${c}, ${e}, ${conv})`
  ).join("\n")
}

// y = cond != 0 ? a : b; values are moved as 32-bit words
#define KD_WHERE(name, CT)                                                  \\
  extern "C" __global__ void kd_where_##name(                               \\
      u32* __restrict__ y, const CT* __restrict__ c,                        \\
      const u32* __restrict__ a, const u32* __restrict__ b, u32 n,          \\
      KdLayout<3> l) {                                                      \\
    KD_FOR(i, n) {                                                          \\
      int off[3];                                                           \\
      kd_offsets<3>(l, i, off);                                             \\
      y[i] = c[off[0]] != (CT)0 ? a[off[1]] : b[off[2]];                    \\
    }                                                                       \\
  }
KD_WHERE(f32, float)
KD_WHERE(i32, int)
`;

/** Binary functions (flat, strided, with a scalar) and `where`. */
export const BINARY_MODULE: KernelModule = {
  name: "binary",
  source: binarySource,
  kernels: {
    ...Object.fromEntries(
      binaryInstances.flatMap(([name]): [string, ArgKind[]][] => [
        [`kd_binary_${name}`, ["ptr", "ptr", "ptr", "u32"]],
        [`kd_binary_${name}_s`, ["ptr", "ptr", "ptr", "u32", "layout2"]],
        [`kd_bscalar_${name}`, ["ptr", "ptr", "u32", "f64", "i32"]],
      ]),
    ),
    kd_where_f32: ["ptr", "ptr", "ptr", "ptr", "u32", "layout3"],
    kd_where_i32: ["ptr", "ptr", "ptr", "ptr", "u32", "layout3"],
  },
};

function sameDType(what: string, a: CudaStorage, b: CudaStorage): void {
  if (a.dtype !== b.dtype) {
    throw new TypeError(
      `Cannot run ${what} on CUDA: dtypes ${a.dtype} and ${b.dtype} differ`,
    );
  }
}

/**
 * `y[i] = op(x[i])`, float32.
 *
 * @param rt The runtime.
 * @param op The function.
 * @param x Input.
 * @returns New storage.
 */
export function unary(rt: CudaRuntime, op: UnaryOp, x: Storage): CudaStorage {
  const xs = cuda(x);
  if (xs.dtype !== "float32") {
    throw new TypeError(
      `Cannot run ${op} on CUDA: it takes float32, not int32`,
    );
  }
  const n = xs.length;
  const y = rt.alloc("float32", n);
  if (n === 0) return y;
  const k = rt.kernel(UNARY_MODULE, `kd_unary_${op}`);
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, n);
  k.launch(gridFor(Math.ceil(n / 4)));
  return y;
}

/**
 * `y = op(a, b)` over `shape` through broadcast strides.
 *
 * @param rt The runtime.
 * @param op The function.
 * @param a First operand.
 * @param aStrides Its strides over `shape`.
 * @param b Second operand.
 * @param bStrides Its strides over `shape`.
 * @param shape The output shape.
 * @returns New contiguous storage (int32 for comparisons).
 */
export function binary(
  rt: CudaRuntime,
  op: BinaryOp,
  a: Storage,
  aStrides: readonly number[],
  b: Storage,
  bStrides: readonly number[],
  shape: readonly number[],
): CudaStorage {
  const as = cuda(a);
  const bs = cuda(b);
  sameDType(op, as, bs);
  const n = numel(shape);
  const y = rt.alloc(BINARY[op].compare ? "int32" : as.dtype, n);
  if (n === 0) return y;
  const name = `${op}_${dt(as.dtype)}`;
  const l = coalesce(shape, [aStrides, bStrides]);
  if (isFlat(l) && n === as.length && n === bs.length) {
    const k = rt.kernel(BINARY_MODULE, `kd_binary_${name}`);
    k.args.ptr(0, y.ptr).ptr(1, as.ptr).ptr(2, bs.ptr).u32(3, n);
    k.launch(gridFor(Math.ceil(n / 4)));
  } else {
    const k = rt.kernel(BINARY_MODULE, `kd_binary_${name}_s`);
    k.args.ptr(0, y.ptr).ptr(1, as.ptr).ptr(2, bs.ptr).u32(3, n);
    writeLayout(k.args, 4, l, op);
    k.launch(gridFor(n));
  }
  return y;
}

/**
 * `y[i] = op(x[i], scalar)`, or `op(scalar, x[i])` when `reverse`.
 *
 * @param rt The runtime.
 * @param op The function.
 * @param x Input.
 * @param scalar The scalar.
 * @param reverse Put the scalar first.
 * @returns New storage.
 */
export function binaryScalar(
  rt: CudaRuntime,
  op: BinaryOp,
  x: Storage,
  scalar: number,
  reverse: boolean,
): CudaStorage {
  const xs = cuda(x);
  const n = xs.length;
  const y = rt.alloc(BINARY[op].compare ? "int32" : xs.dtype, n);
  if (n === 0) return y;
  const k = rt.kernel(BINARY_MODULE, `kd_bscalar_${op}_${dt(xs.dtype)}`);
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, n).f64(3, scalar)
    .i32(4, reverse ? 1 : 0);
  k.launch(gridFor(n));
  return y;
}

/**
 * `y = cond != 0 ? a : b` over `shape`, each operand through its strides.
 *
 * @param rt The runtime.
 * @param cond Condition (int32 or float32).
 * @param condStrides Its strides.
 * @param a Taken where the condition holds.
 * @param aStrides Its strides.
 * @param b Taken elsewhere.
 * @param bStrides Its strides.
 * @param shape The output shape.
 * @returns New storage of `a`'s dtype.
 */
export function where(
  rt: CudaRuntime,
  cond: Storage,
  condStrides: readonly number[],
  a: Storage,
  aStrides: readonly number[],
  b: Storage,
  bStrides: readonly number[],
  shape: readonly number[],
): CudaStorage {
  const cs = cuda(cond);
  const as = cuda(a);
  const bs = cuda(b);
  sameDType("where", as, bs);
  const n = numel(shape);
  const y = rt.alloc(as.dtype, n);
  if (n === 0) return y;
  const k = rt.kernel(BINARY_MODULE, `kd_where_${dt(cs.dtype)}`);
  k.args.ptr(0, y.ptr).ptr(1, cs.ptr).ptr(2, as.ptr).ptr(3, bs.ptr).u32(4, n);
  writeLayout(
    k.args,
    5,
    coalesce(shape, [condStrides, aStrides, bStrides]),
    "where",
  );
  k.launch(gridFor(n));
  return y;
}

/**
 * `y[i] = min(max(x[i], lo), hi)`.
 *
 * @param rt The runtime.
 * @param x Input.
 * @param lo Lower bound (may be -Infinity).
 * @param hi Upper bound (may be Infinity).
 * @returns New storage.
 */
export function clamp(
  rt: CudaRuntime,
  x: Storage,
  lo: number,
  hi: number,
): CudaStorage {
  const xs = cuda(x);
  const n = xs.length;
  const y = rt.alloc(xs.dtype, n);
  if (n === 0) return y;
  const f32 = xs.dtype === "float32";
  const k = rt.kernel(UNARY_MODULE, f32 ? "kd_clamp_f32" : "kd_clamp_i32");
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, n);
  if (f32) k.args.f32(3, lo).f32(4, hi);
  else k.args.f64(3, lo).f64(4, hi);
  k.launch(gridFor(n));
  return y;
}

/**
 * Converts to another dtype (float to int truncates toward zero).
 *
 * @param rt The runtime.
 * @param x Input.
 * @param dtype Target dtype.
 * @returns New storage.
 */
export function cast(rt: CudaRuntime, x: Storage, dtype: DType): CudaStorage {
  const xs = cuda(x);
  const n = xs.length;
  const y = rt.alloc(dtype, n);
  if (n === 0) return y;
  if (dtype === xs.dtype) {
    rt.device.copyOnDevice(y.pointer, xs.pointer, 4 * n);
    return y;
  }
  const k = rt.kernel(UNARY_MODULE, `kd_cast_${dt(xs.dtype)}_${dt(dtype)}`);
  k.args.ptr(0, y.ptr).ptr(1, xs.ptr).u32(2, n);
  k.launch(gridFor(n));
  return y;
}

/**
 * `dst[i] += alpha * src[i]`, in place.
 *
 * @param rt The runtime.
 * @param dst Updated in place.
 * @param src Added.
 * @param alpha Scale.
 */
export function axpy(
  rt: CudaRuntime,
  dst: Storage,
  src: Storage,
  alpha: number,
): void {
  const ds = cuda(dst);
  const ss = cuda(src);
  sameDType("axpy", ds, ss);
  const n = ds.length;
  if (n === 0) return;
  const k = rt.kernel(UNARY_MODULE, `kd_axpy_${dt(ds.dtype)}`);
  k.args.ptr(0, ds.ptr).ptr(1, ss.ptr).u32(2, n).f64(3, alpha);
  k.launch(gridFor(n));
}
