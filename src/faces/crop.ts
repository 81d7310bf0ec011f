import { squarePixelsFilter } from '../media/facts.js';
import { declareStage } from '../stage/contract.js';
import { generatorStage } from '../stage/generator.js';
import { croppedFrames } from './clip-writer.js';
import { trackCrop } from './crops.js';
import type { ClipItem, FaceItem } from './items.js';

export interface CropStageOptions {
  ffmpeg: string;
  /** Side of the square face clips. */
  size: number;
  /** Crop enlargement around the block's box (seed 002: 1.4). */
  enlarge: number;
  cropMode: 'union' | 'mean';
  signal?: AbortSignal;
}

/** `{key}_{track:03d}`: the clip key of a source's track-th face clip. */
export const clipKeyOf = (sourceKey: string, track: number): string => `${sourceKey}_${String(track).padStart(3, '0')}`;

/**
 * Stage: blocks in, clips out: one square crop per block (union or mean of its boxes, in
 * displayed-frame pixels) and its frames as a lazy stream, cut by seeking to the block (ffmpeg
 * starts only when the next stage reads the frames). Other items pass through.
 *
 * @example
 * cropStage({ ffmpeg, size: 512, enlarge: 1.4, cropMode: 'union' })
 */
export function cropStage(o: CropStageOptions) {
  const stage = generatorStage<FaceItem, FaceItem>(async function* (items) {
    for await (const item of items) {
      if (item.kind !== 'block') {
        yield item;
        continue;
      }
      const { source, detections } = item;
      const info = source.info!;
      const crop = trackCrop(detections, info.displayWidth, info.displayHeight, { enlarge: o.enlarge, mode: o.cropMode });
      const numFrames = detections[detections.length - 1]!.frame - detections[0]!.frame + 1;
      const clip: ClipItem = {
        kind: 'clip',
        source,
        track: item.track,
        clipKey: clipKeyOf(source.key, item.track),
        detections,
        startTime: item.startTime,
        crop,
        size: o.size,
        numFrames,
        // Not this stage's signal: the frames are read by the next stage, after this one may have ended.
        // Stopping that reader early (an error, a teardown) kills the ffmpeg.
        frames: croppedFrames(o.ffmpeg, source.path, {
          startTime: item.startTime,
          count: numFrames,
          fps: info.fps,
          crop,
          size: o.size,
          squarePixels: squarePixelsFilter(info.facts),
          signal: o.signal,
        }),
      };
      yield clip;
    }
  });
  return declareStage(stage, { name: 'crop', needs: ['block', 'info'], adds: ['clip', 'frames'], drops: ['block'] });
}
