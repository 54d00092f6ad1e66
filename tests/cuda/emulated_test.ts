/**
 * The CUDA backend's kernels compiled as host C++ (with
 * `tests/fixtures/ffi_mock/cuda_emu.h`) and run on CPU threads behind the
 * stand-in driver, compared with the CPU backend: checks the kernels'
 * indexing and arithmetic on machines without a GPU. Not a substitute for
 * `backend_test.ts` on a GPU (host float arithmetic, no real concurrency
 * between blocks).
 */

import { CudaBackend } from "../../src/backend/cuda/backend.ts";
import { emulationUnavailable, MockCuda } from "./_mock.ts";
import { kernelSuite } from "./_kernel_suite.ts";

const reason = emulationUnavailable();
const backend = reason
  ? null
  : new CudaBackend((await MockCuda.emulated()).libs, { cacheDir: null });
kernelSuite("[cuda emulated on CPU]", backend, reason ?? "", { shrink: 4 });
