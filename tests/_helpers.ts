/**
 * Shared test helpers: PyTorch golden fixtures (made by
 * `tests/golden/generate.py`), tolerant comparison, and the backend loop every
 * conformance suite runs under.
 *
 * @module
 */

import assert from "node:assert/strict";
import { setBackend, Tensor, tensor } from "../mod.ts";
import type { DeviceName } from "../mod.ts";
import { deviceNames } from "../src/backend/registry.ts";

// ---- fixtures ----------------------------------------------------------------

/** Element types a fixture tensor can hold. */
export type GoldenDType = "float32" | "int32";

/** A tensor in a fixture: shape, dtype and row-major flat data. */
export interface GoldenTensor {
  /** The shape; `[]` for a 0-d tensor. */
  shape: number[];
  /** The element type. */
  dtype: GoldenDType;
  /** Row-major values, `shape.reduce(*)` of them. */
  data: number[];
}

/** One op input: a tensor (with `requiresGrad`) or a plain number. */
export interface GoldenInput extends Partial<GoldenTensor> {
  /** The input's name; ops look their inputs up by it. */
  name: string;
  /** Set for a number operand instead of a tensor. */
  scalar?: number;
  /** Whether the fixture recorded a gradient for this input. */
  requiresGrad?: boolean;
}

/** One fixture case of an op family. */
export interface GoldenCase {
  /** Unique within the family, e.g. `"stride 2 padding 1"`. */
  name: string;
  /** The kdeno op, e.g. `"conv2d"`. */
  op: string;
  /** Options in kdeno's (camelCase) names. */
  // deno-lint-ignore no-explicit-any
  options: Record<string, any>;
  /** Inputs in the op's argument order. */
  inputs: GoldenInput[];
  /** The forward result. */
  output: GoldenTensor;
  /** The upstream gradient; present when `grads` is. */
  gy?: GoldenTensor;
  /** Gradients of `sum(output * gy)` by input name. */
  grads?: Record<string, GoldenTensor>;
  /** Input tensors the op updated in place, by name, as they were after. */
  after?: Record<string, GoldenTensor>;
}

/** A fixture file: one op family. */
export interface GoldenFile<C = GoldenCase> {
  /** The family, e.g. `"conv"`. */
  family: string;
  /** The PyTorch version that made it. */
  torch: string;
  /** The cases. */
  cases: C[];
}

/**
 * Reads `tests/golden/<family>.json`.
 *
 * @param family The op family, e.g. `"conv"`.
 * @returns The parsed fixture file.
 */
export async function loadGolden<C = GoldenCase>(
  family: string,
): Promise<GoldenFile<C>> {
  const url = new URL(`./golden/${family}.json`, import.meta.url);
  let text: string;
  try {
    text = await Deno.readTextFile(url);
  } catch (e) {
    throw new Error(
      `Cannot read golden fixture: ${url.pathname} (${
        (e as Error).message
      }); ` +
        "regenerate with /usr/bin/python3 tests/golden/generate.py",
    );
  }
  return JSON.parse(text) as GoldenFile<C>;
}

/**
 * Makes a kdeno tensor from a fixture tensor.
 *
 * @param g The fixture tensor.
 * @param options `requiresGrad` for float32 leaves.
 * @returns A new tensor on the current backend.
 */
export function fromGolden(
  g: GoldenTensor,
  options: { requiresGrad?: boolean } = {},
): Tensor {
  const data = g.dtype === "int32"
    ? Int32Array.from(g.data)
    : Float32Array.from(g.data);
  return tensor(data, {
    dtype: g.dtype,
    shape: g.shape,
    requiresGrad: options.requiresGrad ?? false,
  });
}

/** A case's inputs by name: tensors, or numbers for scalar operands. */
export type Inputs = Record<string, Tensor | number>;

/**
 * Builds a case's inputs, float32 ones requiring gradients as recorded.
 *
 * @param c The fixture case.
 * @returns The inputs by name.
 */
export function buildInputs(c: GoldenCase): Inputs {
  const out: Inputs = {};
  for (const inp of c.inputs) {
    if (inp.scalar !== undefined) {
      out[inp.name] = inp.scalar;
    } else {
      out[inp.name] = fromGolden(inp as GoldenTensor, {
        requiresGrad: inp.requiresGrad ?? false,
      });
    }
  }
  return out;
}

/**
 * Looks up a tensor input, failing clearly when it is absent or a number.
 *
 * @param inputs The built inputs.
 * @param name The input's name.
 * @returns The tensor.
 */
export function tensorInput(inputs: Inputs, name: string): Tensor {
  const v = inputs[name];
  if (!(v instanceof Tensor)) {
    throw new Error(`Fixture input "${name}" is missing or not a tensor`);
  }
  return v;
}

