/**
 * CUDA library discovery against fake directory trees: the search order
 * (KDENO_CUDA_LIB_DIRS, virtual environments, conda, CUDA_HOME), the error
 * listing every path tried, same-directory dependency pre-loading, and a
 * clear error when there is no driver.
 */

import assert from "node:assert/strict";
import { BackendUnavailableError } from "../../ffi/find_library.ts";
import {
  CUDA_LIB_DIRS_ENV,
  cudaLibDirs,
  cudnnLibDirs,
  openCublas,
  openCudaDriver,
  openNvrtc,
  sitePackages,
} from "../../ffi/cuda_libs.ts";
import { createCudaBackend } from "../../src/backend/cuda/mod.ts";
import { MockCuda, mockUnavailable } from "./_mock.ts";

const ENV = [
  CUDA_LIB_DIRS_ENV,
  "VIRTUAL_ENV",
  "CONDA_PREFIX",
  "CUDA_HOME",
  "CUDA_PATH",
];

/** Runs `fn` with the CUDA-related environment replaced by `vars`. */
function withEnv(vars: Record<string, string>, fn: () => void): void {
  const saved = new Map(ENV.map((k) => [k, Deno.env.get(k)]));
  try {
    for (const k of ENV) Deno.env.delete(k);
    for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
    fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

function touch(path: string, text = "not an ELF file\n"): string {
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  Deno.writeTextFileSync(path, text);
  return path;
}

function fakeVenv(root: string): { venv: string; lib: string } {
  const venv = `${root}/venv`;
  const lib = `${venv}/lib/python3.12/site-packages/nvidia/cu13/lib`;
  Deno.mkdirSync(lib, { recursive: true });
  return { venv, lib };
}

/** Opens with `open(dirs)`; returns the error, or null when a bare soname loaded. */
function failure(
  open: () => { path: string },
): BackendUnavailableError | null {
  try {
    const { path } = open();
    // only a system-wide copy, found by bare soname, may load here
    assert.ok(!path.includes("/"), `unexpectedly loaded ${path}`);
    return null;
  } catch (e) {
    assert.ok(e instanceof BackendUnavailableError, String(e));
    return e;
  }
}

Deno.test("cudaLibDirs() searches KDENO_CUDA_LIB_DIRS, venvs, conda, CUDA_HOME, /usr/local/cuda in that order", () => {
  const root = Deno.makeTempDirSync({ prefix: "kdeno_disc_" });
  const { venv } = fakeVenv(root);
  Deno.mkdirSync(`${venv}/lib/python3.9/site-packages`, { recursive: true });
  withEnv({
    [CUDA_LIB_DIRS_ENV]: `${root}/a:${root}/b`,
    VIRTUAL_ENV: venv,
    CONDA_PREFIX: `${root}/conda`,
    CUDA_HOME: `${root}/cuda`,
  }, () => {
    assert.deepEqual(sitePackages(venv), [
      `${venv}/lib/python3.12/site-packages`,
      `${venv}/lib/python3.9/site-packages`,
    ]);
    const dirs = cudaLibDirs();
    const sp = `${venv}/lib/python3.12/site-packages`;
    const at = (d: string) => {
      const i = dirs.indexOf(d);
      assert.ok(i >= 0, `${d} is searched`);
      return i;
    };
    assert.equal(at(`${root}/a`), 0);
    assert.equal(at(`${root}/b`), 1);
    assert.equal(at(`${sp}/nvidia/cu13/lib`), 2);
    assert.ok(at(`${sp}/nvidia/cublas/lib`) > 2, "CUDA 12 wheel layout");
    assert.ok(at(`${sp}/nvidia/cuda_nvrtc/lib`) > 2);
    assert.ok(at(`${root}/conda/lib`) > at(`${sp}/nvidia/cuda_runtime/lib`));
    assert.ok(at(`${root}/cuda/lib64`) > at(`${root}/conda/lib`));
    assert.ok(
      at(`${root}/cuda/targets/x86_64-linux/lib`) > at(`${root}/cuda/lib64`),
    );
    assert.ok(at("/usr/local/cuda/lib64") > at(`${root}/cuda/lib64`));
    assert.ok(
      cudnnLibDirs().includes(`${sp}/nvidia/cudnn/lib`),
      "cuDNN is looked for in the wheel's nvidia/cudnn/lib",
    );
  });
});

Deno.test("with no environment set, only the standard toolkit folders are searched (no machine's own paths)", () => {
  withEnv({}, () => {
    const standard = [
      "/usr/local/cuda/lib64",
      "/usr/local/cuda/targets/x86_64-linux/lib",
    ];
    assert.deepEqual(cudaLibDirs(), standard);
    assert.deepEqual(cudnnLibDirs(), standard);
  });
});

Deno.test("openCublas() lists a venv's broken libcublas.so.13 among the paths tried", () => {
  const root = Deno.makeTempDirSync({ prefix: "kdeno_disc_" });
  const { venv, lib } = fakeVenv(root);
  const bad = touch(`${lib}/libcublas.so.13`);
  const cu12 = touch(
    `${venv}/lib/python3.12/site-packages/nvidia/cublas/lib/libcublas.so.12`,
  );
  withEnv({ VIRTUAL_ENV: venv }, () => {
    const mine = cudaLibDirs().filter((d) => d.startsWith(root));
    const e = failure(() => openCublas(mine));
    if (!e) return;
    const tried = e.tried.find((t) => t.startsWith(`${bad}: `));
    assert.ok(tried, `tried list: ${e.tried.join("\n")}`);
    assert.ok(
      !tried.endsWith(": not found"),
      "it was found and failed to load",
    );
    assert.ok(e.tried.some((t) => t.startsWith(`${cu12}: `)));
    assert.ok(e.tried.some((t) => t.startsWith("libcublas.so.13: ")));
    assert.match(e.message, /Cannot load cuBLAS/);
    assert.ok(e.message.includes(bad));
    assert.match(e.message, /KDENO_CUDA_LIB_DIRS/);
  });
});

Deno.test("KDENO_CUDA_LIB_DIRS is searched before the virtual environment", () => {
  const root = Deno.makeTempDirSync({ prefix: "kdeno_disc_" });
  const { venv, lib } = fakeVenv(root);
  touch(`${lib}/libnvrtc.so.13`);
  const override = `${root}/override`;
  const mine = touch(`${override}/libnvrtc.so.13`);
  withEnv({ [CUDA_LIB_DIRS_ENV]: override, VIRTUAL_ENV: venv }, () => {
    const dirs = cudaLibDirs();
    assert.equal(dirs[0], override);
    const e = failure(() => openNvrtc(dirs.filter((d) => d.startsWith(root))));
    if (!e) return;
    assert.ok(e.tried[0].startsWith(`${mine}: `), e.tried[0]);
    assert.ok(!e.tried[0].endsWith("not found"));
    assert.ok(e.tried.some((t) => t.startsWith(`${lib}/libnvrtc.so.13: `)));
  });
});

const noCc = mockUnavailable();
Deno.test({
  name:
    "openNvrtc() and openCublas() pre-load their dependencies from the directory they load from" +
    (noCc ? ` (skipped: ${noCc})` : ""),
  ignore: noCc !== null,
  fn() {
    const root = Deno.makeTempDirSync({ prefix: "kdeno_disc_" });
    const { venv, lib } = fakeVenv(root);
    const so = new MockCuda().path; // a real ELF exporting the CUDA names
    for (const name of ["libnvrtc.so.13", "libcublas.so.13"]) {
      Deno.copyFileSync(so, `${lib}/${name}`);
    }
    for (const dep of ["libnvrtc-builtins.so.13.0", "libcublasLt.so.13"]) {
      Deno.copyFileSync(so, `${lib}/${dep}`);
    }
    withEnv({ VIRTUAL_ENV: venv }, () => {
      const dirs = cudaLibDirs().filter((d) => d.startsWith(root));
      const nvrtc = openNvrtc(dirs);
      assert.equal(nvrtc.path, `${lib}/libnvrtc.so.13`);
      assert.deepEqual(nvrtc.preloaded, [`${lib}/libnvrtc-builtins.so.13.0`]);
      const cublas = openCublas(dirs);
      assert.equal(cublas.path, `${lib}/libcublas.so.13`);
      assert.deepEqual(cublas.preloaded, [`${lib}/libcublasLt.so.13`]);
    });
  },
});

let driverHere: string | null = null;
try {
  driverHere = openCudaDriver().path;
} catch {
  driverHere = null;
}

Deno.test({
  name: "without libcuda.so.1, createCudaBackend() says no driver was found" +
    (driverHere ? ` (skipped: ${driverHere} loads here)` : ""),
  ignore: driverHere !== null,
  fn() {
    for (const f of [openCudaDriver, createCudaBackend]) {
      assert.throws(f, (e: unknown) => {
        assert.ok(e instanceof BackendUnavailableError);
        assert.ok(e.tried.length >= 1);
        assert.ok(e.tried[0].startsWith("libcuda.so.1: "), e.tried[0]);
        assert.match(
          e.message,
          /Cannot load the CUDA driver \(libcuda\.so\.1\)/,
        );
        assert.match(e.message, /No NVIDIA driver/);
        return true;
      });
    }
  },
});
