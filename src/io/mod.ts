/**
 * Reading and writing tensors: safetensors files.
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
