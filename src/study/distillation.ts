/**
 * `runDistillationStudy`: the experiment of the knowledge-distillation
 * tutorial as one call. Train (or fine-tune) the teacher, then for each
 * seed a student without KD and one with KD from the same initial weights
 * and data order, evaluate the three on the test set, measure their cost,
 * compare the arms (`compareArms`), and write `results.json`,
 * `results.md`, `report.html` and `metrics.jsonl`.
 *
 * @module
 */

import { join } from "node:path";
import { noGrad } from "../autograd.ts";
import { currentDevice } from "../backend/registry.ts";
import type { DeviceName } from "../backend/backend.ts";
import type { Loader } from "../data/batch.ts";
import {
  CrossEntropyCriterion,
  DistillationLoss,
  type KdOptions,
  type ResolvedKdOptions,
  resolveKdOptions,
} from "../distill/losses.ts";
import { TeacherCache } from "../distill/teacher_cache.ts";
import { PhaseClock } from "./_phase_clock.ts";
import type { TeacherCacheStats } from "../distill/teacher_cache.ts";
import { countMacs, measureSpeed, modelSizeBytes } from "../eval/cost.ts";
import {
  dominantPrediction,
  evaluate,
  type MajorityBaseline,
  majorityBaseline,
} from "../eval/metrics.ts";
import {
  type EpochRecord,
  reportEvaluation,
  type ReportModel,
  writeReport,
} from "../eval/report.ts";
import { wilsonInterval } from "../eval/stats.ts";
import { writeFileAtomic } from "../io/_atomic.ts";
import { saveSafetensors } from "../io/safetensors.ts";
import { isMainRank } from "../distributed/collectives.ts"; // distributed: rank 0 writes
import type { Module } from "../nn/module.ts";
import { Adam } from "../optim/adam.ts";
import { CosineAnnealingLR } from "../optim/lr_scheduler.ts";
import { manualSeed } from "../random.ts";
import type { Tensor } from "../tensor.ts";
import { Trainer } from "../train/trainer.ts";
import {
  type ArmComparison,
  type ArmSummary,
  baselineRow,
  compareArms,
  formatPoints,
  markdownTable,
  type ModelCost,
  plural,
  resultColumns,
  resultRow,
  type StudyRun,
  studyWarnings,
  summarizeArm,
  type TeacherSummary,
} from "./protocol.ts";

/** What the study's data are, for `results.json` and `results.md`. */
export interface StudyDataset {
  /** Where the images come from (a folder). */
  source: string;
  /** Class names; class 1 (else 0) is the positive class for sensitivity. */
  classes: readonly string[];
  /** Images the teacher trains on. */
  train: number;
  /** Labeled images the students train on (default `train`). */
  labeled?: number;
  /** Unlabeled transfer images of the KD student (default none). */
  transfer?: number;
  /** Validation images. */
  val: number;
  /** Where the validation images come from, in words. */
  valSource: string;
  /** Test images. */
  test: number;
  /**
   * The labels of the teacher's training split, for the majority-class
   * baseline (none: no baseline, and the write-up says so).
   */
  trainTargets?: readonly number[];
}

/** The loaders of a study, `[images, labels]` batches. */
export interface StudyLoaders {
  /** The teacher's training batches (shuffled). */
  train: Loader;
  /** The students' labeled training batches (default `train`). */
  studentTrain?: Loader;
  /** Unlabeled transfer batches for the KD student (default none). */
  transfer?: Loader | null;
  /** Validation batches (best epoch). */
  val: Loader;
  /** Test batches, unshuffled: the arms are paired image by image. */
  test: Loader;
}

