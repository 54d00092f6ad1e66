/**
 * Data-parallel training on existing engines, as `torch.distributed`: the
 * process group and its collectives on Open MPI (CPU tensors) and NCCL (CUDA
 * tensors), `DistributedDataParallel`, `DistributedSampler` and
 * `SyncBatchNorm`. Launch with `mpirun -np N deno run ...`; without `mpirun`
 * a script is a world of one.
 *
 * @module
 */

export * from "./collectives.ts";
export * from "./errors.ts";
export * from "./ddp.ts";
export * from "./sampler.ts";
export * from "./sync_batchnorm.ts";
