/**
 * Segments as frame ranges: segment k starts at the first frame whose timestamp is at least
 * k · segmentSeconds after the first frame, so boundaries follow the real timestamps (VFR
 * included), never fps arithmetic. Each segment also names the keyframe its decode seeks to.
 */
import { validateNumber } from '../util/validate.js';
import type { FrameTimeline } from '../media/probe.js';

export interface Segment {
  index: number;
  /** Frames `[startFrame, endFrame)` of the source, in presentation order. */
  startFrame: number;
  endFrame: number;
  /** Timestamp of the first frame (seconds, source time base). */
  startPts: number;
  /** The keyframe at or before `startFrame` (a frame index) and its timestamp. */
  keyframe: number;
  keyframePts: number;
}

/** Index of the last keyframe at or before `frame`. */
export function keyframeBefore(keyframes: readonly number[], frame: number): number {
  let lo = 0;
  let hi = keyframes.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (keyframes[mid]! <= frame) lo = mid;
    else hi = mid - 1;
  }
  return keyframes[lo]!;
}

/**
 * Plans the segments of a video.
 *
 * @example planSegments(timeline, 2) // 150 frames at 25 fps → [0, 50), [50, 100), [100, 150)
 */
export function planSegments(t: Pick<FrameTimeline, 'pts' | 'keyframes'>, segmentSeconds: number, name = 'options.segmentSeconds'): Segment[] {
  validateNumber(segmentSeconds, name, 1e-3);
  const starts: number[] = [0];
  const t0 = t.pts[0]!;
  // Half a microsecond of slack: ffprobe prints 6 decimals, so 2.000000 must count as 2.
  for (let i = 1, k = 1; i < t.pts.length; i++) {
    if (t.pts[i]! - t0 >= k * segmentSeconds - 5e-7) {
      starts.push(i);
      while (t.pts[i]! - t0 >= k * segmentSeconds - 5e-7) k++;
    }
  }
  return starts.map((startFrame, index) => {
    const keyframe = keyframeBefore(t.keyframes, startFrame);
    return {
      index,
      startFrame,
      endFrame: starts[index + 1] ?? t.pts.length,
      startPts: t.pts[startFrame]!,
      keyframe,
      keyframePts: t.pts[keyframe]!,
    };
  });
}
