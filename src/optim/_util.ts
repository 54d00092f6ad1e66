/**
 * Option checks shared by the optimizers and schedulers.
 *
 * @module
 */

/**
 * Throws a `RangeError` naming `name` unless `value` is a finite number in
 * range.
 *
 * @param action What is being done, e.g. `"Cannot create SGD"`.
 * @param name The option's name.
 * @param value The value given.
 * @param range `min`/`max` bounds; `minExclusive`/`maxExclusive` make them strict.
 */
export function checkNumber(
  action: string,
  name: string,
  value: unknown,
  range: {
    min?: number;
    max?: number;
    minExclusive?: boolean;
    maxExclusive?: boolean;
    integer?: boolean;
  } = {},
): void {
  const { min, max, minExclusive = false, maxExclusive = false } = range;
  const ok = typeof value === "number" && Number.isFinite(value) &&
    (!range.integer || Number.isInteger(value)) &&
    (min === undefined || (minExclusive ? value > min : value >= min)) &&
    (max === undefined || (maxExclusive ? value < max : value <= max));
  if (ok) return;
  const parts: string[] = [];
  if (min !== undefined) parts.push(`${minExclusive ? ">" : ">="} ${min}`);
  if (max !== undefined) parts.push(`${maxExclusive ? "<" : "<="} ${max}`);
  const want = `${range.integer ? "an integer" : "a finite number"}${
    parts.length ? " " + parts.join(" and ") : ""
  }`;
  throw new RangeError(
    `${action}: ${name} is ${
      typeof value === "number" ? value : JSON.stringify(value) ?? String(value)
    }, expected ${want}`,
  );
}

/**
 * Throws a `RangeError` naming `name` unless `value` is a boolean.
 *
 * @param action What is being done.
 * @param name The option's name.
 * @param value The value given.
 */
export function checkBoolean(
  action: string,
  name: string,
  value: unknown,
): void {
  if (typeof value !== "boolean") {
    throw new RangeError(
      `${action}: ${name} is ${String(value)}, expected true or false`,
    );
  }
}

/**
 * Throws a `RangeError` naming any option that is not one of `known`
 * (catches PyTorch spellings such as `weight_decay`).
 *
 * @param action What is being done.
 * @param options The options given.
 * @param known The option names the constructor reads.
 */
export function checkKeys(
  action: string,
  options: object | undefined,
  known: readonly string[],
): void {
  if (options === undefined || options === null) return;
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    throw new RangeError(
      `${action}: unknown option ${key}${
        camel !== key && known.includes(camel)
          ? ` (did you mean ${camel}?)`
          : ""
      }; known options are ${known.join(", ")}`,
    );
  }
}
