/**
 * A small typed command-line parser for the study programs
 * (`examples/distill.ts`): one table of flags gives the parsing, the
 * checks of each value and the `--help` text, so that they cannot drift
 * apart. A misspelled flag is refused naming the closest one, and a bad
 * value is refused in one line, before any data is read.
 *
 * @module
 */

/** One flag: its kind, what it means, its default and the checks on it. */
export type FlagSpec =
  | {
    /** An on/off switch; `false` unless given. */
    type: "boolean";
    /** What the flag does, for `--help`. */
    meaning: string;
  }
  | {
    /** A whole number (`min` and `max` inclusive). */
    type: "integer";
    meaning: string;
    /** The value when the flag is not given. */
    default?: number;
    /** How the default is described in `--help`, when not just the value. */
    defaultText?: string;
    min?: number;
    max?: number;
  }
  | {
    /** A finite number; `positive` refuses 0 and below. */
    type: "number";
    meaning: string;
    default?: number;
    defaultText?: string;
    min?: number;
    max?: number;
    positive?: boolean;
  }
  | {
    /** One of `choices`. */
    type: "choice";
    meaning: string;
    choices: readonly string[];
    default?: string;
    defaultText?: string;
  }
  | {
    /**
     * A string; `exists: "dir"` or `"file"` requires that path, unless it
     * is one of `keywords` (for example `rest`).
     */
    type: "string";
    meaning: string;
    /** How the value is shown in `--help`, e.g. `DIR`. */
    placeholder?: string;
    default?: string;
    defaultText?: string;
    exists?: "dir" | "file";
    keywords?: readonly string[];
  };

/** The value a flag of a given spec parses to. */
export type FlagValue<S extends FlagSpec> = S extends { type: "boolean" }
  ? boolean
  : S extends { default: infer D } ? D extends undefined ? FlagOf<S> | undefined
    : FlagOf<S>
  : FlagOf<S> | undefined;

type FlagOf<S extends FlagSpec> = S extends { type: "integer" | "number" }
  ? number
  : S extends { type: "choice"; choices: readonly (infer C)[] } ? C
  : string;

/** Parsed flags, typed from their table. */
export type ParsedFlags<T extends Record<string, FlagSpec>> = {
  -readonly [K in keyof T]: FlagValue<T[K]>;
};

/**
 * A command line that cannot be run: an unknown or misspelled flag, a
 * missing or bad value. Its message is one line, for the user.
 */
export class CliError extends Error {
  /** Exit status for it: 2, as for usage errors. */
  readonly exitCode = 2;
  /**
   * Makes the error.
   *
   * @param message The one-line explanation.
   */
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/**
 * Levenshtein distance between two strings (insertions, deletions and
 * substitutions each cost 1).
 *
 * @param a One string.
 * @param b The other.
 * @returns The number of edits from `a` to `b`.
 */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j] + 1,
        row[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * The known name closest to `name` by edit distance, when it is close
 * enough to be a likely misspelling (at most a third of the longer name,
 * and at least 1 edit allowed), or a known name that starts with `name`.
 *
 * @param name What was typed.
 * @param known The names that exist.
 * @returns The suggestion, or `undefined`.
 */
export function closestName(
  name: string,
  known: readonly string[],
): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(name.length, best.length) / 3));
  if (bestD <= limit) return best;
  return name.length >= 2 ? known.find((k) => k.startsWith(name)) : undefined;
}

function describeDefault(spec: FlagSpec): string | undefined {
  if (spec.type === "boolean") return undefined;
  if (spec.defaultText !== undefined) return spec.defaultText;
  return spec.default === undefined ? undefined : String(spec.default);
}

function placeholder(spec: FlagSpec): string {
  switch (spec.type) {
    case "boolean":
      return "";
    case "integer":
      return " N";
    case "number":
      return " X";
    case "choice":
      return ` ${spec.choices.join("|")}`;
    case "string":
      return ` ${spec.placeholder ?? "VALUE"}`;
  }
}

/**
 * The `--help` text: the usage line, then every flag with its value, what
 * it means and its default, wrapped to `width` columns.
 *
 * @param usage The first line(s), e.g. `deno run -A examples/distill.ts [flags]`.
 * @param flags The flag table.
 * @param options `width` (default 80) and `footer` lines.
 * @returns The text, ending without a line break.
 */
