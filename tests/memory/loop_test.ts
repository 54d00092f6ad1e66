/**
 * Plain PyTorch-style training loops (no tidy, no dispose) run at flat
 * memory, and the same loop with `tidy` and with `using` keeps working: each
 * runs 12 epochs of StudentNet over the bundled data in its own process
 * (`_loop.ts`), which reports resident memory and the live tensors after a
 * forced collection once per epoch. The emulated CUDA device runs the plain
 * loop too, where the allocator's live bytes are exact.
 *
 * Why these bounds:
 * - Live tensors and bytes after a collection are exact: they must be the
 *   same after every epoch from the second on (the first creates the
 *   optimizer's momentum and the gradients).
 * - Resident memory moves with the collector's timing (±50 MB between epochs
 *   at 64 px here), so the test fits a line through epochs 3 to 12 and
 *   allows 4 MB per epoch: the leak this guards against grew 400 MB per
 *   epoch, and one batch of 64 px images is 1.6 MB.
 * - Device memory: each epoch's peak may not exceed the third epoch's by
 *   more than the activations of two batches (the collector may run one
 *   step late), and live bytes after a collection are the same every epoch.
 */

import assert from "node:assert/strict";
import { emulationUnavailable, MockCuda } from "../cuda/_mock.ts";

interface EpochLine {
  epoch: number;
  rss: number;
  tensors: number;
  bytes: number;
  correct: number;
  deviceLive?: number;
  devicePeak?: number;
}

const SCRIPT = new URL("./_loop.ts", import.meta.url).pathname;
const MB = 1e6;

async function runLoop(
  args: string[],
  env: Record<string, string> = {},
): Promise<EpochLine[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(
    out.success,
    `_loop.ts ${args.join(" ")} failed:\n${
      new TextDecoder().decode(out.stderr)
    }`,
  );
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

/** Least-squares slope of `ys` against 0, 1, 2, ... */
function slope(ys: number[]): number {
  const n = ys.length;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num += (i - mx) * (ys[i] - my);
    den += (i - mx) ** 2;
  }
  return num / den;
}

function assertFlatCounts(lines: EpochLine[], what: string): void {
  for (const l of lines.slice(2)) {
    assert.equal(
      l.tensors,
      lines[1].tensors,
      `${what}: ${l.tensors} live tensors after epoch ${l.epoch}, ` +
        `${lines[1].tensors} after epoch 2`,
    );
    assert.equal(l.bytes, lines[1].bytes, `${what}: live bytes grew`);
  }
}

const modes = ["plain", "tidy", "using"] as const;
const runs = new Map<string, Promise<EpochLine[]>>();
function run(mode: string): Promise<EpochLine[]> {
  if (!runs.has(mode)) {
    runs.set(mode, runLoop(["--mode", mode, "--epochs", "12"]));
  }
  return runs.get(mode)!;
}

for (const mode of modes) {
  Deno.test(`a ${mode} StudentNet training loop keeps memory flat for 12 epochs`, async () => {
    const lines = await run(mode);
    assert.equal(lines.length, 12);
    assertFlatCounts(lines, mode);
    // the counts above are exact; resident memory also holds what the
    // allocator and the collector keep, which settles in steps when other
    // processes load the machine, so the trend is taken over the last 6
    // epochs: a leak keeps growing there, a settling heap does not
    const rss = lines.slice(2).map((l) => l.rss / MB);
    const perEpoch = slope(rss.slice(-6));
    assert.ok(
      perEpoch < 4,
      `${mode}: resident memory grew ${perEpoch.toFixed(1)} MB per epoch ` +
        `over epochs 7-12 (epochs 3-12: ${
          rss.map((r) => r.toFixed(0)).join(", ")
        } MB)`,
    );
    // it learns: the loop is a real one
    assert.ok(lines.at(-1)!.correct > 140, `only ${lines.at(-1)!.correct}/200`);
  });
}

Deno.test("the three loop styles train the same model", async () => {
  const [plain, tidy, using] = await Promise.all(modes.map(run));
  // same seed, same data, same arithmetic: the same predictions
  assert.deepEqual(
    tidy.map((l) => l.correct),
    plain.map((l) => l.correct),
  );
  assert.deepEqual(
    using.map((l) => l.correct),
    plain.map((l) => l.correct),
  );
});

const noEmu = emulationUnavailable();
Deno.test({
  name:
    "[cuda emulated on CPU] a plain training loop keeps device memory flat" +
    (noEmu ? ` (skipped: ${noEmu})` : ""),
  ignore: noEmu !== null,
  async fn() {
    const lib = (await MockCuda.emulated()).path;
    const dir = await Deno.makeTempDir({ prefix: "kdeno_emu_loop_" });
    for (const name of ["libcuda.so.1", "libnvrtc.so.13", "libcublas.so.13"]) {
      await Deno.symlink(lib, `${dir}/${name}`);
    }
    const lines = await runLoop(
      [
        ...["--mode", "plain", "--device", "cuda", "--epochs", "12"],
        ...["--size", "16", "--limit", "64"], // the emulated kernels are slow
      ],
      {
        LD_LIBRARY_PATH: dir,
        KDENO_CUDA_LIB_DIRS: dir,
        KDENO_CACHE_DIR: `${dir}/cache`,
      },
    );
    assert.equal(lines.length, 12);
    assertFlatCounts(lines, "cuda");
    for (const l of lines.slice(2)) {
      assert.equal(l.deviceLive, lines[1].deviceLive, "device live bytes");
    }
    // two batches' activations at 16 px: input, conv, batch norm, pool, ...
    const slack = 2 * 32 * (3 + 4 * 4) * 16 * 16 * 4;
    const peak3 = lines[2].devicePeak!;
    for (const l of lines.slice(3)) {
      assert.ok(
        l.devicePeak! <= peak3 + slack,
        `device peak ${l.devicePeak} in epoch ${l.epoch} > ${peak3} + ${slack}`,
      );
    }
    await Deno.remove(dir, { recursive: true });
  },
});
