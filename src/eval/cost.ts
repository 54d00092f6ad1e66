/**
 * What a model costs, measured separately as the KD literature should:
 * parameters, multiply-accumulates per image (convolutions and linear
 * layers, counted with forward hooks), size on disk (its safetensors
 * file), and measured inference latency at batch 1 and throughput at batch
 * 32, with warm-up runs excluded and no data loading in the timings.
 *
 * @module
 */

import type { DeviceName } from "../backend/backend.ts";
import { noGrad } from "../autograd.ts";
import { serializeSafetensors } from "../io/safetensors.ts";
import { Conv2d, Linear } from "../nn/layers.ts";
import type { Module } from "../nn/module.ts";
import { randn } from "../ops/mod.ts";
import { tidy } from "../tensor.ts";

/**
 * Multiply-accumulates of one forward pass per image: for each `Conv2d`,
 * `outChannels × outH × outW × inChannels / groups × kh × kw`; for each
 * `Linear`, `in × out`. Batch norm, activations and pooling are not counted
 * (the usual convention, e.g. fvcore / ptflops).
 *
 * @param model The model.
 * @param inputShape One image's shape `[C, H, W]`.
 * @returns MACs per image.
 *
 * @example The tutorial's student at 224×224
 * ```ts
 * import { evaluation, models } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const macs = evaluation.countMacs(new models.StudentNet(), [3, 224, 224]);
 * assert.equal(macs, 4 * 224 * 224 * 27 + 4 * 112 * 112 * 2);
 * ```
 */
export function countMacs(
  model: Module,
  inputShape: readonly number[],
): number {
  let macs = 0;
  const handles = model.modules().map((m) =>
    m.registerForwardHook((mod, _inputs, out) => {
      if (mod instanceof Conv2d) {
        const [, oc, oh, ow] = out.shape;
        const [, icg, kh, kw] = mod.weight.shape;
        macs += oc * oh * ow * icg * kh * kw;
      } else if (mod instanceof Linear) {
        const rows = out.numel() / mod.outFeatures;
        macs += rows * mod.inFeatures * mod.outFeatures;
      }
    })
  );
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => tidy(() => void model.call(randn([1, ...inputShape]))));
  } finally {
    for (const h of handles) h.remove();
    model.train(wasTraining);
  }
  return macs;
}

/**
 * The size of the model's safetensors file (parameters and buffers,
 * float32), in bytes.
 *
 * @param model The model.
 * @returns Bytes.
 */
export function modelSizeBytes(model: Module): number {
  return serializeSafetensors(model.stateDict()).length;
}

/** Options of `measureSpeed`. */
export interface SpeedOptions {
  /** One image's shape `[C, H, W]`. */
  inputShape: readonly number[];
  /** Untimed runs before each measurement (default 3). */
  warmup?: number;
  /** Timed runs at batch 1 (default 20). */
  iterations?: number;
  /** Batch size of the throughput measurement (default 32). */
  batchSize?: number;
  /** Timed runs at that batch size (default 5). */
  batchIterations?: number;
  /** Keep timing each measurement until this many ms have passed (default 300). */
  minMs?: number;
  /** Device (default: the current one). */
  device?: DeviceName;
}

/** Measured inference speed. */
export interface SpeedResult {
  /** Median milliseconds per forward pass at batch 1. */
  latencyMs: number;
  /** 10th-90th percentile of the batch-1 times. */
  latencyRangeMs: [number, number];
  /** Images per second at `batchSize` (median run). */
  throughput: number;
  /** The batch size used for `throughput`. */
  batchSize: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/**
 * Measures inference latency (batch 1) and throughput (batch 32) in
 * evaluation mode without gradients, on random inputs made before the
 * clock starts; warm-up runs are excluded. Each timed run ends by reading
 * one value back, so asynchronous devices are included.
 *
 * @param model The model.
 * @param options Input shape, warm-up and iteration counts, device.
 * @returns Median latency, its spread, and throughput.
 */
export function measureSpeed(
  model: Module,
  options: SpeedOptions,
): SpeedResult {
  const warmup = options.warmup ?? 3;
  const iters = options.iterations ?? 20;
  const bs = options.batchSize ?? 32;
  const bIters = options.batchIterations ?? 5;
  const minMs = options.minMs ?? 300;
  const wasTraining = model.training;
  model.eval();
  const time = (batch: number, n: number): number[] => {
    const x = randn([batch, ...options.inputShape], { device: options.device });
    const once = () =>
      noGrad(() =>
        tidy(() => {
          const y = model.call(x);
          y.slice(0, 0, 1).data(); // wait for the device
        })
      );
    try {
      for (let i = 0; i < warmup; i++) once();
      const out: number[] = [];
      const start = performance.now();
      while (
        out.length < n ||
        (performance.now() - start < minMs && out.length < 10_000)
      ) {
        const t0 = performance.now();
        once();
        out.push(performance.now() - t0);
      }
      return out;
    } finally {
      x.dispose();
    }
  };
  try {
    const single = time(1, iters);
    const batched = time(bs, bIters);
    return {
      latencyMs: median(single),
      latencyRangeMs: [quantile(single, 0.1), quantile(single, 0.9)],
      throughput: (bs * 1000) / median(batched),
      batchSize: bs,
    };
  } finally {
    model.train(wasTraining);
  }
}
