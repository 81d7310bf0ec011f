// Compose the `segments` stages yourself: probe and plan each video, leave long ones alone
// (your own stage), run every segment through the model, join, put the audio back. Run:
//   npx tsx examples/segments-etl.ts <video> <out.mp4>
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { checkStages, pipeline, shippedModelsDir } from 'clipstream';
import {
  FrameModel,
  inferStage,
  joinStage,
  MATTING_MODEL_FILE,
  prepareStage,
  remuxStage,
  resolveSegmentsOptions,
  segmentsItem,
  type SegmentsItem,
} from 'clipstream/segments';

const input = process.argv[2] ?? 'fixtures/segments/matte_move.mp4';
const output = process.argv[3] ?? 'out/segments-etl/alpha.mp4';
const options = resolveSegmentsOptions(
  { inputs: [input], outputs: [output], segmentSeconds: 2, outputType: 'alpha' },
  join(shippedModelsDir(), MATTING_MODEL_FILE),
);
const model = await FrameModel.open(options.model, { device: 'cpu' });
const ctx = { model, options };

// Your own stage: a video over 10 minutes is marked and passed on; the later stages leave it alone.
async function* notTooLong(items: AsyncIterable<SegmentsItem>) {
  for await (const item of items) {
    const t = item.timeline;
    if (t && t.pts[t.pts.length - 1]! - t.pts[0]! > 600) Object.assign(item, { end: true, report: { ...item.report, status: 'failed', error: 'over 10 min' } });
    yield item;
  }
}

// checkStages fails here, naming both stages, if a stage comes before the one that adds what it needs.
// The kit's pipeline is stream/promises' pipeline that also waits for every stage to close on failure.
const stages = checkStages([prepareStage(ctx), notTooLong, inferStage(ctx), joinStage(ctx), remuxStage(ctx)], ['input', 'output']);
await pipeline(Readable.from([segmentsItem(input, output)]), ...stages, async (items: AsyncIterable<SegmentsItem>) => {
  for await (const { report: r } of items) console.log(`${r.input}: ${r.status}, ${r.segments} segment(s), ${r.frames} frame(s)`);
});
await model.close();
