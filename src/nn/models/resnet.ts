/**
 * ResNet-18 with torchvision's exact structure, initialisation and
 * state-dict keys (`conv1.weight`, `layer1.0.bn1.running_mean`, ...,
 * `fc.bias`), so torchvision checkpoints load unchanged.
 *
 * @module
 */

import type { Tensor } from "../../tensor.ts";
import { add } from "../../ops/elementwise.ts";
import { flatten } from "../../ops/shape.ts";
import { constant_, kaimingNormal_ } from "../init.ts";
import {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  Conv2d,
  Linear,
  MaxPool2d,
  ReLU,
} from "../layers.ts";
import { Sequential } from "../sequential.ts";
import { runChain } from "../_chain.ts";
import { Module } from "../module.ts";
import { releaseIntermediate } from "../_state.ts";
import { loadPretrained, loadWeightsSync } from "../../io/weights.ts";

/** torchvision's `BasicBlock`: two 3×3 convolutions and a shortcut. */
export class BasicBlock extends Module {
  /** First 3×3 convolution (carries the stride). */
  conv1: Conv2d;
  /** Its batch norm. */
  bn1: BatchNorm2d;
  /** Shared ReLU. */
  relu: ReLU;
  /** Second 3×3 convolution. */
  conv2: Conv2d;
  /** Its batch norm. */
  bn2: BatchNorm2d;
  /** 1×1 convolution + batch norm on the shortcut, when shapes change. */
  downsample: Sequential | null;
  /**
   * Builds the block's two 3x3 convolutions and, when the shape changes, the 1x1 downsample.
   *
   * @param inplanes Input channels.
   * @param planes Output channels.
   * @param stride Stride of the first convolution.
   */
  constructor(inplanes: number, planes: number, stride = 1) {
    super();
    this.conv1 = new Conv2d(inplanes, planes, 3, {
      stride,
      padding: 1,
      bias: false,
    });
    this.bn1 = new BatchNorm2d(planes);
    this.relu = new ReLU();
    this.conv2 = new Conv2d(planes, planes, 3, { padding: 1, bias: false });
    this.bn2 = new BatchNorm2d(planes);
    this.downsample = stride !== 1 || inplanes !== planes
      ? new Sequential(
        new Conv2d(inplanes, planes, 1, { stride, bias: false }),
        new BatchNorm2d(planes),
      )
      : null;
  }
  /** Runs the block: two convolutions plus the shortcut, then ReLU. */
  override forward(x: Tensor): Tensor {
    const out = runChain(x, [
      this.conv1,
      this.bn1,
      this.relu,
      this.conv2,
      this.bn2,
    ]);
    const identity = this.downsample ? this.downsample.call(x) : x;
    const sum = add(out, identity);
    releaseIntermediate(out, x);
    releaseIntermediate(identity, x);
    const y = this.relu.call(sum);
    releaseIntermediate(sum, y);
    return y;
  }
}

/** Options of `resnet18`. */
export interface ResNetOptions {
  /** Output classes (default 1000, ImageNet's). */
  numClasses?: number;
}

