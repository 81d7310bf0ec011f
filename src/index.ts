/**
 * The root export of `clipstream`: what an ETL script uses. The jobs with their options and
 * reports, the stage kit, the stages of the extract path, the errors and the core types.
 * Specialist parts have their own entry points (package.json `exports`): clipstream/media,
 * clipstream/shards, clipstream/models, clipstream/clips, clipstream/faces, clipstream/segments,
 * clipstream/scale. The names and kinds of every entry point are pinned in api/exports.json
 * (`npm run api` regenerates it; test/jobs/api-report.test.ts fails when it is stale).
 *
 * @module clipstream
 */

// errors
export { ClipstreamError, InvalidOptionError, type ErrorCode, type Where } from './errors.js';

// core types
export {
  isLive,
  isSample,
  type BaseSample,
  type FeatureRecord,
  type Flow,
  type Item,
  type Sample,
  type SourceEnd,
  type StreamItem,
  type WarningHandler,
} from './types.js';

// jobs
export { extract, type ExtractOptions, type ExtractProgress, type ExtractReport } from './jobs/extract.js';
export { clips, type ClipsOptions, type ClipsReport } from './jobs/clips.js';
export { faces, type FacesOptions, type FacesReport } from './jobs/faces.js';
export { segments, type SegmentsReport } from './jobs/segments.js';
export type { SegmentsOptions } from './segments/options.js';
export { shippedModelsDir } from './models/models-dir.js';
// the HTML report of any job's output folder (docs/report.md)
export { makeReport, type ReportOptions, type ReportSummary } from './report/report.js';

// the stage kit: all of src/stage/index.ts (writing a stage, its contract, onError and failures,
// composing: docs/architecture.md)
export * from './stage/index.js';

// the stages of the extract path: tar shards in, feature shards out
export { expandShardPatterns } from './shards/brace.js';
export { readShards, type ReadShardsOptions } from './shards/tar-reader.js';
export { decodeClips, type DecodeStageOptions } from './media/decode-stage.js';
export { Extractor, extractFeatures, type ExtractorOptions, type FeatureStageOptions } from './infer/extractor.js';
export {
  FeatureShardWriter,
  readFeatureShard,
  writeFeatureShards,
  type FeatureShardWriterOptions,
  type ShardSummary,
} from './sinks/feature-shard.js';
