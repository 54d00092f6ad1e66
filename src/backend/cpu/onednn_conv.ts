/**
 * CPU kernels on oneDNN: convolution. (Batch norm on the plain NCHW layout
 * was measured 3–20× slower than the TypeScript loops: oneDNN's fast batch
 * norm wants blocked layouts. A oneDNN ReLU gradient that ran only when the
 * native C kernels were missing was removed: see `dispatch.ts`.)
 *
 * Each shape gets its primitives built once and cached. The user tensors stay
 * in kdeno's plain NCHW / OIHW layout; when a convolution prefers a blocked
 * layout the tensors are reordered into scratch buffers around the call.
 * Every function returns `null` when oneDNN is absent or has no
 * implementation for the shape, and the caller then runs the TypeScript
 * kernels (which stay the oracle the tests compare against); a oneDNN named
 * by `KDENO_ONEDNN` that does not load throws `BackendUnavailableError`
 * instead (see `ffi/find_library.ts`).
 *
 * @module
 */

import type { Conv2dGeometry } from "../backend.ts";
import {
  check,
  DNNL_ARG,
  DNNL_CONVOLUTION_DIRECT,
  DNNL_F32,
  DNNL_FORWARD_INFERENCE,
  DNNL_FORWARD_TRAINING,
  DNNL_QUERY,
  DNNL_TAG_A,
  DNNL_TAG_ABCD,
  DNNL_TAG_ABCDE,
  DNNL_TAG_ANY,
  MEMORY_DESC_BYTES,
  type OneDnn,
  oneDnn,
  OP_DESC_BYTES,
  readPointer,
} from "../../../ffi/onednn.ts";
import { requestedThreads } from "../../../ffi/openmp.ts";
import { f32Out as allocF32, recycle } from "./_array_pool.ts";

type Ptr = Deno.PointerValue;

/** One argument of a primitive: the user's plain layout and, when the primitive wants another, a reorder through a scratch buffer. */
interface Arg {
  /** `DNNL_ARG_*`. */
  arg: number;
  /** Memory object in the user's plain layout. */
  user: Ptr;
  /** Memory object in the primitive's layout, or null when it is the plain one. */
  inner: Ptr;
  /** Scratch buffer behind `inner`. */
  scratchLength: number;
  /** Reorder user → inner (inputs) or inner → user (outputs). */
  reorder: Ptr;
  /** Argument buffer of the reorder. */
  reorderArgs: Uint8Array | null;
  /** Written by the primitive (reordered out after it runs). */
  output: boolean;
}

/** A built primitive with its arguments. */
interface Prim {
  prim: Ptr;
  args: Arg[];
  /** `dnnl_exec_arg_t[]` for the primitive. */
  execArgs: Uint8Array;
  /** The implementation oneDNN chose, for `convImplementations()`. */
  impl: string;
}

const cache = new Map<string, Prim | null>();

let enabled = true;

/**
 * Turns the oneDNN kernels on (the default, when the library loads) or off,
 * for tests and benchmarks that compare them with the TypeScript kernels.
 * Convolutions also follow `setConvAlgo`.
 *
 * @param on Whether to use oneDNN.
 */
export function setOneDnnKernels(on: boolean): void {
  enabled = on;
}

/** The implementations chosen so far, keyed by geometry and pass (for diagnostics and benchmarks). */
export function convImplementations(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of cache) out[k] = v ? v.impl : "(typescript)";
  return out;
}

function dims(values: number[]): BigInt64Array {
  const a = new BigInt64Array(12);
  values.forEach((v, i) => a[i] = BigInt(v));
  return a;
}

function memDesc(lib: OneDnn, shape: number[], tag: number): Uint8Array {
  const md = new Uint8Array(MEMORY_DESC_BYTES);
  check(
    lib.symbols.dnnl_memory_desc_init_by_tag(
      md,
      shape.length,
      dims(shape),
      DNNL_F32,
      tag,
    ),
    "dnnl_memory_desc_init_by_tag",
  );
  return md;
}

function plainTag(ndims: number): number {
  return ndims === 1
    ? DNNL_TAG_A
    : ndims === 4
    ? DNNL_TAG_ABCD
    : DNNL_TAG_ABCDE;
}

