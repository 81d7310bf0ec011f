import { declareStage } from '../stage/contract.js';
import { generatorStage } from '../stage/generator.js';
import type { BlockItem, FaceItem, FaceSource } from './items.js';
import { stableBlocks, TrackLinker, type Track, type TrackOptions } from './tracker.js';

/**
 * Stage: frames with detections in, stable blocks out (one per face clip, numbered per source
 * in order of their first frame, as `linkTracks` + `stableBlocks` number them), each as soon as
 * its track has ended; frames are consumed here. A source's remaining blocks come before its
 * `source-end`; a failed source yields no more blocks.
 *
 * @example
 * trackStage({ maxGap: 2, maxBoxVariation: 0.06, minDetections: 16 })
 */
export function trackStage(options: TrackOptions) {
  const stage = generatorStage<FaceItem, FaceItem>(async function* (items) {
    const open = new Map<FaceSource, { linker: TrackLinker; next: number }>();
    const state = (source: FaceSource) => {
      let s = open.get(source);
      if (!s) {
        s = { linker: new TrackLinker(options), next: 0 };
        open.set(source, s);
      }
      return s;
    };
    function* blocks(source: FaceSource, tracks: Track[]): Generator<BlockItem> {
      const s = state(source);
      const { displayWidth, displayHeight } = source.info!;
      for (const t of tracks) {
        for (const b of stableBlocks(t, displayWidth, displayHeight, options)) {
          yield {
            kind: 'block',
            source,
            track: s.next++,
            detections: b.detections,
            startTime: b.detections[0]!.time ?? b.detections[0]!.frame / source.info!.fps,
          };
        }
      }
    }
    for await (const item of items) {
      if (item.kind === 'frame') {
        yield* blocks(
          item.source,
          state(item.source).linker.push({ frame: item.frame, sample: item.sample, time: item.time, detections: item.detections ?? [] }),
        );
      } else if (item.kind === 'source-end') {
        const s = open.get(item.source);
        open.delete(item.source);
        if (s && !item.error) {
          open.set(item.source, s);
          yield* blocks(item.source, s.linker.finish());
          open.delete(item.source);
        }
        yield item;
      } else {
        yield item;
      }
    }
  });
  return declareStage(stage, { name: 'track', needs: ['detections', 'info'], adds: ['block'], drops: ['frame', 'detections'] });
}
