/**
 * One-line notices (a missing library, a fallback) printed once per
 * process, also when they arise on a loader's Worker.
 *
 * @module
 */

/** One-line notices already shown (or queued) by this thread. */
const noticesShown = new Set<string>();
const pendingNotices: string[] = [];
const IN_WORKER =
  typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
    "undefined";

/**
 * Prints a one-line notice once per process: on the main thread at once,
 * on a Worker queued for {@linkcode takeNotices} (the loader's Worker sends
 * it to the main thread with its batch, which prints it once).
 *
 * @param line The notice.
 */
export function showNotice(line: string): void {
  if (noticesShown.has(line)) return;
  noticesShown.add(line);
  if (IN_WORKER) pendingNotices.push(line);
  else console.error(line);
}

/**
 * The notices a Worker queued since the last call.
 *
 * @returns The notices, oldest first.
 */
export function takeNotices(): string[] {
  return pendingNotices.splice(0);
}
