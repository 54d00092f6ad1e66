/**
 * The oneDNN (2.x C API) symbol table and its lazy loader.
 *
 * oneDNN is what PyTorch's CPU build runs convolutions on. kdeno uses it, when
 * it loads, for the CPU backend's convolutions; the TypeScript kernels stay as
 * the fallback and the test oracle. The library is opened on first use, never
 * on import: the file or directories named by `KDENO_ONEDNN`, or, when that
 * is unset, the usual library directories, then the soname through the
 * system loader. Without `--allow-ffi`, with `KDENO_ONEDNN=0`, or when
 * nothing in the usual places loads, {@linkcode oneDnn} returns `null` and
 * {@linkcode oneDnnError} says why. When `KDENO_ONEDNN` names a library that
 * does not load (or is not a 2.x oneDNN), {@linkcode oneDnn} throws instead,
 * naming each path and the reason: an explicit choice is not replaced by the
 * system's library or the TypeScript kernels (why: `find_library.ts`).
 *
 * Debian's build runs its parallel loops on OpenMP (`libgomp`): the library
 * is loaded under kdeno's thread environment (`ffi/openmp.ts`: passive
 * waiting, kdeno's thread count), and its primitives follow
 * `setNumThreads` through `omp_set_num_threads`.
 *
 * Only the 2.x API is bound (Debian 12's `libdnnl2` is 2.6): its operation
 * descriptors are plain structs the caller owns, sized below with room to
 * spare, and every call returns a `dnnl_status_t`.
 *
 * @module
 */

import {
  envDirs,
  type LibrarySpec,
  loadFailure,
  openLibrary,
  optionalLibrary,
} from "./find_library.ts";
import { requestedThreads, withThreadEnvironment } from "./openmp.ts";

/** `dnnl_status_t` success. */
export const DNNL_SUCCESS = 0;
/** `dnnl_data_type_t` f32. */
export const DNNL_F32 = 3;
/** `dnnl_format_tag_t`: let the primitive choose. */
export const DNNL_TAG_ANY = 1;
/** `dnnl_format_tag_t`: 1-D plain (`x`, `a`). */
export const DNNL_TAG_A = 2;
/** `dnnl_format_tag_t`: 4-D plain (`nchw`, `oihw`, `abcd`). */
export const DNNL_TAG_ABCD = 5;
/** `dnnl_format_tag_t`: 5-D plain (`goihw`, `abcde`). */
export const DNNL_TAG_ABCDE = 7;
/** `dnnl_prop_kind_t` forward training. */
export const DNNL_FORWARD_TRAINING = 64;
/** `dnnl_prop_kind_t` forward inference. */
export const DNNL_FORWARD_INFERENCE = 96;
/** `dnnl_prop_kind_t` backward data. */
export const DNNL_BACKWARD_DATA = 160;
/** `dnnl_alg_kind_t` direct convolution. */
export const DNNL_CONVOLUTION_DIRECT = 1;

/** `dnnl_engine_kind_t` CPU. */
export const DNNL_CPU = 1;
/** `dnnl_stream_flags_t` default. */
export const DNNL_STREAM_DEFAULT = 1;
/** `dnnl_query_t` values for `dnnl_primitive_desc_query_md`. */
export const DNNL_QUERY = {
  src: 129,
  diffSrc: 130,
  weights: 131,
  diffWeights: 132,
  dst: 133,
  diffDst: 134,
  workspace: 135,
  scratchpad: 136,
  implInfoStr: 8,
} as const;
/** `DNNL_ARG_*` execution argument indices. */
export const DNNL_ARG = {
  src: 1,
  dst: 17,
  weights: 33,
  bias: 41,
  diffSrc: 129,
  diffDst: 145,
  diffWeights: 161,
  diffBias: 169,
  from: 1,
  to: 17,
} as const;
/** Bytes reserved for one `dnnl_memory_desc_t` (696 in 2.6). */
export const MEMORY_DESC_BYTES = 1024;
/** Bytes reserved for one operation descriptor (a convolution's is 5976 in 2.6). */
export const OP_DESC_BYTES = 8192;
/** `dnnl_version_t` is `{int major, minor, patch; ...}`. */
const VERSION_FIELDS = 3;

