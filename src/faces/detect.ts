import { batchStage } from '../infer/batcher.js';
import type { FaceDetector } from './detector.js';
import type { FaceItem, FrameItem } from './items.js';

const isFrame = (item: FaceItem): item is FrameItem => item.kind === 'frame' && item.rgb !== null;

/**
 * Stage: runs the detector on sampled frames in batches set by backpressure (up to
 * `batchSize`), sets each frame's `detections` (displayed-frame pixels) and drops its pixels.
 * Other items pass through in order.
 *
 * @example
 * detectStage(detector, { batchSize: 8 })
 */
export function detectStage(detector: FaceDetector, options: { batchSize: number; onBatch?: (size: number) => void }) {
  return batchStage<FaceItem, FrameItem>({
    batchSize: options.batchSize,
    accept: isFrame,
    onBatch: options.onBatch,
    run: async (frames) => {
      const found = await detector.detect(
        frames.map((f) => ({
          rgb: f.rgb!,
          width: f.width,
          height: f.height,
          scale: f.scale,
          sourceWidth: f.source.info!.displayWidth,
          sourceHeight: f.source.info!.displayHeight,
        })),
      );
      frames.forEach((f, i) => {
        f.detections = found[i]!;
        f.rgb = null;
      });
    },
  });
}
