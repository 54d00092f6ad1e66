/**
 * `nn`: building blocks in the style of `torch.nn`. `Module` (subclass it,
 * assign layers as fields and override `forward`; `parameters()`,
 * `stateDict()`, `train()`/`eval()`, hooks and freezing come with it),
 * `Parameter` and `Buffer`; the layers `Linear`, `Conv2d`, `BatchNorm2d`,
 * `MaxPool2d`, `AvgPool2d`, `AdaptiveAvgPool2d`, `ReLU`, `Dropout`,
 * `Flatten`, `Identity` and `Sequential`. The initialisers are in `nn.init`,
 * the functional forms of the layers and the losses in `nn.functional`.
 *
 * ```ts
 * import { nn, type Tensor, tensor } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * class Net extends nn.Module {
 *   fc = new nn.Linear(2, 1);
 *   override forward(x: Tensor): Tensor {
 *     return nn.functional.relu(this.fc.call(x));
 *   }
 * }
 * const y = new Net().call(tensor([[1, 2]]));
 * assert.deepEqual(y.shape, [1, 1]);
 * ```
 *
 * @module
 */

export * as functional from "./functional.ts";
export * as init from "./init.ts";
export * from "./module.ts";
export * from "./layers.ts";
export * from "./sequential.ts";
