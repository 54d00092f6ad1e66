/**
 * Reading and writing tensors: safetensors files, PyTorch `.pth`/`.pt`
 * state dicts (read through a restricted unpickler that never runs the
 * file's code), pretrained weights, ONNX export, and the atomic file write
 * they all use.
 *
 * The readers treat every file as untrusted: whatever it claims, they do
 * work linear in its size, allocate at most `maxBytes` (by default 16 times
 * its size, at least 1 MiB; raise it for a trusted file that needs more),
 * and refuse anything else with a `CheckpointError` naming the file and
 * what is wrong, in a message that quotes at most a short prefix of the
 * file's values. A file in neither format is named for what it is.
 *
 * @module
 */

export {
  loadSafetensors,
  type LoadSafetensorsOptions,
  parseSafetensors,
  parseSafetensorsHeader,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsHeader,
  saveSafetensors,
  serializeSafetensors,
} from "./safetensors.ts";
export {
  loadTorch,
  type LoadTorchOptions,
  loadTorchSync,
  parseTorch,
} from "./torch.ts";
export {
  loadPretrained,
  type LoadPretrainedOptions,
  loadWeights,
  type LoadWeightsOptions,
  loadWeightsSync,
  parseWeights,
  type PretrainedResult,
} from "./weights.ts";
export {
  exportOnnx,
  type ExportOnnxOptions,
  ONNX_OPSET,
  OnnxExportError,
  serializeOnnx,
} from "./onnx.ts";
export { writeFileAtomic } from "./_atomic.ts";
export type { StatefulModel, TraceableModel } from "./model.ts";
