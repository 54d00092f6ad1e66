/**
 * `imageFolderStudyData`: the data of a distillation study from a folder
 * of class folders (`train/`, `test/`, optionally `val/`), prepared as the
 * tutorial does: ImageNet normalisation, random horizontal flips for
 * training, a validation split when `val/` is too small, and optionally
 * fewer labels for the students and unlabeled transfer images.
 *
 * @module
 */

import { basename, join } from "node:path";
import { DataLoader } from "../data/data_loader.ts";
import { type Dataset, Subset } from "../data/dataset.ts";
import { ImageFolder, imageFolderSplits } from "../data/image_folder.ts";
import { stratifiedSplit } from "../data/split.ts";
import {
  balancedClassWeights,
  balancedSampleWeights,
  WeightedRandomSampler,
} from "../data/samplers.ts";
import {
  Normalize,
  RandomHorizontalFlip,
  Resize,
  ToTensor,
} from "../data/transforms.ts";
import type { Tensor } from "../tensor.ts";
import type { StudyDataset, StudyLoaders } from "./distillation.ts";

/** Options of `imageFolderStudyData`. */
export interface StudyDataOptions {
  /** Images are resized to `size × size`. */
  size: number;
  /** Batch size of every loader. */
  batchSize: number;
  /** Seed of the splits (validation, `maxTrain`, `labeled`; default 0). */
  seed?: number;
  /** Decoding Workers per loader (default 0: decode on the main thread). */
  workers?: number;
  /** Keep a stratified subset of this many training images (quick tests). */
  maxTrain?: number;
  /**
   * A smaller run of the same shape: keep a stratified subset of at most
   * this many training images, and the same fraction of the validation and
   * test splits (at least one image per class each). Absent: every image.
   * Applied before `maxTrain`. For a run at full image size on the CPU.
   */
  subset?: number;
  /** The students get a stratified subset of this many labeled images. */
  labeled?: number;
  /**
   * Unlabeled transfer images for the KD student: a folder of class
   * folders (their names are ignored), or `"rest"`, the training images
   * that `labeled` left out.
   */
  transfer?: string;
  /**
   * Imbalanced classes (default `"none"`): `"sampler"` draws the teacher's
   * and the students' labeled batches with a `WeightedRandomSampler` (each
   * class equally likely; an epoch is as many draws as the split has
   * images, with replacement), `"loss"` returns "balanced" class weights
   * for the losses (`classWeights`), `"both"` does both. The transfer images
   * are never rebalanced: their labels are not for the students to use.
   */
  balance?: BalanceMode;
}

/** How `imageFolderStudyData` handles imbalanced classes. */
export type BalanceMode = "none" | "sampler" | "loss" | "both";

/** What `imageFolderStudyData` returns. */
export interface StudyData {
  /** The loaders, for `runDistillationStudy`. */
  loaders: StudyLoaders;
  /** What the data are, for `runDistillationStudy`. */
  dataset: StudyDataset;
  /** Lines describing the data: source, classes, split sizes. */
  description: string[];
  /**
   * "Balanced" class weights from the training splits
   * (`data.balancedClassWeights`), with `balance` `"loss"` or `"both"`;
   * else null. Pass them to `runDistillationStudy`'s `classWeights`.
   */
  classWeights: { teacher: number[]; student: number[] } | null;
  /** Closes every loader (their decoding Workers). */
  close(): void;
}

/**
 * Prepares a study's data from `root/train`, `root/test` and `root/val`
 * (class folders of images, as `ImageFolder` reads them; cached decoded).
 * Every image is resized to `size × size`, made a tensor and normalised
 * with the ImageNet mean and standard deviation; training images are also
 * flipped at random. The loaders take their order and flips from the
 * process-wide generator (no `seed` of their own), which checkpoints save,
 * so a resumed run repeats them; validation and test are not shuffled.
 *
 * Validation is `val/` when it holds at least 100 images. Otherwise it is
 * a stratified 10% split of `train/` (without flips), grouped by patient
 * when the file names carry one (`person123_...`, `IM-0001-...`, as in
 * the chest X-ray data), and the teacher trains on the other 90%.
 *
 * @param root The folder holding `train/`, `test/` and maybe `val/`.
 * @param options Size, batch size, seed, workers, `maxTrain`, `labeled`,
 *   `transfer`.
 * @returns The loaders, their description, and `close()`.
 * @throws RangeError when `transfer` is `"rest"` but `labeled` leaves no
 *   training image out.
 */
