/**
 * clipstream/clips: the stages of the `clips` job (sources -> obtain -> probe -> plan -> cut ->
 * describe -> record) for composing them yourself, and the planning, encoding and packaging parts;
 * the perceptual fingerprints and banded search of `clipstream dedup`, and the keep lists it writes.
 *
 * @module clipstream/clips
 */
export { resolveClipsOptions, type ClipsOptions } from '../clips/options.js';
export { listClipSources, readSources, type SourceRow } from '../clips/sources.js';
export { videoItem, videoItems, videoStage, type VideoContext, type VideoItem, type VideoRow, type VideoStage } from '../clips/item.js';
export { obtainStage } from '../clips/obtain.js';
export { probeStage } from '../clips/probe-stage.js';
export { planStage } from '../clips/plan-stage.js';
export { cutStage } from '../clips/cut.js';
export { describeStage } from '../clips/describe.js';
export { clipsRecordSink } from '../clips/record.js';
export { ClipTables, type UnitRecord } from '../clips/table.js';
export { clipStem, fixedParts, fixedStride, parseSekaiName, parseSpanTable, planSpans, type PlannedClip, type SpanSpec } from '../clips/plan.js';
export { ENCODERS, encoderArgs, resolveEncoder } from '../media/encoders.js';
export { transcodeClips } from '../clips/transcode.js';
export { remixClip, splitAudio } from '../clips/audio.js';
export { writeClipShards } from '../clips/package.js';
export type { ClipRecord } from '../sinks/clip-table.js';
export { ClipFingerprinter, fingerprintDistance, frameHash, type FingerprintFrame } from '../features/fingerprint.js';
export { fingerprintClip } from '../features/fingerprint-clip.js';
export { FingerprintSet, groupNearDuplicates } from '../dedup/lsh.js';
export { dedup, type DedupOptions, type DedupReport } from '../jobs/dedup.js';
export { readKeepList } from '../util/keep-list.js';
export { downloadFile, downloadYouTube } from '../media/download.js';
export {
  createShotDetector,
  detectShots,
  shotsStage,
  SHOT_DETECTORS,
  type DetectShotsOptions,
  type ShotDetectorName,
  type ShotDetectorOptions,
} from '../clips/shots.js';
export {
  adaptiveDetector,
  contentDetector,
  withFades,
  type AdaptiveDetectorOptions,
  type ContentDetectorOptions,
  type FadeOptions,
  type Shot,
  type ShotBoundary,
  type ShotDetector,
  type ShotFrame,
} from '../features/shots.js';
export { runShotDetector, type ShotsResult } from '../features/shot-runner.js';
export { filterStage } from '../clips/filter-stage.js';
export { decide, parseFilter, type FilterRule } from '../clips/filter.js';
export { scoreClipFile } from '../clips/score-file.js';
export { scoreItems, scoreStage } from '../clips/score-stage.js';
export { score, type ScoreOptions, type ScoreReport } from '../jobs/score.js';
export {
  clipScorers,
  PixelScorer,
  SCORE_NAMES,
  TextAreaScorer,
  type ClipFrame,
  type FrameScorer,
  type ScoreSetup,
} from '../features/clip-scores.js';
// the report of any job's output folder (docs/report.md)
