/**
 * Finds and opens native libraries for `Deno.dlopen`.
 *
 * A library is looked for in the directories or files an environment
 * variable names (`KDENO_OPENBLAS`, `KDENO_ONEDNN`), else in the usual
 * places, then by bare soname through the system loader. When nothing
 * loads, the error lists every path that was tried and why each failed.
 *
 * A library the user named is never replaced by another one. When the
 * environment variable names anything, only what it names is tried, and if
 * none of it loads the error says so (`Cannot load OpenBLAS named by
 * KDENO_OPENBLAS: ...`) with each path and the loader's reason; the loaders
 * throw it at first use rather than fall back. PyTorch users expect an
 * explicit choice that cannot be honoured to raise (`torch.device("cuda")`
 * on a machine without CUDA, `KDENO_DEVICE=cuda` here): someone who points
 * at a particular build (a debug OpenBLAS, another threading layer, a newer
 * oneDNN) is measuring or debugging that build, and numbers silently
 * computed by the system's copy, with at most a warning lost in a training
 * log, would be attributed to the wrong library. The fallbacks stay for the
 * implicit search: without the variable, the usual places are tried and a
 * loader that finds nothing returns `null` and the TypeScript kernels run.
 *
 * @module
 */

import { BackendUnavailableError } from "../src/errors.ts";

export { BackendUnavailableError };

/** What to look for and where. */
export interface LibrarySpec {
  /** A human name for messages, e.g. `"OpenBLAS"`. */
  library: string;
  /** File names to try in each directory, most preferred first. */
  fileNames: string[];
  /**
   * Environment variable holding a path-list of directories or files; when
   * it names anything, nothing else is tried.
   */
  envVar?: string;
  /** Directories to try when the environment variable names nothing. */
  dirs?: string[];
  /**
   * Try the bare file names through the system loader last (default true),
   * when the environment variable names nothing.
   */
  sonameFallback?: boolean;
  /** Advice appended to the error. */
  hint?: string;
}

/** Returns the directories listed in an environment variable (colon-separated). */
export function envDirs(name: string): string[] {
  let v: string | undefined;
  try {
    v = Deno.env.get(name);
  } catch {
    return []; // no --allow-env
  }
  return v ? v.split(":").filter((s) => s.length > 0) : [];
}

/**
 * Whether a permission is granted, without prompting.
 *
 * @param desc The permission.
 * @returns True when granted; false when not, or when it cannot be asked.
 */
export function granted(desc: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(desc).state === "granted";
  } catch {
    return false;
  }
}

/**
 * An environment variable, or `undefined` when it is unset or reading it is
 * not allowed (no prompt).
 *
 * @param name The variable.
 * @returns Its value, or `undefined`.
 */
export function readEnv(name: string): string | undefined {
  return granted({ name: "env", variable: name })
    ? Deno.env.get(name)
    : undefined;
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split("\n")[0];
}

/**
 * Whether the spec's environment variable names the library (is set and
 * lists at least one entry): then only what it names is tried.
 *
 * @param spec What to look for.
 * @returns `true` when the user named where the library is.
 */
export function namedByEnv(spec: LibrarySpec): boolean {
  return spec.envVar !== undefined && envDirs(spec.envVar).length > 0;
}

/**
 * The error for a library that did not load from any of `tried`: it says
 * when the environment variable named it, and then how to get the usual
 * search back instead of the install hint.
 *
 * @param spec What was looked for.
 * @param tried Each attempt as `path: reason`.
 * @returns The error to throw.
 */
export function loadFailure(
  spec: LibrarySpec,
  tried: string[],
): BackendUnavailableError {
  if (!namedByEnv(spec)) {
    return new BackendUnavailableError(spec.library, tried, spec.hint);
  }
  const v = spec.envVar!;
  return new BackendUnavailableError(
    `${spec.library} named by ${v}`,
    tried,
    `${v}=${envDirs(v).join(":")} names the library to use, so no other copy ` +
      `was tried: fix the path, or unset ${v} to use the system's ` +
      spec.library,
  );
}

/**
 * The candidate paths for a spec, in the order they are tried: what the
 * environment variable names when it names anything (and nothing else),
 * else the directories, then the bare file names.
 *
 * @param spec What to look for.
 * @returns The paths (and sonames) to try.
 */
export function candidatePaths(spec: LibrarySpec): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const push = (p: string) => {
    if (!seen.has(p)) {
      seen.add(p);
      out.push(p);
    }
  };
  const envEntries = spec.envVar ? envDirs(spec.envVar) : [];
  for (const entry of envEntries) {
    if (/\.so(\.|$)/.test(entry) || exists(entry)) push(entry);
    else for (const f of spec.fileNames) push(`${entry}/${f}`);
  }
  if (envEntries.length > 0) return out;
  for (const dir of spec.dirs ?? []) {
    for (const f of spec.fileNames) push(`${dir}/${f}`);
  }
  if (spec.sonameFallback !== false) {
    for (const f of spec.fileNames) {
      push(f);
    }
  }
  return out;
}