function execArgs(list: [number, Ptr][]): Uint8Array {
  const buf = new Uint8Array(16 * list.length);
  const dv = new DataView(buf.buffer);
  list.forEach(([arg, mem], i) => {
    dv.setInt32(16 * i, arg, true);
    dv.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(mem)), true);
  });
  return buf;
}

function createMemory(lib: OneDnn, md: Ptr | Uint8Array): Ptr {
  const out = new BigUint64Array(1);
  const mdPtr = md instanceof Uint8Array ? Deno.UnsafePointer.of(md) : md;
  check(
    lib.symbols.dnnl_memory_create(out, mdPtr, lib.engine, null),
    "dnnl_memory_create",
  );
  return readPointer(out);
}

function createPrimitive(lib: OneDnn, pd: Ptr): Ptr {
  const out = new BigUint64Array(1);
  check(lib.symbols.dnnl_primitive_create(out, pd), "dnnl_primitive_create");
  return readPointer(out);
}

/**
 * Builds an argument: `plain` is the user's memory descriptor, `query` the
 * primitive's. When they differ, a scratch buffer and a reorder are added.
 */
function buildArg(
  lib: OneDnn,
  pd: Ptr,
  arg: number,
  query: number,
  plain: Uint8Array,
  isOutput: boolean,
): Arg {
  const s = lib.symbols;
  const user = createMemory(lib, plain);
  const want = s.dnnl_primitive_desc_query_md(pd, query, 0);
  if (want === null) {
    throw new Error(`oneDNN: no descriptor for query ${query}`);
  }
  if (s.dnnl_memory_desc_equal(want, Deno.UnsafePointer.of(plain)) === 1) {
    return {
      arg,
      user,
      inner: null,
      scratchLength: 0,
      reorder: null,
      reorderArgs: null,
      output: isOutput,
    };
  }
  const inner = createMemory(lib, want);
  const bytes = Number(s.dnnl_memory_desc_get_size(want));
  const scratchLength = Math.ceil(bytes / 4);
  const out = new BigUint64Array(1);
  const [from, to] = isOutput ? [want, Deno.UnsafePointer.of(plain)] : [
    Deno.UnsafePointer.of(plain),
    want,
  ];
  check(
    s.dnnl_reorder_primitive_desc_create(
      out,
      from,
      lib.engine,
      to,
      lib.engine,
      null,
    ),
    "dnnl_reorder_primitive_desc_create",
  );
  const rpd = readPointer(out);
  const reorder = createPrimitive(lib, rpd);
  s.dnnl_primitive_desc_destroy(rpd);
  const reorderArgs = isOutput
    ? execArgs([[DNNL_ARG.from, inner], [DNNL_ARG.to, user]])
    : execArgs([[DNNL_ARG.from, user], [DNNL_ARG.to, inner]]);
  return {
    arg,
    user,
    inner,
    scratchLength,
    reorder,
    reorderArgs,
    output: isOutput,
  };
}

/** An argument in the plain layout the primitive was built on. */
function plainArg(
  lib: OneDnn,
  arg: number,
  md: Uint8Array,
  output: boolean,
): Arg {
  return {
    arg,
    user: createMemory(lib, md),
    inner: null,
    scratchLength: 0,
    reorder: null,
    reorderArgs: null,
    output,
  };
}

function implName(lib: OneDnn, pd: Ptr): string {
  const out = new BigUint64Array(1);
  if (
    lib.symbols.dnnl_primitive_desc_query(
      pd,
      DNNL_QUERY.implInfoStr,
      0,
      out,
    ) !== 0
  ) {
    return "?";
  }
  const p = readPointer(out);
  return p === null ? "?" : Deno.UnsafePointerView.getCString(p);
}

type Pass =
  | "fwd"
  | "fwdBias"
  | "infer"
  | "inferBias"
  | "bwdData"
  | "bwdWeights";

function shapes(g: Conv2dGeometry) {
  const x = [g.n, g.c, g.h, g.w];
  const y = [g.n, g.k, g.oh, g.ow];
  const w = g.groups === 1
    ? [g.k, g.c, g.r, g.s]
    : [g.groups, g.k / g.groups, g.c / g.groups, g.r, g.s];
  return { x, y, w };
}

