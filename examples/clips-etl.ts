// Compose the `clips` stages yourself: list sources, obtain, probe, plan, keep only the
// clips you want (your own stage), cut, describe, record. Run:
//   npx tsx examples/clips-etl.ts <sources.csv|videoDir> [outputDir]
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ClipTables,
  clipsRecordSink,
  cutStage,
  describeStage,
  listClipSources,
  obtainStage,
  planStage,
  probeStage,
  resolveClipsOptions,
  videoItems,
  type VideoItem,
} from 'clipstream/clips';

const sources = process.argv[2] ?? 'fixtures/sources/sources.csv';
const outputDir = process.argv[3] ?? 'out/clips-etl';
// The job's own options give the stages' context: folders, plan, encoder, videos at once.
const { ctx } = await resolveClipsOptions({ sources, outputDir, clipLenS: 1, preset: 'ultrafast', parallelVideos: 2 });
const list = await listClipSources(sources);
const tables = new ClipTables(
  outputDir,
  list.map((s) => s.videoId),
);

// Your own stage: only the first two clips of each video.
const firstTwo = new Transform({
  objectMode: true,
  transform(item: VideoItem, _encoding, done) {
    item.clips = item.clips?.slice(0, 2);
    done(null, item);
  },
});

await pipeline(
  Readable.from(videoItems(list)),
  obtainStage(ctx),
  probeStage(ctx),
  planStage(ctx),
  firstTwo,
  cutStage(ctx),
  describeStage(ctx),
  clipsRecordSink({ tables, onRecorded: (item) => console.log(`${item.source.videoId}: ${item.row.error || `${item.records.length} clip(s)`}`) }),
);
