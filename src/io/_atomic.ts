/**
 * Atomic file writes: a temporary file in the target's folder, flushed to
 * disk, then renamed over the target. A reader sees the old file or the new
 * one, never a partial write.
 *
 * A process killed while writing (SIGKILL, power loss) leaves its
 * temporary file behind. Those files are recognisable, named
 * `.<target>.kdeno-<pid>-<random>.tmp`, and the writer holds an exclusive
 * lock on its file until the rename, so `removeOrphanedTemps` (the Trainer
 * calls it on its output folders) removes exactly the ones no live writer
 * holds: the operating system drops a killed process's locks.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

const TEMP_NAME = /^\..+\.kdeno-\d+-[0-9a-f]{8}\.tmp$/;

/**
 * The temporary file `writeFileAtomic` writes before renaming it to `path`.
 *
 * @param path The file to write.
 * @returns A fresh path in the same folder, recognisable as kdeno's.
 */
export function tempPathFor(path: string): string {
  return join(
    dirname(path),
    `.${basename(path)}.kdeno-${Deno.pid}-${
      crypto.randomUUID().slice(0, 8)
    }.tmp`,
  );
}

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
  const tmp = tempPathFor(path);
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    await lockIfSupported(file);
    let written = 0;
    while (written < data.length) {
      written += await file.write(data.subarray(written));
    }
    await file.syncData();
    // renamed while still locked, so no cleaner can take it for an orphan
    await Deno.rename(tmp, path);
    file.close();
    file = undefined;
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

async function lockIfSupported(file: Deno.FsFile): Promise<void> {
  try {
    await file.lock(true);
  } catch {
    // a file system without locks: the write is still atomic
  }
}

/**
 * Removes the temporary files that killed writers left in `dir`: those
 * named as `writeFileAtomic` names them and locked by no live process. A
 * file another process is writing now is locked, and is left alone.
 *
 * @param dir The folder.
 * @returns The names of the files removed.
 * @throws The underlying error when `dir` cannot be listed.
 */
export async function removeOrphanedTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !TEMP_NAME.test(entry.name)) continue;
    const path = join(dir, entry.name);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      continue; // renamed or removed meanwhile
    }
    try {
      // a live writer holds the lock; a killed one's lock is gone
      if (!await file.tryLock(true)) continue;
      await Deno.remove(path);
      removed.push(entry.name);
    } catch {
      // no locks on this file system, or gone meanwhile: leave it
    } finally {
      file.close();
    }
  }
  return removed;
}

/**
 * Checks that files can be created in `dir`, creating it (and its
 * parents) when missing: makes and removes a temporary file there.
 *
 * @param dir The folder.
 * @throws The underlying error (permission, read-only file system, a file
 *   in the way).
 */
export async function probeWritableDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const probe = tempPathFor(join(dir, "probe"));
  const file = await Deno.open(probe, { write: true, createNew: true });
  file.close();
  await Deno.remove(probe).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}
