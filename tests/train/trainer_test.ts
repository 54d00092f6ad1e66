import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type data,
  distill,
  evaluation,
  manualSeed,
  models,
  nn,
  optim,
  tensor,
  train as training,
} from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { loaders, snapshot } from "./_data.ts";

const quiet = { progress: "none" as const, log: () => {} };

/** A quickly trained StudentNet teacher on the generated task. */
async function trainedTeacher(
  train: data.TensorLoader,
): Promise<models.StudentNet> {
  const t = new models.StudentNet({ inputSize: 8 });
  await new training.Trainer(quiet).fit({
    model: t,
    train,
    epochs: 3,
    optimizer: new optim.Adam(t.parameters(), { lr: 0.01 }),
  });
  return t.eval();
}

Deno.test("Trainer.fit() prints the tutorial's lines and learns", async () => {
  manualSeed(1);
  const { train, val } = loaders(96);
  const lines: string[] = [];
  const model = new models.StudentNet({ inputSize: 8 });
  const r = await new training.Trainer({
    progress: "none",
    log: (l) => lines.push(l),
  }).fit({
    model,
    train,
    val,
    epochs: 4,
    optimizer: new optim.Adam(model.parameters(), { lr: 0.01 }),
  });
  assert.ok(lines.includes("Epoch 1/4"));
  assert.ok(lines.includes("Epoch 4/4"));
  assert.ok(
    lines.some((l) => /^train Loss: \d\.\d{4} Acc: \d\.\d{4}$/.test(l)),
  );
  assert.ok(lines.some((l) => /^val Loss: \d\.\d{4} Acc: \d\.\d{4}$/.test(l)));
  assert.equal(r.history.length, 4);
  const ev = await evaluation.evaluate(model, val);
  assert.ok(ev.accuracy > 0.75, `val accuracy ${ev.accuracy}`);
  assert.equal(
    r.history[r.bestEpoch - 1].val!.acc,
    Math.max(
      ...r.history.map((h) => h.val!.acc),
    ),
  );
});

Deno.test("Trainer.fit() refuses a teacher in the optimizer, and adapters outside it", async () => {
  manualSeed(2);
  const { train } = loaders(16);
  const teacher = new models.StudentNet({ inputSize: 8 });
  const student = new models.StudentNet({ inputSize: 8 });
  await assert.rejects(
    () =>
      new training.Trainer(quiet).fit({
        model: student,
        teacher,
        train,
        epochs: 1,
        optimizer: new optim.SGD(
          [...student.parameters(), ...teacher.parameters()],
          { lr: 0.1 },
        ),
      }),
    /optimizer holds 6 of the teacher's parameters \(layer1\.0\.weight/,
  );
  const hint = new distill.HintLoss({
    student,
    teacher,
    studentLayer: "layer1",
    teacherLayer: "layer1",
    studentChannels: 4,
    teacherChannels: 4,
  });
  await assert.rejects(
    () =>
      new training.Trainer(quiet).fit({
        model: student,
        teacher,
        train,
        epochs: 1,
        loss: [new distill.DistillationLoss(), hint],
        optimizer: new optim.SGD(student.parameters(), { lr: 0.1 }),
      }),
    /"hint" loss are not in the optimizer/,
  );
  hint.dispose();
});

Deno.test("Trainer.fit() leaves the teacher's parameters and BatchNorm statistics unchanged", async () => {
  manualSeed(3);
  const { train, val } = loaders(64, { randomFlip: true });
  const teacher = await trainedTeacher(train);
  teacher.train(); // the trainer must put it in eval mode itself
  const before = snapshot(teacher);
  const student = new models.StudentNet({ inputSize: 8 });
  const r = await new training.Trainer(quiet).fit({
    model: student,
    teacher,
    train,
    val,
    epochs: 2,
    teacherCache: false,
    optimizer: new optim.SGD(student.parameters(), { lr: 0.05 }),
  });
  assert.deepEqual(snapshot(teacher), before);
  assert.equal(r.teacherUnchanged, true);
  assert.equal(teacher.training, false);
});

