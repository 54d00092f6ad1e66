/**
 * Data loading in the style of `torch.utils.data` and
 * `torchvision.datasets`: `ImageFolder` over a folder per class, `DataLoader`
 * with shuffling, samplers and Worker decoding, dataset splits, and image
 * decoding with imagescript. The transforms are in the `transforms` module.
 *
 * ```ts ignore
 * import { data, transforms as T } from "@kdeno/kdeno";
 *
 * const normalize = new T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
 * const { train, test } = data.imageFolderSplits("chest_xray", {
 *   transforms: {
 *     train: [new T.Resize([224, 224]), new T.RandomHorizontalFlip(), new T.ToTensor(), normalize],
 *     val: [new T.Resize([224, 224]), new T.ToTensor(), normalize],
 *     test: [new T.Resize([224, 224]), new T.ToTensor(), normalize],
 *   },
 *   cache: true,
 * });
 * const loader = new data.DataLoader(train, { batchSize: 32, shuffle: true, numWorkers: 2, seed: 0 });
 * for await (const [images, labels] of loader) {
 *   // images: float32 [32, 3, 224, 224]; labels: int32 [32]
 * }
 * ```
 *
 * Loading needs `--allow-read` and `--allow-env` (imagescript reads
 * `IMAGESCRIPT_WASM_SIMD`).
 *
 * Batch lifetime: each batch's two tensors belong to the loop that receives
 * them; the loader keeps no reference. As in PyTorch, a batch nothing
 * references any more is freed by the garbage collector, so a plain
 * `for await` loop needs no cleanup; `using x = batch[0]` or `x.dispose()`
 * frees it at once (a batch made outside a `tidy` is not freed by that
 * `tidy`). The loader lets the event loop turn once per batch, which is when
 * the device memory of collected CUDA tensors goes back to the allocator.
 * The README's "Memory" section shows the three loop styles side by side.
 *
 * @module
 */

export { type Dataset, Subset } from "./dataset.ts";
export {
  findClasses,
  ImageFolder,
  type ImageFolderOptions,
  imageFolderSplits,
  type OnError,
  type SkippedFile,
  type SplitFoldersOptions,
} from "./image_folder.ts";
export {
  type Batch,
  DataLoader,
  type DataLoaderOptions,
} from "./data_loader.ts";
export {
  RandomSampler,
  type RandomSamplerOptions,
  Sampler,
  SequentialSampler,
  type Sized,
  SubsetRandomSampler,
  WeightedRandomSampler,
} from "./samplers.ts";
export {
  randomSplit,
  type SplitOptions,
  stratifiedSplit,
  type StratifiedSplitOptions,
} from "./split.ts";
export {
  decodeImage,
  type DecodeOptions,
  IMAGE_EXTENSIONS,
  type ImageFormat,
  loadCodecs,
  readImage,
  sniffFormat,
} from "./decode.ts";
export type { FloatImage, ImageLike, RawImage } from "./image.ts";
