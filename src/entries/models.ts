/**
 * clipstream/models: the model registry and `models fetch`, building SlowFast and VGGish ONNX
 * graphs (seeded or from imported weights), reading checkpoints, ONNX Runtime sessions, and the
 * PP-OCRv4 text detector (`loadTextDetector`, `textArea`).
 *
 * @module clipstream/models
 */
export {
  cachedFaceDetector,
  cachedModelPath,
  findModel,
  modelCacheDir,
  REGISTRY,
  resolveModel,
  type ModelKind,
  type RegistryFile,
  type RegistryModel,
  type ResolvedModel,
} from '../models/registry.js';
export { fetchModel, type FetchedFile, type FetchOptions, type FetchResult } from '../models/fetch.js';
export {
  buildSlowFast,
  DEFAULT_SLOWFAST_INPUT,
  describeSlowFast,
  SLOWFAST_FULL,
  SLOWFAST_SMALL,
  slowPathwayIndices,
  type SlowFastBuildOptions,
  type SlowFastConfig,
  type SlowFastInputFormat,
} from '../models/slowfast.js';
export {
  buildTransNetV2,
  describeTransNetV2,
  TRANSNETV2_FULL,
  TRANSNETV2_SMALL,
  type TransNetV2Config,
} from '../models/transnetv2.js';
export { buildVggish, describeVggish, VGGISH_FULL, VGGISH_SMALL, type VggishBuildOptions, type VggishConfig } from '../models/vggish.js';
export type { ArchitectureDescription, BuiltModel, ModelDescription } from '../models/built.js';
export type { ImportedWeights, ParamTensor, StateDict } from '../models/params.js';
export { readModelInfo, type ModelInfo, type TensorElementType, type TensorInfo } from '../models/info.js';
export { parseCheckpoint, readWeightsFile, type WeightsFormat } from '../models/checkpoint.js';
export {
  encodeSafetensors,
  loadImportedWeights,
  parseSafetensors,
  readSafetensors,
  selectStateDict,
  type FloatDtype,
  type SafetensorsEntry,
  type SafetensorsFile,
  type TensorToWrite,
} from '../models/safetensors.js';
export { toFloat16Model } from '../models/fp16.js';
export { transnetV2Detector, type TransNetV2Detector, type TransNetV2DetectorOptions } from '../infer/transnetv2.js';
export { loadSession, parseDevice, type Device, type LoadedSession, type SessionOptions } from '../infer/session.js';
export { Extractor, extractFeatures, type ExtractorKind, type ExtractorOptions, type FeatureStageOptions } from '../infer/extractor.js';
export { batchStage, type BatchStageOptions } from '../infer/batcher.js';
export { logMelSpectrogram, melWeightMatrix, vggishExamples } from '../features/vggish.js';
export {
  defaultTextDetectorModel,
  loadTextDetector,
  type TextBox,
  type TextDetector,
  type TextDetectorOptions,
  textArea,
} from '../infer/text-detector.js';
