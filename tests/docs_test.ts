/**
 * The API as JSR shows it: `deno doc --json mod.ts` must list, under every
 * namespace (`nn`, `models`, `optim`, ..., and nested ones such as
 * `nn.init`), every name that the namespace's module exports. deno doc
 * leaves a namespace empty when its module re-exports with
 * `export { a } from "./x.ts"`, while the code itself works, so only this
 * test notices.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = new URL("../", import.meta.url);
const EXPORT_NS = /export\s+\*\s+as\s+(\w+)\s+from\s+"([^"]+)"/g;

interface DocDeclaration {
  kind: string;
  def?: { elements?: DocSymbol[] };
}

interface DocSymbol {
  name: string;
  declarations: DocDeclaration[];
}

interface DocJson {
  nodes: Record<string, { symbols: DocSymbol[] }>;
}

/** Runs `deno doc --json` on `files` and returns the top-level symbols per file URL. */
async function denoDoc(files: string[]): Promise<Map<string, DocSymbol[]>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", ...files],
    cwd: fromFileUrl(ROOT),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const json = JSON.parse(new TextDecoder().decode(stdout)) as DocJson;
  const out = new Map<string, DocSymbol[]>();
  for (const [url, node] of Object.entries(json.nodes)) {
    out.set(url, node.symbols);
  }
  return out;
}

/** The elements of the namespace `name` among `symbols`, or undefined. */
function namespaceElements(
  symbols: DocSymbol[],
  name: string,
): DocSymbol[] | undefined {
  const symbol = symbols.find((s) => s.name === name);
  const decl = symbol?.declarations.find((d) => d.kind === "namespace");
  return decl ? decl.def?.elements ?? [] : undefined;
}

/** A namespace of the public API: its dotted name and its module. */
interface Namespace {
  path: string;
  url: URL;
  elements: DocSymbol[];
}

/** Every `export * as x from "..."` reachable from `mod.ts`, nested ones included. */
async function namespaces(rootSymbols: DocSymbol[]): Promise<Namespace[]> {
  const out: Namespace[] = [];
  const visit = async (
    url: URL,
    symbols: DocSymbol[],
    prefix: string,
  ): Promise<void> => {
    const source = await Deno.readTextFile(url);
    for (const [, name, specifier] of source.matchAll(EXPORT_NS)) {
      const path = prefix + name;
      const elements = namespaceElements(symbols, name);
      assert.ok(elements, `deno doc lists no namespace ${path}`);
      const target = new URL(specifier, url);
      out.push({ path, url: target, elements });
      await visit(target, elements, `${path}.`);
    }
  };
  await visit(new URL("mod.ts", ROOT), rootSymbols, "");
  return out;
}

const rootUrl = new URL("mod.ts", ROOT).href;
const rootDoc = await denoDoc(["mod.ts"]);
const all = await namespaces(rootDoc.get(rootUrl) ?? []);
const moduleDocs = await denoDoc(all.map((ns) => fromFileUrl(ns.url)));

Deno.test("docs: mod.ts exports the namespaces users expect", () => {
  const names = all.map((ns) => ns.path);
  for (
    const expected of [
      "nn",
      "nn.functional",
      "nn.init",
      "models",
      "optim",
      "io",
      "data",
      "transforms",
      "distill",
      "train",
      "evaluation",
      "study",
    ]
  ) {
    assert.ok(names.includes(expected), `no namespace ${expected}`);
  }
});

for (const ns of all) {
  Deno.test(`docs: namespace ${ns.path} lists every export of its module`, async () => {
    const listed = new Set(ns.elements.map((e) => e.name));
    const values = Object.keys(await import(ns.url.href));
    const declared = (moduleDocs.get(ns.url.href) ?? []).map((s) => s.name);
    assert.ok(
      values.length > 0 || declared.length > 0,
      `${ns.path} exports nothing`,
    );
    const missing = [...new Set([...values, ...declared])]
      .filter((name) => !listed.has(name))
      .sort();
    assert.deepEqual(
      missing,
      [],
      `deno doc mod.ts lists ${listed.size} members under ${ns.path}; ` +
        `missing: ${missing.join(", ")}`,
    );
  });
}
