/**
 * Pretrained weights: reading a weights file whatever its format
 * (PyTorch `.pth`/`.pt` or safetensors, told apart by their first bytes),
 * and loading a state dict into a model whose classifier head may differ
 * from the file's (fine-tuning a torchvision model on new classes). A file
 * that is neither (empty, an HTML error page, a Git LFS pointer) is named
 * for what it is rather than failing inside one of the readers.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import { CheckpointError, fmtShape } from "../errors.ts";
import { readFileOrThrow, readFileOrThrowSync } from "./_read.ts";
import { clip, describeStart, sniff } from "./_dtype.ts";
import type { StatefulModel } from "./model.ts";
import type { Tensor } from "../tensor.ts";
import { parseSafetensors } from "./safetensors.ts";
import { parseTorch } from "./torch.ts";

/** Options of `loadWeights`. */
export interface LoadWeightsOptions {
  /** Device to create the tensors on (default: the current one). */
  device?: DeviceName;
  /**
   * The most bytes the file may make the reader materialise (the reader's
   * `maxBytes`: see `loadTorch` and `loadSafetensors`). Default: 16 times
   * the file's size, at least 1 MiB.
   */
  maxBytes?: number;
}

/**
 * Reads a state dict from the bytes of a PyTorch or safetensors file,
 * choosing the reader from the first bytes.
 *
 * @param bytes The whole file.
 * @param name The file's path, for messages.
 * @param options `device` for the tensors, `maxBytes` for the reader.
 * @returns The tensors by state-dict key.
 * @throws CheckpointError naming the file and what is wrong, or what the
 * file is when it is neither format.
 */
export function parseWeights(
  bytes: Uint8Array,
  name: string,
  options: LoadWeightsOptions = {},
): Record<string, Tensor> {
  switch (sniff(bytes)) {
    case "safetensors":
      return parseSafetensors(bytes, name, options);
    case "zip":
    case "pickle":
    case "tar":
      return parseTorch(bytes, name, options);
    case "empty":
      throw new CheckpointError(
        `Cannot read weights file ${name}: the file is empty (0 bytes)`,
      );
    default:
      throw new CheckpointError(
        `Cannot read weights file ${name}: it is neither safetensors nor a PyTorch checkpoint (it ${
          describeStart(bytes)
        })`,
      );
  }
}

/** The first 20 items, each cut to 100 characters: the file's keys are its own. */
function list(items: string[], separator: string): string {
  const shown = items.slice(0, 20).map((k) => clip(k, 100));
  if (items.length > 20) shown.push(`... (${items.length} in all)`);
  return shown.join(separator);
}

/**
 * Reads a state dict from a PyTorch (`.pth`, `.pt`: zip or legacy layout)
 * or safetensors file, choosing the reader from the file's first bytes. An
 * empty file, or one in neither format, is refused naming what it is
 * (`starts with bytes 3c 21 44 4f ... ("<!DOCTYPE html>...")`).
 *
 * The readers' limits for untrusted files apply (see `loadTorch` and
 * `loadSafetensors`): by default a file may materialise at most 16 times
 * its size (at least 1 MiB) of zip entries and decoded tensors; `maxBytes`
 * raises or lowers that.
 *
 * @param path The file.
 * @param options `device` for the tensors; `maxBytes` for the readers.
 * @returns The tensors by state-dict key.
 * @throws CheckpointError naming the file and what is wrong.
 */
export async function loadWeights(
  path: string | URL,
  options: LoadWeightsOptions = {},
): Promise<Record<string, Tensor>> {
  const { bytes, name } = await readFileOrThrow(path, "weights file");
  return parseWeights(bytes, name, options);
}

/**
 * Reads a state dict synchronously; see `loadWeights`. Model factories
 * (`models.resnet18({ weights: path })`) use it so that they can stay
 * synchronous, as torchvision's are.
 *
 * @param path The file.
 * @param options `device` and `maxBytes`, as for `loadWeights`.
 * @returns The tensors by state-dict key.
 * @throws CheckpointError naming the file and what is wrong.
 */
export function loadWeightsSync(
  path: string | URL,
  options: LoadWeightsOptions = {},
): Record<string, Tensor> {
  const { bytes, name } = readFileOrThrowSync(path, "weights file");
  return parseWeights(bytes, name, options);
}

/** Options of `loadPretrained`. */
export interface LoadPretrainedOptions {
  /**
   * The classifier head's module path (e.g. `"fc"`). When the weights'
   * head has another shape than the model's, the model keeps its freshly
   * initialised head and everything else is loaded.
   */
  head?: string;
  /** Where the weights came from, for messages. */
  source?: string;
}

