/**
 * Internal helpers of `Module` and the layers: PyTorch's key style, the
 * count of forward hooks that decides when inference may free
 * intermediates early, and the state-dict check shared with checkpoints.
 *
 * @module
 */

import { isGradEnabled } from "../autograd.ts";
import { CheckpointError, fmtShape, TensorStateError } from "../errors.ts";
import { Tensor } from "../tensor.ts";

/** camelCase → snake_case, PyTorch's attribute style. */
export function toSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

/** Forward hooks registered on any module and not removed. */
let activeHooks = 0;

/**
 * Frees an intermediate activation as soon as the next layer has consumed
 * it, when nothing else can need it: gradients are off (no graph holds it),
 * no forward hook is registered anywhere (none could have captured it), it
 * is not marked with `keep()`, and it is none of `others` (the block's input
 * or output, which an `Identity` layer may pass through). With gradients on,
 * or any hook, it does nothing and `tidy` frees the intermediate later.
 * This is what lets a teacher's inference hold one or two activations at a
 * time instead of all of them, as PyTorch's reference counting does.
 *
 * @param t The intermediate.
 * @param others Tensors that must stay.
 */
export function releaseIntermediate(t: Tensor, ...others: Tensor[]): void {
  if (inferenceShortcutsAllowed() && !t.kept && !others.includes(t)) {
    t.dispose();
  }
}

/**
 * Whether layers may be fused and intermediates freed early: gradients are
 * off and no forward hook is registered anywhere (a hook expects to see each
 * layer's own output, and may keep it).
 *
 * @returns Whether inference shortcuts are allowed now.
 */
export function inferenceShortcutsAllowed(): boolean {
  return activeHooks === 0 && !isGradEnabled();
}

/**
 * Whether no forward hook is registered anywhere: then layers may be fused
 * (a hook expects to see each layer's own output).
 *
 * @returns True when no hook is registered.
 */
export function noForwardHooks(): boolean {
  return activeHooks === 0;
}

/**
 * Checks `dict` against a module's own state dict without changing
 * anything: what `Module.loadStateDict` checks before it writes. Every key
 * of `own` that `dict` has must hold a live tensor of the same shape whose
 * dtype converts without loss (the same dtype, or int32 into float32);
 * with `strict`, every key of `own` must be present and no other key.
 *
 * @param own The module's tensors by key (its `stateDict()`).
 * @param dict The tensors to load.
 * @param options `strict`, and `owner` (the module's name, for messages).
 * @returns The missing and unexpected keys.
 * @throws CheckpointError listing every problem found.
 * @throws TensorStateError when a tensor of `own` was disposed.
 */
export function checkStateDict(
  own: Record<string, Tensor>,
  dict: Record<string, unknown>,
  options: { strict: boolean; owner: string },
): { missingKeys: string[]; unexpectedKeys: string[] } {
  const action = `Cannot load state dict into ${options.owner}`;
  if (dict === null || typeof dict !== "object" || Array.isArray(dict)) {
    throw new CheckpointError(
      `${action}: expected an object of tensors by key, got ${
        Array.isArray(dict) ? "an array" : String(dict)
      }`,
    );
  }
  const missingKeys = Object.keys(own).filter((k) => !Object.hasOwn(dict, k));
  const unexpectedKeys = Object.keys(dict).filter((k) =>
    !Object.hasOwn(own, k)
  );
  const bad: string[] = [];
  const mismatched: string[] = [];
  for (const [k, t] of Object.entries(own)) {
    if (t.isDisposed) {
      throw new TensorStateError(`${action}: its tensor ${k} was disposed`);
    }
    if (!Object.hasOwn(dict, k)) continue;
    const src = dict[k];
    if (!(src instanceof Tensor)) {
      bad.push(`${k} is ${describeValue(src)}, not a tensor`);
    } else if (src.isDisposed) {
      bad.push(`${k} was disposed`);
    } else if (src.shape.join() !== t.shape.join()) {
      mismatched.push(
        `${k}: checkpoint ${fmtShape(src.shape)}, model ${fmtShape(t.shape)}`,
      );
    } else if (src.dtype !== t.dtype && t.dtype !== "float32") {
      bad.push(`${k} is ${src.dtype} but the model's is ${t.dtype}`);
    }
  }
  const problems: string[] = [];
  if (options.strict && missingKeys.length) {
    problems.push(`missing keys: ${missingKeys.join(", ")}`);
  }
  if (options.strict && unexpectedKeys.length) {
    problems.push(`unexpected keys: ${unexpectedKeys.join(", ")}`);
  }
  if (bad.length) problems.push(`bad values: ${bad.join("; ")}`);
  if (mismatched.length) {
    problems.push(`shape mismatches: ${mismatched.join("; ")}`);
  }
  if (problems.length) {
    throw new CheckpointError(`${action}: ${problems.join("; ")}`);
  }
  return { missingKeys, unexpectedKeys };
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "object") {
    return `an object (${(v as object).constructor?.name ?? "no class"})`;
  }
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

/** Counts a forward hook registered on any module. */
export function hookAdded(): void {
  activeHooks++;
}

/** Counts a forward hook removed. */
export function hookRemoved(): void {
  activeHooks--;
}
