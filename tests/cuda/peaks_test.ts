/**
 * Peak device memory of StudentNet and a small conv net, measured by the
 * allocator on the emulated CUDA device (where it is exact and
 * deterministic), against figures computed from the layer shapes the way
 * PyTorch's reference counting frees them: in inference under `noGrad`,
 * weights plus the two largest consecutive activations; in a training step,
 * weights, gradients and optimizer state plus every activation the forward
 * pass makes (saved or not) plus the two largest gradients alive at once in
 * backward. `tests/cuda/_peaks.ts` runs in its own process and reports;
 * `bench/gpu_check.sh` runs it on a GPU beside `torch.cuda.max_memory_allocated`.
 *
 * The bounds are tight: batch norm + ReLU is one pass in inference and its
 * backward masks the incoming gradient as it reads it (two activation-sized
 * buffers, as PyTorch's ReLU then batch-norm backward), and `linear` under
 * `noGrad` frees its views and the product before the bias at once.
 */

import assert from "node:assert/strict";
import { roundSize } from "../../src/backend/cuda/allocator.ts";
import { emulationUnavailable, MockCuda } from "./_mock.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const F32 = 4;
const r = (elements: number) => roundSize(elements * F32);

interface Phase {
  before: number;
  peak: number;
  after: number;
}
interface Case {
  inference: Phase;
  loopGrowth: number;
  training: Phase;
  params: number[];
  buffers: number[];
}
interface Report {
  batch: number;
  size: number;
  classes: number;
  student: Case;
  conv: Case;
}

/** One layer's output (elements), with what the op keeps beside it. */
interface Act {
  name: string;
  elements: number;
  /** Extra blocks the op makes in training (indices, batch statistics). */
  extra?: number[];
}

/** StudentNet's activations: conv, batch norm + ReLU (one kernel), pool, fc. */
function studentActs(n: number, s: number, classes: number): Act[] {
  const c = n * 4 * s * s;
  const p = c / 4;
  return [
    { name: "conv", elements: c },
    { name: "bn+relu", elements: c, extra: [4, 4] },
    { name: "maxpool", elements: p, extra: [p] },
    { name: "fc", elements: n * classes },
  ];
}

/** tests/cuda/_peaks.ts's conv net: (conv, bn+relu) x2, pool, fc. */
function convActs(n: number, s: number, classes: number): Act[] {
  const c1 = n * 8 * s * s, c2 = n * 16 * s * s;
  return [
    { name: "conv1", elements: c1 },
    { name: "bn1+relu", elements: c1, extra: [8, 8] },
    { name: "conv2", elements: c2 },
    { name: "bn2+relu", elements: c2, extra: [16, 16] },
    { name: "maxpool", elements: c2 / 4, extra: [c2 / 4] },
    { name: "fc", elements: n * classes },
  ];
}

function inferenceBound(acts: Act[]): { bound: number; why: string } {
  let best = 0, why = "";
  for (let i = 0; i < acts.length; i++) {
    const a = acts[i], b = acts[i + 1];
    // the op's own scratch under noGrad: pool indices
    let pair = r(a.elements) + (b ? r(b.elements) : 0);
    if (b?.extra && b.name.startsWith("maxpool")) pair += r(b.extra[0]);
    if (pair > best) {
      best = pair;
      why = b ? `${a.name} -> ${b.name}` : a.name;
    }
  }
  return { bound: best, why };
}

function trainingBound(acts: Act[], params: number[]): number {
  const grads = params.reduce((s, p) => s + r(p), 0);
  const forward = acts.reduce(
    (s, a) => s + r(a.elements) + (a.extra ?? []).reduce((t, e) => t + r(e), 0),
    0,
  );
  // cross-entropy makes at most 12 tensors of at most [N, classes]
  // (log-softmax, the target mask and gather, the mean) and their gradients
  const loss = 12 * r(acts.at(-1)!.elements);
  const sorted = acts.map((a) => r(a.elements)).sort((x, y) => y - x);
  const backward = sorted[0] + sorted[1];
  return grads + forward + loss + backward;
}

function check(name: string, c: Case, acts: Act[], rep: Report) {
  const inf = inferenceBound(acts);
  const used = c.inference.peak - c.inference.before;
  console.log(
    `${name}: inference peak above weights+input ${used} B, bound ${inf.bound} B (${inf.why})`,
  );
  assert.ok(
    used <= inf.bound,
    `${name} inference: peak ${used} B above the weights exceeds ${inf.bound} B (${inf.why})`,
  );
  const out = r(rep.batch * rep.classes);
  assert.ok(
    c.inference.after - c.inference.before <= out,
    `${name}: after inference ${
      c.inference.after - c.inference.before
    } B are left, more than the output (${out} B)`,
  );
  assert.ok(
    c.loopGrowth <= 10 * out,
    `${name}: ten calls dropping their outputs grew ${c.loopGrowth} B ` +
      `(allowed ${10 * out})`,
  );
  const tb = trainingBound(acts, c.params);
  const tUsed = c.training.peak - c.training.before;
  console.log(
    `${name}: training step peak above the start ${tUsed} B, bound ${tb} B`,
  );
  assert.ok(
    tUsed <= tb,
    `${name} training step: peak ${tUsed} B above the start exceeds ${tb} B`,
  );
}

const noEmu = emulationUnavailable();
Deno.test({
  name:
    "[cuda emulated on CPU] peak device memory matches the model's figures" +
    (noEmu ? ` (skipped: ${noEmu})` : ""),
  ignore: noEmu !== null,
  async fn() {
    const lib = (await MockCuda.emulated()).path;
    const dir = await Deno.makeTempDir({ prefix: "kdeno_emu_peaks_" });
    for (const name of ["libcuda.so.1", "libnvrtc.so.13", "libcublas.so.13"]) {
      await Deno.symlink(lib, `${dir}/${name}`);
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "tests/cuda/_peaks.ts",
        "--batch",
        "8",
        "--size",
        "16",
      ],
      cwd: ROOT,
      env: {
        LD_LIBRARY_PATH: dir,
        KDENO_CUDA_LIB_DIRS: dir,
        KDENO_CACHE_DIR: `${dir}/cache`,
        KDENO_CUDNN: "0",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const rep = JSON.parse(text.trim().split("\n").at(-1)!) as Report;
    check("StudentNet", rep.student, studentActs(8, 16, 10), rep);
    check("conv net", rep.conv, convActs(8, 16, 10), rep);
    await Deno.remove(dir, { recursive: true });
  },
});
