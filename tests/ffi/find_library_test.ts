// Library discovery against fake directory trees, and the OpenBLAS loader.

import assert from "node:assert/strict";
import {
  BackendUnavailableError,
  candidatePaths,
  envDirs,
  type LibrarySpec,
  openLibrary,
} from "../../ffi/find_library.ts";
import {
  openBlas,
  OPENBLAS_DIRS,
  openBlasError,
  openBlasSpec,
  openBlasSymbols,
} from "../../ffi/openblas.ts";

const ENV = "KDENO_OPENBLAS";

/** Runs `fn` with KDENO_OPENBLAS set to `value`, restoring it afterwards. */
async function withEnv(
  value: string | undefined,
  fn: () => void | Promise<void>,
): Promise<void> {
  const old = Deno.env.get(ENV);
  if (value === undefined) Deno.env.delete(ENV);
  else Deno.env.set(ENV, value);
  try {
    await fn();
  } finally {
    if (old === undefined) Deno.env.delete(ENV);
    else Deno.env.set(ENV, old);
  }
}

/** A spec that only looks where the environment variable points. */
const envOnly: LibrarySpec = {
  ...openBlasSpec,
  dirs: [],
  sonameFallback: false,
};

/** The first real OpenBLAS on this machine, if any. */
function realOpenBlas(): string | null {
  for (const dir of OPENBLAS_DIRS) {
    for (const name of openBlasSpec.fileNames) {
      const p = `${dir}/${name}`;
      try {
        if (Deno.statSync(p).isFile) {
          Deno.dlopen(p, openBlasSymbols).close();
          return p;
        }
      } catch {
        // not here, or not OpenBLAS
      }
    }
  }
  return null;
}

const real = realOpenBlas();

Deno.test("envDirs() splits a colon-separated list and sees Deno.env changes", async () => {
  await withEnv("/a:/b::/c", () => {
    assert.deepEqual(envDirs(ENV), ["/a", "/b", "/c"]);
  });
  await withEnv(undefined, () => {
    assert.deepEqual(envDirs(ENV), []);
  });
});

Deno.test("candidatePaths() tries only what the environment names, else dirs then sonames", async () => {
  await withEnv("/env/dir:/env/file/libopenblas.so.0", () => {
    assert.deepEqual(candidatePaths(openBlasSpec), [
      "/env/dir/libopenblas.so.0",
      "/env/dir/libopenblas.so",
      "/env/dir/libblas.so.3",
      "/env/file/libopenblas.so.0",
    ]);
  });
  await withEnv(undefined, () => {
    const paths = candidatePaths(openBlasSpec);
    // the OpenMP build first: it shares libgomp's threads with oneDNN
    assert.equal(
      paths[0],
      "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
    );
    assert.ok(
      paths.indexOf(
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
      ) > 0,
    );
    assert.deepEqual(paths.slice(-3), [
      "libopenblas.so.0",
      "libopenblas.so",
      "libblas.so.3",
    ]);
  });
});

