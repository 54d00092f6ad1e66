/**
 * Atomic file writes: a temporary file in the target's folder, flushed to
 * disk, then renamed over the target. A reader sees the old file or the new
 * one, never a partial write.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/**
 * Writes `data` to `path` atomically. On failure the temporary file is
 * removed and an existing `path` is left as it was.
 *
 * @param path The file to write.
 * @param data Its new contents.
 * @throws The underlying error (permission, disk full, a folder at `path`).
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
): Promise<void> {
  const tmp = join(
    dirname(path),
    `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`,
  );
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    let written = 0;
    while (written < data.length) {
      written += await file.write(data.subarray(written));
    }
    await file.syncData();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file?.close();
    } catch {
      // already closed
    }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
