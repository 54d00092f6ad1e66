// Seeded byte-level fuzzing of the checkpoint readers (tests/_fuzz.ts):
// mutants of valid files, for each parser (the pickle inside a zip whose
// CRCs still match, the .pth zip in its STORED, DEFLATE and zip64 forms,
// the legacy torch.save stream, safetensors through the format sniffer),
// load or fail with a typed kdeno error, within a time and peak-memory
// bound. A seed that ever failed goes into its input's `regressions`,
// replayed first on every run.
import assert from "node:assert/strict";
import { parseTorch } from "../../src/io/mod.ts";
import { parseWeights } from "../../src/io/weights.ts";
import { ZipReader } from "../../src/io/_zip.ts";
import type { Tensor } from "../../src/tensor.ts";
import { fuzz } from "../_fuzz.ts";
import { zip } from "./_craft.ts";

const PTH = new URL("../fixtures/pth/", import.meta.url);
const read = (name: string, dir = PTH) => Deno.readFile(new URL(name, dir));

/** The entries of a .pth, to put back together around a mutated one. */
async function entries(name: string): Promise<Record<string, Uint8Array>> {
  const z = new ZipReader(await read(name));
  return Object.fromEntries(z.entries.map((e) => [e.name, z.read(e)]));
}

function drop(sd: Record<string, Tensor>): void {
  for (const t of Object.values(sd)) t.dispose();
}

interface Target {
  /** The reader, for the test's name. */
  fn: string;
  /** What is mutated, for the test's name. */
  what: string;
  input: Uint8Array;
  /** Reads one mutant. */
  parse: (bytes: Uint8Array, seed: number) => void;
  cases: number;
  regressions: number[];
}

/** The pickle of `file`, mutated, in an archive whose CRCs still match. */
async function pickleTarget(
  file: string,
  cases: number,
  regressions: number[],
): Promise<Target> {
  const files = await entries(file);
  const pkl = Object.keys(files).find((k) => k.endsWith("/data.pkl"))!;
  return {
    fn: "parseTorch()",
    what: `the data.pkl of ${file}`,
    input: files[pkl],
    parse: (bytes, seed) =>
      drop(parseTorch(zip({ ...files, [pkl]: bytes }), `${file}#${seed}`)),
    cases,
    regressions,
  };
}

/** `file` itself, mutated. */
function fileTarget(
  what: string,
  input: Uint8Array,
  cases: number,
  regressions: number[],
): Target {
  return {
    fn: "parseTorch()",
    what,
    input,
    parse: (bytes, seed) => drop(parseTorch(bytes, `${what}#${seed}`)),
    cases,
    regressions,
  };
}

const TARGETS: Target[] = [
  await pickleTarget("state_zip.pth", 3000, []),
  await pickleTarget("state_p4.pth", 2000, []),
  fileTarget("state_zip.pth", await read("state_zip.pth"), 3000, []),
  fileTarget("state_deflate.pth", await read("state_deflate.pth"), 2000, []),
  fileTarget(
    "state_zip.pth as zip64",
    zip(await entries("state_zip.pth"), { zip64: true }),
    2000,
    [],
  ),
  fileTarget("state_legacy.pth", await read("state_legacy.pth"), 3000, []),
  {
    fn: "parseWeights()",
    what: "sample.safetensors",
    input: await read("sample.safetensors", new URL("../io/", PTH)),
    parse: (bytes, seed) =>
      drop(parseWeights(bytes, `sample.safetensors#${seed}`)),
    cases: 5000,
    regressions: [],
  },
];

for (const { fn, what, input, parse, cases, regressions } of TARGETS) {
  Deno.test(`${fn} survives ${cases} mutants of ${what}`, async () => {
    // the input itself reads: the mutants start from a valid file
    parse(input, 0);
    const { parsed, refused } = await fuzz({
      input,
      parse,
      cases,
      regressions,
    });
    assert.equal(parsed + refused, cases + regressions.length);
    // Both outcomes occur, or the mutator is not reaching the parser.
    assert.ok(
      parsed > 0 && refused > 0,
      `${parsed} parsed, ${refused} refused`,
    );
  });
}
