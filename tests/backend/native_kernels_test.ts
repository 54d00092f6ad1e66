/**
 * The native (C, OpenMP) CPU kernels against their TypeScript twins, on the
 * same inputs: pooling, ReLU and elementwise results bit for bit, batch norm
 * within float64 summation-order noise. The rest of the suite checks the
 * kernels that run by default (the native ones where they build) against
 * PyTorch's fixtures and naive references; this file ties the TypeScript
 * fallbacks to them. The loader is checked in subprocesses: building into
 * an empty cache, reusing it, and falling back when there is no compiler.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type {
  BatchNormGeometry,
  Pool2dGeometry,
} from "../../src/backend/backend.ts";
import {
  nativeKernels,
  nativeKernelsError,
  nativeKernelsPath,
  setNativeKernels,
} from "../../src/backend/cpu/native.ts";
import {
  batchNormBackward,
  batchNormEval,
  batchNormTrain,
} from "../../src/backend/cpu/batch_norm.ts";
import { maxPool2d, maxPool2dBackward } from "../../src/backend/cpu/pool.ts";
import { binary, unary } from "../../src/backend/cpu/elementwise.ts";
import { reduce } from "../../src/backend/cpu/reduce.ts";
import { getBackend } from "../../src/backend/registry.ts";
import { setOneDnnKernels } from "../../src/backend/cpu/onednn_conv.ts";
import { poolGeom } from "./_pool_geometry.ts";

function requireNative(): void {
  if (nativeKernels() === null) {
    throw new Error(
      `the native kernels did not build (${nativeKernelsError()}); they ` +
        "need a C compiler (apt-get install gcc) — CI has one",
    );
  }
}

let seed = 99;
function random(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
}

function randn(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - random();
    a[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  }
  return a;
}

/** Runs `fn` with the native kernels on, then off (and oneDNN off). */
function both<T>(fn: () => T): [T, T] {
  requireNative();
  const native = fn();
  setNativeKernels(false);
  setOneDnnKernels(false);
  try {
    return [native, fn()];
  } finally {
    setNativeKernels(true);
    setOneDnnKernels(true);
  }
}

/** Equal element for element (`Object.is`: -0 differs from +0; NaN equals NaN). */
function assertSame(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    assert.fail(`${what}: element ${i} is ${a[i]} natively, ${b[i]} in TS`);
  }
}

function assertNear(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  what: string,
  tol = 1e-6,
) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (a[i] !== b[i] && !(d <= tol * (1 + Math.abs(b[i])))) {
      assert.fail(`${what}: element ${i} is ${a[i]} natively, ${b[i]} in TS`);
    }
  }
}

Deno.test("the native kernels build and load with -A", () => {
  requireNative();
  assert.equal(nativeKernelsError(), null);
  assert.match(nativeKernelsPath()!, /kernels-[0-9a-f]{16}\.(so|dylib|dll)$/);
  // built with OpenMP (gcc has it): parallel loops use more than one thread
  if (navigator.hardwareConcurrency > 1 && !Deno.env.get("OMP_NUM_THREADS")) {
    assert.ok(nativeKernels()!.kd_threads() > 1, "built without OpenMP");
  }
});