/**
 * Looks up an optional tensor input.
 *
 * @param inputs The built inputs.
 * @param name The input's name.
 * @returns The tensor, or `undefined` when the case has none.
 */
export function optionalInput(
  inputs: Inputs,
  name: string,
): Tensor | undefined {
  return name in inputs ? tensorInput(inputs, name) : undefined;
}

// ---- comparison --------------------------------------------------------------

/** Tolerances for `assertClose`: `|a - e| <= atol + rtol * |e|`. */
export interface CloseOptions {
  /** Relative tolerance (default 1e-4). */
  rtol?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Prefix for the failure message. */
  msg?: string;
  /** Shape to unravel flat indices with in the message. */
  shape?: readonly number[];
}

type Numeric = number | ArrayLike<number> | Numeric[];

function flatten(x: unknown, out: number[], shape: number[], depth: number) {
  if (typeof x === "number") return;
  if (ArrayBuffer.isView(x) || Array.isArray(x)) {
    const arr = x as ArrayLike<unknown>;
    if (shape.length === depth) shape.push(arr.length);
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      if (typeof v === "number") out.push(v);
      else flatten(v, out, shape, depth + 1);
    }
    return;
  }
  throw new TypeError(
    `assertClose: cannot compare ${Object.prototype.toString.call(x)}`,
  );
}

function toFlat(x: unknown): { data: number[]; shape: number[] } {
  if (x instanceof Tensor) x = x.toArray();
  if (typeof x === "number") return { data: [x], shape: [] };
  const data: number[] = [];
  const shape: number[] = [];
  flatten(x, data, shape, 0);
  return { data, shape };
}

function unravel(i: number, shape: readonly number[]): string {
  if (shape.length <= 1) return `[${i}]`;
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(i % shape[d]);
    i = Math.floor(i / shape[d]);
  }
  return `[${idx.join(", ")}]`;
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/**
 * Asserts two numbers, nested arrays, typed arrays (or a tensor against any of
 * those) are equal within `atol + rtol * |expected|` elementwise. NaN matches
 * only NaN. The failure names the first mismatching index, both shapes, the
 * number of mismatches and the largest absolute error.
 *
 * @param actual The value under test.
 * @param expected The reference value.
 * @param options Tolerances and a message prefix.
 */