export function helpText(
  usage: string,
  flags: Record<string, FlagSpec>,
  options: { width?: number; footer?: string } = {},
): string {
  const width = options.width ?? 80;
  const indent = 6;
  const out = [usage, "", "Flags:"];
  for (const [name, spec] of Object.entries(flags)) {
    out.push(`  --${name}${placeholder(spec)}`);
    const def = describeDefault(spec);
    const text = spec.meaning + (def !== undefined ? ` (default: ${def})` : "");
    let line = "";
    for (const word of text.split(/\s+/)) {
      if (line && indent + line.length + 1 + word.length > width) {
        out.push(" ".repeat(indent) + line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    if (line) out.push(" ".repeat(indent) + line);
  }
  if (options.footer) out.push("", options.footer);
  return out.join("\n");
}

function statKind(path: string): "dir" | "file" | undefined {
  try {
    const s = Deno.statSync(path);
    return s.isDirectory ? "dir" : s.isFile ? "file" : undefined;
  } catch {
    return undefined;
  }
}

function convert(name: string, spec: FlagSpec, raw: string): unknown {
  const flag = `--${name}`;
  switch (spec.type) {
    case "boolean":
      throw new CliError(`${flag} takes no value, got ${raw}`);
    case "integer": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      const lo = spec.min ?? -Infinity;
      const hi = spec.max ?? Infinity;
      if (!Number.isInteger(n) || n < lo || n > hi) {
        const range = spec.max !== undefined
          ? ` from ${lo} to ${hi}`
          : spec.min !== undefined
          ? ` ≥ ${lo}`
          : "";
        throw new CliError(`${flag} must be an integer${range}, got ${raw}`);
      }
      return n;
    }
    case "number": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      const lo = spec.min ?? -Infinity;
      const hi = spec.max ?? Infinity;
      if (
        !Number.isFinite(n) || n < lo || n > hi || (spec.positive && n <= 0)
      ) {
        const range = spec.max !== undefined
          ? ` from ${lo} to ${hi}`
          : spec.positive
          ? " above 0"
          : spec.min !== undefined
          ? ` ≥ ${lo}`
          : "";
        throw new CliError(`${flag} must be a number${range}, got ${raw}`);
      }
      return n;
    }
    case "choice":
      if (!spec.choices.includes(raw)) {
        // short values are too easily close to the wrong choice (gpu, cpu)
        const near = raw.length >= 4
          ? closestName(raw, spec.choices)
          : undefined;
        throw new CliError(
          `${flag} must be ${spec.choices.join(" or ")}, got ${raw}${
            near ? ` (did you mean ${near}?)` : ""
          }`,
        );
      }
      return raw;
    case "string": {
      if (raw === "") throw new CliError(`${flag} needs a value`);
      if (spec.exists && !spec.keywords?.includes(raw)) {
        const kind = statKind(raw);
        if (kind !== spec.exists) {
          const what = spec.exists === "dir" ? "folder" : "file";
          const also = spec.keywords?.length
            ? ` (or ${spec.keywords.join(", ")})`
            : "";
          throw new CliError(
            kind === undefined
              ? `${flag}: no such ${what}${also}: ${raw}`
              : `${flag}: ${raw} is not a ${what}${also}`,
          );
        }
      }
      return raw;
    }
  }
}

/**
 * Parses `--name value`, `--name=value` and boolean `--name` against the
 * table, applies defaults and checks every value, so that a program can
 * refuse a bad command line before it reads any data. `-h` is `--help`
 * when the table has `help`.
 *
 * @param args The arguments, e.g. `Deno.args`.
 * @param flags The flag table.
 * @returns The values by flag name, typed from the table.
 * @throws CliError for an unknown flag (naming the closest one), a
 * positional argument, a missing value or a value that fails its check.
 *
 * @example Parse, with a default and a misspelling
 * ```ts
 * import { study } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * const table = {
 *   lr: { type: "number", meaning: "learning rate", default: 0.001, positive: true },
 *   epochs: { type: "integer", meaning: "epochs", default: 6, min: 1 },
 * } as const;
 * assert.deepEqual(study.parseFlags(["--epochs", "2"], table), { lr: 0.001, epochs: 2 });
 * assert.throws(
 *   () => study.parseFlags(["--epoch", "2"], table),
 *   { message: "unknown flag --epoch (did you mean --epochs?)" },
 * );
 * ```
 */
export function parseFlags<T extends Record<string, FlagSpec>>(
  args: readonly string[],
  flags: T,
): ParsedFlags<T> {
  const names = Object.keys(flags);
  const values: Record<string, unknown> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-h" && "help" in flags) {
      values.help = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      throw new CliError(
        arg.startsWith("-") && arg.length > 1
          ? `unknown flag ${arg}${suggest(arg.replace(/^-+/, ""), names)}`
          : `unexpected argument ${arg}: every value follows its flag, e.g. --data ${arg}`,
      );
    }
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = Object.hasOwn(flags, name) ? flags[name] : undefined;
    if (!spec) {
      throw new CliError(`unknown flag --${name}${suggest(name, names)}`);
    }
    if (spec.type === "boolean") {
      if (eq >= 0) {
        const v = arg.slice(eq + 1);
        if (v !== "true" && v !== "false") {
          throw new CliError(`--${name} takes no value, got ${v}`);
        }
        values[name] = v === "true";
      } else values[name] = true;
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        throw new CliError(`--${name} needs a value${placeholder(spec)}`);
      }
      raw = next;
      i++;
    }
    values[name] = raw;
  }
  if (values.help) return { ...defaults(flags), help: true } as ParsedFlags<T>;
  const out = defaults(flags);
  for (const [name, raw] of Object.entries(values)) {
    out[name] = typeof raw === "string" ? convert(name, flags[name], raw) : raw;
  }
  return out as ParsedFlags<T>;
}

function defaults(flags: Record<string, FlagSpec>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(flags)) {
    out[name] = spec.type === "boolean" ? false : spec.default;
  }
  return out;
}

function suggest(name: string, names: readonly string[]): string {
  const near = closestName(name, names);
  return near ? ` (did you mean --${near}?)` : "; --help lists the flags";
}
