/**
 * Every CUDA kernel against the CPU backend (the oracle) on random inputs,
 * on the real GPU. Ignored, with the reason, where the CUDA backend does not
 * load (no GPU, driver or libraries).
 */

import { createCudaBackend } from "../../src/backend/cuda/mod.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { kernelSuite } from "./_kernel_suite.ts";

let gpu: Backend | null = null;
let reason = "";
try {
  gpu = createCudaBackend();
} catch (e) {
  reason = String((e as Error).message).replace(/\s+/g, " ").slice(0, 300);
}
kernelSuite("[cuda]", gpu, reason);
