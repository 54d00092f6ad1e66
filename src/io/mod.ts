/**
 * Reading and writing tensors: safetensors files, PyTorch `.pth`/`.pt`
 * state dicts (read through a restricted unpickler that never runs the
 * file's code), pretrained weights, ONNX export, and the atomic file write
 * they all use.
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
