/**
 * In-place initialisers, as `torch.nn.init`. They draw from the seeded
 * process-wide generator.
 *
 * @module
 */

import { noGrad } from "../autograd.ts";
import { fmtShape, ShapeError } from "../errors.ts";
import { globalGenerator } from "../random.ts";
import type { Tensor } from "../tensor.ts";

function write(t: Tensor, f: (i: number) => number): Tensor {
  noGrad(() => {
    const n = t.numel();
    const be = t.backend as Tensor["backend"] & {
      view?: (s: Tensor["storage"]) => Float32Array | Int32Array;
    };
    // host memory: fill the tensor's own array (no temporary copies)
    const view = be.view?.(t.storage);
    const live = view && view.length === n ? view : undefined;
    const a = live ?? new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = f(i);
    if (live) return;
    const s = be.upload(a);
    be.assign(t.storage, s);
    be.free(s);
  });
  return t;
}

/**
 * `fan_in` and `fan_out` of a weight, as PyTorch computes them.
 *
 * @param t A weight with at least 2 dims.
 * @returns `[fanIn, fanOut]`.
 */
export function fans(t: Tensor): [number, number] {
  if (t.ndim < 2) {
    throw new ShapeError(
      `Cannot compute fan in/out of a tensor of shape ${
        fmtShape(t.shape)
      }: needs at least 2 dims`,
    );
  }
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return [t.shape[1] * receptive, t.shape[0] * receptive];
}

/** Fills with U(a, b). @param t Tensor. @param a Low. @param b High. @returns t. */
export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  return write(t, () => a + (b - a) * globalGenerator.uniform());
}

/** Fills with N(mean, std²). @param t Tensor. @param mean Mean. @param std Std. @returns t. */
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return write(t, () => mean + std * globalGenerator.normal());
}

/** Fills with a constant. @param t Tensor. @param value Value. @returns t. */
export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.backend.fill(t.storage, value));
  return t;
}

/** Fills with zeros. @param t Tensor. @returns t. */
export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

/** Fills with ones. @param t Tensor. @returns t. */
export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

/** Options of the Kaiming initialisers. */
export interface KaimingOptions {
  /** Negative slope of the rectifier (leaky_relu) or 0 for relu. */
  a?: number;
  /** Preserve variance in the forward (`fanIn`) or backward (`fanOut`) pass. */
  mode?: "fanIn" | "fanOut";
  /** `"leakyRelu"` (PyTorch's default) or `"relu"`. */
  nonlinearity?: "leakyRelu" | "relu" | "linear";
}

function gain(o: KaimingOptions): number {
  const nl = o.nonlinearity ?? "leakyRelu";
  if (nl === "relu") return Math.SQRT2;
  if (nl === "linear") return 1;
  const a = o.a ?? 0;
  return Math.sqrt(2 / (1 + a * a));
}

/** He-uniform, as `torch.nn.init.kaiming_uniform_`. @param t Weight. @param options a, mode, nonlinearity. @returns t. */
export function kaimingUniform_(
  t: Tensor,
  options: KaimingOptions = {},
): Tensor {
  const [fanIn, fanOut] = fans(t);
  const fan = (options.mode ?? "fanIn") === "fanIn" ? fanIn : fanOut;
  const bound = gain(options) * Math.sqrt(3 / fan);
  return uniform_(t, -bound, bound);
}

/** He-normal, as `torch.nn.init.kaiming_normal_`. @param t Weight. @param options a, mode, nonlinearity. @returns t. */
export function kaimingNormal_(
  t: Tensor,
  options: KaimingOptions = {},
): Tensor {
  const [fanIn, fanOut] = fans(t);
  const fan = (options.mode ?? "fanIn") === "fanIn" ? fanIn : fanOut;
  return normal_(t, 0, gain(options) / Math.sqrt(fan));
}

/** Glorot-uniform, as `torch.nn.init.xavier_uniform_`. @param t Weight. @param g Gain. @returns t. */
export function xavierUniform_(t: Tensor, g = 1): Tensor {
  const [fanIn, fanOut] = fans(t);
  const bound = g * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}
