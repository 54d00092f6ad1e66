/**
 * The tape: each op's output remembers its inputs and a function from the
 * output's gradient to the inputs' gradients. `backward()` walks it in
 * reverse topological order.
 *
 * @module
 */

import { fmtShape, ShapeError } from "./errors.ts";
import { keep, type Tensor } from "./tensor.ts";

/** How a non-leaf tensor was made. */
export interface GradNode {
  /** The op's name, for printing and errors. */
  readonly name: string;
  /** The inputs the gradient flows to. */
  readonly inputs: readonly Tensor[];
  /** Maps the output's gradient to one gradient (or null) per input. */
  readonly backward: (grad: Tensor) => readonly (Tensor | null)[];
}

let gradEnabled = true;

/** Whether ops record gradients right now. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` without recording gradients, as `torch.no_grad()` does. `fn`
 * may be async; recording stays off until its promise settles.
 *
 * @param fn The work.
 * @returns What `fn` returned.
 *
 * @example Inference records nothing
 * ```ts
 * import { noGrad, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const w = tensor([2], { requiresGrad: true });
 * const y = noGrad(() => w.mul(3));
 * assert.equal(y.requiresGrad, false);
 * ```
 */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    gradEnabled = prev;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      gradEnabled = prev;
    }) as T;
  }
  gradEnabled = prev;
  return result;
}

/**
 * Sets whether gradients are recorded, returning the previous setting.
 *
 * @param enabled The new setting.
 * @returns The previous setting.
 */
export function setGradEnabled(enabled: boolean): boolean {
  const prev = gradEnabled;
  gradEnabled = enabled;
  return prev;
}

/**
 * Records `out` as made from `inputs` when any input requires gradients.
 *
 * @param out The op's output.
 * @param inputs The op's tensor inputs.
 * @param name The op's name.
 * @param backward The gradient function.
 * @returns `out`.
 */
export function record(
  out: Tensor,
  inputs: readonly Tensor[],
  name: string,
  backward: (grad: Tensor) => readonly (Tensor | null)[],
): Tensor {
  if (!gradEnabled) return out;
  let any = false;
  for (const t of inputs) {
    if (t.requiresGrad) {
      any = true;
      break;
    }
  }
  if (!any) return out;
  if (inputs.includes(out)) {
    throw new Error(`record(${name}): an op returned its own input`);
  }
  out.requiresGrad = true;
  out.gradNode = { name, inputs, backward };
  return out;
}

/** Topological order of the non-leaf tensors reachable from `root`. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const node = t.gradNode;
    if (node && i < node.inputs.length) {
      top[1]++;
      const child = node.inputs[i];
      if (child.requiresGrad && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

/**
 * Back-propagates from `root`. Leaves that require gradients accumulate into
 * `.grad` (in place when one exists). Intermediate gradients are released as
 * soon as they are consumed.
 *
 * @param root The tensor to differentiate.
 * @param grad Its upstream gradient (ones for a one-element root).
 * @param helpers Kernels supplied by the ops layer.
 */
export function backwardFrom(
  root: Tensor,
  grad: Tensor | undefined,
  helpers: {
    onesLike(t: Tensor): Tensor;
    accumulate(into: Tensor, g: Tensor): void;
    copy(t: Tensor): Tensor;
  },
): void {
  if (!root.requiresGrad) {
    throw new Error(
      `Cannot call backward() on a tensor of shape ${
        fmtShape(root.shape)
      }: it does not require gradients (no input had requiresGrad, or it was made under noGrad)`,
    );
  }
  if (!grad) {
    if (root.numel() !== 1) {
      throw new ShapeError(
        `Cannot call backward() without a gradient on a tensor of shape ${
          fmtShape(root.shape)
        }: an implicit gradient needs a one-element tensor`,
      );
    }
  } else if (grad.shape.join() !== root.shape.join()) {
    throw new ShapeError(
      `Cannot call backward(): gradient shape ${
        fmtShape(grad.shape)
      } differs from tensor shape ${fmtShape(root.shape)}`,
    );
  }
  const prev = setGradEnabled(false);
  try {
    const seed = grad ?? helpers.onesLike(root);
    const slot = new Map<Tensor, Tensor>(); // tensor -> its gradient
    const holders = new Map<Tensor, number>(); // gradient -> slots holding it
    const protect = new Set<Tensor>([seed]);
    const hold = (g: Tensor) => holders.set(g, (holders.get(g) ?? 0) + 1);
    const release = (g: Tensor) => {
      const n = (holders.get(g) ?? 0) - 1;
      if (n > 0) holders.set(g, n);
      else {
        holders.delete(g);
        if (!protect.has(g) && !g.kept) g.dispose();
      }
    };
    const put = (t: Tensor, g: Tensor) => {
      const have = slot.get(t);
      if (!have) {
        slot.set(t, g);
        hold(g);
        return;
      }
      const sum = have.add(g);
      slot.set(t, sum);
      hold(sum);
      release(have);
      // g was never held: dispose it unless another slot or the caller owns it
      if (!holders.has(g) && !protect.has(g) && !g.kept) g.dispose();
    };
    put(root, seed);
    const order = topoOrder(root);
    const leaves: Tensor[] = [];
    for (const t of order) {
      const node = t.gradNode;
      if (!node) {
        leaves.push(t);
        continue;
      }
      const g = slot.get(t);
      if (!g) continue;
      const grads = node.backward(g);
      for (let i = 0; i < node.inputs.length; i++) {
        const inp = node.inputs[i];
        const gi = grads[i];
        if (!gi || !inp.requiresGrad) {
          if (gi && gi !== g && !holders.has(gi)) gi.dispose();
          continue;
        }
        if (gi.shape.join() !== inp.shape.join()) {
          throw new ShapeError(
            `Gradient of ${node.name} has shape ${
              fmtShape(gi.shape)
            } but its input has shape ${fmtShape(inp.shape)}`,
          );
        }
        put(inp, gi);
      }
      slot.delete(t);
      release(g);
    }
    for (const leaf of leaves) {
      const g = slot.get(leaf);
      if (!g) continue;
      slot.delete(leaf);
      if (leaf.grad && !leaf.grad.isDisposed) {
        helpers.accumulate(leaf.grad, g);
        release(g);
      } else if (
        holders.get(g) === 1 && !protect.has(g) && g.ref.refs === 1
      ) {
        holders.delete(g);
        leaf.grad = keep(g);
      } else {
        leaf.grad = keep(helpers.copy(g));
        release(g);
      }
    }
  } finally {
    setGradEnabled(prev);
  }
}
