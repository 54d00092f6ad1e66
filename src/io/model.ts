/**
 * What the io room needs of a model, as structural types: `nn.Module` has
 * all of it. Declaring them here keeps `io/` from importing `nn/`, which
 * imports `io/` to load pretrained weights (`models.resnet18({ weights })`):
 * no import cycle between the two rooms.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";

/** A model whose weights can be read and written by key (`nn.Module`). */
export interface StatefulModel {
  /** The model's tensors by PyTorch-style key. */
  stateDict(): Record<string, Tensor>;
  /**
   * Copies tensors into the model by key.
   *
   * @param dict The tensors.
   * @param options `strict: false` allows missing and unexpected keys.
   */
  loadStateDict(
    dict: Record<string, Tensor>,
    options?: { strict?: boolean },
  ): unknown;
}

/** A model the ONNX exporter can trace (`nn.Module`). */
export interface TraceableModel {
  /** Runs the forward pass and the forward hooks. */
  call(x: Tensor): Tensor;
  /** The model's tensors by PyTorch-style key. */
  stateDict(): Record<string, Tensor>;
  /** Every buffer with its key, non-persistent ones included. */
  namedBuffers(): [string, Tensor][];
  /** The model and its submodules, whose `training` flags are restored. */
  modules(): { training: boolean }[];
  /** Puts the model in eval mode. */
  eval(): unknown;
}
