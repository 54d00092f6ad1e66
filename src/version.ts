/**
 * The kdeno release this source belongs to (the `version` of `deno.json`).
 *
 * @module
 */

/**
 * kdeno's version, as published (`deno.json`'s `version`).
 *
 * @example
 * ```ts
 * import { VERSION } from "@kdeno/kdeno";
 * import assert from "node:assert/strict";
 *
 * assert.match(VERSION, /^\d+\.\d+\.\d+/);
 * ```
 */
export const VERSION = "0.1.0";
