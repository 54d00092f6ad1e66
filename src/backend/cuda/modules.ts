/**
 * Every CUDA C program the backend compiles, for tools and tests (the PTX
 * check compiles each with `nvcc`).
 *
 * @module
 */

import type { KernelModule } from "./kernels.ts";
import { BINARY_MODULE, UNARY_MODULE } from "./elementwise.ts";
import { INDEX_MODULE } from "./index_ops.ts";
import { REDUCE_MODULE } from "./reduce.ts";
import { SOFTMAX_MODULE } from "./softmax.ts";
import { CONV_MODULE } from "./conv.ts";
import { POOL_MODULE } from "./pool.ts";
import { NORM_MODULE } from "./norm.ts";
import { OPTIM_MODULE } from "./optim.ts";
import { HALF_MODULE } from "./half.ts";

/** All kernel modules. */
export const KERNEL_MODULES: readonly KernelModule[] = [
  UNARY_MODULE,
  BINARY_MODULE,
  INDEX_MODULE,
  REDUCE_MODULE,
  SOFTMAX_MODULE,
  CONV_MODULE,
  POOL_MODULE,
  NORM_MODULE,
  OPTIM_MODULE,
  HALF_MODULE,
];