Deno.test("native max pooling equals the TypeScript kernel", async (t) => {
  const cases: [string, Pool2dGeometry][] = [
    ["2x2/2 (StudentNet)", poolGeom(2, 3, 16, 16, [2, 2], { stride: [2, 2] })],
    ["2x2/2 odd input", poolGeom(1, 2, 9, 7, [2, 2], { stride: [2, 2] })],
    [
      "3x3/2 pad 1 (ResNet stem)",
      poolGeom(2, 4, 20, 18, [3, 3], { stride: [2, 2], padding: [1, 1] }),
    ],
    [
      "3x3/1 pad 1",
      poolGeom(1, 3, 8, 8, [3, 3], { stride: [1, 1], padding: [1, 1] }),
    ],
    [
      "3x3/2 ceil mode",
      poolGeom(1, 2, 10, 10, [3, 3], { stride: [2, 2], ceil: true }),
    ],
    [
      "3x3/2 dilation 2",
      poolGeom(1, 2, 13, 11, [3, 3], {
        stride: [2, 2],
        padding: [1, 1],
        dilation: [2, 2],
      }),
    ],
    [
      "4x4/3 pad 2",
      poolGeom(1, 2, 12, 12, [4, 4], { stride: [3, 3], padding: [2, 2] }),
    ],
    [
      "large, parallel (3x3/2 pad 1)",
      poolGeom(4, 16, 40, 40, [3, 3], { stride: [2, 2], padding: [1, 1] }),
    ],
  ];
  for (const [label, g] of cases) {
    await t.step(label, () => {
      const x = randn(g.n * g.c * g.h * g.w);
      // ties (incl. -0 against +0), infinities, and a NaN in one plane
      x[3] = x[4] = 1.5;
      x[5] = -0;
      x[6] = 0;
      x[8] = Infinity;
      x[9] = -Infinity;
      x[g.h * g.w + 7] = NaN;
      for (const needIndices of [true, false]) {
        const [a, b] = both(() => maxPool2d(x, g, needIndices));
        assertSame(a.y, b.y, `${label} y (indices ${needIndices})`);
        if (needIndices) assertSame(a.indices, b.indices, `${label} indices`);
      }
      const { indices } = maxPool2d(x, g, true);
      const dy = randn(g.n * g.c * g.oh * g.ow);
      const [da, db] = both(() => maxPool2dBackward(dy, indices, g));
      assertSame(da, db, `${label} backward`);
    });
  }
});

Deno.test("native batch norm equals the TypeScript kernel", async (t) => {
  for (
    const [n, c, hw] of [[2, 3, 5], [4, 4, 224], [8, 16, 100], [1, 2, 1]]
  ) {
    await t.step(`[${n}, ${c}, ${hw}]`, () => {
      const x = randn(n * c * hw).map((v) => 3 * v + 1);
      const w = randn(c);
      const b = randn(c);
      for (const relu of [false, true]) {
        const m0 = randn(c);
        const v0 = randn(c).map(Math.abs);
        const rm = [m0, m0.slice()];
        const rv = [v0, v0.slice()];
        let k = 0;
        const g: BatchNormGeometry = {
          n,
          c,
          hw,
          eps: 1e-5,
          momentum: 0.1,
          activation: relu ? "relu" : "none",
        };
        const [ta, tb] = both(() => {
          const i = k++;
          const p = {
            weight: w,
            bias: b,
            runningMean: rm[i],
            runningVar: rv[i],
          };
          return batchNormTrain(x, p, g);
        });
        assertNear(ta.y, tb.y, `train y (relu ${relu})`);
        assertNear(ta.mean, tb.mean, "mean");
        assertNear(ta.invStd, tb.invStd, "invStd");
        assertNear(rm[0], rm[1], "running mean");
        assertNear(rv[0], rv[1], "running var");
        const [ea, eb] = both(() =>
          batchNormEval(
            x,
            { weight: w, bias: b, runningMean: rm[1], runningVar: rv[1] },
            g,
          )
        );
        // fixed statistics: the same float64 arithmetic, so the same bits
        assertSame(ea, eb, `eval y (relu ${relu})`);
      }
      const g: BatchNormGeometry = {
        n,
        c,
        hw,
        eps: 1e-5,
        momentum: 0.1,
        activation: "none",
      };
      const saved = batchNormTrain(
        x,
        { weight: w, bias: b, runningMean: null, runningVar: null },
        g,
      );
      const dy = randn(n * c * hw);
      const [ba, bb] = both(() => batchNormBackward(x, dy, w, saved, g));
      assertNear(ba.dx, bb.dx, "dx", 1e-5);
      assertNear(ba.dweight, bb.dweight, "dweight", 1e-5);
      assertNear(ba.dbias, bb.dbias, "dbias", 1e-5);
    });
  }
});