/** torchvision's ResNet, for BasicBlock layouts. */
export class ResNet extends Module {
  /** Stem convolution, 7×7 stride 2. */
  conv1: Conv2d;
  /** Stem batch norm. */
  bn1: BatchNorm2d;
  /** Stem ReLU. */
  relu: ReLU;
  /** 3×3 stride-2 max pooling. */
  maxpool: MaxPool2d;
  /** Stage 1 (64 channels). */
  layer1: Sequential;
  /** Stage 2 (128 channels). */
  layer2: Sequential;
  /** Stage 3 (256 channels). */
  layer3: Sequential;
  /** Stage 4 (512 channels). */
  layer4: Sequential;
  /** Global average pooling. */
  avgpool: AdaptiveAvgPool2d;
  /** The classifier head; replace it to change the number of classes. */
  fc: Linear;
  /**
   * Builds a ResNet from its blocks per stage.
   *
   * @param layers Blocks per stage, e.g. `[2, 2, 2, 2]` for ResNet-18.
   * @param options numClasses.
   */
  constructor(
    layers: [number, number, number, number],
    options: ResNetOptions = {},
  ) {
    super();
    const numClasses = options.numClasses ?? 1000;
    this.conv1 = new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(64);
    this.relu = new ReLU();
    this.maxpool = new MaxPool2d(3, { stride: 2, padding: 1 });
    let inplanes = 64;
    const stage = (planes: number, blocks: number, stride: number) => {
      const mods: Module[] = [new BasicBlock(inplanes, planes, stride)];
      inplanes = planes;
      for (let i = 1; i < blocks; i++) {
        mods.push(new BasicBlock(planes, planes));
      }
      return new Sequential(...mods);
    };
    this.layer1 = stage(64, layers[0], 1);
    this.layer2 = stage(128, layers[1], 2);
    this.layer3 = stage(256, layers[2], 2);
    this.layer4 = stage(512, layers[3], 2);
    this.avgpool = new AdaptiveAvgPool2d(1);
    this.fc = new Linear(512, numClasses);
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        kaimingNormal_(m.weight, { mode: "fanOut", nonlinearity: "relu" });
      } else if (m instanceof BatchNorm2d) {
        if (m.weight) constant_(m.weight, 1);
        if (m.bias) constant_(m.bias, 0);
      }
    }
  }
  /** Maps NCHW images to `[n, numClasses]` logits. */
  override forward(x: Tensor): Tensor {
    const pooled = runChain(x, [
      this.conv1,
      this.bn1,
      this.relu,
      this.maxpool,
      this.layer1,
      this.layer2,
      this.layer3,
      this.layer4,
      this.avgpool,
    ]);
    const flat = flatten(pooled, 1);
    releaseIntermediate(pooled, x, flat);
    const y = this.fc.call(flat);
    releaseIntermediate(flat, x, y);
    return y;
  }
}

/**
 * ResNet-18 as torchvision builds it: 11,689,512 parameters with 1000
 * classes, 11,177,538 with 2.
 *
 * `weights` loads pretrained weights with torchvision's key names, like
 * torchvision's `resnet18(weights=...)`: a path to a PyTorch `.pth`/`.pt`
 * file (e.g. `resnet18-f37072fd.pth`) or a `.safetensors` file, read
 * synchronously so the factory stays synchronous, or a state dict already
 * loaded (`await io.loadTorch(path)`), which is left as it is. Without
 * `numClasses` the model takes the weights' number of classes; with a
 * different `numClasses` the head `fc` keeps its fresh initialisation, the
 * rest is loaded, and `console.warn` says so (`io.loadPretrained` returns
 * the same note instead). Files that predate BatchNorm's
 * `num_batches_tracked` load with those counters at 0, as in PyTorch. A bad
 * file throws before the model exists, so nothing is half-loaded.
 *
 * @param options `numClasses`, and `weights`: a file path or a state dict.
 * @returns A freshly initialised model, or one holding the weights.
 * @throws CheckpointError when the weights cannot be read or do not fit.
 *
 * @example Count parameters
 * ```ts
 * import { models } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.equal(models.resnet18({ numClasses: 2 }).numParameters(), 11177538);
 * ```
 *
 * @example Pretrained teacher for two classes
 * ```ts ignore
 * import { models } from "@kdeno/kdeno";
 *
 * // warns that fc [1000, 512] is replaced by a fresh fc [2, 512]
 * const teacher = models.resnet18({
 *   numClasses: 2,
 *   weights: "resnet18-f37072fd.pth",
 * });
 * ```
 */
export function resnet18(
  options: ResNetOptions & {
    /** A `.pth`/`.pt`/`.safetensors` path, or a loaded state dict. */
    weights?: string | URL | Record<string, Tensor>;
  } = {},
): ResNet {
  const { weights, ...rest } = options;
  if (weights === undefined) return new ResNet([2, 2, 2, 2], rest);
  const fromFile = typeof weights === "string" || weights instanceof URL;
  const source = fromFile
    ? (weights instanceof URL ? weights.pathname : weights)
    : undefined;
  const dict = fromFile ? loadWeightsSync(weights) : weights;
  try {
    const numClasses = rest.numClasses ?? dict["fc.weight"]?.shape[0] ?? 1000;
    const model = new ResNet([2, 2, 2, 2], { ...rest, numClasses });
    try {
      const { note } = loadPretrained(model, dict, { head: "fc", source });
      if (note) console.warn(`resnet18: ${note}`);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  } finally {
    if (fromFile) { for (const t of Object.values(dict)) t.dispose(); }
  }
}
