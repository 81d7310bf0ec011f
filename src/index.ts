// Public API: re-exports only.
export * from './errors.js';
export * from './types.js';
export { ffmpegChoice, ffmpegPath, ffprobePath, type ToolChoice } from './media/ffmpeg-path.js';
export { probeMedia, outputTagArgs, setsarFilter, type MediaFacts, type ProbeMediaOptions } from './media/facts.js';
export { writeFileAtomic } from './util/atomic.js';
export { generatorStage, orderedMap, type StageOptions } from './stage/generator.js';

// shards
export { expandShardPatterns } from './shards/brace.js';
export { readShards, readTarShards, type ReadShardsOptions, type ReadTarOptions } from './shards/tar-reader.js';
export { joinEntries, readSidecar, sidecarLocation, type JoinEntriesOptions, type Sidecar } from './shards/entry-join.js';
export { bundleClips, type BundleOptions, type BundleSummary, type BundledShard } from './shards/bundle.js';
export { ACAV_CLIP_SECONDS, parseClipStem } from './shards/clip-name.js';

// media
export {
  decodeClip,
  decodeClips,
  decodeArgs,
  resolveDecodeOptions,
  type DecodeOptions,
  type DecodeStageOptions,
  type DecodedClip,
  type DecodeIo,
} from './media/decode.js';
export { toFastStart, pipeLayout, predictFrameCount, type PipeLayout } from './media/mp4.js';
export { linspaceIndices, shortSideScale } from './media/sampling.js';
export { liveChildProcesses } from './media/process.js';

// features
export { vggishExamples, logMelSpectrogram, melWeightMatrix } from './features/vggish.js';

// inference
export { loadSession, parseDevice, type Device, type SessionOptions, type LoadedSession } from './infer/session.js';
export { batchStage, type BatchStageOptions } from './infer/batcher.js';
export { Extractor, extractFeatures, type ExtractorKind, type ExtractorOptions, type FeatureStageOptions } from './infer/extractor.js';

// models
export {
  buildSlowFast,
  describeSlowFast,
  slowPathwayIndices,
  SLOWFAST_FULL,
  SLOWFAST_SMALL,
  DEFAULT_SLOWFAST_INPUT,
  type SlowFastConfig,
  type SlowFastInputFormat,
  type SlowFastBuildOptions,
} from './models/slowfast.js';
export { buildVggish, describeVggish, VGGISH_FULL, VGGISH_SMALL, type VggishConfig } from './models/vggish.js';
export { readModelInfo, type ModelInfo, type TensorInfo, type TensorElementType } from './models/info.js';
export type { StateDict, ParamTensor, ImportedWeights } from './models/params.js';
export type { BuiltModel, ModelDescription, ArchitectureDescription } from './models/built.js';
export { readSafetensors, parseSafetensors, selectStateDict, loadImportedWeights, encodeSafetensors, FLOAT_DTYPES } from './models/safetensors.js';
export type { SafetensorsFile, SafetensorsEntry, TensorToWrite, FloatDtype } from './models/safetensors.js';
export { toFloat16Model } from './models/fp16.js';
export { VGGISH_PCA_MATRIX, VGGISH_PCA_MEANS, type VggishBuildOptions } from './models/vggish.js';
export { readWeightsFile, parseCheckpoint, caffe2ToPytorchName, type WeightsFormat } from './models/checkpoint.js';
export { unpickle, type PickleGlobal, type UnpickleOptions } from './models/pickle.js';
export {
  REGISTRY,
  findModel,
  resolveModel,
  modelCacheDir,
  cachedModelPath,
  cachedFaceDetector,
  type RegistryModel,
  type RegistryFile,
  type ModelKind,
  type ResolvedModel,
} from './models/registry.js';
export { fetchModel, type FetchOptions, type FetchResult, type FetchedFile } from './models/fetch.js';

// sinks
export {
  writeFeatureShards,
  readFeatureShard,
  completedKeys,
  completedIndices,
  shardIncompletePath,
  readIncompleteMarker,
  shardOutputPath,
  shardJournalPath,
  FeatureShardWriter,
} from './sinks/feature-shard.js';
export type { ShardSummary, ShardProblem, FeatureShardFormat, FeatureShardWriterOptions } from './sinks/feature-shard.js';
export { encodeFeatureRecord, decodeFeatureRecord, packMsgpackNumpy, unpackMsgpackNumpy } from './sinks/msgpack-numpy.js';

// jobs
export { extract, type ExtractOptions, type ExtractReport, type ExtractProgress, type ShardLog } from './jobs/extract.js';
export { shippedModelsDir } from './models/models-dir.js';

