/**
 * The tape: each op's output remembers its inputs and a function from the
 * output's gradient to the inputs' gradients. `backward()` walks it in
 * reverse topological order and, unless asked to retain it, frees each node
 * once its gradient has gone through, as PyTorch does: the node drops its
 * inputs and its gradient function (so the tensors they captured can be
 * reclaimed) and disposes the tensors it made only for the backward pass
 * (pooling indices, batch statistics, dropout masks). Disposing a tensor
 * frees the node that made it too. Reaching a freed node raises
 * {@linkcode GraphFreedError}.
 *
 * @module
 */

import { fmtShape, GraphFreedError, ShapeError } from "./errors.ts";
import { getBackend } from "./backend/registry.ts";
import { fromStorage, keep, type Tensor } from "./tensor.ts";

/** How a non-leaf tensor was made. */
export interface GradNode {
  /** The op's name, for printing and errors. */
  readonly name: string;
  /** The inputs the gradient flows to (empty once freed). */
  inputs: readonly Tensor[];
  /**
   * Maps the output's gradient to one gradient (or null) per input; null
   * once the node is freed.
   */
  backward: ((grad: Tensor) => readonly (Tensor | null)[]) | null;
  /** Tensors made only for the backward pass, disposed with the node. */
  saved: readonly Tensor[];
  /** What freed the node, or null while it can be back-propagated. */
  freedBy: "backward" | "dispose" | null;
}

/** Options of `Tensor.backward`. */
export interface BackwardOptions {
  /**
   * Keep the graph, so that `backward()` can run through it again (PyTorch's
   * `retain_graph`). Default false: each node is freed once used.
   */
  retainGraph?: boolean;
}

/**
 * Frees a node: drops its inputs and gradient function and disposes the
 * tensors saved for it. Freeing twice does nothing.
 *
 * @param node The node.
 * @param by What frees it.
 */
export function releaseNode(
  node: GradNode,
  by: "backward" | "dispose",
): void {
  if (node.freedBy) return;
  node.freedBy = by;
  node.inputs = [];
  node.backward = null;
  for (const t of node.saved) t.dispose();
  node.saved = [];
}