Deno.test("native ReLU, its gradient, add, axpy and sums equal the TypeScript kernels", () => {
  for (const n of [7, 100_003]) {
    const x = randn(n);
    const dy = randn(n);
    x[0] = NaN;
    x[1] = -0;
    x[2] = 0;
    x[3] = -Infinity;
    x[4] = Infinity;
    const [ra, rb] = both(() => unary("relu", x));
    assertSame(ra, rb, `relu n=${n}`);
    // PyTorch's relu keeps -0 and maps -Infinity to +0, in both kernels
    assert.ok(Object.is(ra[1], -0) && Object.is(rb[1], -0), "-0 stays -0");
    assert.ok(Object.is(ra[3], 0) && Object.is(rb[3], 0), "-inf → +0");
    const [ga, gb] = both(() => binary("reluGrad", dy, [1], x, [1], [n]));
    assertSame(ga, gb, `reluGrad n=${n}`);
    const [aa, ab] = both(() => binary("add", x, [1], dy, [1], [n]));
    assertSame(aa, ab, `add n=${n}`);
    for (const alpha of [1, -0.3]) {
      const [xa, xb] = both(() => {
        const be = getBackend("cpu");
        const dst = be.upload(dy);
        be.axpy(dst, be.upload(x), alpha);
        return be.download(dst);
      });
      assertSame(xa, xb, `axpy alpha=${alpha} n=${n}`);
      assert.ok(
        Number.isNaN(xa[0]) && xa[5] === Math.fround(dy[5] + alpha * x[5]),
      );
    }
    for (const [outer, r, inner] of [[1, n, 1], [n, 1, 1], [1, 1, n]]) {
      const [sa, sb] = both(() => reduce("sum", x, outer, r, inner));
      assertSame(sa, sb, `sum [${outer}, ${r}, ${inner}]`);
    }
  }
  const x = randn(6 * 50 * 70);
  for (const [outer, r, inner] of [[6, 50, 70], [300, 70, 1], [1, 6, 3500]]) {
    const [sa, sb] = both(() => reduce("sum", x, outer, r, inner));
    assertSame(sa, sb, `sum [${outer}, ${r}, ${inner}]`);
  }
});

// ---- the loader, in fresh processes ---------------------------------------

const NATIVE_URL = new URL("../../src/backend/cpu/native.ts", import.meta.url)
  .href;

type Probe = {
  ok: boolean;
  path: string | null;
  error: string | null;
  value?: unknown;
};

/**
 * Loads the native kernels in a fresh process with `KDENO_CACHE_DIR` set to
 * `${dir}/cache` and returns what it saw, with `expr` (which may use the
 * kernels as `k`) evaluated when they loaded.
 */
