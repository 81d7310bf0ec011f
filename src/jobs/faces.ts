import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ClipstreamError } from '../errors.js';
import { cropStage } from '../faces/crop.js';
import { detectStage } from '../faces/detect.js';
import { loadFaceDetector, type FaceDetector } from '../faces/detector.js';
import { encodeStage, LMDB_DIR } from '../faces/encode.js';
import { openFrameStore, type FrameStore } from '../faces/lmdb-store.js';
import { resolveFacesOptions, type FacesOptions, type FacesProgress, type FacesReport } from '../faces/options.js';
import { readRows, readState, recordSink, type RecordState, type VideoLog } from '../faces/record.js';
import { sampleFramesStage } from '../faces/sample-frames.js';
import { loadScorer, type Scorer } from '../faces/scorers.js';
import { listSources, videoStem } from '../faces/sources.js';
import { SYNTHETIC_DETECTOR_FILE } from '../faces/synthetic-detector.js';
import { trackStage } from '../faces/track.js';
import { shareOf } from '../scale/partition.js';
import { removeDeadTemps } from '../util/atomic.js';
import { shippedModelsDir } from './models-dir.js';

export type { FacesOptions, FacesProgress, FacesReport } from '../faces/options.js';
export { LMDB_DIR } from '../faces/encode.js';
export { STATE_FILE, type VideoLog } from '../faces/record.js';
export { VIDEO_EXTENSIONS, videoStem } from '../faces/sources.js';
/** Where the transactional staging store lives; the py-lmdb-readable store is `faces.lmdb`. */
export const STAGING_LMDB = '.faces-staging.lmdb';

/**
 * Builds a face clip dataset from a folder of videos: the stages under src/faces/ (sources →
 * sampled frames → detect, batched → track → crop → encode/LMDB → record) in one pipeline.
 * Videos finished in an earlier run are skipped; a video that cannot be decoded is recorded as
 * failed and the run goes on.
 *
 * @example
 * const report = await faces({ inputDir: 'videos', outputDir: 'faces', makeLmdb: true });
 */
export async function faces(options: FacesOptions): Promise<FacesReport> {
  const started = Date.now();
  const {
    inputDir,
    outputDir,
    sampleEvery,
    batchSize,
    numWorkers,
    size,
    enlarge,
    cropMode,
    makeLmdb,
    imageFormat,
    jpegQuality,
    audio,
    scoreFrames,
    overwrite,
    modelThread,
    track,
    ffmpeg,
    onWarning,
    signal,
    partition,
  } = resolveFacesOptions(options);
  try {
    if (!(await stat(inputDir)).isDirectory()) throw new Error('not a folder');
  } catch (err) {
    throw new ClipstreamError('ERR_INVALID_OPTION', `input folder ${inputDir} cannot be read: ${(err as Error).message}`, {
      cause: err,
      where: { option: 'inputDir', file: inputDir },
    });
  }

  // Temporary files of a run killed mid-write (kill -9): removed, their clips are redone.
  for (const sub of ['clips', 'audio', LMDB_DIR, '']) await removeDeadTemps(join(outputDir, sub));
  const state: RecordState = { videos: overwrite ? {} : await readState(outputDir), rows: [], logs: [] };
  if (!overwrite) state.rows = await readRows(outputDir);
  // Keys are given over the whole folder, then this run takes its share (--rank/--world): every rank agrees on them.
  const previousKeys = Object.fromEntries(Object.entries(state.videos).map(([rel, log]) => [rel, log.key ?? videoStem(rel)]));
  const sources = shareOf(await listSources(inputDir, previousKeys, onWarning), partition);
  let detector: FaceDetector | null = null;
  const scorers: Scorer[] = [];
  let store: FrameStore | null = null;
  try {
    const session = { device: options.device ?? 'auto', intraOpThreads: options.intraOpThreads, onWarning, thread: modelThread };
    if (makeLmdb) {
      // A fresh run must not carry clips of videos from an earlier one into faces.lmdb.
      if (overwrite) await rm(join(outputDir, STAGING_LMDB), { recursive: true, force: true });
      store = await openFrameStore(join(outputDir, STAGING_LMDB));
    }
    const done = (rel: string) => state.videos[rel]?.status === 'done';
    // --make_lmdb over output made without it: videos done before whose clips are not in the store are made again.
    const unstored = sources.filter((s) => done(s.rel) && store && !state.videos[s.rel]!.clips.every((k) => store!.hasClip(k)));
    if (unstored.length > 0)
      onWarning(
        new ClipstreamError(
          'ERR_IO',
          `${LMDB_DIR}: ${unstored.length} video(s) done before have clips missing from the store (made without --make_lmdb?); processing them again: ${unstored.map((s) => s.rel).join(', ')}`,
        ),
      );
    for (const s of unstored) delete state.videos[s.rel];
    const skipped = sources.filter((s) => done(s.rel)).map((s) => ({ ...state.videos[s.rel]!, status: 'skipped (done before)' as const }));
    const todo = sources.filter((s) => !done(s.rel));
    const redo = new Set(todo.map((s) => s.path));
    state.rows = state.rows.filter((r) => !redo.has(String(r.file_original)));
    for (const s of todo) delete state.videos[s.rel];

    const progress: FacesProgress = { videosTotal: sources.length, videosDone: skipped.length, videosFailed: 0, clips: state.rows.length, elapsedSeconds: 0 };
    const report = () => options.onProgress?.({ ...progress, elapsedSeconds: (Date.now() - started) / 1000 });
    detector = await loadFaceDetector(options.detector ?? join(shippedModelsDir(), SYNTHETIC_DETECTOR_FILE), {
      ...session,
      format: options.detectorFormat ?? 'auto',
      scoreThreshold: options.scoreThreshold,
      nmsThreshold: options.nmsThreshold,
      minFaceSize: options.minFaceSize,
      inputSize: options.detectorInputSize,
    });
    for (const spec of options.scorers ?? []) scorers.push(await loadScorer(spec, session));
    const det = detector;
    report();
    const onSource = (log: VideoLog, clips: number) => {
      progress.videosDone++;
      if (log.status === 'failed') progress.videosFailed++;
      progress.clips += clips;
      report();
    };
    const stages = [
      sampleFramesStage({ ffmpeg, sampleEvery, numWorkers, fit: (w, h) => det.fit(w, h), signal }),
      detectStage(det, { batchSize, onBatch: options.onBatch }),
      trackStage(track),
      cropStage({ ffmpeg, size, enlarge, cropMode, signal }),
      encodeStage({ ffmpeg, outputDir, audio, encode: options, store, imageFormat, jpegQuality, scorers, scoreFrames, signal }),
      recordSink(state, { outputDir, sources, onWarning, onSource }),
    ];
    try {
      await pipeline([Readable.from(todo), ...stages], { signal });
    } catch (err) {
      // pipeline rejects as soon as it is torn down; the stages kill their ffmpeg when they close.
      await Promise.all(stages.map((st) => (st.closed ? null : new Promise((resolve) => st.once('close', resolve)))));
      throw err;
    }
    const lmdbPath = store ? join(outputDir, LMDB_DIR) : null;
    if (store) await store.exportTo(lmdbPath!);
    const logs = state.logs.sort((a, b) => a.index - b.index).map(({ index: _, ...log }) => log);
    return { videos: [...skipped, ...logs], rows: state.rows, seconds: (Date.now() - started) / 1000, lmdbPath };
  } finally {
    await store?.close();
    await detector?.close();
    for (const s of scorers) await s.close();
  }
}
