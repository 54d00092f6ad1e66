/**
 * Every CUDA C program the backend compiles goes through `nvcc -ptx
 * -arch=sm_90`, and each compiled entry point's parameter list is checked
 * against the parameter kinds the TypeScript side packs for it (count, type
 * class, size, alignment). Ignored, with the reason, where nvcc is missing.
 */

import assert from "node:assert/strict";
import { KERNEL_MODULES } from "../../src/backend/cuda/modules.ts";
import { moduleSource, PRELUDE } from "../../src/backend/cuda/kernels.ts";
import {
  ARG_LAYOUT,
  type ArgKind,
} from "../../src/backend/cuda/kernel_args.ts";

function nvccPath(): string {
  const own = Deno.env.get("NVCC");
  if (own) return own;
  for (const p of ["/usr/local/bin/nvcc", "/usr/local/cuda/bin/nvcc"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // try the next
    }
  }
  return "nvcc";
}

function nvccMissing(): string | null {
  try {
    const r = new Deno.Command(nvccPath(), { args: ["--version"] })
      .outputSync();
    return r.success ? null : `${nvccPath()} --version failed`;
  } catch (e) {
    return `nvcc not found (${(e as Error).message})`;
  }
}

/** A PTX `.param`: its type class and size/alignment in bytes. */
interface PtxParam {
  type: string;
  size: number;
  align: number;
}

const SCALAR_BYTES: Record<string, number> = {
  u64: 8,
  s64: 8,
  b64: 8,
  f64: 8,
  u32: 4,
  s32: 4,
  b32: 4,
  f32: 4,
};

/**
 * The `.visible .entry` functions of a PTX file and their parameters.
 *
 * @param ptx PTX text.
 * @returns Entry name to parameter list.
 */
export function ptxEntries(ptx: string): Map<string, PtxParam[]> {
  const entries = new Map<string, PtxParam[]>();
  for (const m of ptx.matchAll(/\.visible\s+\.entry\s+(\w+)\s*\(([^)]*)\)/g)) {
    const params: PtxParam[] = [];
    for (const line of m[2].split(",")) {
      const t = line.trim();
      if (!t) continue;
      const arr = /\.param\s+\.align\s+(\d+)\s+\.b8\s+\w+\[(\d+)\]/.exec(t);
      if (arr) {
        params.push({
          type: "b8",
          size: Number(arr[2]),
          align: Number(arr[1]),
        });
        continue;
      }
      const sc = /\.param\s+\.(\w+)\s/.exec(t);
      assert.ok(sc && sc[1] in SCALAR_BYTES, `unknown PTX param: ${t}`);
      const size = SCALAR_BYTES[sc[1]];
      params.push({ type: sc[1], size, align: size });
    }
    entries.set(m[1], params);
  }
  return entries;
}

const TYPE_CLASS: Record<ArgKind, string[]> = {
  ptr: ["u64", "b64", "s64"],
  f64: ["f64"],
  f32: ["f32"],
  i32: ["s32", "u32", "b32"],
  u32: ["u32", "s32", "b32"],
  layout1: ["b8"],
  layout2: ["b8"],
  layout3: ["b8"],
  conv: ["b8"],
  pool: ["b8"],
};

const missing = nvccMissing();

Deno.test({
  name:
    "every CUDA kernel compiles with nvcc -ptx -arch=sm_90 and takes the parameters the TypeScript side passes" +
    (missing ? ` (skipped: ${missing})` : ""),
  ignore: missing !== null,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "kdeno_ptx_" });
    try {
      const compiled = await Promise.all(KERNEL_MODULES.map(async (m) => {
        const cu = `${dir}/${m.name}.cu`;
        const ptx = `${dir}/${m.name}.ptx`;
        await Deno.writeTextFile(cu, moduleSource(m));
        const r = await new Deno.Command(nvccPath(), {
          args: ["-ptx", "-arch=sm_90", "-std=c++17", cu, "-o", ptx],
        }).output();
        const log = new TextDecoder().decode(r.stderr);
        return {
          m,
          ok: r.success,
          log,
          ptx: r.success ? await Deno.readTextFile(ptx) : "",
        };
      }));
      const seen = new Set<string>();
      for (const { m, ok, log, ptx } of compiled) {
        await t.step(`${m.name}.cu`, () => {
          assert.ok(ok, `nvcc failed on ${m.name}.cu:\n${log}`);
          const entries = ptxEntries(ptx);
          assert.deepEqual(
            [...entries.keys()].sort(),
            Object.keys(m.kernels).sort(),
            "the PTX entry points are exactly the declared kernels",
          );
          for (const [name, kinds] of Object.entries(m.kernels)) {
            assert.ok(!seen.has(name), `kernel name ${name} is used twice`);
            seen.add(name);
            const params = entries.get(name)!;
            assert.equal(
              params.length,
              kinds.length,
              `${name}: parameter count`,
            );
            kinds.forEach((kind, i) => {
              const p = params[i];
              const want = ARG_LAYOUT[kind];
              assert.ok(
                TYPE_CLASS[kind].includes(p.type),
                `${name} parameter ${i}: PTX .${p.type} for ${kind}`,
              );
              assert.equal(p.size, want.size, `${name} parameter ${i} size`);
              assert.equal(p.align, want.align, `${name} parameter ${i} align`);
            });
          }
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("CUDA C sources use only what NVRTC provides without host headers", () => {
  const forbidden =
    /#\s*include|\bINFINITY\b|\bNAN\b|\bFLT_MAX\b|\bINT_MAX\b|\bINT_MIN\b|\bsize_t\b|\bisnan\b|\bstd::/;
  for (const src of [PRELUDE, ...KERNEL_MODULES.map((m) => m.source)]) {
    const hit = forbidden.exec(src);
    assert.equal(hit, null, `found ${hit?.[0]} in a kernel source`);
  }
});