/** Options of `runDistillationStudy`. */
export interface DistillationStudyOptions {
  /** The teacher, built (and loaded or frozen) by the caller. */
  teacher: Module;
  /** Epochs of teacher training; 0 uses the teacher as it is. */
  teacherEpochs: number;
  /**
   * Builds a fresh, randomly initialised student. Called after the
   * process-wide generator is seeded with each seed, once per arm; the KD
   * arm then gets the no-KD arm's initial weights.
   */
  student: () => Module;
  /** The data. */
  loaders: StudyLoaders;
  /** What the data are. */
  dataset: StudyDataset;
  /** One input's shape, e.g. `[3, 28, 28]` (for MACs and latency). */
  inputShape: number[];
  /** Student epochs. */
  epochs: number;
  /** Adam's learning rate, cosine-annealed to 0 over the epochs. */
  lr: number;
  /** The batch size, for the write-up. */
  batchSize: number;
  /** The KD loss of the KD arm. */
  kd: KdOptions;
  /** The first seed (default 0); the teacher's checkpoints use it. */
  seed?: number;
  /** Students per arm, seeds `seed .. seed + seeds - 1` (default 3). */
  seeds?: number;
  /** Device for the latency measurement; its name goes in the write-up. */
  device?: DeviceName;
  /** Output folder, created if missing. */
  outDir: string;
  /** Continue the checkpoints in `outDir/checkpoints` (default false). */
  resume?: boolean;
  /** The run's configuration, copied into `results.json` and the report. */
  config: Record<string, unknown>;
  /** Where progress lines go (default `console.log`). */
  log?: (line: string) => void;
  /** `performance.now()` when the program started (default: the call). */
  started?: number;
  /** The `tutorial` field of `results.json` (default `"kdeno examples/distill.ts"`). */
  program?: string;
  /** The teacher's name in the tables and the report (default `"Teacher (ResNet-18)"`). */
  teacherName?: string;
  /**
   * Class weights of the cross-entropy (PyTorch's
   * `CrossEntropyLoss(weight=...)`): `teacher` for the teacher's training,
   * `student` for both arms (the KD arm's hard-label term). From
   * `imageFolderStudyData`'s `classWeights`; null or absent: unweighted.
   */
  classWeights?: {
    teacher?: readonly number[] | null;
    student?: readonly number[] | null;
  } | null;
  /**
   * The teacher's cost when it is already known (a second study with the
   * same teacher): its latency is then not measured again.
   */
  teacherCost?: ModelCost;
}

/** `results.json`. */
export interface StudyResults {
  /** The program that wrote it. */
  tutorial: string;
  /** ISO time the results were assembled. */
  date: string;
  /** The caller's configuration. */
  config: Record<string, unknown>;
  /** The data. */
  dataset: {
    classes: string[];
    positiveClass: string;
    train: number;
    /** Labeled images of the students. */
    labeled: number;
    /** Unlabeled transfer images of the KD student (0: none). */
    transfer: number;
    val: number;
    valSource: string;
    test: number;
  };
  /** The teacher's name in the tables. */
  teacherName: string;
  /** The teacher. */
  teacher: TeacherSummary;
  /** The student without KD, over seeds. */
  student: ArmSummary;
  /** The student with KD, over seeds. */
  studentKd: ArmSummary;
  /** KD against no KD. */
  comparison: ArmComparison;
  /**
   * Always answering the most frequent class of the teacher's training
   * split, scored on the test split (null without `trainTargets`), with
   * that class's name.
   */
  majorityBaseline: (MajorityBaseline & { className: string }) | null;
  /** What a reader must know (`studyWarnings`), a sentence each. */
  warnings: string[];
  /** Seconds in all, the teacher cache, mean seconds per training epoch. */
  timing: {
    totalSeconds: number;
    teacherCache: TeacherCacheStats;
    studentEpochSeconds: number;
    kdEpochSeconds: number;
    /**
     * Where the wall time went, by phase (absent in results written before
     * it was recorded).
     */
    phases?: StudyPhases;
  };
}

/** Seconds of one phase: wall time, and the part spent waiting for batches. */
export interface PhaseSeconds {
  /** Wall seconds of the phase, data included. */
  seconds: number;
  /** Of which waiting for the next batch (decode, resize, augment). */
  dataSeconds: number;
}

/**
 * Where a study's wall time went. Each training phase's `seconds` include
 * its validation passes and its `dataSeconds` (time spent waiting for the
 * next batch: decoding, resizing and augmenting, or waiting for the
 * Workers).
 */
