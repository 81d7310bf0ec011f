import type { ClipstreamError } from '../errors.js';
import type { ItemFailure } from '../types.js';
import type { Detection } from './boxes.js';
import type { CropBox } from './crops.js';
import type { FaceRow } from './metadata.js';
import type { ProbedVideo } from './source-info.js';
import type { VideoFile } from '../media/video-folder.js';
import type { FrameDetection } from './tracker.js';

/**
 * The items that flow through the `faces` stages (sample-frames → detect → track → crop →
 * encode → record). Every item names its source; a `source-end` follows the last item of a
 * source, carrying the error when the source failed. Stages add what they make and drop what
 * they consumed (a frame's pixels after detection, a clip's frames after encoding), so memory
 * does not grow with video length.
 */
export interface FaceSource extends VideoFile {
  /** Set by the sample-frames stage once probed. */
  info?: ProbedVideo;
}

/** A sampled frame: pixels resized for the detector until detection, then its detections. */
export interface FrameItem {
  kind: 'frame';
  source: FaceSource;
  /** Source frame number and position among the sampled frames. */
  frame: number;
  sample: number;
  /** Presentation time of the frame in seconds from the start of the file. */
  time: number;
  rgb: Uint8Array | null;
  width: number;
  height: number;
  /** Detector-frame pixels per displayed-frame pixel. */
  scale: number;
  detections?: Detection[];
}

/** A stable block of one face's detections: one face clip, numbered `track` within its source. */
export interface BlockItem {
  kind: 'block';
  source: FaceSource;
  track: number;
  detections: FrameDetection[];
  /** Presentation time of the block's first frame. */
  startTime: number;
}

/** A block with its crop and its frames (square, `size`×`size` RGB), read lazily from ffmpeg. */
export interface ClipItem {
  kind: 'clip';
  source: FaceSource;
  track: number;
  clipKey: string;
  detections: FrameDetection[];
  startTime: number;
  crop: CropBox;
  size: number;
  /** How many frames `frames` yields (the span from the first to the last detection). */
  numFrames: number;
  frames: AsyncIterable<Uint8Array>;
  /**
   * Set when the clip could not be made (the stage kit's one failure mark): its source is
   * recorded as failed (and retried on a rerun); later clips of that source are marked skipped.
   */
  failure?: ItemFailure;
}

/** A finished face clip: its metadata row. */
export interface RowItem {
  kind: 'row';
  source: FaceSource;
  row: FaceRow;
}

export interface FaceSourceEnd {
  kind: 'source-end';
  source: FaceSource;
  /** Frames sampled for detection. */
  samples?: number;
  error?: ClipstreamError;
}

export type FaceItem = FrameItem | BlockItem | ClipItem | RowItem | FaceSourceEnd;
