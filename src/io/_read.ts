/**
 * Reading a checkpoint file whole, with the one error every loader gives
 * when the file cannot be read: a `CheckpointError` naming the kind of file,
 * its path and the system's reason, the system error kept as `cause`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { CheckpointError } from "../errors.ts";

/**
 * The path a user gave, as it appears in messages.
 *
 * @param path A path or a `file:` URL.
 * @returns The path.
 */
export function pathName(path: string | URL): string {
  return path instanceof URL ? fileURLToPath(path) : path;
}

function readError(kind: string, name: string, e: unknown): CheckpointError {
  const err = new CheckpointError(
    `Cannot read ${kind} ${name}: ${(e as Error).message}`,
  );
  err.cause = e;
  return err;
}

/**
 * Reads a file whole.
 *
 * @param path The file.
 * @param kind What it is, for the message (`safetensors file`).
 * @returns Its bytes and its name for later messages.
 */
export async function readFileOrThrow(
  path: string | URL,
  kind: string,
): Promise<{ bytes: Uint8Array; name: string }> {
  const name = pathName(path);
  try {
    return { bytes: await Deno.readFile(path), name };
  } catch (e) {
    throw readError(kind, name, e);
  }
}

/**
 * Reads a file whole, synchronously; see {@linkcode readFileOrThrow}.
 *
 * @param path The file.
 * @param kind What it is, for the message.
 * @returns Its bytes and its name.
 */
export function readFileOrThrowSync(
  path: string | URL,
  kind: string,
): { bytes: Uint8Array; name: string } {
  const name = pathName(path);
  try {
    return { bytes: Deno.readFileSync(path), name };
  } catch (e) {
    throw readError(kind, name, e);
  }
}