export interface StudyPhases {
  /**
   * Before the first phase: reading the folder, splitting, the data
   * preparation (from `started`).
   */
  setupSeconds: number;
  /** Training the teacher (absent when it was not trained). */
  teacher?: PhaseSeconds;
  /** The students without KD, every seed. */
  student: PhaseSeconds;
  /**
   * The students with KD, every seed; `teacherSeconds` of it ran the
   * teacher for its logits (the teacher cache's misses).
   */
  studentKd: PhaseSeconds & { teacherSeconds: number };
  /** Test-set evaluation of every model. */
  evaluation: PhaseSeconds;
  /** Measuring the models' cost (MACs, latency, throughput). */
  costSeconds: number;
  /** Every phase's `dataSeconds` summed. */
  dataSeconds: number;
}

function studyPhases(
  clock: PhaseClock,
  cache: TeacherCacheStats,
  totalSeconds: number,
): StudyPhases {
  const p = clock.phases();
  const zero = (): PhaseSeconds => ({ seconds: 0, dataSeconds: 0 });
  const all = Object.values(p);
  const total = all.reduce((a, x) => a + x.seconds, 0);
  const out: StudyPhases = {
    setupSeconds: Math.max(0, totalSeconds - total),
    ...(p.teacher ? { teacher: p.teacher } : {}),
    student: p.student ?? zero(),
    studentKd: {
      ...(p.studentKd ?? zero()),
      teacherSeconds: cache.teacherMs / 1000,
    },
    evaluation: p.evaluation ?? zero(),
    costSeconds: p.cost?.seconds ?? 0,
    dataSeconds: all.reduce((a, x) => a + x.dataSeconds, 0),
  };
  return out;
}

/**
 * One line on where the wall time went, for logs.
 *
 * @param p The phases of `StudyResults.timing.phases`.
 * @returns E.g. `Time: teacher 120 s (data 30 s), ...`.
 */
export function phasesLine(p: StudyPhases): string {
  const f = (x: number) => x < 10 ? x.toFixed(1) : x.toFixed(0);
  const part = (name: string, x: PhaseSeconds, extra = "") =>
    `${name} ${f(x.seconds)} s (data ${f(x.dataSeconds)} s${extra})`;
  return [
    `Time: setup ${f(p.setupSeconds)} s`,
    ...(p.teacher ? [part("teacher training", p.teacher)] : []),
    part("students without KD", p.student),
    part(
      "students with KD",
      p.studentKd,
      `, teacher forwards ${f(p.studentKd.teacherSeconds)} s`,
    ),
    part("test evaluation", p.evaluation),
    `measuring the models' cost ${f(p.costSeconds)} s`,
    `waiting for batches in all ${f(p.dataSeconds)} s`,
  ].join("; ");
}

/** What `runDistillationStudy` returns. */
export interface DistillationStudyResult {
  /** What was written to `results.json`. */
  results: StudyResults;
  /** The results table in Markdown. */
  table: string;
  /** `results.md`. */
  markdown: string;
  /**
   * The closing summary, a line each: table, verdict, warnings, per-seed
   * tests, cache, files.
   */
  summary: string[];
}

/** The arms' names in tables, `metrics.jsonl` and the report. */
export const ARM_NAMES: Readonly<{ student: string; studentKd: string }> = {
  student: "Student, no KD",
  studentKd: "Student, KD",
};

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Runs the tutorial's distillation experiment and writes its results.
 *
 * Protocol: the teacher trains for `teacherEpochs` with Adam and a cosine
 * schedule (checkpoints in `outDir/checkpoints/teacher`, seed `seed`) and
 * is saved as `teacher.safetensors`. For each seed `s` in
 * `seed .. seed + seeds - 1` the generator is seeded with `s`, one student
 * is built and its weights copied; the no-KD student trains with
 * cross-entropy, then a KD student from the same weights trains with
 * `DistillationLoss(kd)` (and the transfer batches), both with data order
 * seed `1000 + s`. One `TeacherCache` serves every KD run. Every model is
 * evaluated on the unshuffled test loader; the students' accuracies are
 * averaged over seeds with a 95% t-interval (the teacher's gets a Wilson
 * interval over test images), and KD is compared with no KD by
 * `compareArms`. The last KD student is saved as `student.safetensors`.
 *
 * Files in `outDir`: `results.json` (`StudyResults`), `results.md`,
 * `report.html` (curves, confusion matrices, ROC, tables, configuration),
 * `metrics.jsonl` (one line per model, run, epoch and phase; a fresh run
 * starts it anew, a resumed one appends), the two weight files and the
 * checkpoints.
 *
 * @param options The models, data, schedule and output folder.
 * @returns The results and their write-up, or null when Ctrl-C stopped a
 *   training run (its checkpoint is kept: run again with `resume`).
 */
