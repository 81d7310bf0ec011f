// Compose clipstream's stages yourself: read shards, keep only clips you want, decode,
// run the visual model only, and write feature shards. Run: npx tsx examples/etl-pipeline.ts [outputDir]
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { Extractor, decodeClips, expandShardPatterns, extractFeatures, readShards, shippedModelsDir, writeFeatureShards, type StreamItem } from 'clipstream';

const outputDir = process.argv[2] ?? 'out/etl';
const urls = expandShardPatterns('fixtures/shards/shard-{000000..000001}.tar');
const visual = await Extractor.load(join(shippedModelsDir(), 'slowfast_small.onnx'), { device: 'auto' });

// Your own stage: drop clips whose id starts with "corrupt" before spending a decode on them.
const keepWanted = new Transform({
  objectMode: true,
  transform(item: StreamItem, _enc, done) {
    if (item.kind === 'sample' && item.entry.id.startsWith('corrupt')) return done();
    done(null, item);
  },
});

const writer = writeFeatureShards({ outputDir, format: 'msgpack' });
await pipeline(readShards(urls), keepWanted, decodeClips({ concurrency: 2, audio: false }), extractFeatures(visual, { batchSize: 4 }), writer);
await visual.close();
for (const s of writer.summaries) console.log(`${s.shard}: ${s.written} clips -> ${s.output}`);
