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

Deno.test("candidatePaths() tries the environment first, then dirs, then sonames", async () => {
  await withEnv("/env/dir:/env/file/libopenblas.so.0", () => {
    const paths = candidatePaths(openBlasSpec);
    assert.deepEqual(paths.slice(0, 4), [
      "/env/dir/libopenblas.so.0",
      "/env/dir/libopenblas.so",
      "/env/dir/libblas.so.3",
      "/env/file/libopenblas.so.0",
    ]);
    assert.equal(
      paths[4],
      "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
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
      assert.match(err.message, /Cannot load OpenBLAS: tried 3 location/);
      assert.ok(err.message.includes(bogus));
      assert.match(err.message, /KDENO_OPENBLAS/); // the hint
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