function freedError(node: GradNode, t: Tensor): GraphFreedError {
  const by = node.freedBy!;
  return new GraphFreedError(
    by === "backward"
      ? `Cannot backward() through the graph a second time: ${node.name} ` +
        `(output ${
          fmtShape(t.shape)
        }) was freed by an earlier backward(); pass ` +
        "{ retainGraph: true } to the first backward() to call it again"
      : `Cannot backward() through ${node.name}: its output ${
        fmtShape(t.shape)
      } was disposed (by dispose() or on leaving tidy()) before backward() ` +
        "ran; call backward() inside the tidy() that ran the forward pass",
    by,
  );
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
 * One op as a trace sees it (see {@linkcode traceOps}): its name (as
 * recorded on the tape), its tensor inputs, its output and the attributes
 * that define it beyond its inputs (stride, dims, scalar operands, ...).
 */
export interface TracedOp {
  /** The op's name, e.g. `conv2d`, `add`, `batchNorm`. */
  readonly name: string;
  /** Its tensor inputs. */
  readonly inputs: readonly Tensor[];
  /** Its output. */
  readonly output: Tensor;
  /** Its attributes, as the op reports them. */
  readonly attrs: Readonly<Record<string, unknown>>;
}

let tracer: ((op: TracedOp) => void) | null = null;

/**
 * Runs `fn` and reports every op it runs to `onOp`, in order, whether or
 * not gradients are recorded. An op built from other ops reports them and
 * then itself, with the same output as the last of them (as `sum` reports
 * the `reshape` that drops its kept dims). Used by the ONNX exporter. Not
 * reentrant: a trace inside a trace throws.
 *
 * @param fn The work (synchronous).
 * @param onOp Called once per op.
 * @returns What `fn` returned.
 */
export function traceOps<T>(fn: () => T, onOp: (op: TracedOp) => void): T {
  if (tracer) throw new Error("traceOps() is already tracing");
  tracer = onOp;
  try {
    return fn();
  } finally {
    tracer = null;
  }
}

/**
 * Reports an op to the active trace, if any; for ops and paths that do
 * not go through {@linkcode record} (inference fast paths, ops without a
 * gradient).
 *
 * @param out The op's output.
 * @param inputs Its tensor inputs.
 * @param name Its name.
 * @param attrs Its attributes.
 * @returns `out`.
 */
export function traceOp(
  out: Tensor,
  inputs: readonly Tensor[],
  name: string,
  attrs: Readonly<Record<string, unknown>> = {},
): Tensor {
  tracer?.({ name, inputs, output: out, attrs });
  return out;
}

/** An op's name with the attributes a trace reports (see {@linkcode traceOps}). */
export interface OpInfo {
  /** The op's name. */
  readonly name: string;
  /** Its attributes (stride, dims, scalar operands, ...). */
  readonly attrs: Readonly<Record<string, unknown>>;
}

/**
 * Records `out` as made from `inputs` when any input requires gradients,
 * and reports the op to the active trace (see {@linkcode traceOps}).
 *
 * @param out The op's output.
 * @param inputs The op's tensor inputs.
 * @param op The op's name, or its name and the attributes a trace reports.
 * @param backward The gradient function.
 * @param saved Tensors `backward` uses that nothing else may hold (made by
 * the op for its backward pass): disposed when the node is freed, or at
 * once when nothing is recorded.
 * @returns `out`.
 */
export function record(
  out: Tensor,
  inputs: readonly Tensor[],
  op: string | OpInfo,
  backward: (grad: Tensor) => readonly (Tensor | null)[],
  saved: readonly Tensor[] = [],
): Tensor {
  const name = typeof op === "string" ? op : op.name;
  tracer?.({
    name,
    inputs,
    output: out,
    attrs: typeof op === "string" ? {} : op.attrs,
  });
  let any = false;
  if (gradEnabled) {
    for (const t of inputs) {
      if (t.requiresGrad) {
        any = true;
        break;
      }
    }
  }
  if (!any) {
    for (const t of saved) t.dispose();
    return out;
  }
  if (inputs.includes(out)) {
    throw new Error(`record(${name}): an op returned its own input`);
  }
  out.requiresGrad = true;
  out.gradNode = { name, inputs, backward, saved, freedBy: null };
  return out;
}

/**
 * Topological order of the tensors reachable from `root`; throws
 * {@linkcode GraphFreedError} at a freed node, before any gradient is made.
 */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const node = t.gradNode;
    if (node?.freedBy) throw freedError(node, t);
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

/** Ones of `t`'s shape and dtype on its device: the implicit seed. */
function onesLike(t: Tensor): Tensor {
  const be = getBackend(t.device);
  const s = be.zeros(t.dtype, t.numel());
  be.fill(s, 1);
  return fromStorage(be, s, t.shape);
}

/** Adds `g` into `into` in place (a leaf's existing `.grad`). */
function accumulate(into: Tensor, g: Tensor): void {
  into.backend.axpy(into.storage, g.storage, 1);
}

/** A copy of `t` with storage of its own, on its backend. */
function copy(t: Tensor): Tensor {
  const be = t.backend;
  const s = be.zeros(t.dtype, t.numel());
  be.assign(s, t.storage);
  return fromStorage(be, s, t.shape);
}

/**
 * Back-propagates from `root`. Leaves that require gradients accumulate into
 * `.grad` (in place when one exists). Intermediate gradients are released as
 * soon as they are consumed.
 *
 * @param root The tensor to differentiate.
 * @param grad Its upstream gradient (ones for a one-element root).
 * @param options `retainGraph` keeps every node for another pass.
 */
export function backwardFrom(
  root: Tensor,
  grad: Tensor | undefined,
  options: BackwardOptions = {},
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
  const retain = options.retainGraph ?? false;
  const prev = setGradEnabled(false);
  let ownSeed: Tensor | null = null;
  const outerCallbacks = endCallbacks;
  const callbacks: (() => void)[] = endCallbacks = [];
  try {
    const order = topoOrder(root);
    const seed = grad ?? (ownSeed = onesLike(root));
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
    const finishLeaf = (leaf: Tensor) => {
      const g = slot.get(leaf);
      if (!g) return;
      slot.delete(leaf);
      if (leaf.grad && !leaf.grad.isDisposed) {
        accumulate(leaf.grad, g);
        release(g);
      } else if (
        holders.get(g) === 1 && !protect.has(g) && g.ref.refs === 1
      ) {
        holders.delete(g);
        leaf.grad = keep(g);
      } else {
        leaf.grad = keep(copy(g));
        release(g);
      }
      const hooks = gradReadyHooks.get(leaf);
      if (hooks) { for (const h of [...hooks]) h(leaf); }
    };
    for (const t of order) {
      const node = t.gradNode;
      if (!node) {
        // every consumer of a leaf comes before it in `order`: its gradient
        // is final here, so it is stored now and its hooks run (which lets
        // data-parallel training start reducing it while backward goes on)
        finishLeaf(t);
        continue;
      }
      const g = slot.get(t);
      if (!g) {
        if (!retain) releaseNode(node, "backward");
        continue;
      }
      const grads = node.backward!(g);
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
      if (!retain) releaseNode(node, "backward");
      slot.delete(t);
      release(g);
    }
    for (const cb of callbacks) cb();
  } finally {
    ownSeed?.dispose();
    setGradEnabled(prev);
    endCallbacks = outerCallbacks;
  }
}

/**
 * Called once a leaf's gradient is final in a `backward()` and stored in its
 * `.grad` (PyTorch's `register_post_accumulate_grad_hook`).
 */
export type GradReadyHook = (leaf: Tensor) => void;

const gradReadyHooks = new WeakMap<Tensor, GradReadyHook[]>();

/**
 * Registers a hook run during every `backward()` right after `leaf`'s
 * gradient is accumulated into `leaf.grad`, while the rest of the backward
 * pass is still to run (gradients are not recorded inside it).
 *
 * @param leaf A leaf tensor (a parameter).
 * @param hook The hook.
 * @returns A handle whose `remove()` unregisters it.
 */
export function registerGradReadyHook(
  leaf: Tensor,
  hook: GradReadyHook,
): { remove(): void } {
  const list = gradReadyHooks.get(leaf) ?? [];
  list.push(hook);
  gradReadyHooks.set(leaf, list);
  return {
    remove: () => {
      const i = list.indexOf(hook);
      if (i >= 0) list.splice(i, 1);
    },
  };
}

let endCallbacks: (() => void)[] | null = null;

/**
 * Queues `fn` to run when the current `backward()` has stored every
 * gradient, before it returns (PyTorch's `queue_callback`). Only valid
 * inside a backward pass (from a gradient-ready hook).
 *
 * @param fn The callback.
 */
export function queueBackwardCallback(fn: () => void): void {
  if (!endCallbacks) {
    throw new Error(
      "queueBackwardCallback() is only valid during backward() (from a gradient-ready hook)",
    );
  }
  endCallbacks.push(fn);
}