// clips (sources -> planned clips -> transcoded files or shards)
export { clips, type ClipsOptions, type ClipsReport } from './jobs/clips.js';
export { readSources, listClipSources, type SourceRow } from './clips/sources.js';
export { downloadFile, downloadYouTube } from './media/download.js';
export { parseSpanTable, parseSekaiName, planSpans, fixedStride, fixedParts, clipStem, type PlannedClip, type SpanSpec } from './clips/plan.js';
export { probeVideo, type VideoInfo } from './media/probe.js';
export { resolveEncoder, encoderArgs, ENCODERS } from './media/encoders.js';
export { transcodeClips } from './clips/transcode.js';
export { splitAudio, remixClip } from './clips/audio.js';
export { writeClipShards, type ClipRecord } from './clips/package.js';
export { clipsRecordSink } from './clips/record.js';
export { resolveClipsOptions } from './clips/options.js';
export { ClipTables, unitRecordPath, type UnitRecord } from './clips/table.js';
export { videoItem, videoItems, videoStage, SOURCE_FIELDS, type VideoItem, type VideoContext, type VideoStage, type VideoRow } from './clips/item.js';
export { obtainStage } from './clips/obtain.js';
export { probeStage } from './clips/probe-stage.js';
export { planStage } from './clips/plan-stage.js';
export { cutStage } from './clips/cut.js';
export { describeStage } from './clips/describe.js';
export { probeFrames, type FrameTimes } from './media/probe.js';

// faces (detect, track, crop, score, store)
export { faces, type FacesLmdb, type FacesOptions, type FacesReport } from './jobs/faces.js';
export { listFolderVideos, assignKeys, videoStem, VIDEO_EXTENSIONS } from './faces/sources.js';
export { sampleFramesStage } from './faces/sample-frames.js';
export { detectStage } from './faces/detect.js';
export { trackStage } from './faces/track.js';
export { cropStage, clipKeyOf } from './faces/crop.js';
export { encodeStage } from './faces/encode.js';
export { facesRecordSink, STATE_FILE, type RecordState, type VideoLog } from './faces/record.js';
export type { FaceItem, FaceSource, FrameItem, BlockItem, ClipItem, RowItem, SourceEnd } from './faces/items.js';
export { probeSource, type SourceInfo } from './faces/source-info.js';
export { TrackLinker } from './faces/tracker.js';
export { loadFaceDetector, FaceDetector, guessDetectorFormat, type DetectorFormat } from './faces/detector.js';
export { decodeScrfd } from './faces/scrfd.js';
export { decodeYunet } from './faces/yunet.js';
export { decodeUltraface } from './faces/ultraface.js';
export { nms, iou, type Detection, type Box } from './faces/boxes.js';
export { linkTracks, stableBlocks } from './faces/tracker.js';
export { trackCrop, squareAndResize } from './faces/crops.js';
export { openFrameStore, frameKey, metaKey } from './faces/lmdb-store.js';
export { writeLmdbV1 } from './faces/lmdb-v1.js';
export { loadScorer, parseScorerSpec } from './faces/scorers.js';
export { imageStats } from './faces/scores.js';

// many machines
export { resolvePartition, shareOf, describePartition, WHOLE, type Partition, type PartitionInput } from './util/partition.js';
export { tryLock, waitForLock, describeHolder, lockPathFor, type LockInfo, type UnitLock, type LockOptions } from './util/lock.js';
export { UnitLocks, type LockedPolicy } from './util/unit-locks.js';
export { openShard, expandShardUrls, shardFileName, isRemoteShard, type ShardSourceOptions } from './shards/shard-source.js';
export { addUnits, queueStatus, redisConnection, DEFAULT_QUEUE, type UnitJobData, type QueueStatus } from './scale/queue.js';
export { startWorker, PermanentUnitError, type WorkerOptions, type WorkerHandle, type UnitRunner } from './scale/worker.js';
export { ModelCache } from './infer/model-cache.js';
// segments (long videos through a per-frame model, segment by segment)
export { segments, folderUnits, segmentsUnits, type SegmentsReport } from './jobs/segments.js';
export type { SegmentsOptions, SegmentsProgress, ResolvedSegmentsOptions } from './segments/options.js';
export { resolveSegmentsOptions } from './segments/options.js';
// Stage contracts (src/stage/contract.ts): the ETL examples check their own compositions.
export { declareStage, checkStages, contractOf, type StageContract } from './stage/contract.js';
export {
  prepareStage,
  splitStage,
  inferStage,
  joinStage,
  remuxStage,
  segmentsStages,
  segmentsItem,
  type SegmentsItem,
  type SegmentsStageContext,
} from './segments/stages.js';
export { probeFrameTimeline, type FrameTimeline } from './media/probe.js';
export { planSegments, keyframeBefore, type Segment } from './segments/plan.js';
export { decodeRange, prefetch } from './segments/decode-range.js';
export { FrameModel, detectKind, type ModelKind as FrameModelKind, type RecurrentState } from './segments/model.js';
export { composeFrame, toModelInput, parseColour, RVM_GREEN, type OutputType } from './segments/compose.js';
export { mp4Sink, pngSink, type FrameSink } from './segments/encode.js';
export { inferSegment, warmState } from './segments/infer.js';
export { joinSegments, remuxAudio } from './segments/join.js';
export { RecordStore, type SegmentRecord } from './segments/records.js';
export { processVideo as processSegmentsVideo, workDirFor, type VideoReport } from './segments/video.js';
export { buildMattingModel, MATTING_MODEL_FILE } from './segments/matting-model.js';
export { streamTool, type StreamOptions, type ToolStream } from './media/process.js';