/** What `loadPretrained` did. */
export interface PretrainedResult {
  /** Keys of the model's state dict that were filled from the weights. */
  loadedKeys: string[];
  /** Head keys kept at their fresh initialisation because shapes differ. */
  replacedKeys: string[];
  /**
   * BatchNorm `num_batches_tracked` counters the weights lack (files saved
   * before PyTorch 0.4.1, such as torchvision's original ImageNet
   * weights); they stay 0, as PyTorch leaves them.
   */
  defaultedKeys: string[];
  /** A sentence saying the head was replaced, when it was. */
  note?: string;
}

/**
 * Loads pretrained weights into a model, as `model.load_state_dict` does
 * with `strict=True`, except that (1) a head whose shape differs from the
 * weights' is left freshly initialised and reported, and (2) missing
 * BatchNorm `num_batches_tracked` counters are allowed. Every key and shape
 * is checked before anything is copied, so a bad file leaves the model
 * untouched.
 *
 * @param model The model to fill in place.
 * @param weights Tensors by PyTorch key (from `loadWeights`, `loadTorch`, ...).
 * @param options `head` (module path of the classifier), `source` for messages.
 * @returns The keys loaded, replaced and defaulted, and a note when the head
 * was replaced.
 * @throws CheckpointError listing missing keys, unexpected keys and shape
 * mismatches outside the head.
 *
 * @example Fine-tune on two classes from ten-class weights
 * ```ts
 * import { io, nn } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * // stands in for a file read with io.loadWeights(path)
 * const tenClasses = new nn.Sequential(new nn.Linear(4, 8), new nn.Linear(8, 10));
 * const net = new nn.Sequential(new nn.Linear(4, 8), new nn.Linear(8, 2));
 * const r = io.loadPretrained(net, tenClasses.stateDict(), { head: "1" });
 * assert.deepEqual(r.replacedKeys, ["1.weight", "1.bias"]);
 * assert.deepEqual(r.loadedKeys, ["0.weight", "0.bias"]);
 * ```
 */
export function loadPretrained(
  model: StatefulModel,
  weights: Record<string, Tensor>,
  options: LoadPretrainedOptions = {},
): PretrainedResult {
  const own = model.stateDict();
  const head = options.head ? `${options.head}.` : null;
  const inHead = (k: string) => head !== null && k.startsWith(head);
  const headDiffers = Object.keys(own).some((k) =>
    inHead(k) && weights[k] !== undefined &&
    weights[k].shape.join() !== own[k].shape.join()
  );
  const replacedKeys = headDiffers ? Object.keys(own).filter(inHead) : [];
  const replaced = new Set(replacedKeys);
  const defaultedKeys = Object.keys(own).filter((k) =>
    !(k in weights) && k.endsWith("num_batches_tracked")
  );
  const missing = Object.keys(own).filter((k) =>
    !(k in weights) && !replaced.has(k) && !defaultedKeys.includes(k)
  );
  const unexpected = Object.keys(weights).filter((k) =>
    !(k in own) && !(headDiffers && inHead(k))
  );
  const mismatched = Object.keys(own).filter((k) =>
    !replaced.has(k) && k in weights &&
    weights[k].shape.join() !== own[k].shape.join()
  ).map((k) =>
    `${k}: weights ${fmtShape(weights[k].shape)}, model ${
      fmtShape(own[k].shape)
    }`
  );
  const problems: string[] = [];
  if (missing.length) problems.push(`missing keys: ${list(missing, ", ")}`);
  if (unexpected.length) {
    problems.push(`unexpected keys: ${list(unexpected, ", ")}`);
  }
  if (mismatched.length) {
    problems.push(`shape mismatches: ${list(mismatched, "; ")}`);
  }
  const from = options.source ? ` from ${options.source}` : "";
  if (problems.length) {
    throw new CheckpointError(
      `Cannot load pretrained weights${from} into ${model.constructor.name}: ${
        problems.join("; ")
      }`,
    );
  }
  const subset: Record<string, Tensor> = {};
  for (const k of Object.keys(own)) {
    if (k in weights && !replaced.has(k)) subset[k] = weights[k];
  }
  model.loadStateDict(subset, { strict: false });
  const result: PretrainedResult = {
    loadedKeys: Object.keys(subset),
    replacedKeys,
    defaultedKeys,
  };
  if (headDiffers) {
    const shapes = replacedKeys.map((k) =>
      `${k} ${fmtShape(weights[k]?.shape ?? [])} -> ${fmtShape(own[k].shape)}`
    );
    result.note =
      `The weights${from} have a different head: ${options.head} keeps its fresh initialisation (${
        shapes.join(", ")
      }); the other ${result.loadedKeys.length} tensors were loaded`;
  }
  return result;
}