function build(lib: OneDnn, g: Conv2dGeometry, pass: Pass): Prim | null {
  const s = lib.symbols;
  const { x, y, w } = shapes(g);
  const xAny = memDesc(lib, x, DNNL_TAG_ANY);
  const yAny = memDesc(lib, y, DNNL_TAG_ANY);
  const wAny = memDesc(lib, w, DNNL_TAG_ANY);
  const bMd = memDesc(lib, [g.k], DNNL_TAG_A);
  const strides = dims(g.stride);
  // oneDNN counts dilation from 0 (no gaps); PyTorch from 1
  const dil = dims([g.dilation[0] - 1, g.dilation[1] - 1]);
  const padL = dims(g.padding);
  const padR = dims([
    (g.oh - 1) * g.stride[0] + (g.r - 1) * g.dilation[0] + 1 - g.h -
    g.padding[0],
    (g.ow - 1) * g.stride[1] + (g.s - 1) * g.dilation[1] + 1 - g.w -
    g.padding[1],
  ]);
  const fwdDesc = new Uint8Array(OP_DESC_BYTES);
  const withBias = pass === "fwdBias" || pass === "inferBias";
  const prop = pass === "infer" || pass === "inferBias"
    ? DNNL_FORWARD_INFERENCE
    : DNNL_FORWARD_TRAINING;
  check(
    s.dnnl_dilated_convolution_forward_desc_init(
      fwdDesc,
      prop,
      DNNL_CONVOLUTION_DIRECT,
      xAny,
      wAny,
      withBias ? Deno.UnsafePointer.of(bMd) : null,
      yAny,
      strides,
      dil,
      padL,
      padR,
    ),
    "convolution forward descriptor",
  );
  const out = new BigUint64Array(1);
  if (
    s.dnnl_primitive_desc_create(out, fwdDesc, null, lib.engine, null) !== 0
  ) {
    return null;
  }
  let pd = readPointer(out);
  if (pass === "bwdData" || pass === "bwdWeights") {
    const hint = pd;
    const desc = new Uint8Array(OP_DESC_BYTES);
    if (pass === "bwdData") {
      check(
        s.dnnl_dilated_convolution_backward_data_desc_init(
          desc,
          DNNL_CONVOLUTION_DIRECT,
          xAny,
          wAny,
          yAny,
          strides,
          dil,
          padL,
          padR,
        ),
        "convolution backward-data descriptor",
      );
    } else {
      check(
        s.dnnl_dilated_convolution_backward_weights_desc_init(
          desc,
          DNNL_CONVOLUTION_DIRECT,
          xAny,
          wAny,
          null,
          yAny,
          strides,
          dil,
          padL,
          padR,
        ),
        "convolution backward-weights descriptor",
      );
    }
    const status = s.dnnl_primitive_desc_create(
      out,
      desc,
      null,
      lib.engine,
      hint,
    );
    s.dnnl_primitive_desc_destroy(hint);
    if (status !== 0) return null;
    pd = readPointer(out);
  }
  const xPlain = memDesc(lib, x, DNNL_TAG_ABCD);
  const yPlain = memDesc(lib, y, DNNL_TAG_ABCD);
  const wPlain = memDesc(lib, w, plainTag(w.length));
  let args: Arg[];
  if (pass === "bwdData") {
    args = [
      buildArg(lib, pd, DNNL_ARG.diffDst, DNNL_QUERY.diffDst, yPlain, false),
      buildArg(lib, pd, DNNL_ARG.weights, DNNL_QUERY.weights, wPlain, false),
      buildArg(lib, pd, DNNL_ARG.diffSrc, DNNL_QUERY.diffSrc, xPlain, true),
    ];
  } else if (pass === "bwdWeights") {
    args = [
      buildArg(lib, pd, DNNL_ARG.src, DNNL_QUERY.src, xPlain, false),
      buildArg(lib, pd, DNNL_ARG.diffDst, DNNL_QUERY.diffDst, yPlain, false),
      buildArg(
        lib,
        pd,
        DNNL_ARG.diffWeights,
        DNNL_QUERY.diffWeights,
        wPlain,
        true,
      ),
    ];
  } else {
    args = [
      buildArg(lib, pd, DNNL_ARG.src, DNNL_QUERY.src, xPlain, false),
      buildArg(lib, pd, DNNL_ARG.weights, DNNL_QUERY.weights, wPlain, false),
    ];
    if (withBias) args.push(plainArg(lib, DNNL_ARG.bias, bMd, false));
    args.push(buildArg(lib, pd, DNNL_ARG.dst, DNNL_QUERY.dst, yPlain, true));
  }
  const impl = implName(lib, pd);
  const prim = createPrimitive(lib, pd);
  s.dnnl_primitive_desc_destroy(pd);
  return {
    prim,
    args,
    execArgs: execArgs(args.map((a) => [a.arg, a.inner ?? a.user])),
    impl,
  };
}

