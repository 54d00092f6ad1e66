/**
 * `Trainer.fit()` resuming and writing its outputs: a resume is all or
 * nothing and names the checkpoint, output folders are checked before the
 * first epoch, temporary files a kill left are removed, and
 * `metrics.jsonl` holds each epoch once after a resume.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CheckpointError,
  DataError,
  globalGenerator,
  io,
  manualSeed,
  models,
  optim,
  train as training,
} from "../../mod.ts";
import { tempPathFor } from "../../src/io/_atomic.ts";
import { fuzz } from "../_fuzz.ts";
import { loaders, snapshot } from "./_data.ts";

/** A trainer that keeps its log lines. */
function trainer(options: training.TrainerOptions = {}) {
  const lines: string[] = [];
  const t = new training.Trainer({
    progress: "none",
    log: (l) => lines.push(l),
    ...options,
  });
  return { t, lines };
}

/** A fresh student with its SGD optimizer, from a seed. */
function student(seed: number, kind: "sgd" | "adam" = "sgd") {
  manualSeed(seed);
  const model = new models.StudentNet({ inputSize: 8 });
  const optimizer = kind === "sgd"
    ? new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 })
    : new optim.Adam(model.parameters(), { lr: 0.01 });
  return { model, optimizer };
}

/** A folder no file can be created in, even by root. */
async function readOnlyDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o555);
  try {
    await Deno.writeTextFile(join(dir, "x"), "");
  } catch {
    return dir; // chmod is enough: not root
  }
  await Deno.remove(dir, { recursive: true });
  return "/sys/kernel"; // root: a folder of sysfs, where nobody may create files
}

Deno.test("Trainer.fit() checks its output folders before the first epoch", async (t) => {
  const { train } = loaders(16);
  const ro = await readOnlyDir();
  const file = await Deno.makeTempFile();
  await t.step("a read-only checkpointDir", async () => {
    const { model, optimizer } = student(1);
    const before = snapshot(model);
    const { t: tr, lines } = trainer({ checkpointDir: ro });
    await assert.rejects(
      () => tr.fit({ model, train, epochs: 1, optimizer }),
      (e) =>
        e instanceof CheckpointError &&
        e.message.startsWith(`Cannot write to checkpointDir ${ro}: `),
    );
    assert.ok(!lines.some((l) => l.startsWith("Epoch ")), lines.join("\n"));
    assert.deepEqual(snapshot(model), before);
  });
  await t.step("a read-only report.dir", async () => {
    const { model, optimizer } = student(2);
    const { t: tr, lines } = trainer({ report: { dir: ro } });
    await assert.rejects(
      () => tr.fit({ model, train, epochs: 1, optimizer }),
      (e) =>
        e instanceof DataError &&
        e.message.startsWith(`Cannot write to report.dir ${ro}: `),
    );
    assert.ok(!lines.some((l) => l.startsWith("Epoch ")), lines.join("\n"));
  });
  await t.step("a checkpointDir that cannot be created", async () => {
    const { model, optimizer } = student(3);
    const dir = join(file, "ckpt");
    await assert.rejects(
      () =>
        trainer({ checkpointDir: dir }).t.fit({
          model,
          train,
          epochs: 1,
          optimizer,
        }),
      (e) =>
        e instanceof CheckpointError &&
        e.message.includes(`checkpointDir ${dir}`),
    );
  });
  await t.step("missing parents are created", async () => {
    const root = await Deno.makeTempDir();
    const dir = join(root, "a", "b");
    const { model, optimizer } = student(4);
    await trainer({ checkpointDir: dir, report: { dir, html: false } }).t
      .fit({ model, train, epochs: 1, optimizer });
    assert.ok((await Deno.stat(join(dir, "last.safetensors"))).isFile);
    assert.ok((await Deno.stat(join(dir, "metrics.jsonl"))).isFile);
    await Deno.remove(root, { recursive: true });
  });
  if (ro !== "/sys/kernel") {
    await Deno.chmod(ro, 0o755);
    await Deno.remove(ro, { recursive: true });
  }
  await Deno.remove(file);
});

Deno.test("Trainer.fit() removes temporary files a killed run left, and spares one being written", async () => {
  const dir = await Deno.makeTempDir();
  const reportDir = join(dir, "report");
  await Deno.mkdir(reportDir);
  // what a kill -9 during an atomic write leaves: an unlocked temporary file
  const orphans = [
    tempPathFor(join(dir, "last.safetensors")),
    tempPathFor(join(reportDir, "report.html")),
  ];
  for (const p of orphans) await Deno.writeFile(p, new Uint8Array(100));
  // and a write in progress: a temporary file its writer holds locked
  const live = tempPathFor(join(dir, "best.safetensors"));
  const held = await Deno.open(live, { write: true, createNew: true });
  await held.lock(true);
  const unrelated = join(dir, ".notes.tmp");
  await Deno.writeTextFile(unrelated, "mine");
  const { train } = loaders(16);
  const { model, optimizer } = student(5);
  const { t, lines } = trainer({
    checkpointDir: dir,
    report: { dir: reportDir },
  });
  await t.fit({ model, train, epochs: 1, optimizer });
  for (const p of orphans) {
    await assert.rejects(() => Deno.stat(p), Deno.errors.NotFound);
  }
  assert.ok((await Deno.stat(live)).isFile, "the held file is spared");
  assert.equal(await Deno.readTextFile(unrelated), "mine");
  assert.equal(
    lines.filter((l) => /^Removed 1 temporary file\(s\)/.test(l)).length,
    2,
  );
  held.close();
  await Deno.remove(dir, { recursive: true });
});

