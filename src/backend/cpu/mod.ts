/**
 * The CPU backend (`backend.ts`): typed-array storage, one readable
 * TypeScript reference per kernel, and the faster implementations this
 * platform has (native C kernels, oneDNN convolutions, OpenBLAS GEMM) from
 * the table in `dispatch.ts`.
 *
 * @module
 */

export { CpuBackend, CpuStorage } from "./backend.ts";
