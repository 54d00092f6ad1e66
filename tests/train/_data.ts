/**
 * A small generated two-class image task for the distillation tests: class
 * 0 has a brighter left half, class 1 a brighter right half, plus noise.
 *
 * @module
 */

import { data, randn, tensor } from "../../mod.ts";
import type { Tensor } from "../../mod.ts";

/**
 * Images `[n, 3, size, size]` and int32 labels `[n]` (alternating classes),
 * drawn from the process-wide generator.
 *
 * @param n Number of images.
 * @param size Height and width.
 * @param signal How much brighter the bright half is.
 * @returns `[images, labels]`.
 */
export function halves(n: number, size = 8, signal = 0.5): [Tensor, Tensor] {
  const noise = randn([n, 3, size, size]);
  const d = noise.data() as Float32Array;
  noise.dispose();
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          if ((y < size / 2) === (labels[i] === 0)) {
            d[((i * 3 + c) * size + y) * size + x] += signal;
          }
        }
      }
    }
  }
  return [tensor(d, { shape: [n, 3, size, size] }), tensor(labels)];
}

/**
 * Loaders over `halves` data.
 *
 * @param n Training images.
 * @param options batch size, flips.
 * @returns train and val loaders.
 */
export function loaders(
  n = 64,
  options: { batchSize?: number; randomFlip?: boolean; size?: number } = {},
): { train: data.TensorLoader; val: data.TensorLoader } {
  const size = options.size ?? 8;
  const [x, y] = halves(n, size);
  const [vx, vy] = halves(32, size);
  const train = new data.TensorLoader(x, y, {
    batchSize: options.batchSize ?? 16,
    shuffle: true,
    randomFlip: options.randomFlip ?? false,
  });
  const val = new data.TensorLoader(vx, vy, { batchSize: 32 });
  for (const t of [x, y, vx, vy]) t.dispose();
  return { train, val };
}

/** Every parameter and buffer of a module as one flat host array per key. */
export function snapshot(
  m: { stateDict(): Record<string, Tensor> },
): Record<string, number[]> {
  return Object.fromEntries(
    Object.entries(m.stateDict()).map(([k, t]) => [k, Array.from(t.data())]),
  );
}
