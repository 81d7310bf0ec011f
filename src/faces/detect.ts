import { ClipstreamError } from '../errors.js';
import { batchStage } from '../infer/batcher.js';
import { declareStage } from '../stage/contract.js';
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
  const stage = batchStage<FaceItem, FrameItem>({
    batchSize: options.batchSize,
    accept: isFrame,
    onBatch: options.onBatch,
    run: async (frames) => {
      const found = await detector.detect(frames.map(toDetectorFrame)).catch((err: unknown) => {
        // Keep the model, the cause, and say which frames: the first frame's clip-key stem and number.
        const first = frames[0]!;
        const where = `${frames.length} frame(s) from ${[...new Set(frames.map((f) => f.source.path))].join(', ')}, first ${first.source.key}/${first.frame}`;
        throw new ClipstreamError('ERR_INFERENCE', `${(err as Error).message} (${where})`, {
          cause: err,
          where: { file: detector.path, key: `${first.source.key}/${first.frame}` },
        });
      });
      frames.forEach((f, i) => {
        f.detections = found[i]!;
        f.rgb = null;
      });
    },
  });
  return declareStage(stage, { name: 'detect', needs: ['pixels', 'info'], adds: ['detections'], drops: ['pixels'] });
}

const toDetectorFrame = (f: FrameItem) => ({
  rgb: f.rgb!,
  width: f.width,
  height: f.height,
  scale: f.scale,
  sourceWidth: f.source.info!.displayWidth,
  sourceHeight: f.source.info!.displayHeight,
});