export async function runDistillationStudy(
  options: DistillationStudyOptions,
): Promise<DistillationStudyResult | null> {
  const started = options.started ?? performance.now();
  const o = options;
  const say = o.log ?? ((l: string) => isMainRank() && console.log(l));
  const seed = o.seed ?? 0;
  const nSeeds = o.seeds ?? 3;
  const { outDir, teacher, teacherEpochs, epochs, lr, config } = o;
  const teacherName = o.teacherName ?? "Teacher (ResNet-18)";
  const kd: ResolvedKdOptions = resolveKdOptions(o.kd);
  // every wait for a batch is charged to the phase that is running
  const clock = new PhaseClock();
  const trainLoader = clock.watch(o.loaders.train);
  const studentTrain = clock.watch(o.loaders.studentTrain ?? o.loaders.train);
  const transfer = clock.watch(o.loaders.transfer ?? null);
  const val = clock.watch(o.loaders.val);
  const test = clock.watch(o.loaders.test);
  const classes = [...o.dataset.classes];

  await Deno.mkdir(outDir, { recursive: true });
  if (!o.resume) {
    // a fresh run starts a fresh metrics.jsonl (a resumed one appends to it)
    if (isMainRank()) {
      await Deno.remove(join(outDir, "metrics.jsonl")).catch(() => {});
    }
  }
  // metrics.jsonl and a curves-only report.html as training goes; the full
  // report replaces the page at the end
  const trainer = new Trainer({
    progress: "auto",
    log: say,
    report: { dir: outDir, title: "kdeno distillation run", config },
  });

  // ---- the teacher
  let teacherSeconds = 0;
  let teacherHistory: EpochRecord[] | undefined;
  if (teacherEpochs > 0) {
    say(
      `\n== ${
        teacherName.replace(/ \((.+)\)$/, ": $1")
      } (${teacher.numParameters()} parameters) ==`,
    );
    const opt = new Adam(
      teacher.parameters().filter((p) => p.requiresGrad),
      { lr },
    );
    const dir = join(outDir, "checkpoints", "teacher");
    clock.start("teacher");
    const r = await trainer.fit({
      model: teacher,
      train: trainLoader,
      val,
      epochs: teacherEpochs,
      optimizer: opt,
      scheduler: new CosineAnnealingLR(opt, { tMax: teacherEpochs }),
      loss: o.classWeights?.teacher
        ? new CrossEntropyCriterion({ weight: o.classWeights.teacher })
        : undefined,
      checkpointDir: dir,
      resume: !!o.resume && await exists(join(dir, "last.safetensors")),
      seed,
      name: teacherName,
    });
    clock.stop();
    teacherSeconds = r.seconds;
    teacherHistory = r.history;
    if (r.interrupted) return null;
  }
  teacher.eval();
  if (isMainRank()) {
    await saveSafetensors(
      join(outDir, "teacher.safetensors"),
      teacher.stateDict(),
    );
  }

  // ---- the students
  const runs: { student: StudyRun[]; studentKd: StudyRun[] } = {
    student: [],
    studentKd: [],
  };
  // one cache for every KD run: the teacher's logits of each training
  // image, in each flip state, are computed once
  const cache = new TeacherCache(teacher, { log: say });
  const studentWeights = o.classWeights?.student ?? null;
  let lastStudent: Module | null = null;
  for (let s = seed; s < seed + nSeeds; s++) {
    manualSeed(s);
    const init = o.student();
    const initial: Record<string, Tensor> = noGrad(() =>
      Object.fromEntries(
        Object.entries(init.stateDict()).map(([k, t]) => [k, t.clone()]),
      )
    );
    for (const arm of ["student", "studentKd"] as const) {
      const withKd = arm === "studentKd";
      say(
        `\n== ${init.constructor.name} ${
          withKd ? "with KD" : "without KD"
        }, seed ${s} (${init.numParameters()} parameters) ==`,
      );
      const model = withKd ? o.student() : init;
      model.loadStateDict(initial); // the same initial weights in both arms
      const dir = join(outDir, "checkpoints", `${arm}-seed${s}`);
      const opt = new Adam(model.parameters(), { lr });
      clock.start(arm);
      const fit = await trainer.fit({
        model,
        teacher: withKd ? teacher : null,
        train: studentTrain,
        transfer: withKd ? transfer : null,
        val,
        epochs,
        optimizer: opt,
        scheduler: new CosineAnnealingLR(opt, { tMax: epochs }),
        loss: studentWeights
          ? (withKd
            ? new DistillationLoss({ ...o.kd, weight: studentWeights })
            : new CrossEntropyCriterion({ weight: studentWeights }))
          : withKd
          ? new DistillationLoss(o.kd)
          : undefined,
        teacherCache: cache,
        checkpointDir: dir,
        resume: !!o.resume && await exists(join(dir, "last.safetensors")),
        // the same data order and flips in both arms
        seed: 1000 + s,
        name: ARM_NAMES[arm],
        runLabel: `seed ${s}`,
      });
      clock.stop();
      if (fit.interrupted) return null;
      clock.start("evaluation");
      const result = await evaluate(model, test);
      clock.stop();
      say(
        `test Acc: ${result.accuracy.toFixed(4)} (sensitivity ${
          result.sensitivity?.toFixed(4)
        }, specificity ${result.specificity?.toFixed(4)})`,
      );
      runs[arm].push({ seed: s, result, fit });
      lastStudent = model;
    }
    for (const t of Object.values(initial)) t.dispose();
  }

  // ---- evaluation and costs
  say("\n== Test set ==");
  clock.start("evaluation");
  const teacherResult = await evaluate(teacher, test);
  const cost = (m: Module): ModelCost => {
    const speed = measureSpeed(m, {
      inputShape: o.inputShape,
      device: o.device,
    });
    return {
      params: m.numParameters(),
      macs: countMacs(m, o.inputShape),
      sizeBytes: modelSizeBytes(m),
      latencyMs: speed.latencyMs,
      latencyRangeMs: speed.latencyRangeMs,
      throughput: speed.throughput,
    };
  };
  clock.start("cost");
  const teacherCost = o.teacherCost ?? cost(teacher);
  const studentCost = cost(lastStudent!);
  clock.stop();
  if (isMainRank()) {
    await saveSafetensors(
      join(outDir, "student.safetensors"),
      lastStudent!.stateDict(),
    );
  }
  const [tLo, tHi] = wilsonInterval(
    teacherResult.correct.reduce((a, b) => a + b, 0),
    teacherResult.n,
  );
  const teacherEntry: TeacherSummary = {
    accuracy: teacherResult.accuracy,
    accuracyCI95: [tLo, tHi],
    accuracyCIMethod: "Wilson interval over test images (one teacher)",
    sensitivity: teacherResult.sensitivity,
    specificity: teacherResult.specificity,
    balancedAccuracy: teacherResult.balancedAccuracy,
    perClassSensitivity: teacherResult.perClass.map((c) => c.recall),
    perClassSpecificity: teacherResult.perClass.map((c) => c.specificity),
    dominantPrediction: dominantPrediction(teacherResult.confusion),
    rocAuc: teacherResult.rocAuc,
    ece: teacherResult.ece,
    macroF1: teacherResult.macroF1,
    confusion: teacherResult.confusion,
    trainSeconds: teacherSeconds,
    epochs: teacherEpochs,
    ...teacherCost,
    speedup: 1,
  };
  const student = summarizeArm(runs.student, studentCost, teacherCost);
  const studentKd = summarizeArm(runs.studentKd, studentCost, teacherCost);
  const comparison = compareArms(runs.studentKd, runs.student);
  const { verdict, mcnemar } = comparison;
  const diffs = comparison.kdMinusStudent.perSeed;
  const epochSeconds = (list: StudyRun[]) =>
    mean(list.flatMap((r) => r.fit.history.map((h) => h.train.seconds)));
  const d = o.dataset;
  const positiveClass = classes[1] ?? classes[0];
  const baseline = d.trainTargets?.length
    ? majorityBaseline(d.trainTargets, teacherResult.labels)
    : null;
  const warnings = studyWarnings({
    classes,
    baseline,
    teacher: { name: teacherName, summary: teacherEntry },
    student: { name: ARM_NAMES.student, summary: student },
    others: [{ name: ARM_NAMES.studentKd, summary: studentKd }],
  });
  const totalSeconds = (performance.now() - started) / 1000;
  const results: StudyResults = {
    tutorial: o.program ?? "kdeno examples/distill.ts",
    date: new Date().toISOString(),
    config,
    dataset: {
      classes,
      positiveClass,
      train: d.train,
      labeled: d.labeled ?? d.train,
      transfer: d.transfer ?? 0,
      val: d.val,
      valSource: d.valSource,
      test: d.test,
    },
    teacherName,
    teacher: teacherEntry,
    student,
    studentKd,
    comparison,
    majorityBaseline: baseline
      ? { ...baseline, className: classes[baseline.classIndex] }
      : null,
    warnings,
    timing: {
      totalSeconds,
      teacherCache: cache.stats,
      studentEpochSeconds: epochSeconds(runs.student),
      kdEpochSeconds: epochSeconds(runs.studentKd),
      phases: studyPhases(clock, cache.stats, totalSeconds),
    },
  };

  // ---- the write-up
  const pts = formatPoints;
  const positive = classes.length > 1 ? 1 : 0;
  const { columns, rows } = resultsTableCells(results);
  const table = markdownTable(columns, rows);
  const baselineText = baseline
    ? `Majority-class baseline: always answering "${
      classes[baseline.classIndex]
    }", ${
      baseline.tied
        ? "the first of the classes tied for most frequent in the training split"
        : "the most frequent class of the training split"
    } (${(100 * baseline.trainShare).toFixed(1)}% of it), scores ${
      (100 * baseline.accuracy).toFixed(1)
    }% on test (balanced accuracy ${
      (100 * baseline.balancedAccuracy).toFixed(1)
    }%); a model must beat it to have learned more than the class counts.`
    : "No majority-class baseline: the training labels were not given.";
  const weightsText = o.classWeights?.teacher || studentWeights
    ? `\nClass weights on the cross-entropy (n / (classes × count) from the training split): teacher ${
      o.classWeights?.teacher?.map((w) => w.toFixed(3)).join(" / ") ?? "none"
    }, students ${
      studentWeights?.map((w) => w.toFixed(3)).join(" / ") ?? "none"
    } (the KD student's hard-label term too).`
    : "";
  const warningsMd = warnings.length
    ? `\n**Warnings**\n\n${warnings.map((w) => `- ${w}`).join("\n")}\n`
    : "";
  const mcLine = mcnemar.map((m) =>
    `seed ${m.seed}: p = ${
      m.pValue.toPrecision(2)
    } (${m.onlyKdRight} images only KD got right, ${m.onlyStudentRight} only no-KD)`
  ).join("; ");
  const [, h, w] = o.inputShape;
  const labeled = d.labeled ?? d.train;
  const ratio = `${
    (teacherCost.macs / studentCost.macs).toFixed(0)
  }× fewer MACs, ${
    (teacherCost.latencyMs / studentCost.latencyMs).toFixed(1)
  }× lower latency at batch 1.`;
  const markdown = `# kdeno distillation results

Data: \`${d.source}\` (${
    classes.join(" vs ")
  }; positive class for sensitivity: ${positiveClass}), ${h}×${w}, train ${d.train}${
    labeled !== d.train ? ` (students: ${labeled} labeled)` : ""
  }${
    d.transfer ? ` + ${d.transfer} unlabeled transfer images` : ""
  }, test ${d.test}; validation: ${d.valSource}.
KD: preset \`${kd.preset}\` (T = ${kd.temperature}, alpha = ${kd.alpha} on the distillation term, KL reduction \`${kd.reduction}\`, T² ${
    kd.scaleByT2 ? "on" : "off"
  }). ${
    plural(epochs, "epoch")
  }, Adam lr ${lr} with a cosine schedule, batch ${o.batchSize}; teacher ${
    teacherEpochs ? plural(teacherEpochs, "epoch") : "not trained in this run"
  }.
Students: ${plural(nSeeds, "seed")} (${
    runs.student.map((r) => r.seed).join(", ")
  }), KD and no-KD from the same initial weights and data order; accuracy is the mean ± the 95% t-interval half-width over seeds (the teacher: one run, Wilson 95% interval over test images). Latency and throughput: ${
    o.device ?? "default"
  } device, warm-up excluded, no data loading. Balanced accuracy: the mean of the classes' recalls.${weightsText}

${table}

${baselineText}

**${verdict}**
${warningsMd}
KD − no KD per seed: ${
    diffs.map(pts).join(", ")
  } points. McNemar's exact test on the same test images, ${mcLine}.
Compute ratio teacher/student: ${ratio}
`;
  // whole or not at all: a temporary file, then a rename
  const utf8 = new TextEncoder();
  if (isMainRank()) {
    await writeFileAtomic(
      join(outDir, "results.json"),
      utf8.encode(JSON.stringify(results, null, 2) + "\n"),
    );
  }
  if (isMainRank()) {
    await writeFileAtomic(join(outDir, "results.md"), utf8.encode(markdown));
  }

  // ---- the report page
  const armModel = (arm: "student" | "studentKd"): ReportModel => ({
    name: ARM_NAMES[arm],
    runs: runs[arm].map((r) => ({
      label: `seed ${r.seed}`,
      history: r.fit.history,
      test: reportEvaluation(r.result, positive),
    })),
  });
  const diffCI = comparison.kdMinusStudent;
  if (isMainRank()) {
    await writeReport(join(outDir, "report.html"), {
      title: "kdeno distillation run",
      summary: verdict,
      warnings,
      classes,
      positiveClass: positive,
      models: [
        {
          name: teacherName,
          runs: [{
            history: teacherHistory,
            test: reportEvaluation(teacherResult, positive),
          }],
        },
        armModel("student"),
        armModel("studentKd"),
      ],
      tables: [
        {
          caption:
            `Test set (${d.test} images). Students: mean ± 95% t-interval half-width over ${
              plural(nSeeds, "seed")
            }; teacher: Wilson 95% interval. Balanced accuracy: the mean of the classes' recalls.`,
          columns,
          rows,
        },
        {
          caption:
            "KD − no KD per seed, on the same test images (McNemar's exact test)",
          columns: [
            "Seed",
            "KD − no KD (points)",
            "Only KD right",
            "Only no-KD right",
            "McNemar p",
          ],
          rows: mcnemar.map((m, i) => [
            String(m.seed),
            pts(diffs[i]),
            String(m.onlyKdRight),
            String(m.onlyStudentRight),
            m.pValue.toPrecision(2),
          ]),
        },
      ],
      notes: [
        diffCI.ci95
          ? `KD − no KD: ${pts(diffCI.mean)} points, 95% CI ${
            pts(diffCI.ci95[0])
          } to ${pts(diffCI.ci95[1])} over ${nSeeds} seeds.`
          : `KD − no KD: ${pts(diffs[0])} points (one seed: no interval).`,
        baselineText,
        `Compute ratio teacher/student: ${ratio}`,
        `Validation: ${d.valSource}. Sensitivity is that of ${positiveClass} (class ${positive}).`,
      ],
      config,
      seeds: runs.student.map((r) => r.seed),
      device: currentDevice(),
      date: results.date,
    });
  }
  const stats = results.timing.teacherCache;
  const files = ["results.json", "results.md", "report.html", "metrics.jsonl"];
  const summary = [
    "\n" + table + "\n",
    baselineText,
    verdict,
    ...warnings.map((w) => `Warning: ${w}`),
    `KD − no KD per seed: ${
      diffs.map(pts).join(", ")
    } points; McNemar ${mcLine}`,
    `Teacher cache: ${stats.entries} entries, ${stats.hits} hits, ${stats.misses} misses; mean train epoch ${
      results.timing.studentEpochSeconds.toFixed(2)
    } s without KD, ${results.timing.kdEpochSeconds.toFixed(2)} s with KD`,
    phasesLine(results.timing.phases!),
    `Wrote ${files.map((f) => join(outDir, f)).join(", ")} (${
      results.timing.totalSeconds.toFixed(0)
    } s in all)`,
  ];
  return { results, table, markdown, summary };
}