async function probe(
  dir: string,
  env: Record<string, string>,
  permissions: string[] = ["-A"],
  expr = "k.kd_abi()",
): Promise<Probe> {
  // one script per call, so that calls may run at the same time
  const script = `${dir}/probe-${crypto.randomUUID()}.ts`;
  await Deno.writeTextFile(
    script,
    `import { nativeKernels, nativeKernelsError, nativeKernelsPath } from ${
      JSON.stringify(NATIVE_URL)
    };
const k = nativeKernels();
console.log(JSON.stringify({ ok: k !== null && k.kd_abi() > 0, value: k ? ${expr} : undefined, path: nativeKernelsPath(), error: nativeKernelsError() }));`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-lock", ...permissions, script],
    env: { KDENO_CACHE_DIR: `${dir}/cache`, ...env },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.ok(
    out.success,
    `probe exited with code ${out.code} (signal ${out.signal}): ` +
      new TextDecoder().decode(out.stderr),
  );
  return JSON.parse(text);
}

/** ReLU of [-1, 2, -0.5, 3] through the loaded kernels. */
const RELU = "(() => { const x = new Float32Array([-1, 2, -0.5, 3]); " +
  "const y = new Float32Array(4); k.kd_relu(x, y, 4); return [...y]; })()";

/**
 * A compiler that logs each call to `${dir}/builds.log` and runs `cc`: the
 * log's line count is the number of builds (with OpenMP, one call each).
 */
async function countingCc(dir: string): Promise<() => Promise<number>> {
  const cc = `${dir}/counting-cc`;
  await Deno.writeTextFile(
    cc,
    `#!/bin/sh\necho build >> '${dir}/builds.log'\nexec cc "$@"\n`,
  );
  await Deno.chmod(cc, 0o755);
  return async () => {
    try {
      return (await Deno.readTextFile(`${dir}/builds.log`)).split("\n")
        .filter((l) => l === "build").length;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return 0;
      throw e;
    }
  };
}

/** The sidecar's record and the library's real size and SHA-256. */
async function sums(path: string) {
  const bytes = await Deno.readFile(path);
  return {
    recorded: JSON.parse(await Deno.readTextFile(`${path}.sum`)),
    actual: {
      bytes: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    },
  };
}

Deno.test("the native kernels build into an empty cache once, then are reused", async () => {
  requireNative();
  const dir = await Deno.makeTempDir({ prefix: "kdeno-native-" });
  try {
    const first = await probe(dir, {});
    assert.ok(first.ok, `did not build: ${first.error}`);
    assert.ok(first.path!.startsWith(`${dir}/cache/`));
    const built = (await Deno.stat(first.path!)).mtime!.getTime();
    // the library, its checksum file and the build lock are left behind: no
    // source, no temporary file
    const lib = first.path!.slice(dir.length + 7);
    const names = [...Deno.readDirSync(`${dir}/cache`)].map((e) => e.name);
    assert.deepEqual(names.sort(), [lib, `${lib}.lock`, `${lib}.sum`]);
    const { recorded, actual } = await sums(first.path!);
    assert.deepEqual(recorded, actual);
    const second = await probe(dir, {});
    assert.ok(second.ok);
    assert.equal(second.path, first.path);
    assert.equal((await Deno.stat(second.path!)).mtime!.getTime(), built);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a cached library cut to half its size is rebuilt, never opened (no SIGBUS)", async (t) => {
  requireNative();
  const dir = await Deno.makeTempDir({ prefix: "kdeno-native-" });
  try {
    const builds = await countingCc(dir);
    const env = { KDENO_CC: `${dir}/counting-cc` };
    const first = await probe(dir, env);
    assert.ok(first.ok, `did not build: ${first.error}`);
    const path = first.path!;
    const whole = await Deno.readFile(path);
    const half = () =>
      Deno.writeFile(path, whole.subarray(0, whole.length >> 1));

    await t.step("without --allow-write: refused with the reason", async () => {
      await half();
      const r = await probe(dir, env, [
        "--allow-read",
        "--allow-env",
        "--allow-ffi",
      ]);
      assert.equal(r.ok, false);
      assert.ok(r.error!.includes(path), r.error!);
      assert.ok(
        r.error!.includes(
          `it is ${whole.length >> 1} bytes, its checksum file says ` +
            `${whole.length}`,
        ),
        r.error!,
      );
      assert.match(r.error!, /--allow-write/);
    });

    await t.step("with -A: rebuilt, and the kernels run", async () => {
      await half();
      const r = await probe(dir, env, ["-A"], RELU);
      assert.ok(r.ok, `did not rebuild: ${r.error}`);
      assert.equal(r.path, path);
      assert.deepEqual(r.value, [0, 2, 0, 3]);
      assert.equal(await builds(), 2);
      const { recorded, actual } = await sums(path);
      assert.deepEqual(recorded, actual);
      assert.ok(actual.bytes > whole.length >> 1);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a library that does not match its checksum file is rebuilt", async (t) => {
  requireNative();
  const dir = await Deno.makeTempDir({ prefix: "kdeno-native-" });
  try {
    const builds = await countingCc(dir);
    const env = { KDENO_CC: `${dir}/counting-cc` };
    const first = await probe(dir, env);
    assert.ok(first.ok, `did not build: ${first.error}`);
    const path = first.path!;
    const damages: [string, () => Promise<void>][] = [
      [
        "a checksum file that is not JSON",
        () => Deno.writeTextFile(`${path}.sum`, "\u0000garbage{"),
      ],
      ["a checksum file with another digest", async () => {
        const { recorded } = await sums(path);
        recorded.sha256 = "0".repeat(64);
        await Deno.writeTextFile(`${path}.sum`, JSON.stringify(recorded));
      }],
      [
        "a checksum file of 2 KiB",
        () => Deno.writeTextFile(`${path}.sum`, " ".repeat(2048)),
      ],
      [
        "no checksum file (a cache from before checksums)",
        () => Deno.remove(`${path}.sum`),
      ],
      ["one byte of the library flipped, same size", async () => {
        const bytes = await Deno.readFile(path);
        bytes[bytes.length >> 1] ^= 0xff;
        await Deno.writeFile(path, bytes);
      }],
    ];
    let expected = 1;
    for (const [label, damage] of damages) {
      await t.step(label, async () => {
        await damage();
        const r = await probe(dir, env, ["-A"], RELU);
        assert.ok(r.ok, `did not rebuild: ${r.error}`);
        assert.deepEqual(r.value, [0, 2, 0, 3]);
        assert.equal(await builds(), ++expected);
        const { recorded, actual } = await sums(path);
        assert.deepEqual(recorded, actual);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("processes starting together on an empty cache build once and all load", async () => {
  requireNative();
  const dir = await Deno.makeTempDir({ prefix: "kdeno-native-" });
  try {
    const builds = await countingCc(dir);
    const env = { KDENO_CC: `${dir}/counting-cc` };
    const results = await Promise.all(
      [0, 1, 2].map(() => probe(dir, env, ["-A"], RELU)),
    );
    for (const r of results) {
      assert.ok(r.ok, `did not load: ${r.error}`);
      assert.deepEqual(r.value, [0, 2, 0, 3]);
    }
    assert.equal(await builds(), 1);
    assert.ok(results.every((r) => r.path === results[0].path));
    const { recorded, actual } = await sums(results[0].path!);
    assert.deepEqual(recorded, actual);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("temporary files of crashed builds are removed once stale, and only they", async () => {
  requireNative();
  const dir = await Deno.makeTempDir({ prefix: "kdeno-native-" });
  try {
    const cache = `${dir}/cache`;
    await Deno.mkdir(cache);
    const lib = "kernels-0123456789abcdef.so";
    const stale = [
      `${lib}.tmp-4242-abc`,
      `${lib}.tmp-4242-abc.c`,
      `${lib}.sum.tmp-4242-abc`,
      `${lib}.4242.k3j5h2`, // the temporary name of earlier versions
      `${lib}.4242.k3j5h2.c`,
    ];
    const kept = [
      `${lib}.tmp-4343-def`, // a build running now
      lib,
      `${lib}.sum`,
      `${lib}.lock`,
      "notes.txt",
    ];
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const name of [...stale, ...kept]) {
      await Deno.writeTextFile(`${cache}/${name}`, "half a build");
      if (name !== kept[0]) {
        await Deno.utime(`${cache}/${name}`, hourAgo, hourAgo);
      }
    }
    const r = await probe(dir, {});
    assert.ok(r.ok, `did not load: ${r.error}`);
    const names = new Set([...Deno.readDirSync(cache)].map((e) => e.name));
    for (const name of stale) assert.ok(!names.has(name), `${name} is left`);
    for (const name of kept) assert.ok(names.has(name), `${name} was removed`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without a compiler, permissions or consent the TypeScript kernels run, and the reason is given", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "kdeno-native-" });
  try {
    await t.step("no compiler", async () => {
      const r = await probe(dir, { KDENO_CC: `${dir}/no-such-cc` });
      assert.equal(r.ok, false);
      assert.match(r.error!, /no C compiler \(.*no-such-cc\)/);
    });
    await t.step(
      "a compiler without OpenMP: built for one thread",
      async () => {
        const cc = `${dir}/cc-without-openmp`;
        await Deno.writeTextFile(
          cc,
          '#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && exit 1; done\n' +
            'exec cc "$@"\n',
        );
        await Deno.chmod(cc, 0o755);
        const r = await probe(dir, { KDENO_CC: cc }, ["-A"], "k.kd_threads()");
        assert.ok(r.ok, `did not build: ${r.error}`);
        assert.equal(r.value, 1);
      },
    );
    await t.step("KDENO_NATIVE=0", async () => {
      const r = await probe(dir, { KDENO_NATIVE: "0" });
      assert.equal(r.ok, false);
      assert.match(r.error!, /KDENO_NATIVE=0/);
    });
    await t.step("no --allow-run (never a prompt)", async () => {
      const r = await probe(dir, {}, [
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-ffi",
      ]);
      assert.equal(r.ok, false);
      assert.match(r.error!, /--allow-run/);
    });
    await t.step("no --allow-ffi", async () => {
      const r = await probe(dir, {}, ["--allow-read", "--allow-env"]);
      assert.equal(r.ok, false);
      assert.match(r.error!, /--allow-ffi/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
