/**
 * Reading and writing tensors: safetensors files, PyTorch `.pth`/`.pt`
 * state dicts (read through a restricted unpickler that never runs the
 * file's code), pretrained weights, ONNX export, and the atomic file write
 * they all use.
 *
 * The readers treat every file as untrusted: whatever it claims, they do
 * work linear in its size, allocate at most `maxBytes` (by default 16 times
 * its size, at least 1 MiB; raise it for a trusted file that needs more),
 * and refuse anything else with a `CheckpointError` naming the file and
 * what is wrong, in a message that quotes at most a short prefix of the
 * file's values. A file in neither format is named for what it is.
 *
 * @module
 */

export * from "./safetensors.ts";
export * from "./torch.ts";
export * from "./weights.ts";
export * from "./onnx.ts";
export * from "./model.ts";

import { writeFileAtomic as writeAtomic } from "./_atomic.ts";

/**
 * Writes `data` to `path` atomically: a temporary file in the same folder,
 * flushed to disk, then renamed over `path`, so a reader sees the old file
 * or the new one, never a partial write. On failure the temporary file is
 * removed and an existing `path` is left as it was. Every writer in kdeno
 * (safetensors, checkpoints, reports) uses it.
 *
 * @param path The file to write.
 * @param data Its new contents.
 * @returns A promise that settles once the file is in place.
 * @throws The underlying error (permission, disk full, a folder at `path`).
 */
export function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  return writeAtomic(path, data);
}
