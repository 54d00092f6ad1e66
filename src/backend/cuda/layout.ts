/**
 * Shapes and strides as CUDA kernels receive them: coalesced to as few
 * dimensions as possible, at most {@link MAX_DIMS}, packed into a
 * `KdLayout<N>` struct parameter (`int ndim; int shape[8]; int st[N][8]`).
 *
 * @module
 */

import type { KernelArgs } from "./kernel_args.ts";

/** The most dimensions a strided kernel takes. */
export const MAX_DIMS = 8;

/**
 * The number of elements of a shape.
 *
 * @param shape The shape (`[]` has one element).
 * @returns The product of its dimensions.
 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A shape with one stride list per operand, after coalescing. */
export interface Layout {
  /** The dimensions, outermost first. */
  shape: number[];
  /** One stride list per operand, each as long as `shape`. */
  strides: number[][];
}

/**
 * Merges dimensions that every operand walks as one (and drops size-1
 * dimensions), so a broadcast or strided view reaches the kernel with as few
 * dimensions as it really has.
 *
 * @param shape The iteration shape.
 * @param strides One stride list per operand.
 * @returns The coalesced layout; an empty shape means one element.
 */
export function coalesce(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): Layout {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    // The previous kept dimension and this one merge when, for every
    // operand, stepping the previous one equals stepping this one size times.
    if (
      last >= 0 &&
      strides.every((s, k) => outStrides[k][last] === s[d] * shape[d])
    ) {
      outShape[last] *= shape[d];
      strides.forEach((s, k) => (outStrides[k][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, k) => outStrides[k].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * Whether every operand of a coalesced layout is contiguous (one dimension
 * of stride 1, or a single element).
 *
 * @param l A layout from {@link coalesce}.
 * @returns True when a flat kernel can run instead of a strided one.
 */
export function isFlat(l: Layout): boolean {
  return l.shape.length === 0 ||
    (l.shape.length === 1 && l.strides.every((s) => s[0] === 1));
}

/**
 * Writes a layout into a `KdLayout<N>` parameter.
 *
 * @param args The kernel's argument arena.
 * @param i The parameter index.
 * @param l The layout (at most {@link MAX_DIMS} dimensions).
 * @param what The operation, for the error message.
 */
export function writeLayout(
  args: KernelArgs,
  i: number,
  l: Layout,
  what: string,
): void {
  const nd = l.shape.length;
  if (nd > MAX_DIMS) {
    throw new RangeError(
      `Cannot run ${what} on CUDA: the view has ${nd} dimensions that do ` +
        `not merge (shape [${l.shape.join(", ")}]), at most ${MAX_DIMS} ` +
        "are supported",
    );
  }
  const v = args.view;
  const at = args.offsets[i];
  v.setInt32(at, nd, true);
  for (let d = 0; d < MAX_DIMS; d++) {
    v.setInt32(at + 4 + 4 * d, d < nd ? l.shape[d] : 1, true);
    for (let k = 0; k < l.strides.length; k++) {
      const s = d < nd ? l.strides[k][d] : 0;
      v.setInt32(at + 36 + 32 * k + 4 * d, s, true);
    }
  }
}
