/**
 * The closed-form weights and inputs of tests/golden/generate_models.py,
 * reproduced here so model fixtures need no committed weights.
 */
import { type nn, noGrad, type Tensor, tensor } from "../../mod.ts";

function formula(n: number, k: number, scale: number, offset = 0) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = Math.sin(i * 0.7853 + k * 0.37) * scale + offset;
  }
  return a;
}

/** Writes the formula weights into every parameter and buffer, in state-dict order. */
export function initFormula(model: nn.Module): void {
  const entries = Object.entries(model.stateDict());
  noGrad(() => {
    entries.forEach(([name, t], k) => {
      if (name.endsWith("num_batches_tracked")) return;
      const n = t.numel();
      let v: Float32Array;
      if (name.endsWith("running_var")) v = formula(n, k, 0.3, 1.0);
      else if (name.endsWith("running_mean") || name.endsWith("bias")) {
        v = formula(n, k, 0.1);
      } else if (t.ndim === 1) v = formula(n, k, 0.2, 1.0);
      else {
        const fanIn = n / t.shape[0];
        v = formula(n, k, 1.5 / Math.sqrt(fanIn));
      }
      const src = tensor(v, { shape: t.shape });
      t.backend.assign(t.storage, src.storage);
    });
  });
}

/** The formula input `cos(0.37 i)` of a shape. */
export function inputFormula(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.cos(i * 0.37);
  return tensor(a, { shape });
}
