// Compose the `faces` stages yourself: list videos, sample frames, detect faces, keep only
// confident detections (your own stage), track, crop, encode, record. Run:
//   npx tsx examples/faces-etl.ts <videoDir> [outputDir]
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { shippedModelsDir } from 'clipstream';
import {
  cropStage,
  detectStage,
  encodeStage,
  listFolderVideos,
  loadFaceDetector,
  facesRecordSink,
  sampleFramesStage,
  trackStage,
  type FaceItem,
  type RecordState,
} from 'clipstream/faces';
import { ffmpegPath } from 'clipstream/media';

const inputDir = process.argv[2] ?? 'fixtures/faces';
const outputDir = process.argv[3] ?? 'out/faces-etl';
const ffmpeg = ffmpegPath();
const detector = await loadFaceDetector(join(shippedModelsDir(), 'face_detector_synthetic.onnx'), { device: 'cpu' });
const sources = await listFolderVideos(inputDir, {}, (w) => console.warn(w.message));
const state: RecordState = { videos: {}, rows: [], logs: [] };

// Your own stage: drop detections below 0.9 before tracking.
const confident = new Transform({
  objectMode: true,
  transform(item: FaceItem, _enc, done) {
    if (item.kind === 'frame') item.detections = (item.detections ?? []).filter((d) => d.score >= 0.9);
    done(null, item);
  },
});

await pipeline(
  Readable.from(sources),
  sampleFramesStage({ ffmpeg, sampleEvery: 2, parallelVideos: 2, fit: (w, h) => detector.fit(w, h) }),
  detectStage(detector, { batchSize: 8 }),
  confident,
  trackStage({ maxBoxVariation: 0.06, minDetections: 16 }),
  cropStage({ ffmpeg, size: 128, enlarge: 1.4, cropMode: 'union' }),
  encodeStage({ ffmpeg, outputDir, audio: 'embed', imageFormat: 'jpeg', jpegQuality: 95, scorers: [], scoreFrames: 8 }),
  facesRecordSink(state, { outputDir, sources, onWarning: (w) => console.warn(w.message) }),
);
await detector.close();
for (const log of state.logs) console.log(`${log.file}: ${log.status}, ${log.clips.length} clip(s)`);