Deno.test("openLibrary() lists a bogus library with the loader's reason", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bogus = `${dir}/libopenblas.so.0`;
    await Deno.writeTextFile(bogus, "this is not a shared object\n");
    await withEnv(dir, () => {
      let err: unknown;
      try {
        openLibrary(envOnly, openBlasSymbols);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof BackendUnavailableError, String(err));
      // the bogus file is tried and fails in the loader, with its reason
      const line = err.tried.find((t) => t.startsWith(`${bogus}: `));
      assert.ok(line, `tried: ${err.tried.join(" | ")}`);
      assert.notEqual(line, `${bogus}: not found`);
      assert.match(line, /ELF|short|invalid|header/i);
      // the names that do not exist are reported as not found
      assert.ok(err.tried.includes(`${dir}/libopenblas.so: not found`));
      assert.ok(err.tried.includes(`${dir}/libblas.so.3: not found`));
      assert.match(
        err.message,
        /^Cannot load OpenBLAS named by KDENO_OPENBLAS: tried 3 location/,
      );
      assert.ok(err.message.includes(bogus));
      assert.ok(err.message.includes(`KDENO_OPENBLAS=${dir} names`));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openLibrary() reports a library missing a symbol", async () => {
  // libc exists everywhere but has no cblas_sgemm
  const libc = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6"]
    .find((p) => {
      try {
        return Deno.statSync(p).isFile;
      } catch {
        return false;
      }
    });
  if (!libc) return;
  await withEnv(libc, () => {
    assert.throws(
      () => openLibrary(envOnly, openBlasSymbols),
      (e: unknown) =>
        e instanceof BackendUnavailableError &&
        e.tried.length === 1 && e.tried[0].startsWith(`${libc}: `) &&
        /cblas_sgemm/.test(e.tried[0]),
    );
  });
});

Deno.test({
  name: "openLibrary() loads KDENO_OPENBLAS pointing at a real library",
  ignore: real === null,
  async fn() {
    const path = real!;
    // a file
    await withEnv(path, () => {
      const { lib, path: loaded } = openLibrary(envOnly, openBlasSymbols);
      try {
        assert.equal(loaded, path);
      } finally {
        lib.close();
      }
    });
    // a bogus directory first, then the real library's directory
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/libopenblas.so.0`, "bogus");
      const realDir = path.slice(0, path.lastIndexOf("/"));
      await withEnv(`${dir}:${realDir}`, () => {
        const { lib, path: loaded } = openLibrary(envOnly, openBlasSymbols);
        try {
          assert.ok(loaded.startsWith(`${realDir}/`), loaded);
          const a = new Float32Array([1, 2, 3, 4]);
          const c = new Float32Array(4);
          lib.symbols.cblas_sgemm(
            101,
            111,
            111,
            2,
            2,
            2,
            1,
            a,
            2,
            a,
            2,
            0,
            c,
            2,
          );
          assert.deepEqual([...c], [7, 10, 15, 22]);
        } finally {
          lib.close();
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("openLibrary() never replaces a library KDENO_OPENBLAS names with another copy", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bogus = `${dir}/libopenblas.so.0`;
    await Deno.writeTextFile(bogus, "this is not a shared object\n");
    // the full spec: the usual directories and sonames (where this machine
    // may well have a working OpenBLAS) are not tried
    await withEnv(bogus, () => {
      assert.throws(
        () => openLibrary(openBlasSpec, openBlasSymbols).lib.close(),
        (e: unknown) => {
          assert.ok(e instanceof BackendUnavailableError, String(e));
          assert.equal(e.tried.length, 1, e.tried.join(" | "));
          assert.ok(e.tried[0].startsWith(`${bogus}: `), e.tried[0]);
          assert.match(e.tried[0], /ELF|short|invalid|header/i);
          assert.ok(
            e.message.startsWith(
              "Cannot load OpenBLAS named by KDENO_OPENBLAS: tried 1 " +
                `location(s):\n  ${bogus}: `,
            ),
            e.message,
          );
          assert.ok(
            e.message.endsWith(
              `KDENO_OPENBLAS=${bogus} names the library to use, so no other ` +
                "copy was tried: fix the path, or unset KDENO_OPENBLAS to use " +
                "the system's OpenBLAS",
            ),
            e.message,
          );
          return true;
        },
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Calls `openBlas()` and `oneDnn()` twice each in a fresh process (their
 * state is per process) and reports what each call gave.
 */
async function loadersIn(
  env: Record<string, string>,
  permissions: string[],
): Promise<Record<string, unknown[]>> {
  const url = (p: string) =>
    JSON.stringify(new URL(`../../ffi/${p}`, import.meta.url).href);
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    file,
    `import { BackendUnavailableError } from ${url("find_library.ts")};
import { openBlas } from ${url("openblas.ts")};
import { oneDnn } from ${url("onednn.ts")};
const out = {};
for (const [name, open] of [["openBlas", openBlas], ["oneDnn", oneDnn]]) {
  out[name] = [0, 1].map(() => {
    try {
      const lib = open();
      return lib === null ? null : lib.path;
    } catch (e) {
      return { typed: e instanceof BackendUnavailableError, tried: e.tried,
        message: e.message };
    }
  });
}
console.log(JSON.stringify(out));`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-read", ...permissions, file],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("openBlas() and oneDnn() throw naming the path when KDENO_OPENBLAS or KDENO_ONEDNN names a library that does not load", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const blas = `${dir}/libopenblas.so.0`;
    const dnnl = `${dir}/libdnnl.so.2`;
    await Deno.writeTextFile(blas, "this is not a shared object\n");
    await Deno.writeTextFile(dnnl, "nor is this\n");
    const allow = ["--allow-env", "--allow-ffi"];

    await t.step(
      "a file that is not a library: thrown, every call",
      async () => {
        const r = await loadersIn(
          { KDENO_OPENBLAS: blas, KDENO_ONEDNN: dnnl },
          allow,
        );
        for (
          const [name, lib, v, path] of [
            ["openBlas", "OpenBLAS", "KDENO_OPENBLAS", blas],
            ["oneDnn", "oneDNN", "KDENO_ONEDNN", dnnl],
          ]
        ) {
          assert.deepEqual(r[name][0], r[name][1]);
          const e = r[name][0] as {
            typed: boolean;
            tried: string[];
            message: string;
          };
          assert.ok(e?.typed, `${name}() gave ${JSON.stringify(e)}`);
          assert.equal(e.tried.length, 1);
          assert.ok(e.tried[0].startsWith(`${path}: `), e.tried[0]);
          assert.match(e.tried[0], /ELF|short|invalid|header/i);
          assert.ok(
            e.message.startsWith(`Cannot load ${lib} named by ${v}: `),
            e.message,
          );
          assert.ok(e.message.includes(`unset ${v}`), e.message);
        }
      },
    );

    await t.step(
      "a directory without the library: each name not found",
      async () => {
        const r = await loadersIn({ KDENO_OPENBLAS: `${dir}/nowhere` }, allow);
        const e = r.openBlas[0] as { typed: boolean; tried: string[] };
        assert.ok(e?.typed, JSON.stringify(e));
        assert.deepEqual(
          e.tried,
          openBlasSpec.fileNames.map((f) => `${dir}/nowhere/${f}: not found`),
        );
      },
    );

    await t.step(
      "without --allow-ffi: null, the TypeScript kernels run",
      async () => {
        const r = await loadersIn(
          { KDENO_OPENBLAS: blas, KDENO_ONEDNN: dnnl },
          ["--allow-env"],
        );
        assert.deepEqual(r, { openBlas: [null, null], oneDnn: [null, null] });
      },
    );

    await t.step("KDENO_ONEDNN=0: null, turned off", async () => {
      const r = await loadersIn({ KDENO_ONEDNN: "0" }, allow);
      assert.deepEqual(r.oneDnn, [null, null]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "openBlas() opens OpenBLAS lazily and reports its configuration",
  ignore: real === null,
  fn() {
    const blas = openBlas();
    assert.ok(blas, openBlasError() ?? "");
    assert.equal(openBlasError(), null);
    assert.ok(blas.symbols.openblas_get_num_threads);
    assert.ok(blas.symbols.openblas_get_num_threads() >= 1);
    assert.match(blas.config, /OpenBLAS/);
  },
});

if (real === null) {
  Deno.test({
    name: "loading a real OpenBLAS skipped: none found in " +
      OPENBLAS_DIRS.join(", "),
    ignore: true,
    fn() {},
  });
}
