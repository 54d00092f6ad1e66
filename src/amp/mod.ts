/**
 * Mixed precision in the style of `torch.amp`: an {@link autocast} scope
 * that runs matrix products in float16 or bfloat16 on CUDA tensor cores
 * while reductions, softmax, losses and optimizer state stay float32; a
 * {@link GradScaler} for float16 training; and float16 / bfloat16
 * conversions bit for bit as PyTorch's ({@link toFloat16},
 * {@link toBFloat16} and back), which safetensors I/O uses for F16 and BF16.
 * Tensors themselves may be float16 or bfloat16 (`x.half()`,
 * `x.bfloat16()`, `x.to("float16")`): they store these patterns; see
 * docs/architecture.md, "Half-precision tensors", for the ops that take
 * them. Under `autocast` matrix products still return float32.
 *
 * @module
 */

export * from "./autocast.ts";
export * from "./grad_scaler.ts";
export * from "./half.ts";
