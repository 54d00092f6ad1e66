/**
 * Data loading in the style of `torch.utils.data` and
 * `torchvision.datasets`: `ImageFolder` over a folder per class, `DataLoader`
 * with shuffling, samplers and Worker decoding, `TensorLoader` over tensors
 * held in memory, the one `Batch` type and the `Loader` protocol the trainer
 * reads, dataset splits, and image decoding (JPEGs through libjpeg-turbo's
 * TurboJPEG, exact to Pillow, when it is installed; imagescript otherwise).
 * The transforms are in the `transforms` module.
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
 * `IMAGESCRIPT_WASM_SIMD`); without them decoding fails with a
 * `BackendUnavailableError` naming the missing permission. TurboJPEG also
 * needs `--allow-ffi` (`-A` has it; `apt-get install libturbojpeg0`;
 * `KDENO_TURBOJPEG` names the library, `KDENO_TURBOJPEG=0` turns it off);
 * without it JPEGs decode with imagescript and one line on stderr says so.
 *
 * Untrusted files: `ImageFolder` follows links but walks each real folder
 * at most once per class, and never the dataset folder, a folder above it or
 * another class's folder, so links cannot loop or relabel images; it lists only regular
 * files (FIFOs, sockets, devices and broken links are ignored). Every image
 * is checked from its header before decoding: more than `maxImagePixels`
 * pixels (default 89,478,485, Pillow's `MAX_IMAGE_PIXELS`; `null` lifts it)
 * gives a `DecompressionBombError`, and a file too small to hold the pixels
 * it declares a `DataError`; under `onError: "skip"` both are skipped and
 * counted.
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

export * from "./dataset.ts";
export * from "./image_folder.ts";
export * from "./data_loader.ts";
export * from "./batch.ts";
export * from "./tensor_loader.ts";
export * from "./samplers.ts";
export * from "./split.ts";
export * from "./decode.ts";
export * from "./image.ts";
