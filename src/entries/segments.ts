/**
 * clipstream/segments: the stages of the `segments` job (long videos through a per-frame model,
 * segment by segment) for composing them yourself, and the model, planning and output parts.
 *
 * @module clipstream/segments
 */
export { resolveSegmentsOptions, type ResolvedSegmentsOptions, type SegmentsOptions, type SegmentsProgress } from '../segments/options.js';
export { folderUnits, segmentsUnits, type SegmentsReport } from '../jobs/segments.js';
export {
  inferStage,
  joinStage,
  prepareStage,
  remuxStage,
  segmentsItem,
  segmentsStages,
  splitStage,
  type SegmentsItem,
  type SegmentsStageContext,
  type VideoReport,
} from '../segments/stages.js';
export { processVideo, workDirFor } from '../segments/video.js';
export { FrameModel, detectKind, type FrameModelKind, type RecurrentState } from '../segments/model.js';
export { MATTING_MODEL_FILE, buildMattingModel } from '../segments/matting-model.js';
export { planSegments, keyframeBefore, type Segment } from '../segments/plan.js';
export { decodeRange, prefetch } from '../segments/decode-range.js';
export { composeFrame, parseColour, RVM_GREEN, toModelInput, type OutputType } from '../segments/compose.js';
export { mp4Sink, pngSink, type FrameSink } from '../segments/encode.js';
export { inferSegment, warmState } from '../segments/infer.js';
export { joinSegments, remuxAudio } from '../segments/join.js';
export { RecordStore, type SegmentRecord } from '../segments/records.js';
