/**
 * Finds and opens native libraries for `Deno.dlopen`.
 *
 * A library is looked for in the directories an environment variable names
 * first, then in the usual places, then by bare soname through the system
 * loader. When nothing loads, the error lists every path that was tried and
 * why each failed.
 *
 * @module
 */

/** A native library could not be loaded; `tried` lists every attempt. */
export class BackendUnavailableError extends Error {
  /** Every path or soname tried, with the reason it failed. */
  readonly tried: string[];
  /**
   * Creates the error.
   *
   * @param library The library that was looked for.
   * @param tried Each attempt as `path: reason`.
   * @param hint What the user can do about it.
   */
  constructor(library: string, tried: string[], hint = "") {
    super(
      `Cannot load ${library}` +
        (tried.length
          ? `: tried ${tried.length} location(s):\n  ${tried.join("\n  ")}`
          : "") +
        (hint ? `\n${hint}` : ""),
    );
    this.name = "BackendUnavailableError";
    this.tried = tried;
  }
}

/** What to look for and where. */
export interface LibrarySpec {
  /** A human name for messages, e.g. `"OpenBLAS"`. */
  library: string;
  /** File names to try in each directory, most preferred first. */
  fileNames: string[];
  /** Environment variable holding a path-list of directories, or a file. */
  envVar?: string;
  /** Directories to try after the environment variable's. */
  dirs?: string[];
  /** Try the bare file names through the system loader last (default true). */
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

/** The candidate paths for a spec, in the order they are tried. */
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
  throw new BackendUnavailableError(spec.library, tried, spec.hint);
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