/** The `[epoch, phase]` pairs of `metrics.jsonl`, in order. */
async function metricEpochs(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path);
  assert.ok(text.endsWith("\n"));
  return text.trimEnd().split("\n").map((l) => {
    const m = JSON.parse(l);
    return `${m.model}/${m.run} ${m.epoch} ${m.phase}`;
  });
}

Deno.test("Trainer.fit() resumed after a kill between metrics.jsonl and the checkpoint writes each epoch once", async () => {
  const dir = await Deno.makeTempDir();
  const metrics = join(dir, "metrics.jsonl");
  const last = join(dir, "last.safetensors");
  const fit = (epochs: number, resume: boolean) => {
    manualSeed(6);
    const { train, val } = loaders(16);
    const { model, optimizer } = student(7);
    return trainer({
      checkpointDir: dir,
      report: { dir, html: false },
    }).t.fit({ model, train, val, epochs, optimizer, resume, runLabel: "a" });
  };
  // another run's lines in the same file must stay as they are
  const other = JSON.stringify({ model: "StudentNet", run: "b", epoch: 3 });
  await Deno.writeTextFile(metrics, other + "\n");
  await fit(2, false);
  const atEpoch2 = await Deno.readFile(last);
  await fit(3, true);
  // the state a kill -9 after epoch 3's metrics lines, before its
  // checkpoint, leaves: metrics up to epoch 3, the checkpoint of epoch 2,
  // and a line cut short
  await Deno.writeFile(last, atEpoch2);
  await Deno.writeTextFile(metrics, '{"model":"Stude', { append: true });
  const r = await fit(3, true);
  assert.equal(r.history.length, 3);
  assert.deepEqual(await metricEpochs(metrics), [
    "StudentNet/b 3 undefined",
    "StudentNet/a 1 train",
    "StudentNet/a 1 val",
    "StudentNet/a 2 train",
    "StudentNet/a 2 val",
    "StudentNet/a 3 train",
    "StudentNet/a 3 val",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Trainer.fit() resuming another optimizer's or model's checkpoint changes nothing and names the file", async (t) => {
  const dir = await Deno.makeTempDir();
  const last = join(dir, "last.safetensors");
  const { train } = loaders(16);
  const first = student(8);
  await trainer({ checkpointDir: dir }).t.fit({
    ...first,
    train,
    epochs: 1,
  });
  await t.step("Adam resuming an SGD run", async () => {
    const { model, optimizer } = student(9, "adam");
    const before = snapshot(model);
    const rng = globalGenerator.getState();
    const { t: tr, lines } = trainer({ checkpointDir: dir });
    await assert.rejects(
      () => tr.fit({ model, train, epochs: 2, optimizer, resume: true }),
      (e) =>
        e instanceof CheckpointError && e.message.includes(last) &&
        /holds SGD state but the optimizer is Adam/.test(e.message),
    );
    assert.deepEqual(snapshot(model), before);
    assert.equal(optimizer.state.size, 0);
    assert.deepEqual(globalGenerator.getState(), rng);
    assert.ok(!lines.some((l) => l.startsWith("Epoch ")));
  });
  await t.step("a model with another head", async () => {
    manualSeed(10);
    const model = new models.StudentNet({ inputSize: 8, numClasses: 3 });
    const optimizer = new optim.SGD(model.parameters(), {
      lr: 0.05,
      momentum: 0.9,
    });
    const before = snapshot(model);
    await assert.rejects(
      () =>
        trainer({ checkpointDir: dir }).t.fit({
          model,
          train,
          epochs: 2,
          optimizer,
          resume: true,
        }),
      (e) =>
        e instanceof CheckpointError && e.message.includes(last) &&
        /fc\.weight: checkpoint \[2, \d+\], model \[3, \d+\]/.test(e.message),
    );
    assert.deepEqual(snapshot(model), before);
    assert.equal(optimizer.state.size, 0);
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Trainer.fit() refuses trainer state in a checkpoint that does not fit the run, naming the file", async (t) => {
  const dir = await Deno.makeTempDir();
  const good = join(dir, "good.safetensors");
  const bad = join(dir, "bad.safetensors");
  const { train, val } = loaders(16); // one batch per epoch
  const first = student(11);
  await trainer({ checkpointDir: dir }).t.fit({
    ...first,
    train,
    val,
    epochs: 2,
  });
  await Deno.rename(join(dir, "last.safetensors"), good);
  const cases: [string, (m: Record<string, unknown>) => void, RegExp][] = [
    [
      "more epochs done than the fit has",
      (m) => m.epoch = 5,
      /5 epoch\(s\) done, more than this fit's epochs \(3\)/,
    ],
    [
      "a history shorter than the epochs done",
      (m) => (m.trainer as { history: unknown[] }).history.pop(),
      /trainer\.history has 1 records, expected one per epoch done \(2\)/,
    ],
    [
      "a history record of another epoch",
      (
        m,
      ) => ((m.trainer as { history: { epoch: number }[] }).history[1].epoch =
        7),
      /trainer\.history\[1\] is not the record of epoch 2/,
    ],
    [
      "a best epoch not yet trained",
      (m) => (m.trainer as { best: { epoch: number } }).best.epoch = 9,
      /trainer\.best is not/,
    ],
    [
      "a partial epoch of a billion batches",
      (m) =>
        (m.trainer as Record<string, unknown>).partial = {
          batches: 1e9,
          rng: m.rng,
        },
      /trainer\.partial is not \{ batches, rng \} with batches 0 to 1/,
    ],
    [
      "a partial epoch with a broken RNG state",
      (m) =>
        (m.trainer as Record<string, unknown>).partial = {
          batches: 1,
          rng: ["a"],
        },
      /trainer\.partial is not/,
    ],
  ];
  for (const [name, edit, re] of cases) {
    await t.step(name, async () => {
      const bytes = await Deno.readFile(good);
      const header = io.parseSafetensorsHeader(bytes, good);
      const meta = training.decodeJson(
        header.metadata["kdeno.checkpoint"],
      ) as Record<string, unknown>;
      edit(meta);
      const tensors = io.parseSafetensors(bytes, good);
      await Deno.writeFile(
        bad,
        io.serializeSafetensors(tensors, {
          "kdeno.checkpoint": training.encodeJson(meta),
        }),
      );
      for (const x of Object.values(tensors)) x.dispose();
      const { model, optimizer } = student(12);
      const before = snapshot(model);
      const rng = globalGenerator.getState();
      const { t: tr, lines } = trainer();
      await assert.rejects(
        () => tr.fit({ model, train, val, epochs: 3, optimizer, resume: bad }),
        (e) =>
          e instanceof CheckpointError &&
          e.message.startsWith(`Cannot resume from ${bad}: `) &&
          re.test(e.message),
      );
      assert.deepEqual(snapshot(model), before);
      assert.equal(optimizer.state.size, 0);
      assert.deepEqual(globalGenerator.getState(), rng);
      assert.ok(!lines.some((l) => l.startsWith("Epoch ")));
    });
  }
  await t.step(
    "a best.safetensors of another epoch restarts the best",
    async () => {
      const { model, optimizer } = student(13);
      await io.saveSafetensors(
        join(dir, "best.safetensors"),
        model.stateDict(),
        { epoch: "9" },
      );
      const { t: tr, lines } = trainer({ checkpointDir: dir });
      const r = await tr.fit({
        model,
        train,
        val,
        epochs: 3,
        optimizer,
        resume: good,
      });
      assert.ok(
        lines.some((l) => /holds epoch 9, not the checkpoint's best/.test(l)),
      );
      assert.equal(r.history.length, 3);
    },
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Trainer.fit() resuming mutated checkpoints: success, or a typed error before anything changed", async () => {
  const dir = await Deno.makeTempDir();
  const good = join(dir, "good.safetensors");
  const file = join(dir, "mutant.safetensors");
  const { train, val } = loaders(8, { batchSize: 8, size: 4 });
  manualSeed(14);
  const model = new models.StudentNet({ inputSize: 4 });
  const optimizer = new optim.SGD(model.parameters(), {
    lr: 0.05,
    momentum: 0.9,
  });
  await trainer({ checkpointDir: dir }).t.fit({
    model,
    optimizer,
    train,
    val,
    epochs: 2,
  });
  await Deno.rename(join(dir, "last.safetensors"), good);
  const r = await fuzz({
    input: await Deno.readFile(good),
    cases: 1000,
    // seed 1: the model was loaded before the optimizer's state was refused
    regressions: [1],
    async parse(bytes) {
      await Deno.writeFile(file, bytes);
      manualSeed(15);
      const m = new models.StudentNet({ inputSize: 4 });
      const o = new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
      const before = { model: snapshot(m), rng: globalGenerator.getState() };
      try {
        // epochs 2: a checkpoint read as intended trains nothing more
        await trainer().t.fit({
          model: m,
          optimizer: o,
          train,
          val,
          epochs: 2,
          resume: file,
        });
      } catch (e) {
        if (e instanceof training.NonFiniteLossError) return; // mutated weights
        assert.deepEqual(
          { model: snapshot(m), rng: globalGenerator.getState() },
          before,
          `refused with ${e}`,
        );
        assert.equal(o.state.size, 0);
        throw e;
      } finally {
        o.dispose();
        m.dispose();
      }
    },
  });
  console.log(`mutants resumed: ${r.parsed}, refused: ${r.refused}`);
  assert.ok(r.refused > 0 && r.parsed > 0);
  await Deno.remove(dir, { recursive: true });
});