Deno.test("Trainer.fit() with feature losses trains the adapter through hooks", async () => {
  manualSeed(4);
  const { train } = loaders(32);
  // a wider teacher with BatchNorm: its "3" is [n, 8, 4, 4], "2" [n, 8, 8, 8]
  const teacher = new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Flatten(),
    new nn.Linear(8 * 4 * 4, 2),
  ).eval();
  const student = new models.StudentNet({ inputSize: 8 });
  const hint = new distill.HintLoss({
    student,
    teacher,
    studentLayer: "layer1",
    teacherLayer: "3",
    studentChannels: 4,
    teacherChannels: 8,
  });
  const at = new distill.AttentionTransferLoss({
    student,
    teacher,
    pairs: [["layer1", "2"]],
  });
  const w0 = Array.from(hint.adapter.weight.data());
  const before = snapshot(teacher);
  const lines: string[] = [];
  const r = await new training.Trainer({
    progress: "none",
    log: (l) => lines.push(l),
  }).fit({
    model: student,
    teacher,
    train,
    epochs: 1,
    loss: [new distill.DistillationLoss(), hint, at],
    optimizer: new optim.SGD(
      [...student.parameters(), ...hint.parameters()],
      { lr: 0.01 },
    ),
  });
  assert.ok(lines.some((l) => /Teacher cache: off/.test(l)));
  assert.ok("hint" in r.history[0].train.terms);
  assert.ok("at" in r.history[0].train.terms);
  assert.notDeepEqual(Array.from(hint.adapter.weight.data()), w0);
  assert.deepEqual(snapshot(teacher), before);
  hint.dispose();
  at.dispose();
});

Deno.test("Trainer.fit() stops on a NaN loss naming epoch, batch and term, keeping the last checkpoint", async () => {
  manualSeed(5);
  const { train } = loaders(64);
  const dir = await Deno.makeTempDir();
  let calls = 0;
  const poisoned: distill.DistillCriterion = {
    name: "poison",
    terms({ studentLogits, labels }) {
      calls++;
      const ce = nn.functional.crossEntropy(studentLogits, labels!);
      // batch 3 of epoch 2 (4 batches per epoch)
      return { ce, poison: calls === 7 ? ce.mul(NaN) : ce.mul(0) };
    },
  };
  const model = new models.StudentNet({ inputSize: 8 });
  const err = await new training.Trainer({ ...quiet, checkpointDir: dir })
    .fit({
      model,
      train,
      epochs: 3,
      loss: poisoned,
      optimizer: new optim.SGD(model.parameters(), { lr: 0.01 }),
    }).then(() => null, (e) => e);
  assert.ok(err instanceof training.NonFiniteLossError);
  assert.equal(err.epoch, 2);
  assert.equal(err.batch, 3);
  assert.equal(err.term, "poison");
  assert.match(err.message, /"poison" is NaN at epoch 2, batch 3/);
  const ckpt = await training.loadCheckpoint(join(dir, "last.safetensors"));
  assert.equal(ckpt.epoch, 1);
  training.disposeCheckpoint(ckpt);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Trainer.fit() resumed from an epoch-2 checkpoint is bit-identical to an uninterrupted run", async () => {
  async function run(
    epochs: number,
    dir: string,
    resume: boolean,
  ): Promise<Record<string, number[]>> {
    manualSeed(6);
    const { train, val } = loaders(48, { randomFlip: true });
    const teacher = await trainedTeacher(train);
    // a different initialisation when resuming: the checkpoint must win
    if (resume) manualSeed(999);
    const student = new models.StudentNet({ inputSize: 8 });
    const opt = new optim.Adam(student.parameters(), { lr: 0.01 });
    const scheduler = new optim.StepLR(opt, { stepSize: 1, gamma: 0.7 });
    await new training.Trainer({ ...quiet, checkpointDir: dir }).fit({
      model: student,
      teacher,
      train,
      val,
      epochs,
      optimizer: opt,
      scheduler,
      resume,
      restoreBest: false,
      loss: new distill.DistillationLoss({ temperature: 2 }),
    });
    return snapshot(student);
  }
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  const full = await run(4, a, false);
  await run(2, b, false);
  const resumed = await run(4, b, true);
  assert.deepEqual(resumed, full);
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
});