export function assertClose(
  actual: Numeric | Tensor,
  expected: Numeric | Tensor,
  options: CloseOptions = {},
): void {
  const { rtol = 1e-4, atol = 1e-5, msg } = options;
  const a = toFlat(actual);
  const e = toFlat(expected);
  const prefix = msg ? `${msg}: ` : "";
  const shape = options.shape ?? e.shape;
  if (a.data.length !== e.data.length) {
    assert.fail(
      `${prefix}sizes differ: actual ${
        fmt(a.shape)
      } (${a.data.length} values), ` +
        `expected ${fmt(e.shape)} (${e.data.length} values)`,
    );
  }
  let first = -1;
  let bad = 0;
  let maxErr = 0;
  for (let i = 0; i < e.data.length; i++) {
    const x = a.data[i];
    const y = e.data[i];
    let ok: boolean;
    if (Number.isNaN(y)) ok = Number.isNaN(x);
    else if (!Number.isFinite(y)) ok = x === y;
    else {
      const err = Math.abs(x - y);
      if (Number.isNaN(err)) {
        ok = false;
        maxErr = NaN;
      } else {
        if (err > maxErr) maxErr = err;
        ok = err <= atol + rtol * Math.abs(y);
      }
    }
    if (!ok) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (first >= 0) {
    assert.fail(
      `${prefix}${bad} of ${e.data.length} values differ ` +
        `(shape ${fmt(shape)}); first at ${unravel(first, shape)}: ` +
        `actual ${a.data[first]}, expected ${e.data[first]}; ` +
        `max abs error ${maxErr} (rtol ${rtol}, atol ${atol})`,
    );
  }
}

/**
 * Asserts a tensor has a fixture tensor's shape and dtype, and values within
 * tolerance (exactly, for int32).
 *
 * @param actual The tensor under test.
 * @param expected The fixture tensor.
 * @param options Tolerances and a message prefix.
 */
export function assertTensor(
  actual: Tensor | null | undefined,
  expected: GoldenTensor,
  options: CloseOptions = {},
): void {
  const what = options.msg ?? "tensor";
  assert.ok(
    actual instanceof Tensor,
    `${what}: expected a tensor, got ${actual}`,
  );
  assert.deepEqual(
    [...actual.shape],
    expected.shape,
    `${what}: shape ${fmt(actual.shape)}, expected ${fmt(expected.shape)}`,
  );
  assert.equal(
    actual.dtype,
    expected.dtype,
    `${what}: dtype ${actual.dtype}, expected ${expected.dtype}`,
  );
  const exact = expected.dtype === "int32" ? { rtol: 0, atol: 0 } : {};
  assertClose(actual.data(), expected.data, {
    ...options,
    ...exact,
    msg: what,
    shape: expected.shape,
  });
}

// ---- running cases -------------------------------------------------------------

/** Runs one op of a fixture case on the built inputs. */
export type OpRunner = (
  inputs: Inputs,
  // deno-lint-ignore no-explicit-any
  options: Record<string, any>,
) => Tensor;

/**
 * Checks one fixture case: forward output, every recorded gradient of
 * `sum(output * gy)`, and every input the op updated in place.
 *
 * @param c The fixture case.
 * @param run Calls the kdeno op.
 * @param options Tolerances.
 */
export function checkCase(
  c: GoldenCase,
  run: OpRunner,
  options: Omit<CloseOptions, "msg" | "shape"> = {},
): void {
  const inputs = buildInputs(c);
  const out = run(inputs, c.options);
  assertTensor(out, c.output, { ...options, msg: "output" });
  for (const [name, want] of Object.entries(c.after ?? {})) {
    assertTensor(tensorInput(inputs, name), want, {
      ...options,
      msg: `${name} after the call`,
    });
  }
  if (!c.grads || !c.gy) return;
  out.mul(fromGolden(c.gy)).sum().backward();
  for (const [name, want] of Object.entries(c.grads)) {
    const grad = tensorInput(inputs, name).grad;
    assert.ok(grad, `gradient of ${name}: .grad is null after backward()`);
    assertTensor(grad, want, { ...options, msg: `gradient of ${name}` });
  }
}

// ---- backends --------------------------------------------------------------------

/** The devices the suites know about: every device in the registry. */
export type BackendName = DeviceName;

const ALL_BACKENDS: BackendName[] = deviceNames();
let probed: Map<BackendName, string | null> | undefined;

function probe(): Map<BackendName, string | null> {
  if (probed) return probed;
  probed = new Map();
  let only: string[] | undefined;
  try {
    only = Deno.env.get("KDENO_TEST_BACKENDS")?.split(",").map((s) => s.trim());
  } catch {
    // no env permission: test every backend that loads
  }
  for (const b of ALL_BACKENDS) {
    if (only && !only.includes(b)) {
      probed.set(b, "not in KDENO_TEST_BACKENDS");
      continue;
    }
    try {
      setBackend(b);
      probed.set(b, null);
    } catch (e) {
      const line = String((e as Error).message ?? e).split("\n")[0];
      probed.set(b, line.length > 160 ? line.slice(0, 157) + "..." : line);
    }
  }
  try {
    setBackend("cpu");
  } catch {
    // reported by the cpu suites themselves
  }
  return probed;
}

/**
 * The backends that load here (limited by a comma-separated list in
 * `KDENO_TEST_BACKENDS`, e.g. `cpu,cuda`).
 *
 * @returns Their names.
 */
export function availableBackends(): BackendName[] {
  return [...probe()].filter(([, r]) => r === null).map(([b]) => b);
}

/**
 * The backends that do not load here, each with the reason.
 *
 * @returns `[name, reason]` pairs.
 */
export function missingBackends(): [BackendName, string][] {
  return [...probe()].filter(([, r]) => r !== null) as [BackendName, string][];
}

/**
 * Registers one test per (backend, op) that checks every case of the op in a
 * fixture family, one `t.step` per case named
 * `op() matches PyTorch: <case name>`, and an ignored test per missing
 * backend naming why.
 *
 * @param golden The fixture family.
 * @param runners The kdeno call for each op in the family.
 * @param tolerances Per-op tolerance overrides.
 */
export function goldenSuite(
  golden: GoldenFile,
  runners: Record<string, OpRunner>,
  tolerances: Record<string, Omit<CloseOptions, "msg" | "shape">> = {},
): void {
  const byOp = new Map<string, GoldenCase[]>();
  for (const c of golden.cases) {
    if (!byOp.has(c.op)) byOp.set(c.op, []);
    byOp.get(c.op)!.push(c);
  }
  for (const backend of availableBackends()) {
    for (const [op, cases] of byOp) {
      Deno.test(`[${backend}] ${op}() matches PyTorch`, async (t) => {
        const run = runners[op];
        assert.ok(run, `no runner for fixture op "${op}" in ${golden.family}`);
        setBackend(backend);
        for (const c of cases) {
          await t.step(`${op}() matches PyTorch: ${c.name}`, () => {
            checkCase(c, run, tolerances[op]);
          });
        }
      });
    }
  }
  for (const [backend, reason] of missingBackends()) {
    Deno.test({
      name: `[${backend}] ${golden.family} skipped: ${reason}`,
      ignore: true,
      fn() {},
    });
  }
}