/** The `Deno.dlopen` symbol table for the parts of oneDNN kdeno calls. */
export const oneDnnSymbols = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: {
    parameters: ["buffer", "i32", "usize"], // engine*, kind, index
    result: "i32",
  },
  dnnl_stream_create: {
    parameters: ["buffer", "pointer", "u32"], // stream*, engine, flags
    result: "i32",
  },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"], // md*, ndims, dims, dt, tag
    result: "i32",
  },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_memory_desc_equal: {
    parameters: ["pointer", "pointer"],
    result: "i32",
  },
  dnnl_memory_create: {
    parameters: ["buffer", "pointer", "pointer", "pointer"], // mem*, md, engine, handle
    result: "i32",
  },
  dnnl_memory_set_data_handle: {
    parameters: ["pointer", "buffer"],
    result: "i32",
  },
  dnnl_dilated_convolution_forward_desc_init: {
    parameters: [
      "buffer", // dnnl_convolution_desc_t *conv_desc
      "i32", // prop_kind
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // weights_desc
      "pointer", // bias_desc (nullable)
      "buffer", // dst_desc
      "buffer", // strides
      "buffer", // dilates
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_data_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // alg_kind
      "buffer", // diff_src_desc
      "buffer", // weights_desc
      "buffer", // diff_dst_desc
      "buffer", // strides
      "buffer", // dilates
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_dilated_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer", // conv_desc
      "i32", // alg_kind
      "buffer", // src_desc
      "buffer", // diff_weights_desc
      "pointer", // diff_bias_desc (nullable)
      "buffer", // diff_dst_desc
      "buffer", // strides
      "buffer", // dilates
      "buffer", // padding_l
      "buffer", // padding_r
    ],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"], // pd*, op_desc, attr, engine, hint
    result: "i32",
  },
  dnnl_primitive_desc_query_md: {
    parameters: ["pointer", "i32", "i32"],
    result: "pointer",
  },
  dnnl_primitive_desc_query: {
    parameters: ["pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_reorder_primitive_desc_create: {
    parameters: [
      "buffer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
    ],
    result: "i32",
  },
  dnnl_primitive_create: {
    parameters: ["buffer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_execute: {
    parameters: ["pointer", "pointer", "i32", "buffer"], // prim, stream, nargs, args
    result: "i32",
  },
} as const;

/** The opened library's symbols. */
export type OneDnnSymbols = Deno.DynamicLibrary<
  typeof oneDnnSymbols
>["symbols"];

/** An opened oneDNN with its CPU engine and stream. */
export interface OneDnn {
  /** The library's symbols. */
  readonly symbols: OneDnnSymbols;
  /** The path (or soname) that loaded. */
  readonly path: string;
  /** `major.minor.patch`. */
  readonly version: string;
  /** The CPU engine. */
  readonly engine: Deno.PointerValue;
  /** The stream every primitive runs on. */
  readonly stream: Deno.PointerValue;
}

/** The search specification for oneDNN. */
export const oneDnnSpec: LibrarySpec = {
  library: "oneDNN",
  fileNames: ["libdnnl.so.2"],
  envVar: "KDENO_ONEDNN",
  dirs: ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/lib"],
  sonameFallback: true,
  hint: "Install it (Debian/Ubuntu: apt-get install libdnnl2) or set " +
    "KDENO_ONEDNN to the library file or its directory; KDENO_ONEDNN=0 " +
    "turns it off.",
};

/** Reads the pointer a `dnnl_*_create` call wrote into `out`. */
export function readPointer(out: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(out[0]);
}

/** Throws naming the oneDNN call when `status` is not success. */
export function check(status: number, what: string): void {
  if (status !== DNNL_SUCCESS) {
    throw new Error(`oneDNN ${what} failed with status ${status}`);
  }
}

const loader = optionalLibrary<OneDnn>({
  spec: oneDnnSpec,
  turnedOff: () =>
    envDirs("KDENO_ONEDNN")[0] === "0" ? "Turned off by KDENO_ONEDNN=0" : null,
  before: requestedThreads,
  open: () => {
    const { lib, path } = withThreadEnvironment(() =>
      openLibrary(oneDnnSpec, oneDnnSymbols)
    );
    const s = lib.symbols;
    const vp = s.dnnl_version();
    let version = "?";
    if (vp !== null) {
      const view = new Deno.UnsafePointerView(vp);
      const parts: number[] = [];
      for (let i = 0; i < VERSION_FIELDS; i++) parts.push(view.getInt32(i * 4));
      version = parts.join(".");
    }
    if (!version.startsWith("2.")) {
      lib.close();
      throw loadFailure(oneDnnSpec, [
        `${path}: is oneDNN ${version}; kdeno binds the 2.x C API`,
      ]);
    }
    const out = new BigUint64Array(1);
    check(s.dnnl_engine_create(out, DNNL_CPU, 0n), "dnnl_engine_create");
    const engine = readPointer(out);
    check(
      s.dnnl_stream_create(out, engine, DNNL_STREAM_DEFAULT),
      "dnnl_stream_create",
    );
    const stream = readPointer(out);
    return { symbols: s, path, version, engine, stream };
  },
});

/**
 * Opens oneDNN on the first call and returns it, or `null` when it cannot be
 * used (turned off, no `--allow-ffi`, or nothing in the usual places loads).
 * Cached.
 *
 * @returns The library, or `null`.
 * @throws BackendUnavailableError on every call when `KDENO_ONEDNN` names a
 *   library that does not load or is not oneDNN 2.x, listing each path with
 *   the reason.
 */
export function oneDnn(): OneDnn | null {
  return loader.get();
}

/**
 * Why oneDNN is not available, or `null` when it loaded (or was not tried).
 *
 * @returns The reason, or `null`.
 */
export function oneDnnError(): string | null {
  return loader.failure()?.message ?? null;
}