/**
 * The results table of a study from its `results.json`: the teacher, the
 * two arms and the majority-class baseline, in `resultColumns` order.
 *
 * @param results A study's results.
 * @returns The header cells and the rows.
 */
export function resultsTableCells(
  results: StudyResults,
): { columns: string[]; rows: string[][] } {
  const classes = results.dataset.classes;
  const positive = classes.length > 1 ? 1 : 0;
  const b = results.majorityBaseline;
  return {
    columns: resultColumns(classes.length),
    rows: [
      resultRow(results.teacherName, results.teacher),
      resultRow(ARM_NAMES.student, results.student),
      resultRow(ARM_NAMES.studentKd, results.studentKd),
      ...(b ? [baselineRow(b, classes, positive)] : []),
    ],
  };
}

/** One study of `comparisonTable`: its setting in words and its results. */
export interface StudySetting {
  /** The setting, e.g. `"Tutorial replication"`. */
  setting: string;
  /** Its `results.json`. */
  results: StudyResults;
}

/**
 * Studies side by side, one row each: the students' labels (and transfer
 * images), the test accuracy of the teacher, of each arm and of the
 * majority-class baseline, KD − no KD with its 95% interval, and the
 * verdict in words.
 *
 * @param studies The studies, in display order.
 * @returns A Markdown table.
 */