/**
 * Opens the first candidate that loads with `symbols`. Paths that do not
 * exist are recorded as "not found" without calling the loader.
 *
 * @param spec What to look for.
 * @param symbols The symbol table for `Deno.dlopen`.
 * @returns The opened library and the path that loaded.
 * @throws BackendUnavailableError listing each path tried and the loader's
 *   reason; it names the environment variable when that named the library
 *   (see {@linkcode loadFailure}).
 */
export function openLibrary<S extends Deno.ForeignLibraryInterface>(
  spec: LibrarySpec,
  symbols: S,
): { lib: Deno.DynamicLibrary<S>; path: string } {
  const tried: string[] = [];
  for (const path of candidatePaths(spec)) {
    const isBare = !path.includes("/");
    if (!isBare && !exists(path)) {
      tried.push(`${path}: not found`);
      continue;
    }
    try {
      return { lib: Deno.dlopen(path, symbols), path };
    } catch (e) {
      tried.push(`${path}: ${reason(e)}`);
    }
  }
  throw loadFailure(spec, tried);
}

/**
 * Loads libraries by absolute path with no symbols so that later loads of
 * libraries that depend on them by soname resolve (setting LD_LIBRARY_PATH
 * at run time has no effect on the loader). Missing files are skipped.
 *
 * @param paths Absolute paths, dependencies first.
 * @returns The handles, which must stay referenced.
 */
export function preload(paths: string[]): Deno.DynamicLibrary<never>[] {
  const handles: Deno.DynamicLibrary<never>[] = [];
  for (const p of paths) {
    if (!exists(p)) continue;
    try {
      handles.push(Deno.dlopen(p, {} as never));
    } catch {
      // a dependency that fails to load surfaces when the main library loads
    }
  }
  return handles;
}

/** How {@linkcode optionalLibrary} opens one library. */
export interface OptionalLibraryOptions<L> {
  /** Where to look; `spec.library` names it in messages. */
  spec: LibrarySpec;
  /** Why the library is turned off (e.g. `KDENO_X=0`), or null. */
  turnedOff?: () => string | null;
  /** Runs before the first load; what it throws is thrown to the caller. */
  before?: () => void;
  /**
   * Opens the library and builds its handle. What it throws makes the
   * library unavailable (thrown to the caller when the environment variable
   * named it).
   */
  open: () => L;
}

/** A library opened on first use and cached, or the reason it is not. */
export interface OptionalLibrary<L> {
  /**
   * The library, or `null` when it cannot be used.
   *
   * @throws BackendUnavailableError on every call when the environment
   *   variable names a library that does not load.
   */
  get(): L | null;
  /** Why it is not available; `null` when it loaded or was not tried. */
  failure(): BackendUnavailableError | null;
}

/**
 * Opens an optional native library once: not at all when turned off,
 * without `Deno.dlopen` or without `--allow-ffi` (without the permission
 * every `dlopen` would fail or prompt), else through `options.open`.
 *
 * @param options The spec, the off switch and how to open it.
 * @returns The cached loader.
 */
export function optionalLibrary<L>(
  options: OptionalLibraryOptions<L>,
): OptionalLibrary<L> {
  type State = {
    lib: L | null;
    error: BackendUnavailableError | null;
    named: boolean;
  };
  const name = options.spec.library;
  const unavailable = (why: string, named = false): State => ({
    lib: null,
    error: new BackendUnavailableError(name, [], why),
    named,
  });
  const load = (): State => {
    const off = options.turnedOff?.();
    if (off) return unavailable(off);
    if (typeof Deno?.dlopen !== "function") {
      return unavailable("Deno.dlopen is not available");
    }
    if (!granted({ name: "ffi" })) {
      return unavailable(
        `No FFI permission: run with --allow-ffi (or -A) to use ${name}`,
      );
    }
    const named = namedByEnv(options.spec);
    options.before?.();
    try {
      return { lib: options.open(), error: null, named };
    } catch (e) {
      if (e instanceof BackendUnavailableError) {
        return { lib: null, error: e, named };
      }
      return unavailable(e instanceof Error ? e.message : String(e), named);
    }
  };
  let state: State | undefined;
  return {
    get() {
      state ??= load();
      if (state.named && state.error !== null) throw state.error;
      return state.lib;
    },
    failure: () => state?.error ?? null,
  };
}
