/**
 * A small seeded byte-level fuzzer for the parsers' tests: it mutates a
 * valid file (bit flips, interesting bytes, large integers over length
 * fields, truncation, repeated and inserted chunks), feeds each mutant to
 * the parser, and checks the property every loader promises: the outcome is
 * success or one of kdeno's typed errors, within a time bound, and the
 * process's peak memory stays bounded.
 *
 * A failing case names its seed; keep it in the suite's `regressions` list
 * so it is replayed on every run.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BackendUnavailableError,
  CheckpointError,
  DataError,
  DTypeError,
  ShapeError,
  TensorStateError,
} from "../mod.ts";

/** kdeno's typed errors: the only exceptions a parser may throw. */
export const TYPED_ERRORS: readonly (abstract new (...a: never[]) => Error)[] =
  [
    CheckpointError,
    DataError,
    DTypeError,
    ShapeError,
    TensorStateError,
    BackendUnavailableError,
  ];

/** xorshift32, seeded: the same seed makes the same mutant everywhere. */
export function rng(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff];
const BIG = [0xffffffff, 0x7fffffff, 0x80000000, 0x10000, 0xffff];

/**
 * One mutant of `input`, made from `seed` alone.
 *
 * @param input The valid file.
 * @param seed The case's seed.
 * @returns The mutated bytes (a new array).
 */
export function mutate(input: Uint8Array, seed: number): Uint8Array {
  const r = rng(seed);
  const pick = (n: number) => Math.floor(r() * n);
  let b = input.slice();
  const edits = 1 + pick(4);
  for (let e = 0; e < edits && b.length > 0; e++) {
    switch (pick(7)) {
      case 0: { // flip a bit
        const i = pick(b.length);
        b[i] ^= 1 << pick(8);
        break;
      }
      case 1: // an interesting byte
        b[pick(b.length)] = INTERESTING[pick(INTERESTING.length)];
        break;
      case 2: { // a large 32-bit integer, either endianness (length fields)
        if (b.length < 4) break;
        const i = pick(b.length - 3);
        const v = BIG[pick(BIG.length)];
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        dv.setUint32(i, v, r() < 0.5);
        break;
      }
      case 3: // truncate
        b = b.slice(0, pick(b.length));
        break;
      case 4: { // repeat a chunk
        const i = pick(b.length), n = 1 + pick(Math.min(64, b.length - i));
        const out = new Uint8Array(b.length + n);
        out.set(b.subarray(0, i + n));
        out.set(b.subarray(i), i + n);
        b = out;
        break;
      }
      case 5: { // insert random bytes
        const i = pick(b.length + 1), n = 1 + pick(16);
        const out = new Uint8Array(b.length + n);
        out.set(b.subarray(0, i));
        for (let k = 0; k < n; k++) out[i + k] = pick(256);
        out.set(b.subarray(i), i + n);
        b = out;
        break;
      }
      default: { // overwrite a run with one random byte
        const i = pick(b.length), n = 1 + pick(8), v = pick(256);
        b.fill(v, i, Math.min(b.length, i + n));
      }
    }
  }
  return b;
}

/** The high-water mark of this process's resident memory, in bytes. */
export function peakRss(): number {
  try {
    const s = Deno.readTextFileSync("/proc/self/status");
    const m = s.match(/VmHWM:\s+(\d+) kB/);
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: fall back to the current figure
  }
  return Deno.memoryUsage().rss;
}

/** What {@linkcode fuzz} checks, and how hard. */
export interface FuzzOptions {
  /** The valid file to mutate. */
  input: Uint8Array;
  /** Parses one mutant (may be async); returning means success. */
  parse: (bytes: Uint8Array, seed: number) => unknown;
  /** Seeds tried: `cases` consecutive ones from `firstSeed` (default 1). */
  cases: number;
  /** First seed. */
  firstSeed?: number;
  /** Seeds found earlier, replayed first. */
  regressions?: readonly number[];
  /** Longest a single case may take (default 2000 ms). */
  maxCaseMs?: number;
  /** Most this process may ever have held resident (default 2 GiB). */
  maxPeakBytes?: number;
}

/**
 * Runs the mutants and asserts the property: success or a typed kdeno
 * error, each case within `maxCaseMs`, the process's peak resident memory
 * within `maxPeakBytes`.
 *
 * @param options What to fuzz.
 * @returns How many mutants parsed and how many were refused.
 */
export async function fuzz(
  options: FuzzOptions,
): Promise<{ parsed: number; refused: number }> {
  const maxMs = options.maxCaseMs ?? 2000;
  const maxPeak = options.maxPeakBytes ?? 2 * 1024 ** 3;
  const first = options.firstSeed ?? 1;
  const seeds = [
    ...(options.regressions ?? []),
    ...Array.from({ length: options.cases }, (_, i) => first + i),
  ];
  let parsed = 0, refused = 0;
  for (const seed of seeds) {
    const bytes = mutate(options.input, seed);
    const t0 = performance.now();
    try {
      await options.parse(bytes, seed);
      parsed++;
    } catch (e) {
      if (!TYPED_ERRORS.some((T) => e instanceof T)) {
        throw new assert.AssertionError({
          message: `seed ${seed}: untyped ${
            e instanceof Error ? `${e.name}: ${e.message}` : String(e)
          }`,
        });
      }
      refused++;
    }
    const ms = performance.now() - t0;
    assert.ok(ms <= maxMs, `seed ${seed}: took ${ms.toFixed(0)} ms`);
    const peak = peakRss();
    assert.ok(
      peak <= maxPeak,
      `seed ${seed}: peak resident memory ${(peak / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  return { parsed, refused };
}
