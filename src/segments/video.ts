/**
 * One video through the segments stages (src/segments/stages.ts): prepare → split → infer →
 * join → remux, for callers that have a single video and a model at hand.
 */
import { Readable } from 'node:stream';
import { checkStages, pipeline } from '../stage/index.js';
import type { FrameModel } from './model.js';
import type { ResolvedSegmentsOptions } from './options.js';
import { segmentsStages, segmentsItem, type SegmentsItem, type VideoReport } from './stages.js';

export { workDirFor } from './stages.js';

/**
 * Runs one video; a failure of the video is thrown (the job instead records it and goes on).
 *
 * @example const report = await processVideo('talk.mp4', 'out/talk.mp4', model, resolveSegmentsOptions({ inputs: ['talk.mp4'], outputs: ['out/talk.mp4'] }, modelPath));
 */
export async function processVideo(input: string, output: string, model: FrameModel, o: ResolvedSegmentsOptions): Promise<VideoReport> {
  let report: VideoReport | undefined;
  await pipeline(
    Readable.from([segmentsItem(input, output)]),
    ...checkStages(segmentsStages({ model, options: o, onError: 'throw' }), ['input', 'output']),
    async (items: AsyncIterable<SegmentsItem>) => {
      for await (const item of items) report = item.report;
    },
    { signal: o.signal },
  );
  return report!;
}