Deno.test("Trainer.fit() early stopping and transfer batches", async (t) => {
  await t.step(
    "stops after `patience` epochs without improvement",
    async () => {
      manualSeed(7);
      const { train, val } = loaders(32);
      const model = new models.StudentNet({ inputSize: 8 });
      const r = await new training.Trainer(quiet).fit({
        model,
        train,
        val,
        epochs: 10,
        earlyStopping: { patience: 2 },
        optimizer: new optim.SGD(model.parameters(), { lr: 0 }),
      });
      assert.equal(r.stoppedEarly, true);
      assert.equal(r.history.length, 3);
    },
  );
  await t.step(
    "unlabeled transfer images add a distillation-only phase",
    async () => {
      manualSeed(8);
      const { train, val } = loaders(32);
      const { train: unlabeled } = loaders(48);
      const teacher = await trainedTeacher(train);
      const model = new models.StudentNet({ inputSize: 8 });
      const r = await new training.Trainer(quiet).fit({
        model,
        teacher,
        train,
        val,
        transfer: unlabeled,
        epochs: 1,
        optimizer: new optim.SGD(model.parameters(), { lr: 0.01 }),
      });
      assert.equal(r.history[0].transfer!.n, 48);
      assert.deepEqual(Object.keys(r.history[0].transfer!.terms), ["kd"]);
      assert.equal(r.history[0].train.n, 32);
    },
  );
});

Deno.test("TeacherCache gives the teacher's logits once per sample and flip state", async () => {
  manualSeed(9);
  const { train } = loaders(32, { randomFlip: true, batchSize: 8 });
  const teacher = (await trainedTeacher(train)).eval();
  const content = new distill.TeacherCache(teacher, { log: () => {} });
  const keyed = new distill.TeacherCache(teacher, { log: () => {} });
  for (let epoch = 0; epoch < 4; epoch++) {
    for await (const [x, y, info] of train) {
      const live = teacher.call(x);
      const a = content.logits(x);
      const b = keyed.logits(x, info);
      assert.deepEqual(a.toArray(), b.toArray());
      const l = live.data();
      const d = a.data();
      for (let i = 0; i < l.length; i++) {
        assert.ok(Math.abs(l[i] - d[i]) < 1e-5);
      }
      for (const t of [x, y, live, a, b] as Tensor[]) t.dispose();
    }
  }
  // 32 samples x 2 flip states at most, and after 4 epochs every state seen
  assert.ok(content.stats.entries <= 64);
  assert.equal(content.stats.entries, keyed.stats.entries);
  assert.equal(content.stats.misses, content.stats.entries);
  assert.equal(content.stats.hits + content.stats.misses, 4 * 32);
});

Deno.test("TeacherCache.precompute() serves the unaugmented views by index", async () => {
  manualSeed(10);
  const { train } = loaders(16, { randomFlip: true, batchSize: 8 });
  const teacher = (await trainedTeacher(train)).eval();
  const byIndex = new Map<number, Tensor>();
  // the unaugmented dataset: collect the "none" views from the loader
  for (let e = 0; e < 6; e++) {
    for await (const [x, y, info] of train) {
      info!.indices!.forEach((i, k) => {
        if (info!.augmentations![k] === "none" && !byIndex.has(i)) {
          byIndex.set(i, x.slice(0, k, k + 1).reshape(x.shape.slice(1)));
        }
      });
      x.dispose();
      y.dispose();
    }
  }
  assert.equal(byIndex.size, 16);
  const lines: string[] = [];
  const cache = new distill.TeacherCache(teacher, {
    log: (l) => lines.push(l),
  });
  await cache.precompute({
    length: 16,
    get: (i) => [byIndex.get(i)!.clone(), 0],
  });
  assert.ok(lines.some((l) => /unaugmented/.test(l)));
  for await (const [x, y, info] of train) {
    const got = cache.logits(x, info);
    const want = teacher.call(
      tensor(
        Float32Array.from(
          info!.indices!.flatMap((i) => Array.from(byIndex.get(i)!.data())),
        ),
        { shape: x.shape },
      ),
    );
    const g = got.data();
    const w = want.data();
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - w[i]) < 1e-5);
    x.dispose();
    y.dispose();
  }
  assert.equal(cache.stats.misses, 0);
});
