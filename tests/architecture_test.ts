/**
 * The layout's one rule that a reader cannot check by eye: no import cycle
 * between top-level rooms. A room is a direct subfolder of `src/` (`nn/`,
 * `data/`, `train/`, ...), a top-level file of `src/` (`version.ts`), or
 * `ffi/`. Every relative import of every `.ts` file under `src/` and
 * `ffi/` counts, `import type` included (a cycle of types is still two
 * rooms that cannot be read apart).
 *
 * One exception, a cycle that predates this check: the core is one room,
 * `tensor.ts`, `autograd.ts` and `ops/`. A
 *   `Tensor`'s methods call the ops, the ops make tensors and record them on
 *   the tape, and `backward()` walks the tape: they are one layer that
 *   happens to span files. `errors.ts`, `memory.ts` and `random.ts` import
 *   no other room, so they stay rooms of their own that every
 *   room, `backend/` included, may import; counting them in the core would
 *   make a cycle of every backend that throws a `ShapeError`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));

/** The files of the core room, besides `ops/`. */
const CORE_FILES = new Set(["tensor", "autograd"]);

/**
 * The room of a file, from its path relative to the repository root.
 *
 * @param path E.g. `src/train/trainer.ts`, `src/tensor.ts`, `ffi/cuda.ts`.
 * @returns E.g. `train`, `core`, `ffi`.
 */
export function roomOf(path: string): string {
  const parts = path.split("/");
  if (parts[0] !== "src") return parts[0];
  const room = parts.length === 2 ? parts[1].replace(/\.ts$/, "") : parts[1];
  return room === "ops" || CORE_FILES.has(room) ? "core" : room;
}

/**
 * The relative module specifiers a source file imports: static imports and
 * re-exports (`import type` too), side-effect imports and dynamic imports
 * of a string literal. Lines of comments (doc examples) are skipped.
 *
 * @param source The file's text.
 * @returns The specifiers starting with `.`.
 */
export function relativeImports(source: string): string[] {
  const code = source.split("\n").filter((line) =>
    !/^\s*(\*|\/\/|\/\*)/.test(line)
  ).join("\n");
  const out: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) {
      if (m[1].startsWith(".")) out.push(m[1]);
    }
  }
  return out;
}

/** A cycle between rooms, with one file import for each of its edges. */
export interface RoomCycle {
  /** The rooms, the first repeated at the end: `["a", "b", "a"]`. */
  rooms: string[];
  /** One `file -> file` import per edge, in order. */
  imports: string[];
}

/**
 * The room graph's cycles: one per strongly connected component of more
 * than one room (Tarjan's algorithm), as a shortest cycle through its
 * first room.
 *
 * @param files Each file's path (relative to the root) and its text.
 * @returns The cycles, empty when there are none.
 */
export function roomCycles(files: ReadonlyMap<string, string>): RoomCycle[] {
  // room -> room -> one file import making the edge
  const graph = new Map<string, Map<string, string>>();
  for (const [path, source] of files) {
    const from = roomOf(path);
    if (!graph.has(from)) graph.set(from, new Map());
    for (const spec of relativeImports(source)) {
      const target = normalize(join(dirname(path), spec));
      const edge = `${path} -> ${target}`;
      const to = roomOf(target);
      if (to === from) continue;
      if (!graph.has(to)) graph.set(to, new Map());
      const out = graph.get(from)!;
      if (!out.has(to)) out.set(to, edge);
    }
  }
  // Tarjan's strongly connected components
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!.keys()) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  // a shortest cycle through each component's first room (breadth first)
  return components.map((component) => {
    const start = component[0];
    const inside = new Set(component);
    const parent = new Map<string, string>();
    const queue = [start];
    let last: string | undefined;
    while (queue.length && last === undefined) {
      const v = queue.shift()!;
      for (const w of graph.get(v)!.keys()) {
        if (!inside.has(w)) continue;
        if (w === start) {
          last = v;
          break;
        }
        if (!parent.has(w)) {
          parent.set(w, v);
          queue.push(w);
        }
      }
    }
    const rooms = [start];
    for (let v = last!; v !== start; v = parent.get(v)!) rooms.splice(1, 0, v);
    rooms.push(start);
    const imports = rooms.slice(1).map((to, i) =>
      graph.get(rooms[i])!.get(to)!
    );
    return { rooms, imports };
  });
}

async function sources(dir: string, into: Map<string, string>) {
  for await (const entry of Deno.readDir(join(ROOT, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) await sources(path, into);
    else if (entry.isFile && entry.name.endsWith(".ts")) {
      into.set(path, await Deno.readTextFile(join(ROOT, path)));
    }
  }
  return into;
}

function describe(cycles: RoomCycle[]): string {
  return cycles.map((c) =>
    `${c.rooms.join(" -> ")}\n${c.imports.map((i) => `  ${i}`).join("\n")}`
  ).join("\n");
}

Deno.test("src/ has no import cycle between top-level rooms", async () => {
  const files = await sources("ffi", await sources("src", new Map()));
  assert.ok(files.has("src/tensor.ts"), `no sources found under ${ROOT}`);
  const cycles = roomCycles(files);
  assert.equal(
    cycles.length,
    0,
    `Import cycle(s) between rooms of src/ (a room imports another that imports it back):\n${
      describe(cycles)
    }`,
  );
});

Deno.test("roomCycles() reports a cycle with the imports that make it", () => {
  const files = new Map([
    [
      "src/train/trainer.ts",
      'import { writeReport } from "../eval/report.ts";',
    ],
    [
      "src/eval/report.ts",
      [
        "/**",
        ' * import { Trainer } from "../train/trainer.ts";', // a comment
        " */",
        'import type { EpochRecord } from "../train/trainer.ts";',
      ].join("\n"),
    ],
    ["src/tensor.ts", 'import * as ops from "./ops/mod.ts";'],
    ["src/ops/mod.ts", 'export * from "../tensor.ts";'],
    ["ffi/cuda.ts", 'import { x } from "./find_library.ts";'],
  ]);
  const cycles = roomCycles(files);
  assert.deepEqual(cycles, [{
    rooms: ["eval", "train", "eval"],
    imports: [
      "src/eval/report.ts -> src/train/trainer.ts",
      "src/train/trainer.ts -> src/eval/report.ts",
    ],
  }]);
  assert.match(describe(cycles), /eval -> train -> eval/);
});

Deno.test("relativeImports() reads every form of import, not comments", () => {
  const source = [
    'import { a } from "./a.ts";',
    "import {",
    "  b,",
    '} from "../b.ts";',
    'import type { C } from "./c.ts";',
    'export { d } from "./d.ts";',
    'export * from "./e.ts";',
    'import "./f.ts";',
    'const g = await import("./g.ts");',
    'import { h } from "node:path";',
    '// import { i } from "./i.ts";',
    ' * import { j } from "./j.ts";',
  ].join("\n");
  assert.deepEqual(relativeImports(source).sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
    "./g.ts",
  ]);
});

Deno.test("roomOf() puts tensor.ts, autograd.ts and ops/ in one room", () => {
  assert.equal(roomOf("src/tensor.ts"), "core");
  assert.equal(roomOf("src/ops/conv.ts"), "core");
  assert.equal(roomOf("src/autograd.ts"), "core");
  assert.equal(roomOf("src/errors.ts"), "errors");
  assert.equal(roomOf("src/train/trainer.ts"), "train");
  assert.equal(roomOf("src/backend/cuda/mod.ts"), "backend");
  assert.equal(roomOf("src/version.ts"), "version");
  assert.equal(roomOf("ffi/cuda.ts"), "ffi");
});
