import assert from "node:assert/strict";
import {
  phasesTable,
  PLACEHOLDER,
  renderXrayRun,
  updateXrayDoc,
  XRAY_BEGIN,
  XRAY_END,
} from "../../bench/distill_xray_tables.ts";
import { fmtMarkdown, type RunsFile } from "../../bench/distill_tables.ts";
import { PhaseClock } from "../../src/study/_phase_clock.ts";
import type { Batch, Loader } from "../../src/data/batch.ts";
import { tensor } from "../../mod.ts";

const root = new URL("../../", import.meta.url);
// the runs.json of a tiny run of examples/distill.ts on the stand-in
// (scale 0.005, 1 epoch, 2 seeds, --subset 20)
const tiny: RunsFile = JSON.parse(
  await Deno.readTextFile(
    new URL("./fixtures/xray_tiny_runs.json", import.meta.url),
  ),
);

Deno.test("distill_xray_tables: the run's phases, settings and results table, from its runs.json", () => {
  const text = renderXrayRun(tiny);
  const p = tiny.runs[0].results.timing.phases!;
  assert.ok(p.teacher && p.teacher.seconds > 0);
  const row = (name: string) =>
    text.split("\n").find((l) => l.startsWith(`| ${name}`));
  const s1 = (x: number) => x < 10 ? x.toFixed(1) : x.toFixed(0);
  assert.match(
    row("Teacher training")!,
    new RegExp(
      `\\| ${s1(p.teacher.seconds)} +\\| ${s1(p.teacher.dataSeconds)} +\\|$`,
    ),
  );
  assert.match(
    row("Students with KD")!,
    new RegExp(`teacher forwards for KD: ${s1(p.studentKd.teacherSeconds)} s`),
  );
  assert.match(
    row("Whole program")!,
    new RegExp(`\\| ${s1(tiny.wallSeconds)} +\\| ${s1(p.dataSeconds)} +\\|$`),
  );
  assert.match(
    text,
    /^Settings: 224×224 images, teacher 1 epoch, students 1 epoch × 2 seeds, batch 32, Adam lr 0\.001, KD loss preset tutorial \(T = 1, alpha = 0\.25\)/m,
  );
  assert.match(
    text,
    /at most 20 training images .*\(train 20, validation 2, test 3\)/,
  );
  assert.match(text, /^\| Teacher \(ResNet-18\) +\| 66\.7/m);
  assert.match(text, /^\*\*KD did not beat the student trained alone/m);
  // without phase timings the run is refused, not rendered with holes
  const old = structuredClone(tiny);
  delete old.runs[0].results.timing.phases;
  assert.throws(() => renderXrayRun(old), /no timing\.phases/);
  assert.equal(
    phasesTable(p, 1).length,
    2,
  );
});

Deno.test("distill_xray_tables: the doc holds the committed run, or the placeholder before one is committed", async () => {
  const doc = await Deno.readTextFile(new URL("docs/distillation.md", root));
  assert.ok(
    doc.includes(
      "## The tutorial at its own settings (chest X-ray stand-in)",
    ),
  );
  let committed: RunsFile | null = null;
  try {
    committed = JSON.parse(
      await Deno.readTextFile(
        new URL("bench/results/distill_xray.json", root),
      ),
    );
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  assert.equal(await fmtMarkdown(updateXrayDoc(doc, committed)), doc);
  const part = doc.slice(doc.indexOf(XRAY_BEGIN), doc.indexOf(XRAY_END));
  if (!committed) assert.ok(part.includes(PLACEHOLDER));
  // filling it from a run replaces the placeholder
  const filled = updateXrayDoc(doc, tiny);
  assert.ok(!filled.includes(PLACEHOLDER));
  assert.ok(filled.includes("Where the time went:"));
  assert.throws(() => updateXrayDoc("no markers", tiny), /lacks the/);
});

Deno.test("PhaseClock: waits for batches are charged to the running phase; the loader is otherwise its own", async () => {
  const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let closed = 0;
  const batch = (): Batch =>
    [tensor([[1]]), tensor(new Int32Array([0]))] as unknown as Batch;
  const slow = {
    length: 3,
    extra: "kept",
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        async next(): Promise<IteratorResult<Batch>> {
          await delay(20);
          return i++ < 3
            ? { value: batch(), done: false }
            : { value: undefined, done: true };
        },
        return(): Promise<IteratorResult<Batch>> {
          closed++;
          return Promise.resolve({ value: undefined, done: true });
        },
      };
    },
  } as Loader & { extra: string };
  const clock = new PhaseClock();
  const watched = clock.watch(slow);
  assert.equal(watched.length, 3);
  assert.equal(watched.extra, "kept");
  // no phase running: nothing charged
  for await (const _ of watched) { /* drain */ }
  assert.deepEqual(clock.phases(), {});
  clock.start("train");
  let n = 0;
  for await (const _ of watched) n++;
  assert.equal(n, 3);
  clock.start("eval");
  for await (const _ of watched) break;
  assert.equal(closed, 1, "breaking out closes the loader's iterator");
  clock.stop();
  const p = clock.phases();
  assert.deepEqual(Object.keys(p), ["train", "eval"]);
  // four waits of ~20 ms in train, one in eval
  assert.ok(p.train.dataSeconds >= 0.06, JSON.stringify(p));
  assert.ok(p.eval.dataSeconds >= 0.015, JSON.stringify(p));
  assert.ok(p.train.seconds >= p.train.dataSeconds);
  assert.equal(clock.watch(null), null);
});