// a primitive splits its work for the thread count it was built under and
// keeps that split, so the count is part of the key (setNumThreads)
function key(g: Conv2dGeometry, pass: Pass): string {
  return `${pass} n${g.n} c${g.c} ${g.h}x${g.w} k${g.k} ${g.r}x${g.s} s${g.stride} p${g.padding} d${g.dilation} g${g.groups} t${requestedThreads()}`;
}

/** The cached primitive under `k`, built by `make` on first use. */
function cached(
  k: string,
  make: (lib: OneDnn) => Prim | null,
): [OneDnn, Prim] | null {
  if (!enabled) return null;
  const lib = oneDnn();
  if (lib === null) return null;
  let p = cache.get(k);
  if (p === undefined) {
    p = make(lib);
    cache.set(k, p);
  }
  return p === null ? null : [lib, p];
}

function primitive(g: Conv2dGeometry, pass: Pass): [OneDnn, Prim] | null {
  return cached(key(g, pass), (lib) => build(lib, g, pass));
}

/**
 * Runs a primitive on user buffers given in the order of its arguments:
 * inputs are reordered in, the primitive runs, outputs are reordered out.
 * The reorder buffers come from the array pool and go back to it, so they
 * hold memory only during the call.
 */
function run(lib: OneDnn, p: Prim, buffers: Float32Array[]): void {
  const s = lib.symbols;
  const scratch: Float32Array[] = [];
  try {
    for (let i = 0; i < p.args.length; i++) {
      const a = p.args[i];
      s.dnnl_memory_set_data_handle(a.user, buffers[i]);
      if (a.inner !== null) {
        const buf = allocF32(a.scratchLength);
        scratch.push(buf);
        s.dnnl_memory_set_data_handle(a.inner, buf);
      }
    }
    for (const a of p.args) {
      if (a.reorder !== null && !a.output) {
        check(
          s.dnnl_primitive_execute(a.reorder, lib.stream, 2, a.reorderArgs!),
          "reorder in",
        );
      }
    }
    check(
      s.dnnl_primitive_execute(p.prim, lib.stream, p.args.length, p.execArgs),
      p.impl,
    );
    for (const a of p.args) {
      if (a.reorder !== null && a.output) {
        check(
          s.dnnl_primitive_execute(a.reorder, lib.stream, 2, a.reorderArgs!),
          "reorder out",
        );
      }
    }
    check(s.dnnl_stream_wait(lib.stream), "dnnl_stream_wait");
  } finally {
    for (const buf of scratch) recycle(buf);
  }
}

/** Convolution forward on oneDNN, or `null` to fall back. */
export function oneDnnConvForward(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  g: Conv2dGeometry,
  inference = false,
): Float32Array | null {
  const pass: Pass = inference
    ? (bias ? "inferBias" : "infer")
    : (bias ? "fwdBias" : "fwd");
  const found = primitive(g, pass);
  if (found === null) return null;
  const y = allocF32(g.n * g.k * g.oh * g.ow);
  run(found[0], found[1], bias ? [x, weight, bias, y] : [x, weight, y]);
  return y;
}

/** Convolution backward-data on oneDNN, or `null` to fall back. */
export function oneDnnConvBackwardData(
  dy: Float32Array,
  weight: Float32Array,
  g: Conv2dGeometry,
): Float32Array | null {
  const found = primitive(g, "bwdData");
  if (found === null) return null;
  const dx = allocF32(g.n * g.c * g.h * g.w);
  run(found[0], found[1], [dy, weight, dx]);
  return dx;
}

/** Convolution backward-weights on oneDNN, or `null` to fall back. */
export function oneDnnConvBackwardFilter(
  x: Float32Array,
  dy: Float32Array,
  g: Conv2dGeometry,
): Float32Array | null {
  const found = primitive(g, "bwdWeights");
  if (found === null) return null;
  const dw = allocF32(g.k * (g.c / g.groups) * g.r * g.s);
  run(found[0], found[1], [x, dy, dw]);
  return dw;
}