export function comparisonTable(studies: readonly StudySetting[]): string {
  const pct = (x: number) => (100 * x).toFixed(1);
  const arm = (a: ArmSummary) =>
    a.accuracyHalfWidth95 != null
      ? `${pct(a.accuracy)} ± ${pct(a.accuracyHalfWidth95)}`
      : pct(a.accuracy);
  const rows = studies.map(({ setting, results: r }) => {
    const c = r.comparison.kdMinusStudent;
    const diff = c.ci95
      ? `${formatPoints(c.mean)} (${formatPoints(c.ci95[0])} to ${
        formatPoints(c.ci95[1])
      })`
      : `${formatPoints(c.mean)} (one seed)`;
    const d = r.dataset;
    return [
      setting,
      `${d.labeled}${d.transfer ? ` + ${d.transfer} unlabeled` : ""}`,
      `${pct(r.teacher.accuracy)} (${pct(r.teacher.accuracyCI95[0])}–${
        pct(r.teacher.accuracyCI95[1])
      })`,
      arm(r.student),
      arm(r.studentKd),
      r.majorityBaseline ? pct(r.majorityBaseline.accuracy) : "–",
      diff,
      r.comparison.verdict.replace(/:.*$/s, ""),
    ];
  });
  return markdownTable([
    "Setting",
    "Students' labels",
    "Teacher %",
    "Student, no KD %",
    "Student, KD %",
    "Majority class %",
    "KD − no KD, points (95% CI)",
    "Verdict",
  ], rows);
}