export function imageFolderStudyData(
  root: string,
  options: StudyDataOptions,
): StudyData {
  const { size, batchSize } = options;
  const seed = options.seed ?? 0;
  const workers = options.workers ?? 0;
  // ImageNet statistics, as the tutorial (its teacher is ImageNet-pretrained)
  const normalize = new Normalize([0.485, 0.456, 0.406], [
    0.229,
    0.224,
    0.225,
  ]);
  const evalTf = [new Resize([size, size]), new ToTensor(), normalize];
  const trainTf = [
    new Resize([size, size]),
    new RandomHorizontalFlip(),
    new ToTensor(),
    normalize,
  ];
  const splits = imageFolderSplits(root, {
    splits: ["train", "test"],
    transforms: { train: trainTf, test: evalTf },
    cache: true,
  });
  const trainAug = splits.train;
  const trainEval = new ImageFolder(join(root, "train"), {
    transform: evalTf,
    cache: true,
  });
  const classes = [...trainAug.classes];
  let trainSet: Dataset<[Tensor, number]> = trainAug;
  let valSet: Dataset<[Tensor, number]>;
  let valSource: string;
  let valFolder: ImageFolder | undefined;
  try {
    valFolder = new ImageFolder(join(root, "val"), {
      transform: evalTf,
      cache: true,
    });
  } catch {
    valFolder = undefined;
  }
  if (valFolder && valFolder.length >= 100) {
    valSet = valFolder;
    valSource = `${join(root, "val")} (${valFolder.length} images)`;
  } else {
    // The chest X-ray val/ has 16 images: one image is 6 points of accuracy.
    const patient = (i: number): string => {
      const name = basename(trainAug.samples[i][0]);
      const m = /^(person\d+)_/.exec(name) ??
        /^((?:NORMAL2-)?IM-\d+)-/.exec(name);
      return m ? m[1] : name;
    };
    const grouped = trainAug.samples.some((_, i) =>
      patient(i) !== basename(trainAug.samples[i][0])
    );
    const [tr, va] = stratifiedSplit(trainAug, [0.9, 0.1], {
      seed,
      groups: patient,
    });
    trainSet = tr;
    valSet = new Subset(trainEval, va.indices);
    valSource = `a stratified 10% split of ${
      join(root, "train")
    } (${va.length} images)${
      grouped ? ", grouped by patient id from the file names" : ""
    }, replacing ${
      valFolder
        ? `the ${valFolder.length}-image val/ folder`
        : "the missing val/ folder"
    }`;
  }
  let testSet: Dataset<[Tensor, number]> = splits.test;
  if (
    options.subset !== undefined &&
    !(Number.isInteger(options.subset) && options.subset >= 1)
  ) {
    throw new RangeError(
      `Cannot prepare the study data: subset ${options.subset} must be a whole number of training images ≥ 1`,
    );
  }
  const fraction = options.subset !== undefined
    ? Math.min(1, options.subset / trainSet.length)
    : 1;
  let subsetLine: string | null = null;
  if (fraction < 1) {
    const trainAll = trainSet.length;
    const testAll = testSet.length;
    const nClasses = splits.train.classes.length;
    const part = (ds: Dataset<[Tensor, number]>) => {
      const n = ds === trainSet
        ? options.subset!
        : Math.max(nClasses, Math.round(ds.length * fraction));
      return n < ds.length
        ? stratifiedSplit(ds, [n, ds.length - n], { seed })[0]
        : ds;
    };
    trainSet = part(trainSet);
    valSet = part(valSet);
    testSet = part(testSet);
    valSource += `; ${valSet.length} of them kept`;
    subsetLine = `subset: a stratified ${
      Number((fraction * 100).toPrecision(2))
    }% of every split (${trainSet.length} of ${trainAll} training images, ${valSet.length} validation, ${testSet.length} of ${testAll} test)`;
  }
  if (options.maxTrain !== undefined && options.maxTrain < trainSet.length) {
    // for quick tests: a stratified subset of the training images
    const t = trainSet.length;
    const n = options.maxTrain;
    trainSet = stratifiedSplit(trainSet, [n, t - n], { seed })[0];
  }
  // students may get fewer labels (the rest can become unlabeled transfer data)
  let studentSet = trainSet;
  let transferSet: Dataset<[Tensor, number]> | null = null;
  if (options.labeled !== undefined && options.labeled < trainSet.length) {
    const n = options.labeled;
    const [kept, rest] = stratifiedSplit(trainSet, [
      n,
      trainSet.length - n,
    ], { seed });
    studentSet = kept;
    if (options.transfer === "rest") transferSet = rest;
  }
  if (options.transfer && options.transfer !== "rest") {
    transferSet = new ImageFolder(options.transfer, {
      transform: trainTf,
      cache: true,
    });
  }
  if (options.transfer === "rest" && !transferSet) {
    throw new RangeError(
      "--transfer rest needs --labeled N below the training size",
    );
  }
  const balance = options.balance ?? "none";
  const useSampler = balance === "sampler" || balance === "both";
  const useWeights = balance === "loss" || balance === "both";
  const k = classes.length;
  const targetsOf = (ds: Dataset<[Tensor, number]>): readonly number[] => {
    const t = ds.targets;
    if (!t) {
      throw new RangeError(
        "Cannot balance the classes: the training split has no targets",
      );
    }
    return t;
  };
  const loader = (
    ds: Dataset<[Tensor, number]>,
    shuffle: boolean,
    balanced = false,
  ) =>
    new DataLoader(ds, {
      batchSize,
      ...(balanced
        ? {
          sampler: new WeightedRandomSampler(
            balancedSampleWeights(targetsOf(ds)),
            ds.length,
          ),
        }
        : { shuffle }),
      numWorkers: workers,
      persistentWorkers: workers > 0,
    });
  // no `seed` on the loaders: their order and flips come from the
  // process-wide generator, which checkpoints save, so a resumed run
  // repeats them exactly
  const train = loader(trainSet, true, useSampler);
  const studentTrain = loader(studentSet, true, useSampler);
  const classWeights = useWeights
    ? {
      teacher: balancedClassWeights(targetsOf(trainSet), k),
      student: balancedClassWeights(targetsOf(studentSet), k),
    }
    : null;
  const transfer = transferSet ? loader(transferSet, true) : null;
  const val = loader(valSet, false);
  // the tutorial shuffles its test loader; kdeno does not (paired comparisons)
  const test = loader(testSet, false);
  const all = [train, studentTrain, transfer, val, test];
  const counts = (ds: Dataset<[Tensor, number]>) => {
    const c = Array(k).fill(0);
    for (const t of ds.targets ?? []) c[t]++;
    return c.map((n, i) => `${n} ${classes[i]}`).join(" / ");
  };
  const fmtW = (w: number[]) => w.map((x) => x.toFixed(3)).join(" / ");
  const description = [
    `kdeno distillation: ${root}`,
    ...(subsetLine ? [subsetLine] : []),
    `classes: ${
      classes.map((c, i) => `${i}=${c}`).join(", ")
    } (positive class for sensitivity: ${classes[1] ?? classes[0]})`,
    `train ${trainSet.length}${
      studentSet !== trainSet ? ` (students: ${studentSet.length} labeled)` : ""
    }${
      transferSet ? `, transfer ${transferSet.length} unlabeled` : ""
    }, test ${testSet.length}; validation: ${valSource}`,
    `class counts: train ${counts(trainSet)}${
      studentSet !== trainSet ? `; students ${counts(studentSet)}` : ""
    }; test ${counts(testSet)}`,
  ];
  if (useSampler) {
    description.push(
      "balance: labeled training batches are drawn with a WeightedRandomSampler (every class equally likely, with replacement)",
    );
  }
  if (classWeights) {
    description.push(
      `balance: cross-entropy class weights n / (classes × count): teacher ${
        fmtW(classWeights.teacher)
      }, students ${fmtW(classWeights.student)}`,
    );
  }
  return {
    loaders: { train, studentTrain, transfer, val, test },
    dataset: {
      source: root,
      classes,
      train: trainSet.length,
      labeled: studentSet.length,
      transfer: transferSet?.length,
      val: valSet.length,
      valSource,
      test: testSet.length,
      trainTargets: [...targetsOf(trainSet)],
    },
    description,
    classWeights,
    close() {
      for (const l of all) l?.close();
    },
  };
}
